#!/usr/bin/env bash
# Assembles the `hubside` npm package from the wasm package in pkg/ (scripts/build-wasm.sh),
# the hand-written declarations npm/hubside.d.ts and README.md, with a package.json whose
# version is Cargo.toml's. Then `npm pack` or `npm publish` inside OUT_DIR.
# pkg/ is built first when missing or stale (scripts/ensure-pkg.sh).
# Usage: scripts/build-npm.sh [OUT_DIR]   (default target/npm/hubside)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/npm/hubside}"
# The single-thread build only, for now: the threaded one (pkg/threads) works only in pages its
# users make cross-origin isolated; the page in dist/ picks between both.
scripts/ensure-pkg.sh pkg
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
rm -rf "$out"
mkdir -p "$out"
cp pkg/hubside.js pkg/hubside_bg.wasm npm/hubside.d.ts README.md "$out/"
# wasm-bindgen puts `#[wasm_bindgen(module = ...)]` JS into snippets/; ship it if there is any.
snippets=()
if [ -d pkg/snippets ]; then
  cp -R pkg/snippets "$out/"
  snippets=(snippets)
fi
# hubside.js only defines functions until init() is called: no side effects on import, so
# bundlers may drop it when unused.
HUBSIDE_VERSION="$version" HUBSIDE_SNIPPETS="${snippets[*]:-}" node --input-type=module -e '
const files = ["hubside.js", "hubside_bg.wasm", "hubside.d.ts", "README.md", ...process.env.HUBSIDE_SNIPPETS.split(" ").filter(Boolean)];
const pkg = {
  name: "hubside",
  version: process.env.HUBSIDE_VERSION,
  description: "Hugging Face Hub models (sentiment analysis, translation, Whisper speech recognition) running client-side in the browser with WebAssembly",
  license: "MIT OR Apache-2.0",
  keywords: ["huggingface", "transformers", "webassembly", "whisper", "translation", "sentiment-analysis", "browser"],
  type: "module",
  main: "./hubside.js",
  types: "./hubside.d.ts",
  exports: {
    ".": { types: "./hubside.d.ts", default: "./hubside.js" },
    "./hubside_bg.wasm": "./hubside_bg.wasm",
    "./package.json": "./package.json",
  },
  files,
  sideEffects: files.includes("snippets") ? ["./snippets/*"] : false,
};
process.stdout.write(JSON.stringify(pkg, null, 2) + "\n");
' > "$out/package.json"
echo "npm package: $out (hubside@$version: $(cd "$out" && find . -type f | sort | tr '\n' ' '))"
