// Prints the size of each built artefact, raw and gzip -9, and what a storefront page downloads
// (loader + bundled glue + wasm); writes the same figures to dist/sizes.json.
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const files = {
  loader: 'dist/tracker.js',
  glue: 'dist/index.js',
  wasm: 'dist/salesmanago_bg.wasm',
  types: 'dist/index.d.ts',
};
const sizes = {};
for (const [what, file] of Object.entries(files)) {
  const bytes = readFileSync(file);
  sizes[what] = { file, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
}
const page = ['loader', 'glue', 'wasm'];
sizes.page = {
  file: 'loader + glue + wasm',
  raw: page.reduce((n, k) => n + sizes[k].raw, 0),
  gzip: page.reduce((n, k) => n + sizes[k].gzip, 0),
};
writeFileSync('dist/sizes.json', JSON.stringify(sizes, null, 2) + '\n');
const kb = (n) => (n / 1024).toFixed(1).padStart(7) + ' KB';
console.log('artefact'.padEnd(34) + 'raw'.padStart(10) + 'gzip'.padStart(11));
for (const { file, raw, gzip } of Object.values(sizes)) console.log(file.padEnd(34) + kb(raw) + ' ' + kb(gzip));
