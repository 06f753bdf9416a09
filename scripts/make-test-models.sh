#!/usr/bin/env bash
# Regenerates the tiny random test models and their PyTorch references (tests/models/make_*.py,
# seeded, pinned versions in tests/models/requirements.txt) into tests/fixtures/hub/. Not part of
# the test run: the outputs are committed. usage: scripts/make-test-models.sh [NAME...]
# (NAME = the part of make_NAME.py; default: all). The venv lives in the cache, outside the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${HUBSIDE_CACHE:-$HOME/.cache/hubside}/models-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet -r tests/models/requirements.txt
names=("$@")
[ ${#names[@]} -gt 0 ] || names=($(ls tests/models/make_*.py | sed 's/.*make_\(.*\)\.py/\1/'))
for name in "${names[@]}"; do
  echo "== tests/models/make_$name.py"
  (cd tests/models && "$venv/bin/python" "make_$name.py")
done
