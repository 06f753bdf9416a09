#!/usr/bin/env bash
# Benchmarks (BENCHMARKS.md): native release, then the same code as wasm in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --browser
runs="${1:-10}"
cargo build --release --bin hubside
echo "== native: sentiment, DistilBERT-base size (66M parameters, random weights)"
target/release/hubside bench sentiment --runs "$runs"
echo "== wasm in headless Chromium (single thread, SIMD128)"
wasm-pack build --target web --release --no-pack --out-dir target/pkg-bench -- --features bench >/dev/null 2>&1
node bench/run.js "$runs"
