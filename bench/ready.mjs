// Time from the loader's script tag starting to the tracker being ready (wasm fetched, compiled,
// instantiated, configured, listening), in headless Chromium against the local server; and the
// issue's start-up budget, from the wasm's last byte arriving to ready, split into the browser's
// compile/instantiate and the tracker's own start().
// Each load is a fresh browser context (cold cache). A benchmark, not a test: run it and quote
// the median.
//
//   node bench/ready.mjs [loads=20]
//   BENCH_PROFILE=1 node bench/ready.mjs 10   also where the load's main-thread time goes, up to
//                                             ready (bench/profile.mjs)
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from '../tests/e2e/harness.mjs';
import { startServer } from '../www/server.mjs';
import { printProfile, profiling, startProfile, stopProfile } from './profile.mjs';

const loads = Number(process.argv[2] ?? 20);
const here = path.dirname(fileURLToPath(import.meta.url));
const server = await startServer({ port: 0, pages: here });
const browser = await launch();
const times = [];
const wasm = [];
const start = [];
const profile = new Map();
try {
  for (let i = 0; i < loads; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = profiling ? await context.newCDPSession(page) : null;
    if (cdp) await startProfile(cdp);
    await page.goto(`${server.url}/test/pages-ready.html`);
    // The page's own promise, not waitForFunction: that would inject playwright's polling script
    // into the page while it loads and delay the tracker's start-up behind it.
    const r = await page.evaluate(() => window.readyPromise);
    if (!r.active) throw new Error('the tracker did not start');
    if (cdp) await stopProfile(cdp, profile);
    times.push(r.ms);
    wasm.push(r.wasmMs);
    start.push(r.startMs);
    await context.close();
  }
} finally {
  await browser.close();
  await server.close();
}
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const pick = (q) => +s[Math.min(s.length - 1, Math.floor(q * s.length))].toFixed(1);
  return { medianMs: pick(0.5), p90Ms: pick(0.9), minMs: pick(0), maxMs: pick(1) };
};
const result = { loads, scriptToReady: stats(times), wasmArrivedToReady: stats(wasm), instantiatedToReady: stats(start) };
const line = (what, r) => `${what}: median ${r.medianMs} ms, p90 ${r.p90Ms} ms (min ${r.minMs}, max ${r.maxMs})`;
console.log(`over ${loads} cold loads:`);
console.log(line('  script start → tracker ready', result.scriptToReady));
console.log(line('  wasm arrived → ready        ', result.wasmArrivedToReady));
console.log(line('  instantiated → ready        ', result.instantiatedToReady));
console.log(JSON.stringify(result));
if (profiling) printProfile(`${loads} loads, page start → ready`, profile);
