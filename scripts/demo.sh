#!/usr/bin/env bash
# The demo: builds the wasm package and the CLI, then serves the page on http://127.0.0.1:8080
# with a local Hub mirror of the test models (the page picks the mirror up by itself).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build-wasm.sh
cargo build --release --bin hubside
hubs=(--hub tests/fixtures/hub)
cache="${HUBSIDE_CACHE:-$HOME/.cache/hubside}"
[ -d "$cache/hub" ] && hubs+=(--hub "$cache/hub")
echo "Open http://${HUBSIDE_ADDR:-127.0.0.1:8080}/ (Ctrl-C stops)"
exec target/release/hubside serve --addr "${HUBSIDE_ADDR:-127.0.0.1:8080}" "${hubs[@]}" --root www --pkg pkg
