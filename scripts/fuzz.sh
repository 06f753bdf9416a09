#!/usr/bin/env bash
# Fuzz every parser with cargo-fuzz (fuzz/, one target per parser, all feeding
# tests/hostile/harness.rs), each for SECONDS (default 600), or only the TARGETs named:
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Overflow checks are on (-a); libFuzzer counts as a crash any panic, any input that runs longer
# than 20 s (-timeout) and any run above 2 GB of memory (-rss_limit_mb, -malloc_limit_mb).
# A crash is minimised into tests/hostile/TARGET/ and tests/hostile/cases.rs is regenerated, so
# `cargo test` (tests/hostile_replay.rs) and the Chromium tests (tests/web_hostile.rs) replay it
# from then on; the script then exits 1. Corpora and the build live in the cache
# ($HUBSIDE_CACHE, default ~/.cache/hubside), outside the repo. FUZZ_SANITIZER=address for ASan.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors pytorch ctranslate2 ggml sentencepiece wordpiece tokenizer_json config audio)
cache="${HUBSIDE_CACHE:-$HOME/.cache/hubside}"
target_dir="$cache/fuzz-target"
sanitizer="${FUZZ_SANITIZER:-none}"

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2

# Seeds: the fixtures' own files, small audio heads, and tiny valid CTranslate2 / ggml headers.
seeds="$cache/fuzz-seeds"
if [ ! -e "$seeds/.done" ]; then
  rm -rf "$seeds"
  fx=tests/fixtures/hub/tiny-random
  mkdir -p "$seeds"/{safetensors,pytorch,ctranslate2,ggml,sentencepiece,wordpiece,tokenizer_json,config,audio}
  cp "$fx/distilbert-sst2/model.safetensors" "$seeds/safetensors/distilbert"
  cp "$fx/distilbert-sst2-legacy/pytorch_model.bin" "$seeds/pytorch/distilbert"
  cp "$fx/marian-en-de/source.spm" "$seeds/sentencepiece/marian-source"
  cp "$fx/t5/spiece.model" "$seeds/sentencepiece/t5"
  cp "$fx/distilbert-sst2-legacy/vocab.txt" "$seeds/wordpiece/bert"
  cp "$fx/t5/tokenizer.json" "$seeds/tokenizer_json/t5"
  # config: the first byte picks the architecture (harness.rs).
  for pair in 0:distilbert-sst2 1:marian-en-de 2:t5; do
    { printf "\\$(printf '%03o' "${pair%%:*}")"; cat "$fx/${pair#*:}/config.json"; } > "$seeds/config/${pair#*:}"
  done
  for f in jfk16.wav jfk16.flac jfk22.mp3 jfk44-stereo.ogg; do head -c 32768 "tests/fixtures/audio/$f" > "$seeds/audio/$f"; done
  python3 - "$seeds" <<'PY'
import struct, sys
seeds = sys.argv[1]
def s(text):
    b = text.encode() + b"\0"
    return struct.pack("<H", len(b)) + b
# CTranslate2 model.bin, version 6: spec, revision, variables (name, rank, dims, dtype, bytes), aliases.
vars = [("encoder/layer_0/ffn/linear_0/weight", [4, 2], 0, struct.pack("<8f", *range(8))),
        ("encoder/layer_0/ffn/linear_0/bias", [4], 0, struct.pack("<4f", *range(4))),
        ("encoder/num_heads", [], 4, struct.pack("<i", 2))]
out = struct.pack("<I", 6) + s("WhisperSpec") + struct.pack("<II", 3, len(vars))
for name, dims, dtype, data in vars:
    out += s(name) + bytes([len(dims)]) + b"".join(struct.pack("<I", d) for d in dims)
    out += bytes([dtype]) + struct.pack("<I", len(data)) + data
out += struct.pack("<I", 1) + s("decoder/embeddings/weight") + s("encoder/layer_0/ffn/linear_0/weight")
open(f"{seeds}/ctranslate2/tiny", "wb").write(out)
# whisper.cpp ggml: magic, 11 hyper-parameters, mel filters, vocabulary, one f32 tensor.
h = [51864, 4, 4, 2, 1, 4, 4, 2, 1, 2, 0]
out = struct.pack("<I", 0x67676D6C) + struct.pack("<11i", *h)
out += struct.pack("<ii", 2, 3) + struct.pack("<6f", *[0.5] * 6)
out += struct.pack("<i", 2) + struct.pack("<i", 1) + b"a" + struct.pack("<i", 2) + b"bc"
name = b"encoder.ln_post.weight"
out += struct.pack("<iii", 1, len(name), 0) + struct.pack("<i", 4) + name + struct.pack("<4f", 1, 1, 1, 1)
open(f"{seeds}/ggml/tiny", "wb").write(out)
PY
  touch "$seeds/.done"
fi

(cd fuzz && cargo +nightly fuzz build -s "$sanitizer" -a --target-dir "$target_dir")
found=0
for t in "${targets[@]}"; do
  corpus="$cache/fuzz-corpus/$t"
  artifacts="$cache/fuzz-artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  echo "== fuzz $t for ${seconds}s"
  mkdir -p "$cache/fuzz-logs"
  log="$cache/fuzz-logs/$t-$(date +%Y%m%d-%H%M%S)-$$.log"
  set +e
  (cd fuzz && cargo +nightly fuzz run -s "$sanitizer" -a --target-dir "$target_dir" "$t" "$corpus" "$seeds/$t" -- \
      -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len=1048576 \
      -artifact_prefix="$artifacts/" -print_final_stats=1) >"$log" 2>&1
  status=$?
  set -e
  grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|==[0-9]+== ERROR|SUMMARY|thread .* panicked)' "$log" || true
  hit=0
  # crash-*, timeout-*, oom-* and leak-* are findings; slow-unit-* only notes a slow input.
  for crash in "$artifacts"/{crash,timeout,oom,leak}-*; do
    [ -e "$crash" ] || continue
    found=1 hit=1
    name=$(basename "$crash")
    mkdir -p "tests/hostile/$t"
    (cd fuzz && cargo +nightly fuzz tmin -s "$sanitizer" -a --target-dir "$target_dir" "$t" "$crash" -- -runs=2000 >/dev/null 2>&1) || true
    minimized=$(ls -t "fuzz/artifacts/$t"/minimized-from-* 2>/dev/null | head -1 || true)
    cp "${minimized:-$crash}" "tests/hostile/$t/$name"
    rm -f "$artifacts"/* "fuzz/artifacts/$t"/minimized-from-*
    echo "crash in $t: tests/hostile/$t/$name"
  done
  # A run that stops early with no finding (a build or runner failure) is a failure too.
  if [ "$status" != 0 ] && [ "$hit" = 0 ]; then
    echo "fuzz $t stopped with status $status and no finding: $log"
    tail -20 "$log"
    found=1
  fi
done
scripts/hostile-cases.sh
exit $found
