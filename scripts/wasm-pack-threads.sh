#!/usr/bin/env bash
# `wasm-pack ARGS...` for the threaded wasm build (pkg/threads, tests/web_threads.rs): nightly
# Rust with atomics and shared memory, std rebuilt with them, in its own target dir so it neither
# waits for nor invalidates the stable build. Give cargo `--features threads`.
# Usage: scripts/wasm-pack-threads.sh build|test WASM_PACK_ARGS... [-- --features threads ...]
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTUP_TOOLCHAIN=nightly CARGO_TARGET_DIR=target/threads CARGO_UNSTABLE_BUILD_STD=panic_abort,std
# RUSTFLAGS replaces .cargo/config.toml's wasm rustflags, so they are repeated (SIMD128, getrandom's
# backend). Shared memory needs a maximum; 4 GiB is all wasm32 can address.
export RUSTFLAGS='-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128 -C link-arg=--max-memory=4294967296 --cfg getrandom_backend="wasm_js"'
exec wasm-pack "$@"
