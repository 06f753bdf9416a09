#!/usr/bin/env bash
# Builds dist/: the page, the widgets and the wasm package as plain static files, plus a README.md
# whose front matter makes the folder a Hugging Face static Space. Any static file server works:
#   scripts/build-dist.sh && python3 -m http.server -d dist 8000
# pkg/ is built first when missing or stale (scripts/ensure-pkg.sh).
# Usage: scripts/build-dist.sh [OUT_DIR]   (default dist)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist}"
scripts/ensure-pkg.sh
# Build aside and swap it in, so a failed build never leaves half a dist/.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
cp -R www/* "$tmp/"   # www/ as it is now (not its hidden files)
mkdir -p "$tmp/pkg"
cp pkg/hubside.js pkg/hubside_bg.wasm "$tmp/pkg/"
for f in index.html app.js client.js ui.js worker.js widgets.js style.css example.html pkg/hubside.js pkg/hubside_bg.wasm; do
  [ -s "$tmp/$f" ] || { echo "build-dist: $f is missing" >&2; exit 1; }
done

# The Space: static SDK, served as is. The headers make the page cross-origin isolated (needed
# for wasm threads and precise timers; models still load from huggingface.co, which sends CORS).
cat > "$tmp/README.md" <<'EOF'
---
title: hubside
emoji: 🧩
colorFrom: yellow
colorTo: gray
sdk: static
app_file: index.html
pinned: false
short_description: Hub models running client-side with WebAssembly
custom_headers:
  cross-origin-embedder-policy: require-corp
  cross-origin-opener-policy: same-origin
  cross-origin-resource-policy: cross-origin
---

# hubside

Hugging Face Hub models running in the browser: sentiment analysis, translation and speech
transcription, compiled from Rust to WebAssembly and run in a Web Worker. Models are downloaded
from the Hub once, kept in the browser's cache, and run on the visitor's CPU; text and audio never
leave the device.

- `index.html`: the app (choose a model, see download progress, cached models, cancel).
- `example.html`: an ordinary page embedding the `<hubside-sentiment>`, `<hubside-translate>` and
  `<hubside-transcribe>` widgets; any page can use them with one
  `<script type="module" src="https://…/widgets.js"></script>` tag.

This folder is plain static files: serve it with any static file server, or upload it as a
static Space (`hf upload YOUR_NAME/hubside . . --repo-type=space` from inside it).
EOF

# The Hub stores binary files through Xet/LFS; mark the wasm so a plain `git push` works too.
printf '%s\n' '*.wasm filter=lfs diff=lfs merge=lfs -text' > "$tmp/.gitattributes"

rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "dist: $out ($(du -sh "$out" | cut -f1)): $(cd "$out" && find . -type f | sort | tr '\n' ' ')"
