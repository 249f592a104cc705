// What the browser compiles before the tracker is ready. Chromium compiles a wasm function the
// first time it is called (lazy compilation, on the main thread), so start-up pays for every
// distinct function the path to "ready" runs: this counts them, from a trace of cold loads of the
// ready benchmark's page (bench/pages-ready.html), and lists the largest. Build with
// `SM_WASM_NAMES=1 bash scripts/build.sh` to see names instead of function numbers.
//
//   node bench/lazy-compile.mjs [loads=6]
//
// The count is exact for a given build (the same path runs every time); the milliseconds are
// the trace's own (tracing makes each compile a little slower) and move with the machine.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from '../tests/e2e/harness.mjs';
import { startServer } from '../www/server.mjs';
import { traceReadyLoad } from './trace-ready.mjs';

const loads = Number(process.argv[2] ?? 6);
const here = path.dirname(fileURLToPath(import.meta.url));
const wasm = readFileSync(path.join(here, '../dist/salesmanago_bg.wasm'));
const { names, sizes } = functionsOf(wasm);

const server = await startServer({ port: 0, pages: here });
const browser = await launch();
const counts = [];
const ms = [];
const compiled = new Map(); // function index → loads in which it was compiled before ready
try {
  for (let i = 0; i < loads; i++) {
    const { events, ready } = await traceReadyLoad(browser, server, 'v8.wasm,devtools.timeline');
    const lazy = events.filter((e) => e.name === 'wasm.CompileLazy' && e.ts < ready.ts);
    counts.push(lazy.length);
    ms.push(lazy.reduce((n, e) => n + (e.dur ?? 0) / 1000, 0));
    for (const e of lazy) compiled.set(e.args.func_index, (compiled.get(e.args.func_index) ?? 0) + 1);
  }
} finally {
  await browser.close();
  await server.close();
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const always = [...compiled.entries()].filter(([, n]) => n === loads).map(([f]) => f);
const bytes = always.reduce((n, f) => n + (sizes.get(f) ?? 0), 0);
console.log(
  `over ${loads} cold loads: ${median(counts)} wasm functions compiled before ready (median; ${always.length} in every load, ` +
    `${bytes} B of code), ${median(ms).toFixed(2)} ms of lazy compilation (median, traced)`,
);
console.log('the largest, bytes of code:');
for (const f of always.sort((a, b) => (sizes.get(b) ?? 0) - (sizes.get(a) ?? 0)).slice(0, Number(process.env.TOP ?? 25))) {
  const name = (names.get(f) ?? `function ${f}`).replace(/\[[0-9a-f]{16}\]/g, '').replace(/salla_salesmanago::/g, '');
  console.log(String(sizes.get(f) ?? 0).padStart(7), ' ', name.slice(0, 140));
}
console.log(JSON.stringify({ loads, functions: median(counts), everyLoad: always.length, bytes, lazyMs: +median(ms).toFixed(2) }));

/** Each function's body size, and its name where the module keeps a name section. */
function functionsOf(b) {
  let i = 8;
  const leb = () => {
    let r = 0;
    let s = 0;
    for (;;) {
      const x = b[i++];
      r += (x & 0x7f) * 2 ** s;
      s += 7;
      if (x < 0x80) return r;
    }
  };
  const str = () => {
    const n = leb();
    const s = b.subarray(i, i + n).toString();
    i += n;
    return s;
  };
  const names = new Map();
  const sizes = new Map();
  let imported = 0;
  while (i < b.length) {
    const id = b[i++];
    const size = leb();
    const end = i + size;
    if (id === 2) {
      // Imports: functions imported come first in the function index space.
      for (let n = leb(); n > 0; n--) {
        str();
        str();
        const kind = b[i++];
        if (kind === 0) (leb(), imported++);
        else if (kind === 1) (i++, leb() & 1 ? (leb(), leb()) : leb());
        else if (kind === 2) (leb() & 1 ? (leb(), leb()) : leb());
        else if (kind === 3) i += 2;
      }
    } else if (id === 10) {
      const n = leb();
      for (let f = 0; f < n; f++) {
        const body = leb();
        sizes.set(imported + f, body);
        i += body;
      }
    } else if (id === 0 && str() === 'name') {
      while (i < end) {
        const sub = b[i++];
        const subEnd = leb() + i;
        if (sub === 1) for (let n = leb(); n > 0; n--) names.set(leb(), str());
        i = subEnd;
      }
    }
    i = end;
  }
  return { names, sizes };
}
