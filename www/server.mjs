// The demo's one local server, on 127.0.0.1: serves the demo storefront (www/), the built tracker
// (dist/) and Salla's SDK from node_modules, stands in for the Salla store API the SDK calls, and
// is the receiver that takes the tracker's protocol v1 batches (validated as SALESmanago would).
//
//   node www/server.mjs [--port 8080]
//
// Tests start it in-process with `startServer({ port: 0 })`.
import http from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Store, validateBody } from './collector.mjs';
import { sallaApi } from './salla-api.mjs';
import { fakeSalesmanago } from './salesmanago-fake.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAX_BODY = 1024 * 1024;

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

// Only these trees are served; anything else is 404, and no path may climb out of them.
const STATIC = [
  ['/dist/', path.join(ROOT, 'dist')],
  ['/node_modules/@salla.sa/', path.join(ROOT, 'node_modules/@salla.sa')],
  ['/', path.join(ROOT, 'www')],
];

function send(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(text);
}

async function serveStatic(req, res, pathname, extraHeaders, dirs) {
  for (const [prefix, dir] of dirs) {
    if (!pathname.startsWith(prefix)) continue;
    let rel = decodeURIComponent(pathname.slice(prefix.length)) || 'index.html';
    const file = path.resolve(dir, rel);
    if (!file.startsWith(dir + path.sep) && file !== dir) return send(res, 403, 'forbidden');
    try {
      const info = await stat(file);
      const target = info.isDirectory() ? path.join(file, 'index.html') : file;
      const body = await readFile(target);
      res.writeHead(200, {
        'Content-Type': TYPES[path.extname(target)] ?? 'application/octet-stream',
        'Cache-Control': 'no-store',
        // Module scripts and wasm fetched from a CDN need CORS; serve as a CDN would.
        'Access-Control-Allow-Origin': '*',
        ...extraHeaders(pathname),
      });
      return res.end(body);
    } catch {
      return send(res, 404, `not found: ${pathname}`);
    }
  }
  return send(res, 404, `not found: ${pathname}`);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'POST, OPTIONS',
  'Access-Control-Allow-Headers': 'Content-Type',
  'Access-Control-Expose-Headers': 'Retry-After',
  'Access-Control-Max-Age': '600',
};

/**
 * Switches that make the receiver misbehave, for the fault suite and the demo. All default off.
 * - failRate: fraction of /collect requests answered `failStatus` (500, 503 or 429) without
 *   storing anything; with 429, `retryAfter` seconds are sent in Retry-After.
 * - lostAnswerRate: fraction of requests whose events are stored but answered 503, as when a
 *   response is lost: the tracker must retry, and the receiver must deduplicate.
 * - delayMs: every answer waits this long.
 * - refuseSources: Salla event names answered 400 (a receiver that will never take them).
 * - seed: for the random choices, so a run can be repeated.
 * `down(seconds)` (in-process, or POST /admin/down?seconds=N) closes the port: connections are
 * refused until it listens again.
 */
export function defaultFaults() {
  return { failRate: 0, failStatus: 503, retryAfter: 1, lostAnswerRate: 0, delayMs: 0, refuseSources: [], seed: 1 };
}

function random(seed) {
  // mulberry32: small, seedable, good enough to pick which requests fail.
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Starts the server. Options: `port` (0 for any free one), `host`, `headers(pathname)` extra
 * headers for static files (tests use it to set a CSP), `pages` a folder served under /test/.
 * Returns `{ url, port, store, faults, setFaults(f), down(seconds), server, close() }`.
 */
export async function startServer({
  port = 8080,
  host = '127.0.0.1',
  headers = () => ({}),
  pages = null,
  receiver = null,
  clientId = 'demo-client',
} = {}) {
  const staticDirs = pages ? [['/test/', path.resolve(pages)], ...STATIC] : STATIC;
  const store = new Store();
  const api = sallaApi();
  const salesmanago = fakeSalesmanago();
  const sockets = new Set();
  let faults = defaultFaults();
  let rand = random(faults.seed);
  const setFaults = (f) => {
    faults = { ...defaultFaults(), ...f };
    rand = random(faults.seed);
    return faults;
  };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://local');
    const p = url.pathname;
    try {
      if (p === '/collect') {
        if (req.method === 'OPTIONS') return send(res, 204, '', CORS);
        if (req.method !== 'POST') return send(res, 405, 'POST protocol v1 batches here', CORS);
        let text;
        try {
          text = await readBody(req);
        } catch {
          return send(res, 413, { error: `the body is larger than ${MAX_BODY} bytes` }, CORS);
        }
        store.requests++;
        // sendBeacon requests are no-cors; the tracker's fetches are cors.
        const via = req.headers['sec-fetch-mode'] === 'no-cors' ? 'beacon' : 'fetch';
        const { batch, error } = validateBody(text);
        const ids = batch ? batch.events.map((e) => e.id) : [];
        const answer = async (status, body, headers = {}, stored = false) => {
          if (faults.delayMs) await new Promise((r) => setTimeout(r, faults.delayMs));
          store.log.push({ at: Date.now(), ids, status, via, stored });
          return send(res, status, body, { ...CORS, ...headers });
        };
        if (error) {
          store.refused.push({ error, at: Date.now() });
          return answer(400, { error });
        }
        const refused = batch.events.find((e) => faults.refuseSources.includes(e.source));
        if (refused) return answer(400, { error: `events: ${refused.source} is refused by this receiver` });
        if (rand() < faults.failRate) {
          const headers = faults.failStatus === 429 ? { 'Retry-After': String(faults.retryAfter) } : {};
          return answer(faults.failStatus, { error: 'injected failure' }, headers);
        }
        const result = store.accept(batch, via);
        if (rand() < faults.lostAnswerRate) return answer(503, { error: 'injected: stored, answer lost' }, {}, true);
        return answer(200, result, {}, true);
      }
      if (p === '/admin/faults' && req.method === 'POST') {
        return send(res, 200, setFaults(JSON.parse((await readBody(req)) || '{}')));
      }
      if (p === '/admin/down' && req.method === 'POST') {
        down(Number(url.searchParams.get('seconds') ?? 5));
        return send(res, 200, { down: true });
      }
      if (p === '/demo-config.js') {
        // Where the demo's tracker posts: this server's own collector, or the Rust receiver.
        res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-store' });
        return res.end(
          `window.DEMO_ENDPOINT = ${JSON.stringify(receiver ? receiver + '/collect' : '/collect')};\n` +
            `window.DEMO_CLIENT_ID = ${JSON.stringify(clientId)};`,
        );
      }
      if (await salesmanago.handle(req, res, url, readBody)) return;
      if (p === '/received' && req.method === 'GET') {
        const since = Number(url.searchParams.get('since') ?? 0);
        return send(res, 200, {
          salesmanago: salesmanago.calls,
          receiver,
          events: store.events.filter((e) => e.seq > since),
          duplicates: store.duplicates,
          requests: store.requests,
          refused: store.refused,
          salla: api.log.filter((e) => e.seq > Number(url.searchParams.get('sallaSince') ?? 0)),
        });
      }
      if (p === '/reset' && req.method === 'POST') {
        store.reset();
        api.reset();
        salesmanago.reset();
        return send(res, 200, { ok: true });
      }
      if (await api.handle(req, res, url, readBody)) return;
      if (req.method === 'GET' || req.method === 'HEAD') return serveStatic(req, res, p, headers, staticDirs);
      return send(res, 404, `not found: ${req.method} ${p}`);
    } catch (e) {
      return send(res, 500, { error: String(e) });
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actual = server.address().port;
  let downTimer;
  /** Refuses connections for `seconds`: the port is closed, then listened on again. */
  function down(seconds) {
    clearTimeout(downTimer);
    server.close();
    for (const s of sockets) s.destroy();
    downTimer = setTimeout(() => server.listen(actual, host), seconds * 1000);
  }
  return {
    url: `http://${host}:${actual}`,
    port: actual,
    store,
    api,
    salesmanago,
    get faults() {
      return faults;
    },
    setFaults,
    down,
    server,
    close: () =>
      new Promise((resolve) => {
        clearTimeout(downTimer);
        for (const s of sockets) s.destroy();
        if (server.listening) server.close(resolve);
        else resolve();
      }),
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const port = Number(arg('--port') ?? process.env.PORT ?? 8080);
  const receiver = arg('--receiver') ?? null;
  const { url } = await startServer({ port, receiver, clientId: arg('--client-id') });
  console.log(`demo storefront: ${url}/`);
  console.log(receiver ? `the tracker posts to the receiver at ${receiver}; SALESmanago calls are made to ${url}/api/v2 (fake) unless the receiver has a real account` : `the tracker posts to ${url}/collect`);
}
