#!/usr/bin/env bash
# Builds the wasm packages, ES modules for the web (hubside.js + hubside_bg.wasm), one per
# variant of scripts/wasm-pack-variant.sh:
#   pkg/                  single: one thread, SIMD128, runs everywhere
#   pkg/relaxed/          relaxed: one thread, relaxed SIMD
#   pkg/threads/          threads: rayon's pool on Web Workers (cross-origin isolated pages)
#   pkg/threads-relaxed/  threads-relaxed: both
# pkg/index.js (a copy of npm/index.js), the package's entry, loads the fastest one the browser
# can run; www/worker.js imports it.
# Usage: scripts/build-wasm.sh [VARIANT...] [-- CARGO_ARGS...]   (default: all four)
set -euo pipefail
cd "$(dirname "$0")/.."
variants=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do variants+=("${1#--}"); shift; done
[ "${1:-}" != -- ] || shift
[ ${#variants[@]} -gt 0 ] || variants=(single relaxed threads threads-relaxed)

for variant in "${variants[@]}"; do
  case "$variant" in
    single) out=pkg ;;
    relaxed | threads | threads-relaxed) out=pkg/$variant ;;
    *) echo "build-wasm: unknown variant '$variant'" >&2; exit 2 ;;
  esac
  features=()
  case "$variant" in threads*) features=(--features threads) ;; esac
  scripts/wasm-pack-variant.sh "$variant" build --target web --release --no-pack --out-dir "$out" -- "${features[@]}" "$@"
done
mkdir -p pkg
cp npm/index.js pkg/index.js
