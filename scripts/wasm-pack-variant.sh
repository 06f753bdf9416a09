#!/usr/bin/env bash
# `wasm-pack ARGS...` for one of the four wasm builds, each in its own target dir so that none
# waits for or invalidates another:
#   single           stable Rust, SIMD128 (.cargo/config.toml's flags): runs everywhere
#   relaxed          + relaxed SIMD (8-bit dot products): Chromium 114 and later
#   threads          nightly Rust with atomics and shared memory, std rebuilt with them; give
#                    cargo `--features threads`
#   threads-relaxed  both
# www/worker.js picks the first one the browser can run (threads only on cross-origin isolated
# pages, relaxed only where WebAssembly.validate accepts a relaxed instruction).
# Usage: scripts/wasm-pack-variant.sh VARIANT build|test WASM_PACK_ARGS... [-- CARGO_ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
variant="${1:?usage: scripts/wasm-pack-variant.sh single|relaxed|threads|threads-relaxed build|test ...}"
shift
# RUSTFLAGS replaces .cargo/config.toml's wasm rustflags, so those are repeated (SIMD128,
# getrandom's backend).
flags='-C target-feature=+simd128 --cfg getrandom_backend="wasm_js"'
case "$variant" in
  single) exec wasm-pack "$@" ;;
  relaxed) export CARGO_TARGET_DIR=target/relaxed RUSTFLAGS="$flags -C target-feature=+relaxed-simd" ;;
  threads | threads-relaxed)
    export RUSTUP_TOOLCHAIN=nightly CARGO_TARGET_DIR=target/$variant CARGO_UNSTABLE_BUILD_STD=panic_abort,std
    # Shared memory needs a maximum; 4 GiB is all wasm32 can address.
    RUSTFLAGS="$flags -C target-feature=+atomics,+bulk-memory,+mutable-globals -C link-arg=--max-memory=4294967296"
    [ "$variant" = threads ] || RUSTFLAGS="$RUSTFLAGS -C target-feature=+relaxed-simd"
    export RUSTFLAGS ;;
  *) echo "wasm-pack-variant: unknown variant '$variant' (single, relaxed, threads, threads-relaxed)" >&2; exit 2 ;;
esac
exec wasm-pack "$@"
