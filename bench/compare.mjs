// Our tracker beside two widely used browser trackers, Segment's analytics-next and Snowplow's
// browser tracker, on the same local page server in headless Chromium. A benchmark, not a test:
// run it, read the table, quote the medians.
//
//   node bench/compare.mjs [runs=5]            all three, plus an empty page as the baseline
//   node bench/compare.mjs --ours-only [runs]  our row only, for iterating on size and speed
//   --only=ours,floor                          just these rows (keys: ours segment snowplow floor empty)
//   --event=viewed                             a burst of Product Viewed (a product each) instead of Product Added
//                                              (one cart: ours sends one CART for it, SALESmanago keeping one per cart)
//   --ids                                      each payload carries an `event_id`, as Salla's own tracker calls do
//                                              (ours then checks each against the ids seen; the floor sends it as is)
//   --same-origin-collector                    ours posts to www/server.mjs's /collect (relayed to sm-receiver) instead
//   --b=<dir>                                  also row "b": our tracker built into <dir> (a copy of an earlier
//                                              dist/), interleaved with ours run by run: an A/B of two builds
//                                              in one browser, where runs of the script alone vary by ±15 %
//   --warm                                     each measured load is a visit's second page: the first ran a burst,
//                                              and the tracker's files (served cacheable) come from the HTTP cache,
//                                              the wasm with the optimised code Chromium cached for it
//   BENCH_PROFILE=1                            also self time per function during the burst (bench/profile.mjs)
//   BENCH_TRACE=1                              also the main thread's time during the burst per trace event
//                                              (what a profile calls "(program)", named: bench/trace.mjs)
//   BENCH_CALLS=1                              also how often each tracker called the browser's costly APIs during
//                                              the burst (storage, fetch, timers, cookie reads), and with what bytes
//
// Per tracker: bytes shipped (raw, gzip -9), script start → ready, main-thread cost of a burst of
// 1,000 events (synchronous, and including the work the tracker defers to microtasks and later
// tasks: a synchronous timing alone flatters a tracker that queues its work), long tasks, heap
// after the burst, and what reached the collector. The table goes to stdout and the JSON to
// target/bench/compare.json (compare-ours.json with --ours-only).
//
// The pages are cross-origin isolated (COOP + COEP), which lifts performance.now() from 100 µs to
// 5 µs resolution. Each run is a fresh browser context (cold cache, empty storage); runs of the
// trackers are interleaved so drift in the machine's load does not favour one of them.
//
// Every tracker posts to one sink on its own port: cross-origin, as a storefront's collector is
// (collect.example.com, api.segment.io), so each pays the CORS preflights its requests need.
// Ours goes there too, its tag naming the sink's /collect, so that all three pay the same
// cross-origin costs; --same-origin-collector sends ours to www/server.mjs's /collect instead,
// relayed to a real sm-receiver (build it first: cargo build -p salla-salesmanago-receiver
// -p fake-salesmanago). (A collector answering `Cache-Control: no-store` costs a page its
// keepalive budget in Chromium 156: its share of the 64 KiB is not given back. sm-receiver sends no
// such header, and the relay adds none.)
import http from 'node:http';
import { cp, mkdir, readFile, writeFile, stat } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from '../tests/e2e/harness.mjs';
import { startServer } from '../www/server.mjs';
import { startStack } from '../www/stack.mjs';
import { printProfile, profiling, startProfile, stopProfile } from './profile.mjs';
import { printTrace, startTrace, tracing } from './trace.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SOURCES = path.join(ROOT, 'bench/compare');
const PAGES = path.join(ROOT, 'target/bench/compare-pages');
const EVENTS = 1000;

const args = process.argv.slice(2);
const only = args.includes('--ours-only') ? ['ours'] : args.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const sameOriginCollector = args.includes('--same-origin-collector');
const EVENT = args.includes('--event=viewed') ? 'Product Viewed' : 'Product Added';
const IDS = args.includes('--ids');
const countCalls = process.env.BENCH_CALLS === '1';
const runs = Math.max(1, Number(args.find((a) => /^\d+$/.test(a)) ?? 5));
const buildB = args.find((a) => a.startsWith('--b='))?.slice(4);
const warm = args.includes('--warm');

// Cross-origin isolation: without it Chromium coarsens performance.now() to 100 µs, coarser than
// one call of any of these trackers.
const ISOLATED = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

const version = async (pkg) => JSON.parse(await readFile(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version;

const TRACKERS = [
  {
    key: 'ours',
    name: 'salla-salesmanago (Rust → wasm)',
    page: 'ours.html',
    // What a storefront downloads: the loader, the glue it imports, the wasm it fetches.
    files: ['dist/tracker.js', 'dist/index.js', 'dist/salesmanago_bg.wasm'].map((f) => path.join(ROOT, f)),
  },
  { key: 'segment', pkg: '@segment/analytics-next', page: 'segment.html', entry: 'segment.entry.js', bundle: 'segment.bundle.js' },
  { key: 'snowplow', pkg: '@snowplow/browser-tracker', page: 'snowplow.html', entry: 'snowplow.entry.js', bundle: 'snowplow.bundle.js' },
  // Issue 14's yardstick: a plain-JS queue persisted once and sent with one fetch per 40 ms window.
  { key: 'floor', name: 'plain-JS floor (queue, persist once, fetch per 40 ms)', page: 'floor.html', files: [] },
  // The same harness and payloads with a track() that does nothing: the floor for heap and time.
  { key: 'empty', name: 'empty page (baseline)', page: 'empty.html', files: [] },
].filter((t) => !only || only.includes(t.key));
if (buildB) {
  const dir = path.resolve(buildB);
  TRACKERS.splice(1, 0, {
    key: 'b',
    name: `salla-salesmanago, the build in ${path.relative(ROOT, dir) || dir}`,
    page: 'ours-b.html',
    files: ['tracker.js', 'index.js', 'salesmanago_bg.wasm'].map((f) => path.join(dir, f)),
    dir,
  });
}

// ---------------------------------------------------------------------------------------------
// Small helpers

// BENCH_TRACE=1 prints each step to stderr, to see where a slow run spends its time.
const trace = (...what) => process.env.BENCH_TRACE && console.error(new Date().toISOString().slice(11, 23), ...what);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const percentile = (xs, q) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
};
const round = (x, digits = 1) => (x === null || x === undefined ? null : +x.toFixed(digits));

/** `promise`, or an error after `ms`: a page that never answers cannot hang the run. */
function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// Build: the pages, and each competitor bundled as a merchant's bundler would (minified, one file)

async function preparePages(sink) {
  await mkdir(PAGES, { recursive: true });
  await cp(SOURCES, PAGES, { recursive: true, filter: (src) => !src.endsWith('.entry.js') });
  const b = TRACKERS.find((t) => t.key === 'b');
  if (b) {
    // Served beside the pages, the loader finding its glue and wasm beside itself.
    await cp(b.dir, path.join(PAGES, 'dist-b'), { recursive: true });
    const ours = await readFile(path.join(SOURCES, 'ours.html'), 'utf8');
    await writeFile(path.join(PAGES, b.page), ours.replace('src="/dist/tracker.js"', 'src="/test/dist-b/tracker.js"'));
  }
  // The sink's port changes every run: write it into the pages' tags.
  const collect = sameOriginCollector ? '/collect' : `${sink.url}/collect`;
  for (const t of TRACKERS) {
    const file = path.join(PAGES, t.page);
    const html = await readFile(file, 'utf8');
    await writeFile(file, html.replaceAll('{{SINK}}', sink.url).replaceAll('{{COLLECT}}', collect));
  }
  const competitors = TRACKERS.filter((t) => t.entry);
  if (!competitors.length) return;
  const esbuild = await import('esbuild');
  for (const t of competitors) {
    t.version = await version(t.pkg);
    t.name = `${t.pkg} ${t.version}`;
    // iife, loaded by an async classic <script> like our loader. Dynamic imports inside the
    // package are inlined (no code splitting): everything reachable ships in this one file.
    await esbuild.build({
      entryPoints: [path.join(SOURCES, t.entry)],
      outfile: path.join(PAGES, t.bundle),
      bundle: true,
      minify: true,
      format: 'iife',
      platform: 'browser',
      define: { 'process.env.NODE_ENV': '"production"' },
      logLevel: 'error',
    });
    t.files = [path.join(PAGES, t.bundle)];
  }
}

/** Bytes over the wire: each file gzipped on its own at level 9, as a server would send them. */
async function sizes(files) {
  let raw = 0;
  let gzip = 0;
  for (const f of files) {
    const body = await readFile(f);
    raw += body.length;
    gzip += gzipSync(body, { level: 9 }).length;
  }
  return { raw, gzip };
}

// ---------------------------------------------------------------------------------------------
// The collector: a sink on its own port, so requests are cross-origin as on a real storefront.
// It counts requests, preflights and the events in the bodies, and answers 200 to everything.

async function startSink() {
  const counts = { requests: 0, preflights: 0, events: 0, paths: {} };
  const server = http.createServer((req, res) => {
    const cors = {
      // Snowplow sends credentials by default: the origin must be echoed, not '*'.
      'Access-Control-Allow-Origin': req.headers.origin || '*',
      'Access-Control-Allow-Credentials': 'true',
      'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
      'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] || 'Content-Type',
      'Access-Control-Max-Age': '600',
      'Cross-Origin-Resource-Policy': 'cross-origin',
      Vary: 'Origin',
    };
    counts.requests++;
    const key = `${req.method} ${new URL(req.url, 'http://sink').pathname}`;
    counts.paths[key] = (counts.paths[key] ?? 0) + 1;
    if (req.method === 'OPTIONS') {
      counts.preflights++;
      res.writeHead(204, cors);
      return res.end();
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      // Ours posts protocol v1 (`events`), Snowplow wraps its events in `data`, Segment posts one
      // event per request.
      let n = 1;
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        n = [body?.events, body?.data, body?.batch].find(Array.isArray)?.length ?? 1;
      } catch {}
      counts.events += n;
      res.writeHead(200, { ...cors, 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ accepted: n, duplicates: 0 }));
    });
  });
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    counts,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// BENCH_CALLS: the browser APIs whose cost shows as "(browser)" in a profile, counted in the page.

const COUNT_CALLS = `(() => {
  let counts = {};
  const add = (name, bytes) => {
    const c = (counts[name] ??= { calls: 0, bytes: 0 });
    c.calls++;
    c.bytes += bytes || 0;
  };
  const wrap = (owner, name, bytes) => {
    const f = owner[name];
    owner[name] = function (...a) {
      add(name, bytes(a));
      return f.apply(this, a);
    };
  };
  wrap(Storage.prototype, 'setItem', (a) => String(a[0]).length + String(a[1]).length);
  wrap(Storage.prototype, 'getItem', () => 0);
  wrap(Storage.prototype, 'removeItem', () => 0);
  wrap(window, 'fetch', (a) => {
    const b = a[1]?.body;
    const text = typeof b === 'string' ? b : b ? new TextDecoder().decode(b) : '';
    if (text.length > 1000) window.__sample ??= text.slice(0, 1500);
    return text.length;
  });
  wrap(navigator, 'sendBeacon', () => 0);
  wrap(window, 'setTimeout', () => 0);
  wrap(window, 'queueMicrotask', () => 0);
  const cookie = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie');
  Object.defineProperty(document, 'cookie', {
    get() { add('cookie read'); return cookie.get.call(this); },
    set(v) { add('cookie write', String(v).length); cookie.set.call(this, v); },
  });
  window.__calls = { reset: () => (counts = {}), get counts() { return counts; } };
})();`;

function printCalls(tracker) {
  if (!tracker.calls?.length) return;
  const names = [...new Set(tracker.calls.flatMap((c) => Object.keys(c)))].sort();
  console.log(`\ncalls by ${tracker.name} per burst (median over ${tracker.calls.length} runs): calls, chars`);
  for (const n of names) {
    const calls = median(tracker.calls.map((c) => c[n]?.calls ?? 0));
    const bytes = median(tracker.calls.map((c) => c[n]?.bytes ?? 0));
    console.log(`  ${n.padEnd(16)} ${String(calls).padStart(6)} ${bytes ? String(bytes).padStart(9) : ''}`);
  }
}

// ---------------------------------------------------------------------------------------------
// One cold load of one tracker

/**
 * Waits for the requests a burst caused to finish: until `expected` events have arrived and
 * nothing new came for `quietMs`, or nothing new came for `stuckMs` (events dropped or coalesced),
 * or `maxMs` passed.
 */
async function settle(counter, expected, { quietMs = 400, stuckMs = 1500, maxMs = 20_000 } = {}) {
  const start = Date.now();
  let last = counter();
  let changed = start;
  for (;;) {
    await sleep(25);
    const now = counter();
    if (now.requests !== last.requests || now.events !== last.events || now.attempts !== last.attempts) {
      last = now;
      changed = Date.now();
    }
    const quiet = Date.now() - changed;
    if ((now.events >= expected && quiet >= quietMs) || quiet >= stuckMs || Date.now() - start > maxMs) {
      return { ...now, flushMs: changed - start, timedOut: Date.now() - start > maxMs };
    }
  }
}

async function metric(cdp, name) {
  const { metrics } = await cdp.send('Performance.getMetrics');
  return metrics.find((m) => m.name === name)?.value ?? 0;
}

async function measure(browser, tracker, { server, sink }) {
  // What the collector received, and the POSTs the page attempted (a fetch the browser refuses,
  // e.g. over the keepalive budget, never reaches the collector): deltas around the burst.
  const local = tracker.key === 'ours' && sameOriginCollector;
  const collector = local ? `${server.url}/collect` : sink.url;
  let attempts = 0;
  let posted = 0; // body bytes of the POSTs the page made, burst only (reset before it)
  const counter = local
    ? () => ({ requests: server.relay.requests, preflights: 0, events: server.relay.events.length, attempts })
    : () => ({ requests: sink.counts.requests, preflights: sink.counts.preflights, events: sink.counts.events, attempts });
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    const problems = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('request', (r) => {
      if (r.method() === 'POST' && r.url().startsWith(collector)) {
        attempts++;
        posted += r.postDataBuffer()?.length ?? 0;
      }
      const u = new URL(r.url());
      if (u.protocol.startsWith('http') && u.hostname !== '127.0.0.1') problems.push(`request left 127.0.0.1: ${r.url()}`);
    });
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');
    if (countCalls) await page.addInitScript(COUNT_CALLS);

    const query = [EVENT === 'Product Viewed' && 'event=viewed', IDS && 'ids=1'].filter(Boolean).join('&');
    const url = `${server.url}/test/${tracker.page}${query ? `?${query}` : ''}`;
    if (warm) {
      // An earlier page of the same visit: the tracker's files come from the HTTP cache, and
      // the wasm with the code Chromium cached for it once that page's burst had tiered it up.
      await page.goto(url);
      await page.evaluate(() => window.bench.ready);
      const before = counter();
      await page.evaluate((n) => window.bench.burst(n, 0), EVENTS);
      await settle(() => ({ requests: counter().requests - before.requests, events: counter().events - before.events, attempts: 0 }), tracker.key === 'empty' ? 0 : EVENTS);
      await sleep(3_000);
    }
    trace(tracker.key, 'load');
    await page.goto(url);
    // Wait on the page's own promise: waitForFunction would inject playwright's ~20 ms polling
    // script into the page while it loads, and the tracker's start-up would queue behind it.
    await page.evaluate(() => window.bench.ready);
    const load = await page.evaluate(() => ({
      isolated: crossOriginIsolated,
      readyMs: window.bench.readyAt - window.t0,
      readyAt: window.bench.readyAt,
      // The issue's own start-up budget: from the wasm's last byte arriving to ready (ours only).
      wasmReadyMs: (() => {
        const wasm = performance.getEntriesByType('resource').find((e) => e.name.endsWith('.wasm'));
        return wasm ? window.bench.readyAt - wasm.responseEnd : null;
      })(),
      // Of that: from the module compiled and instantiated to ready, i.e. the tracker's own start().
      startMs: window.bench.instantiatedAt === null ? null : window.bench.readyAt - window.bench.instantiatedAt,
    }));
    if (!load.isolated) throw new Error('the page is not cross-origin isolated: timings would be coarsened to 100 µs');
    // Let start-up work that does not gate "ready" finish, as a shopper's first click would.
    await sleep(200);

    // One burst per load, every call timed. The two performance.now() calls per event cost well
    // under a microsecond; the empty page's row shows the harness's own share.
    const before = counter();
    posted = 0;
    const windowStart = await page.evaluate(() => performance.now());
    const taskBefore = await metric(cdp, 'TaskDuration');
    trace(tracker.key, 'burst');
    const profiled = profiling && tracker.key !== 'empty';
    if (profiled) await startProfile(cdp);
    const stopTrace = tracing && tracker.key !== 'empty' ? await startTrace(cdp) : null;
    if (countCalls) await page.evaluate(() => window.__calls.reset());
    const burst = await page.evaluate((n) => window.bench.burst(n, 0), EVENTS);
    trace(tracker.key, 'settle', burst.ms);
    const sent = await settle(() => {
      const c = counter();
      return Object.fromEntries(Object.keys(c).map((k) => [k, c[k] - before[k]]));
    }, tracker.key === 'empty' ? 0 : EVENTS);
    await sleep(100); // the responses' own handlers run after the last request arrived
    trace(tracker.key, 'settled', sent);
    const taskMs = ((await metric(cdp, 'TaskDuration')) - taskBefore) * 1000;
    if (profiled) await stopProfile(cdp, (tracker.profile ??= new Map()));
    if (stopTrace) {
      await stopTrace((tracker.trace ??= new Map()));
      tracker.traced = (tracker.traced ?? 0) + 1;
    }
    if (countCalls) (tracker.calls ??= []).push(await page.evaluate(() => window.__calls.counts));
    if (countCalls && process.env.BENCH_SAMPLE) console.log(tracker.key, await page.evaluate(() => window.__sample));
    const { longTasks, windowEnd } = await page.evaluate(() => ({ longTasks: window.bench.longTasks.slice(), windowEnd: performance.now() }));
    // Retained memory, not the garbage the burst left: collect first.
    await cdp.send('HeapProfiler.collectGarbage');
    const heap = await page.evaluate(() => ({ js: performance.memory.usedJSHeapSize, wasm: window.bench.wasmBytes() }));

    const sum = (tasks) => ({ count: tasks.length, ms: tasks.reduce((n, t) => n + t.duration, 0) });
    return {
      readyMs: load.readyMs,
      wasmReadyMs: load.wasmReadyMs,
      startMs: load.startMs,
      burstMs: burst.ms,
      perCallUs: burst.each,
      taskMs,
      requests: sent.requests,
      preflights: sent.preflights,
      // POSTs the page made that the collector never saw.
      failedPosts: sent.attempts - (sent.requests - sent.preflights),
      events: sent.events,
      postedBytes: posted,
      flushMs: sent.flushMs,
      flushTimedOut: sent.timedOut,
      heapJs: heap.js,
      heapWasm: heap.wasm,
      longTasksLoad: sum(longTasks.filter((t) => t.start <= load.readyAt)),
      longTasksBurst: sum(longTasks.filter((t) => t.start >= windowStart && t.start <= windowEnd)),
      problems,
    };
  } finally {
    await context.close().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Summary and output

function summarize(tracker, samples) {
  const pick = (f) => samples.map(f);
  const perEventUs = pick((s) => (s.burstMs * 1000) / EVENTS);
  const calls = samples.flatMap((s) => s.perCallUs);
  return {
    tracker: tracker.name,
    key: tracker.key,
    bytes: tracker.bytes,
    readyMs: round(median(pick((s) => s.readyMs))),
    wasmReadyMs: samples.every((s) => s.wasmReadyMs !== null) ? round(median(pick((s) => s.wasmReadyMs)), 2) : null,
    startMs: samples.every((s) => s.startMs !== null) ? round(median(pick((s) => s.startMs)), 2) : null,
    syncUsPerEvent: { median: round(median(perEventUs)), min: round(Math.min(...perEventUs)), max: round(Math.max(...perEventUs)) },
    perCallUs: { median: round(median(calls)), p95: round(percentile(calls, 0.95)), p99: round(percentile(calls, 0.99)) },
    totalUsPerEvent: round(median(pick((s) => (s.taskMs * 1000) / EVENTS))),
    longTasksLoad: { count: median(pick((s) => s.longTasksLoad.count)), ms: round(median(pick((s) => s.longTasksLoad.ms)), 0) },
    longTasksBurst: { count: median(pick((s) => s.longTasksBurst.count)), ms: round(median(pick((s) => s.longTasksBurst.ms)), 0) },
    heapBytes: { js: median(pick((s) => s.heapJs)), wasm: median(pick((s) => s.heapWasm)) },
    requests: median(pick((s) => s.requests)),
    preflights: median(pick((s) => s.preflights)),
    failedPosts: median(pick((s) => s.failedPosts)),
    eventsDelivered: median(pick((s) => s.events)),
    postedBytesPerEvent: round(median(pick((s) => s.postedBytes / EVENTS)), 0),
    flushMs: round(median(pick((s) => s.flushMs)), 0),
    runs: samples.map(({ perCallUs, ...s }) => ({ ...s, readyMs: round(s.readyMs, 2), burstMs: round(s.burstMs, 2), taskMs: round(s.taskMs, 2) })),
  };
}

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
const mib = (n) => (n / 1048576).toFixed(2);

function table(rows) {
  const head = [
    'tracker', 'bytes raw', 'gzip -9', 'ready ms (median)', 'sync µs/event (median burst)', 'p95 µs/call',
    'main-thread µs/event incl. deferred', 'long tasks load', 'long tasks burst', 'heap MiB after 1,000 (JS + wasm)',
    'requests / 1,000 events (preflights; failed POSTs)', 'events delivered', 'bytes posted / event',
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i ? '---:' : '---')).join('|')}|`];
  for (const r of rows) {
    const base = r.key === 'empty';
    const inline = !r.bytes.raw; // the floor lives in its page
    const heap = r.heapBytes.wasm ? `${mib(r.heapBytes.js + r.heapBytes.wasm)} (${mib(r.heapBytes.js)} + ${mib(r.heapBytes.wasm)})` : mib(r.heapBytes.js);
    lines.push(`| ${[
      r.tracker,
      inline ? '—' : kb(r.bytes.raw),
      inline ? '—' : kb(r.bytes.gzip),
      base ? '—' : r.wasmReadyMs === null ? r.readyMs : `${r.readyMs} (wasm arrived → ready ${r.wasmReadyMs}, of which instantiated → ready ${r.startMs})`,
      r.syncUsPerEvent.median,
      r.perCallUs.p95,
      r.totalUsPerEvent,
      `${r.longTasksLoad.count} (${r.longTasksLoad.ms} ms)`,
      `${r.longTasksBurst.count} (${r.longTasksBurst.ms} ms)`,
      heap,
      base ? '—' : `${r.requests} (${r.preflights}; ${r.failedPosts})`,
      base ? '—' : r.eventsDelivered,
      base ? '—' : r.postedBytesPerEvent,
    ].join(' | ')} |`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main: everything is closed on the way out, even after an error or a hang.

const limitMs = 60_000 + runs * TRACKERS.length * 20_000;
let server;
let stack;
let sink;
let browser;
async function cleanup() {
  await browser?.close().catch(() => {});
  await server?.close().catch(() => {});
  await stack?.close().catch(() => {});
  await sink?.close().catch(() => {});
}
const watchdog = setTimeout(() => {
  console.error(`bench/compare.mjs: still running after ${limitMs / 1000} s; giving up`);
  cleanup().finally(() => process.exit(2));
}, limitMs);
watchdog.unref();
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => cleanup().finally(() => process.exit(130)));

let exitCode = 0;
try {
  await stat(path.join(ROOT, 'dist/salesmanago_bg.wasm')).catch(() => {
    throw new Error('dist/ is missing: run `bash scripts/build.sh` first (npm run bench does)');
  });
  sink = await startSink();
  await preparePages(sink);
  for (const t of TRACKERS) t.bytes = await sizes(t.files);
  // --warm: the tracker's files cacheable, as a CDN serves them (the server's default is no-store).
  const cacheable = (p) => (warm && /\/(dist|dist-b)\//.test(p) ? { 'Cache-Control': 'max-age=600' } : {});
  server = await startServer({ port: 0, pages: PAGES, headers: (p) => ({ ...ISOLATED, ...cacheable(p) }) });
  if (sameOriginCollector) server.connect((stack = await startStack({ allowedOrigins: [server.url] })));
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    // Precise memory info: otherwise performance.memory is bucketed and updated only now and then.
    args: [...CHROMIUM_ARGS, '--enable-precise-memory-info'],
  });

  const samples = Object.fromEntries(TRACKERS.map((t) => [t.key, []]));
  const started = Date.now();
  for (let run = 0; run < runs; run++) {
    for (const t of TRACKERS) {
      const s = await withTimeout(measure(browser, t, { server, sink }), 60_000, `${t.key}, run ${run + 1}`);
      for (const p of new Set(s.problems)) console.error(`${t.key}, run ${run + 1}: ${p}`);
      samples[t.key].push(s);
    }
    process.stderr.write(`run ${run + 1}/${runs} done (${Math.round((Date.now() - started) / 1000)} s)\n`);
  }

  const rows = TRACKERS.map((t) => summarize(t, samples[t.key]));
  console.log(table(rows));
  // Issue 14's budget: ours within 2x the plain-JS floor, main-thread time per event including
  // deferred work, both measured in this run.
  const row = (key) => rows.find((r) => r.key === key);
  if (row('ours') && row('floor')) {
    const ratio = row('ours').totalUsPerEvent / row('floor').totalUsPerEvent;
    console.log(
      `\nours / plain-JS floor, main-thread µs/event incl. deferred: ${row('ours').totalUsPerEvent} / ${row('floor').totalUsPerEvent} = ${ratio.toFixed(2)}x (budget 2x)`,
    );
    rows.find((r) => r.key === 'ours').floorRatio = round(ratio, 2);
    if (buildB) {
      const ratioB = row('b').totalUsPerEvent / row('floor').totalUsPerEvent;
      console.log(`b / plain-JS floor: ${row('b').totalUsPerEvent} / ${row('floor').totalUsPerEvent} = ${ratioB.toFixed(2)}x`);
      rows.find((r) => r.key === 'b').floorRatio = round(ratioB, 2);
    }
  }
  console.log(
    `\n${runs} cold load(s) per tracker, ${EVENTS} '${EVENT}' events per burst; Chromium ${browser.version()}, headless. ` +
      'sync = the synchronous loop of calls / 1,000; p95 = per-call timings at 5 µs resolution; ' +
      "incl. deferred = the renderer main thread's TaskDuration from the burst until its requests settled / 1,000; " +
      'events delivered = events in the bodies that reached the collector by then.',
  );
  for (const t of TRACKERS.filter((t) => t.profile)) printProfile(t.name, t.profile);
  for (const t of TRACKERS) printCalls(t);
  for (const t of TRACKERS.filter((t) => t.trace)) printTrace(t.name, t.trace, t.traced);
  const out = path.join(ROOT, 'target/bench', only ? `compare-${only.join('-')}.json` : 'compare.json');
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(
    out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        runs,
        events: EVENTS,
        collector: sameOriginCollector ? 'ours: www/server.mjs /collect (same origin); others: sink' : 'sink on 127.0.0.1, another port (cross-origin)',
        chromium: browser.version(),
        node: process.version,
        rows,
      },
      null,
      1,
    ) + '\n',
  );
  console.log(`\nJSON: ${path.relative(ROOT, out)}`);
} catch (e) {
  console.error('bench/compare.mjs failed:', e?.stack ?? e);
  exitCode = 1;
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
process.exit(exitCode);
