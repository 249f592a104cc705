// Time from the loader's script tag starting to the tracker being ready (wasm fetched, compiled,
// instantiated, configured, listening), in headless Chromium against the local server.
// Each load is a fresh browser context (cold cache). A benchmark, not a test: run it and quote
// the median.
//
//   node bench/ready.mjs [loads=20]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from '../tests/e2e/harness.mjs';
import { startServer } from '../www/server.mjs';

const loads = Number(process.argv[2] ?? 20);
const here = path.dirname(fileURLToPath(import.meta.url));
const server = await startServer({ port: 0, pages: here });
const browser = await launch();
const times = [];
try {
  for (let i = 0; i < loads; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/test/pages-ready.html`);
    const r = await page.waitForFunction(() => window.ready, null, { timeout: 10_000 }).then((h) => h.jsonValue());
    if (!r.active) throw new Error('the tracker did not start');
    times.push(r.ms);
    await context.close();
  }
} finally {
  await browser.close();
  await server.close();
}
times.sort((a, b) => a - b);
const pick = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
const result = { loads, medianMs: +pick(0.5).toFixed(1), p90Ms: +pick(0.9).toFixed(1), minMs: +times[0].toFixed(1), maxMs: +times.at(-1).toFixed(1) };
console.log(`script start → tracker ready over ${loads} cold loads: median ${result.medianMs} ms, p90 ${result.p90Ms} ms (min ${result.minMs}, max ${result.maxMs})`);
console.log(JSON.stringify(result));
