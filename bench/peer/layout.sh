#!/usr/bin/env bash
# Lays out the web root /tmp/peer/www as ../shared/peer-bench/layout.sh does (same mirror, same
# transformers.js), with this folder's bench.html and bench-worker.js and hubside's pkg/ (which
# carries the other builds in pkg/relaxed/, pkg/threads/, pkg/threads-relaxed/; build them with
# scripts/build-wasm.sh first).
# usage: bench/peer/layout.sh [PKG]     (the shared script does not parse in this bash: a quote)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
peer=${PEER_BENCH:-$root/../shared/peer-bench}
pkg=${1:-$root/pkg}
P=/tmp/peer; W=$P/www
rm -rf "$W"; mkdir -p "$W/hub" "$W/audio"
ln -s "$here/bench.html" "$W/bench.html"; ln -s "$here/bench-worker.js" "$W/bench-worker.js"
ln -s "$peer/inputs.json" "$W/inputs.json"; ln -s "$P/node_modules" "$W/node_modules"
cp -r "$pkg" "$W/pkg"
cp "$peer/../fixtures/audio/jfk16.wav" "$W/audio/"
repo() { # repo ID DIR...: the files of each DIR (later ones win), symlinked
  local d="$W/hub/$1/resolve/main"; shift; mkdir -p "$d"
  for src in "$@"; do [ -d "$src" ] || continue; for f in "$src"/*; do ln -sfn "$f" "$d/$(basename "$f")"; done; done
}
for m in distilbert-base-random marian-en-de-random; do
  repo peer/$m $P/hf/$m
  [ -d $P/tjs/$m/onnx ] && ln -s $P/tjs/$m/onnx "$W/hub/peer/$m/resolve/main/onnx"
done
for m in roberta-base-random nllb-600m-random whisper-large-v3-turbo-random; do # issue 11 (make_issue11_models.py)
  [ -d $P/hf/$m ] && repo peer/$m $P/hf/$m
done
for m in tiny.en base; do
  repo Systran/faster-whisper-$m $P/hub/Systran/faster-whisper-$m
  repo peer/whisper-$m $P/tjs/whisper-$m
done
test -f "$W/pkg/threads/hubside.js" || echo "note: no threaded build in $pkg/threads: threads > 1 will fail" >&2
echo "laid out $W"
