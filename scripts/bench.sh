#!/usr/bin/env bash
# Benchmarks (BENCHMARKS.md): native release, then the same code as wasm in headless Chromium.
# Usage: scripts/bench.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --browser
scripts/fetch-whisper.sh
runs="${1:-5}"
cache="${HUBSIDE_CACHE:-$HOME/.cache/hubside}"
# The bench subcommand (and the wasm bench* exports) exist only with the `bench` feature.
cargo build --release --bin hubside --features bench
bench=target/release/hubside

echo "== native (release, both cores)"
$bench bench sentiment --runs "$runs"
$bench bench translation --runs "$runs" --input-tokens 32 --new-tokens 64
for model in faster-whisper-tiny.en faster-whisper-base; do
  $bench bench transcription --runs "$runs" --model "$cache/hub/Systran/$model"
done

echo "== wasm in headless Chromium (one thread, SIMD128)"
wasm-pack build --target web --release --no-pack --out-dir target/pkg-bench -- --features bench >/dev/null 2>&1
node bench/run.js "$runs" sentiment translation \
  transcription:Systran/faster-whisper-tiny.en transcription:Systran/faster-whisper-base
