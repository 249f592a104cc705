// Gives the wasm's imports and exports one- or two-letter names, in the module and in its JS glue.
//
// wasm-bindgen names every import after the JS it calls plus a 16-digit hash
// (`__wbg_getItem_49556a3e59cfb688`) and every closure entry point after its full Rust type
// (300 characters); each name is written twice, in the wasm and in the glue, and hex hashes do
// not compress. wasm-opt's `--minify-imports-and-exports-and-modules` renames them in the wasm
// and prints the mapping; this applies the same mapping to the glue, so that the two still
// match. About 2 KB gzip less for every shopper, and nothing in our code changes.
//
//   node scripts/short-names.mjs <mapping.json> <minified.wasm> <glue.js>   (rewrites glue.js)
//
// It fails, rather than writing a glue that would not load, when a name of the mapping is not
// in the glue or the glue still refers to a name the module no longer has.
import { readFileSync, writeFileSync } from 'node:fs';

const [mapFile, wasmFile, glueFile] = process.argv.slice(2);
const map = JSON.parse(readFileSync(mapFile, 'utf8'));
const module = new WebAssembly.Module(readFileSync(wasmFile));
let glue = readFileSync(glueFile, 'utf8');

const fail = (why) => {
  console.error(`short-names: ${why}`);
  process.exit(1);
};
const escape = (s) => s.replace(/[$.]/g, '\\$&');
const replace = (pattern, to, what) => {
  const before = glue;
  glue = glue.replace(pattern, to);
  if (glue === before) fail(`${what} is not in ${glueFile}`);
};

// The glue hands its imports over as one object per wasm import module.
const modules = [...new Set(WebAssembly.Module.imports(module).map((i) => i.module))];
const originals = [...new Set(map.imports.map(([m]) => m))];
if (modules.length !== 1 || originals.length !== 1) fail(`expected one import module, got ${modules} for ${originals}`);
replace(`${JSON.stringify(originals[0])}:`, `${JSON.stringify(modules[0])}:`, `import module ${originals[0]}`);

// Imports are the keys of that object (`const import0 = { ... }` in wasm-bindgen's output, one
// key per line); the names are unique (hashed, or wasm-bindgen's own).
const block = /\n {4}const import0 = \{\n[^]*?\n {4}\};\n/.exec(glue);
if (!block) fail(`no import object (const import0 = {...}) in ${glueFile}: has wasm-bindgen's output changed?`);
const renamed = new Map(map.imports.map(([, name, short]) => [name, short]));
const object = block[0].replace(/^( {8})([\w$]+):/gm, (line, indent, name) => {
  // A key the mapping does not name is an import wasm-opt found unused and removed: harmless.
  if (name === '__proto__' || !renamed.has(name)) return line;
  return `${indent}${renamed.get(name)}:`;
});
glue = glue.replace(block[0], () => object);
const provided = new Set([...object.matchAll(/^ {8}([\w$]+):/gm)].map((m) => m[1]));
for (const { name } of WebAssembly.Module.imports(module)) {
  if (!provided.has(name)) fail(`the module imports ${name}, which the glue does not provide`);
}

// Exports are read as `wasm.<name>`. A few (panic hooks) are not used by the glue at all.
const used = new Set(glue.match(/\bwasm\.[\w$]+/g).map((s) => s.slice(5)));
for (const [name, short] of map.exports) {
  if (used.has(name)) replace(new RegExp(`\\bwasm\\.${escape(name)}\\b`, 'g'), `wasm.${short}`, `export ${name}`);
}

const exported = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
for (const name of new Set(glue.match(/\bwasm\.[\w$]+/g).map((s) => s.slice(5)))) {
  if (!exported.has(name)) fail(`the glue reads wasm.${name}, which the module does not export`);
}
writeFileSync(glueFile, glue);
