#!/usr/bin/env bash
# Builds the wasm packages into pkg/ and pkg/threads/ (scripts/build-wasm.sh) when one is missing
# or older than the Rust sources; HUBSIDE_USE_PKG=1 takes existing ones as they are (the tests,
# right after test.sh built them). Used by build-dist.sh and build-npm.sh (pkg/ only).
# Usage: scripts/ensure-pkg.sh [DIR...]   (pkg and/or pkg/threads; default both)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- pkg pkg/threads
for dir in "$@"; do
  wasm=$dir/hubside_bg.wasm
  if [ ! -f "$wasm" ] || [ ! -f "$dir/hubside.js" ] || { [ -z "${HUBSIDE_USE_PKG:-}" ] &&
     [ -n "$(find src Cargo.toml Cargo.lock -newer "$wasm" -print -quit)" ]; }; then
    echo "== wasm package $dir missing or stale: building it"
    scripts/build-wasm.sh "--$([ "$dir" = pkg ] && echo single || echo threads)"
  fi
done
