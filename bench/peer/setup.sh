#!/usr/bin/env bash
# One-time set-up of the side-by-side benchmark folder /tmp/peer, following ../shared/peer-bench/README.md
# (transformers.js 4.x + playwright-core from npm; PyTorch/transformers/optimum from PyPI; seeded
# DistilBERT-base and Marian models; ONNX fp32+q8 exports; the real Whisper tiny.en/base weights that
# scripts/fetch-whisper.sh verifies, converted for the ONNX export). Idempotent: finished steps are kept.
# usage: bench/peer/setup.sh        (~20 min on 2 cores; then bench/peer/layout.sh, then bench.mjs)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
peer=${PEER_BENCH:-$root/../shared/peer-bench}
P=/tmp/peer
mkdir -p "$P/results"
cd "$P"
[ -f package.json ] || npm init -y >/dev/null
[ -d node_modules/@huggingface/transformers ] && [ -d node_modules/playwright-core ] ||
  npm install --silent --ignore-scripts @huggingface/transformers@4 playwright-core
[ -x venv/bin/python ] || python3 -m venv venv
venv/bin/python -c 'import torch, transformers, optimum.onnxruntime' 2>/dev/null ||
  venv/bin/pip install --quiet "torch==2.8.0" "transformers>=4.57,<4.58" "optimum-onnx[onnxruntime]==0.1.0" \
    sentencepiece safetensors onnxslim accelerate soundfile scipy
cd "$peer"
[ -d $P/hf/distilbert-base-random ] && [ -d $P/hf/marian-en-de-random ] || $P/venv/bin/python make_models.py
[ -f inputs.json ] || $P/venv/bin/python make_inputs.py
"$root/scripts/fetch-whisper.sh" >&2
hub=${HUBSIDE_CACHE:-$HOME/.cache/hubside}/hub
mkdir -p $P/hub/Systran
for M in tiny.en base; do
  [ -d $P/hub/Systran/faster-whisper-$M ] || cp -rL "$hub/Systran/faster-whisper-$M" $P/hub/Systran/
  [ -d $P/hf/whisper-$M ] || $P/venv/bin/python ../tools/ct2_to_hf.py $P/hub/Systran/faster-whisper-$M $P/hf/whisper-$M --check ../fixtures/audio/jfk16.wav
done
export_onnx() { [ -d "$2/onnx" ] || $P/venv/bin/python export_onnx.py "$@"; }
export_onnx $P/hf/distilbert-base-random $P/tjs/distilbert-base-random text-classification
export_onnx $P/hf/marian-en-de-random $P/tjs/marian-en-de-random text2text-generation-with-past
for M in tiny.en base; do
  export_onnx $P/hf/whisper-$M $P/tjs/whisper-$M automatic-speech-recognition-with-past
done
echo "peer set-up done in $P"
