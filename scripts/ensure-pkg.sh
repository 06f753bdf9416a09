#!/usr/bin/env bash
# Builds the wasm package into pkg/ (scripts/build-wasm.sh) when it is missing or older than the
# Rust sources; HUBSIDE_USE_PKG=1 takes an existing pkg/ as it is (the tests, right after
# test.sh built it). Used by build-dist.sh and build-npm.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
wasm=pkg/hubside_bg.wasm
if [ ! -f "$wasm" ] || [ ! -f pkg/hubside.js ] || { [ -z "${HUBSIDE_USE_PKG:-}" ] &&
   [ -n "$(find src Cargo.toml Cargo.lock -newer "$wasm" -print -quit)" ]; }; then
  echo "== wasm package missing or stale: building it"
  scripts/build-wasm.sh
fi
