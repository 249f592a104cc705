// Where the time from the wasm's arrival to "ready" goes, from Chromium's own trace of cold loads
// of the ready benchmark's page (bench/pages-ready.html). bench/ready.mjs measures from Resource
// Timing's `responseEnd`, which is the network's; this splits that span into what the browser
// does before our first instruction and what the tracker's start-up costs:
//
//   network → renderer   the network's last byte to the renderer's last ResourceReceivedData
//                        (the main thread busy with something else delays it)
//   decode (main)        wasm.OnBytesReceived on the main thread (streaming decode)
//   finish (main)        wasm.FinishStreaming
//   instantiate          wasm.AsyncInstantiate
//   instantiated → ready the end of instantiation to the page's ready mark (start(), the glue,
//                        the promise hops), and of it: lazy wasm compilation (wasm.CompileLazy)
//
//   node bench/startup-trace.mjs [loads=10]
//
// Tracing slows each step a little: compare figures from this script with each other, and quote
// bench/ready.mjs for the budget.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from '../tests/e2e/harness.mjs';
import { startServer } from '../www/server.mjs';
import { traceReadyLoad } from './trace-ready.mjs';

const loads = Number(process.argv[2] ?? 10);
const here = path.dirname(fileURLToPath(import.meta.url));
const server = await startServer({ port: 0, pages: here });
const browser = await launch();
const rows = [];
try {
  for (let i = 0; i < loads; i++) {
    const { events, ready } = await traceReadyLoad(browser, server, 'v8.wasm,devtools.timeline,loading');
    const send = events.find((e) => e.name === 'ResourceSendRequest' && e.args?.data?.url?.endsWith('.wasm'));
    const finish = send && events.find((e) => e.name === 'ResourceFinish' && e.args?.data?.requestId === send.args.data.requestId);
    const instantiate = events.find((e) => e.name === 'wasm.AsyncInstantiate');
    if (!finish || !instantiate) throw new Error('the trace lacks the wasm resource or its instantiation');
    const main = ready.tid;
    const sum = (name, from, to) =>
      events
        .filter((e) => e.name === name && e.tid === main && e.ts >= from && e.ts <= to)
        .reduce((n, e) => n + (e.dur ?? 0) / 1000, 0);
    const instantiated = instantiate.ts + (instantiate.dur ?? 0);
    const data = events.filter((e) => e.name === 'ResourceReceivedData' && e.args?.data?.requestId === send.args.data.requestId);
    const lastData = data.length ? Math.max(...data.map((e) => e.ts)) : finish.ts;
    rows.push({
      networkToRenderer: lastData / 1000 - finish.args.data.finishTime * 1000,
      decodeMain: sum('wasm.OnBytesReceived', send.ts, ready.ts),
      finishMain: sum('wasm.FinishStreaming', send.ts, ready.ts),
      instantiate: (instantiate.dur ?? 0) / 1000,
      instantiatedToReady: (ready.ts - instantiated) / 1000,
      lazyCompile: sum('wasm.CompileLazy', instantiated, ready.ts),
    });
  }
} finally {
  await browser.close();
  await server.close();
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const labels = {
  networkToRenderer: 'network → renderer',
  decodeMain: 'decode (main)',
  finishMain: 'finish (main)',
  instantiate: 'instantiate',
  instantiatedToReady: 'instantiated → ready',
  lazyCompile: '  of it, lazy wasm compilation',
};
const result = Object.fromEntries(Object.keys(labels).map((k) => [k, +median(rows.map((r) => r[k])).toFixed(2)]));
console.log(`over ${loads} cold loads, traced (median ms):`);
for (const [k, label] of Object.entries(labels)) console.log(`  ${label.padEnd(32)} ${String(result[k]).padStart(6)}`);
console.log(JSON.stringify({ loads, ...result }));
