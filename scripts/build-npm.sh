#!/usr/bin/env bash
# Assembles the `hubside` npm package from the four wasm builds in pkg/ (scripts/build-wasm.sh),
# the hand-written entry npm/index.js, which picks the fastest build the browser runs, the
# declarations npm/hubside.d.ts and README.md, with a package.json whose version is Cargo.toml's.
# Then `npm pack` or `npm publish` inside OUT_DIR. The builds are built first when missing or
# stale (scripts/ensure-pkg.sh).
# Usage: scripts/build-npm.sh [OUT_DIR]   (default target/npm/hubside)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/npm/hubside}"
scripts/ensure-pkg.sh
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
rm -rf "$out"
mkdir -p "$out"
# pkg/'s layout as it is: the single-thread build at the root, the others in folders, each with
# wasm-bindgen's snippets/ (wasm-bindgen-rayon's worker script) where it has one.
cp npm/index.js pkg/hubside.js pkg/hubside_bg.wasm npm/hubside.d.ts README.md "$out/"
files=(index.js hubside.js hubside_bg.wasm hubside.d.ts README.md)
[ ! -d pkg/snippets ] || { cp -R pkg/snippets "$out/"; files+=(snippets); }
for build in relaxed threads threads-relaxed; do
  mkdir -p "$out/$build"
  cp pkg/$build/hubside.js pkg/$build/hubside_bg.wasm "$out/$build/"
  [ ! -d pkg/$build/snippets ] || cp -R pkg/$build/snippets "$out/$build/"
  files+=("$build")
done
HUBSIDE_VERSION="$version" HUBSIDE_FILES="${files[*]}" node --input-type=module -e '
const files = process.env.HUBSIDE_FILES.split(" ");
const pkg = {
  name: "hubside",
  version: process.env.HUBSIDE_VERSION,
  description: "Hugging Face Hub models (sentiment analysis, translation, Whisper speech recognition) running client-side in the browser with WebAssembly",
  license: "MIT OR Apache-2.0",
  keywords: ["huggingface", "transformers", "webassembly", "whisper", "translation", "sentiment-analysis", "browser"],
  type: "module",
  main: "./index.js",
  types: "./hubside.d.ts",
  exports: {
    ".": { types: "./hubside.d.ts", default: "./index.js" },
    "./hubside_bg.wasm": "./hubside_bg.wasm",
    "./package.json": "./package.json",
  },
  files,
  // The worker script of wasm-bindgen-rayon runs when a worker imports it; nothing else has effects
  // on import (the builds only define functions until init()).
  sideEffects: ["./snippets/**", "./*/snippets/**"],
};
process.stdout.write(JSON.stringify(pkg, null, 2) + "\n");
' > "$out/package.json"
echo "npm package: $out (hubside@$version: $(cd "$out" && find . -type f | sort | tr '\n' ' '))"
