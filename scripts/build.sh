#!/usr/bin/env bash
# Builds dist/: the optimised wasm, the wasm-bindgen JS glue bundled with the npm entry
# (dist/index.js), TypeScript declarations (dist/index.d.ts), the loader (dist/tracker.js), and the
# Salla app snippet (dist/snippet.js).
#
# SM_ASSET_BASE: the absolute URL (https://…/) where dist/ is served, written into the snippet.
# Salla serves a snippet from its own CDN, so the snippet cannot find the tracker's files beside
# itself as the loader does. Default: the demo server's http://127.0.0.1:8080/dist/ (for
# `npm run demo`; set it for a real store). A page may still override it at run time with
# window.SallaSalesmanagoAssetBase (docs/configuration.md).
# Prints the size of each artefact, raw and gzip, and writes them to dist/sizes.json.
set -euo pipefail
cd "$(dirname "$0")/.."

SM_ASSET_BASE=${SM_ASSET_BASE:-http://127.0.0.1:8080/dist/}
case "$SM_ASSET_BASE" in
  https://* | http://*) ;;
  *) echo "build: SM_ASSET_BASE must be an absolute http(s) URL, got '$SM_ASSET_BASE'" >&2; exit 1 ;;
esac
# A base names a folder: without the final slash, URL resolution would drop its last segment.
case "$SM_ASSET_BASE" in */) ;; *) SM_ASSET_BASE="$SM_ASSET_BASE/" ;; esac
export PATH="$HOME/.cargo/bin:$PATH"

SM_WASM_TOOLCHAIN=rustup
# shellcheck disable=SC1091
[ -f target/toolchain.env ] && . target/toolchain.env
if [ "$SM_WASM_TOOLCHAIN" = debian ]; then
  RUSTC_BOOTSTRAP=1 CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-19/bin/wasm-ld \
    /usr/bin/cargo build -q --profile wasm-release --target wasm32-unknown-unknown --lib -Z build-std=std,panic_abort
else
  # The standard library rebuilt for size, with panics as a bare trap (no message formatting, no
  # unwinding tables, no source locations) and `{:?}` compiled to nothing (only tests use Debug
  # formatting): about 8 KB gzip less for every shopper. These are unstable flags, allowed on
  # the stable compiler by RUSTC_BOOTSTRAP: a build-time trade-off, no code depends on it. If the
  # toolchain refuses them, the ordinary build still works (and the size gate in `npm test` says
  # by how much it is over).
  if ! RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zfmt-debug=none -Zlocation-detail=none" \
      cargo build -q --profile wasm-release --target wasm32-unknown-unknown --lib \
        -Z build-std=std,panic_abort; then
    echo "build: the size-optimised std build failed; building with the prebuilt std" >&2
    cargo build -q --profile wasm-release --target wasm32-unknown-unknown --lib
  fi
fi

rm -rf dist target/bindgen
mkdir -p dist target/bindgen
# --encode-into always: strings go into the wasm with TextEncoder.encodeInto (every browser
# since 2020; Safari 14.1) without the fallback path.
wasm-bindgen --target web --encode-into always --out-dir target/bindgen --out-name salesmanago \
  target/wasm32-unknown-unknown/wasm-release/salla_salesmanago.wasm
# npm's binaryen: Debian's wasm-opt 108 rewrites the externref table into one browsers reject.
# Optimised until it stops shrinking (--converge), then the imports and exports renamed in a
# second run, whose stdout is the mapping that scripts/short-names.mjs applies to the glue.
# A function with one caller is inlined only when small (20): by default binaryen inlines every
# one, which made `start` and the event handler 10–17 KB functions that gzip ~1.7 KB worse
# (measured over 0–1000; 15–25 is the best range), and which the browser must compile whole on
# first call, error paths included.
WASM_FEATURES=(--enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int
  --enable-mutable-globals --enable-reference-types --enable-multivalue)
# SM_WASM_NAMES=1 keeps the functions' names in dist/ (and the glue unminified), for a profiler to show
# (BENCH_PROFILE=1 node bench/compare.mjs); never for a shipped build.
NAMES=(--strip-debug)
[ -n "${SM_WASM_NAMES:-}" ] && NAMES=(-g)
node_modules/.bin/wasm-opt --merge-similar-functions -Oz --one-caller-inline-max-function-size 20 --converge "${NAMES[@]}" --strip-producers "${WASM_FEATURES[@]}" \
  target/bindgen/salesmanago_bg.wasm -o target/bindgen/optimised.wasm
node_modules/.bin/wasm-opt "${WASM_FEATURES[@]}" "${NAMES[@]}" --strip-target-features --minify-imports-and-exports-and-modules \
  target/bindgen/optimised.wasm -o dist/salesmanago_bg.wasm > target/bindgen/names.json
node scripts/short-names.mjs target/bindgen/names.json dist/salesmanago_bg.wasm target/bindgen/salesmanago.js
MINIFY=(--minify)
[ -n "${SM_WASM_NAMES:-}" ] && MINIFY=()
# V8's explicit compile hint (Chromium 136+; a plain comment elsewhere): the glue is compiled
# whole while it loads, before the wasm has arrived, instead of function by function on the
# first call of each import during start-up (~0.9 ms less from instantiated to ready, six
# interleaved runs of `node bench/ready.mjs 20`).
node_modules/.bin/esbuild npm/index.js --bundle --format=esm "${MINIFY[@]}" --log-level=warning \
  --banner:js='//# allFunctionsCalledOnLoad' --outfile=dist/index.js
cp npm/index.d.ts dist/index.d.ts
# The words of every message (src/words.rs), loaded by the page only when there is something to say.
cargo run -q --example messages > dist/messages.js
# One source, two builds: the loader finds the files beside itself, the snippet at SM_ASSET_BASE.
node_modules/.bin/esbuild tracker.js --minify --log-level=warning --define:SM_ASSET_BASE='""' \
  --outfile=dist/tracker.js
node_modules/.bin/esbuild tracker.js --minify --log-level=warning \
  --define:SM_ASSET_BASE="$(node -p 'JSON.stringify(process.argv[1])' "$SM_ASSET_BASE")" --outfile=dist/snippet.js
echo "build: dist/snippet.js loads the tracker from $SM_ASSET_BASE"
node scripts/sizes.mjs
