#!/usr/bin/env bash
# Builds the wasm packages, ES modules for the web (hubside.js + hubside_bg.wasm):
#   pkg/          one thread (stable Rust, SIMD128): runs everywhere
#   pkg/threads/  rayon's pool on Web Workers (nightly Rust: atomics, shared memory, std rebuilt
#                 with them); www/worker.js takes it when the page is cross-origin isolated
# Usage: scripts/build-wasm.sh [--single | --threads] [CARGO_ARGS...]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
which=both
case "${1:-}" in --single) which=single; shift ;; --threads) which=threads; shift ;; esac

if [ "$which" != threads ]; then
  wasm-pack build --target web --release --no-pack --out-dir pkg -- "$@"
fi

if [ "$which" != single ]; then
  scripts/wasm-pack-threads.sh build --target web --release --no-pack --out-dir pkg/threads -- --features threads "$@"
fi
