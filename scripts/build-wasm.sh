#!/usr/bin/env bash
# Builds the wasm package into pkg/ (ES module for the web: pkg/hubside.js + hubside_bg.wasm).
set -euo pipefail
cd "$(dirname "$0")/.."
wasm-pack build --target web --release --no-pack --out-dir pkg "$@"
