// Where the wasm's bytes go, by Rust module: the size table of issue 14.
//
//   node scripts/wasm-modules.mjs            after `bash scripts/build.sh`
//
// Optimises wasm-bindgen's output again with the build's own passes but keeping the name
// section (-g), then sums each function body's bytes under its module path
// (`salla_salesmanago::outbox`, `core`, `wasm_bindgen` …). Raw bytes are exact; "gzip alone" is
// each module's bodies gzipped by themselves, an upper bound of what it adds to the download (the
// whole compresses better than its parts). The data section, imports and exports are listed on
// their own lines. Writes target/bindgen/modules.json.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const FEATURES = ['--enable-bulk-memory', '--enable-sign-ext', '--enable-nontrapping-float-to-int',
  '--enable-mutable-globals', '--enable-reference-types', '--enable-multivalue'];
const input = 'target/bindgen/salesmanago_bg.wasm';
const named = 'target/bindgen/named.wasm';
execFileSync('node_modules/.bin/wasm-opt', ['--merge-similar-functions', '-Oz', '--one-caller-inline-max-function-size', '20',
  '--converge', '-g', ...FEATURES, input, '-o', named], { stdio: 'inherit' });
const wasm = readFileSync(named);

let at = 8;
const u32 = () => {
  let n = 0;
  let shift = 0;
  for (;;) {
    const b = wasm[at++];
    n += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (b < 0x80) return n;
  }
};
const name = () => {
  const len = u32();
  const s = wasm.subarray(at, at + len).toString('utf8');
  at += len;
  return s;
};

let imported = 0;
const bodies = []; // [bytes] per defined function, in order
const names = new Map(); // function index → name
const sections = {};
while (at < wasm.length) {
  const id = wasm[at++];
  const size = u32();
  const end = at + size;
  sections[id] = (sections[id] ?? 0) + size;
  if (id === 2) {
    for (let n = u32(); n > 0; n--) {
      name();
      name();
      const kind = wasm[at++];
      if (kind === 0) imported++;
      // Skip the import's description: a type index, or a table/memory/global type.
      if (kind === 0) u32();
      else if (kind === 1) { at++; const f = wasm[at++]; u32(); if (f & 1) u32(); }
      else if (kind === 2) { const f = wasm[at++]; u32(); if (f & 1) u32(); }
      else if (kind === 3) at += 2;
    }
  } else if (id === 10) {
    for (let n = u32(); n > 0; n--) {
      const len = u32();
      bodies.push(wasm.subarray(at, at + len));
      at += len;
    }
  } else if (id === 0) {
    const section = name();
    if (section === 'name') {
      while (at < end) {
        const sub = wasm[at++];
        const len = u32();
        const subEnd = at + len;
        if (sub === 1) for (let n = u32(); n > 0; n--) names.set(u32(), name());
        at = subEnd;
      }
    }
  }
  at = end;
}

/** `salla_salesmanago::browser::sender::send_next::h…` → `salla_salesmanago::browser::sender`. */
function moduleOf(fn) {
  if (!fn) return '(unnamed)';
  // v0 symbol names carry each crate's hash: `alloc[8f19ec1fd5810053]::vec::…`.
  let s = fn.replace(/::h[0-9a-f]{16}$/, '').replace(/\[[0-9a-f]{16}\]/g, '');
  // wasm-bindgen's glue for a closure, whatever closure it wraps.
  if (/wasm_bindgen::closure|WasmClosure/.test(s)) return 'wasm_bindgen';
  // Trait impls and inherent impls of generic types (`<T as Trait>::method`,
  // `<talc::Talc<…>>::claim`, `<&mut <T>::f::{closure} as FnMut>::call_mut`) count for T's module:
  // the first path, past any `<` and `&mut `.
  s = s.replace(/^(?:<|&mut |&)+/, '').replace(/[< >;].*$/, '');
  const parts = s.split('::').filter(Boolean);
  const crate = parts[0] ?? '(unnamed)';
  if (crate !== 'salla_salesmanago') return ['core', 'alloc', 'std', 'compiler_builtins', 'dlmalloc'].includes(crate) ? 'core/alloc/std' : crate;
  // Our own modules: the path up to the first item name (a CamelCase type or a function).
  const path = [crate];
  for (const p of parts.slice(1)) {
    if (/^[A-Z]/.test(p) || path.length >= 3) break;
    path.push(p);
  }
  // A function directly in a module: the last part is the function, not a module.
  if (path.length === parts.length) path.pop();
  return path.join('::');
}

const groups = new Map();
bodies.forEach((body, i) => {
  const m = moduleOf(names.get(imported + i));
  const g = groups.get(m) ?? groups.set(m, { functions: 0, raw: 0, parts: [] }).get(m);
  g.functions++;
  g.raw += body.length;
  g.parts.push(body);
});
const rows = [...groups.entries()]
  .map(([module, g]) => ({ module, functions: g.functions, raw: g.raw, gzipAlone: gzipSync(Buffer.concat(g.parts), { level: 9 }).length }))
  .sort((a, b) => b.raw - a.raw);
const code = rows.reduce((n, r) => n + r.raw, 0);
console.log('module'.padEnd(44) + 'functions'.padStart(10) + 'raw B'.padStart(9) + 'gzip alone'.padStart(12));
for (const r of rows) console.log(r.module.padEnd(44) + String(r.functions).padStart(10) + String(r.raw).padStart(9) + String(r.gzipAlone).padStart(12));
const other = { imports: sections[2] ?? 0, data: sections[11] ?? 0, code, exports: sections[7] ?? 0 };
console.log(`\ncode section ${sections[10]} B (bodies ${code} B), data ${other.data} B, imports ${other.imports} B (${imported} functions), exports ${other.exports} B`);
console.log('(names from target/bindgen/named.wasm; dist/ is the same code stripped and renamed)');
const functions = bodies.map((b, i) => ({ name: names.get(imported + i) ?? '(unnamed)', raw: b.length })).sort((a, b) => b.raw - a.raw);
writeFileSync('target/bindgen/modules.json', JSON.stringify({ rows, sections: other, functions }, null, 1) + '\n');
