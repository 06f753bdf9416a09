#!/usr/bin/env bash
# Builds the wasm packages (scripts/build-wasm.sh: pkg/ and pkg/VARIANT/) when one is missing
# or older than the Rust sources; HUBSIDE_USE_PKG=1 takes existing ones as they are (the tests,
# right after test.sh built them). Used by build-dist.sh and build-npm.sh (pkg/ only).
# Usage: scripts/ensure-pkg.sh [DIR...]   (pkg, pkg/relaxed, pkg/threads, pkg/threads-relaxed;
# default all four)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- pkg pkg/relaxed pkg/threads pkg/threads-relaxed
for dir in "$@"; do
  wasm=$dir/hubside_bg.wasm
  if [ ! -f "$wasm" ] || [ ! -f "$dir/hubside.js" ] || { [ -z "${HUBSIDE_USE_PKG:-}" ] &&
     [ -n "$(find src Cargo.toml Cargo.lock -newer "$wasm" -print -quit)" ]; }; then
    echo "== wasm package $dir missing or stale: building it"
    scripts/build-wasm.sh "$([ "$dir" = pkg ] && echo single || echo "${dir#pkg/}")"
  fi
done
# The entry that picks a build is plain JS (npm/index.js): copied, never built.
cmp -s npm/index.js pkg/index.js || cp npm/index.js pkg/index.js
