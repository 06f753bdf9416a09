#!/usr/bin/env bash
# Builds dist/: the page, the widgets and the wasm package as plain static files, plus a README.md
# whose front matter makes the folder a Hugging Face static Space. Any static file server works:
#   scripts/build-dist.sh && python3 -m http.server -d dist 8000
# pkg/ is built first when missing or stale (scripts/ensure-pkg.sh). All four wasm builds go in:
# pkg/threads*/ run when the page is cross-origin isolated (the Space's headers), pkg/*relaxed/
# where the browser has relaxed SIMD, else pkg/ (pkg/index.js picks).
# --coi-serviceworker: the pages load coi-serviceworker.js, which isolates them on hosts that
# cannot send headers (GitHub Pages); the file is in dist/ either way.
# Usage: scripts/build-dist.sh [--coi-serviceworker] [OUT_DIR]   (default dist)
set -euo pipefail
cd "$(dirname "$0")/.."
coi=
if [ "${1:-}" = --coi-serviceworker ]; then coi=1; shift; fi
out="${1:-dist}"
scripts/ensure-pkg.sh
# Build aside and swap it in, so a failed build never leaves half a dist/.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
cp -R www/* "$tmp/"   # www/ as it is now (not its hidden files)
mkdir -p "$tmp/pkg/relaxed" "$tmp/pkg/threads" "$tmp/pkg/threads-relaxed"
cp pkg/index.js pkg/hubside.js pkg/hubside_bg.wasm "$tmp/pkg/"
cp pkg/relaxed/hubside.js pkg/relaxed/hubside_bg.wasm "$tmp/pkg/relaxed/"
# The threaded builds' JS snippets (wasm-bindgen-rayon's worker script) come along.
for threads in threads threads-relaxed; do
  cp -R pkg/$threads/hubside.js pkg/$threads/hubside_bg.wasm pkg/$threads/snippets "$tmp/pkg/$threads/"
done
for f in index.html app.js client.js ui.js worker.js widgets.js live.js live-worklet.js style.css example.html coi-serviceworker.js pkg/index.js \
  pkg/{,relaxed/,threads/,threads-relaxed/}hubside.js pkg/{,relaxed/,threads/,threads-relaxed/}hubside_bg.wasm; do
  [ -s "$tmp/$f" ] || { echo "build-dist: $f is missing" >&2; exit 1; }
done
if [ -n "$coi" ]; then
  # First in <head>: it must run before the page's modules start the worker.
  sed -i 's|<head>|<head>\n  <script src="coi-serviceworker.js"></script>|' "$tmp/index.html" "$tmp/example.html"
  for page in index.html example.html; do grep -q coi-serviceworker.js "$tmp/$page"; done
fi

# The Space: static SDK, served as is. The headers make the page cross-origin isolated, so it
# runs the threaded wasm build (models still load from huggingface.co, which sends CORS).
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

Models run on all the visitor's cores (`pkg/threads/`, Web Workers sharing memory) when the page
is cross-origin isolated, which the `custom_headers` above do on a Space; elsewhere they run on
one core (`pkg/`). Browsers with relaxed SIMD (Chromium 114 and later) get the builds that use
its 8-bit dot products (`pkg/relaxed/`, `pkg/threads-relaxed/`). A host that cannot send those
headers (GitHub Pages) can isolate the pages with the included service worker: add `<script src="coi-serviceworker.js"></script>` first in
the `<head>` of `index.html` and `example.html` (the page reloads itself once on the first visit).
EOF

# The Hub stores binary files through Xet/LFS; mark the wasm so a plain `git push` works too.
printf '%s\n' '*.wasm filter=lfs diff=lfs merge=lfs -text' > "$tmp/.gitattributes"

rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "dist: $out ($(du -sh "$out" | cut -f1)): $(cd "$out" && find . -type f | sort | tr '\n' ' ')"
