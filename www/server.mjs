// The demo's one local server, on 127.0.0.1: serves the demo storefront (www/), the built tracker
// (dist/) and Salla's SDK from node_modules, stands in for the Salla store API the SDK calls, and
// relays the tracker's protocol v1 batches on /collect to the real receiver (www/collector.mjs),
// which delivers to SALESmanago: the fake API (sm-fake) or a real account. www/stack.mjs starts
// those two processes.
//
//   node www/server.mjs [--port 8080] [--receiver-port 8787] [--env-file receiver.env]
//
// Tests start it in-process with `startServer({ port: 0 })` and connect it to a stack.
import http from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Relay } from './collector.mjs';
import { orderCreated, sallaApi } from './salla-api.mjs';
import { DEMO_ACCOUNT, startStack } from './stack.mjs';

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

/**
 * Starts the server. Options: `port` (0 for any free one), `host`, `headers(pathname)` extra
 * headers for static files (tests use it to set a CSP), `pages` a folder served under /test/,
 * `stack` a running www/stack.mjs stack to relay to (or `connect(stack)` later: the receiver must
 * know this server's origin before it starts, and the port is known only once listening).
 * Returns `{ url, port, relay, api, faults, setFaults(f), down(seconds), connect(stack), server, close() }`.
 * `POST /demo/order-created` (`{ storeId, reference, email, products }`) sends Salla's signed
 * order.created for that order to the connected receiver; `/received` lists those calls.
 */
export async function startServer({ port = 8080, host = '127.0.0.1', headers = () => ({}), pages = null, stack = null } = {}) {
  const staticDirs = pages ? [['/test/', path.resolve(pages)], ...STATIC] : STATIC;
  const relay = new Relay();
  const api = sallaApi();
  const sockets = new Set();
  let fake = null;
  let clientId = DEMO_ACCOUNT.clientId;
  let webhook = null;
  // The order.created calls the demo sent as Salla: { seq, at, reference, id, status, answer }.
  const webhooks = [];
  const sallaIds = new Map(); // the page's order reference → Salla's order id
  const connect = (s) => {
    relay.upstream = s.receiver.url;
    fake = s.fake;
    clientId = s.account.clientId;
    webhook = s.webhook;
  };
  if (stack) connect(stack);
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://local');
    const p = url.pathname;
    try {
      if (p === '/collect') return await relay.handle(req, res);
      if (p === '/admin/faults' && req.method === 'POST') {
        return send(res, 200, relay.setFaults(JSON.parse((await readBody(req)) || '{}')));
      }
      if (p === '/admin/down' && req.method === 'POST') {
        down(Number(url.searchParams.get('seconds') ?? 5));
        return send(res, 200, { down: true });
      }
      if (p === '/demo/order-created' && req.method === 'POST') {
        // Plays Salla's servers: the order.created webhook for the page's order, signed with the
        // app's webhook secret the stack gave sm-receiver, posted to its /salla/webhook.
        if (!webhook) return send(res, 503, { error: 'no receiver connected' });
        const { storeId, reference, email, products } = JSON.parse((await readBody(req)) || '{}');
        if (!reference || !Array.isArray(products) || !products.length) {
          return send(res, 400, { error: 'an order needs its reference and products' });
        }
        // Salla's own id of the order, another number than the reference the storefront shows;
        // the same for every delivery of one order, as Salla's.
        const id = sallaIds.get(reference) ?? Date.now();
        sallaIds.set(reference, id);
        const body = orderCreated({ merchant: Number(storeId) || storeId, id, reference, email, products });
        const { status, answer } = await webhook(body);
        const sent = { seq: webhooks.length + 1, at: Date.now(), reference, id: String(id), status, answer };
        webhooks.push(sent);
        return send(res, 200, sent);
      }
      if (p === '/demo-config.js') {
        // The demo's tracker posts to this server's relay, as the tracker of the receiver's account.
        res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-store' });
        return res.end(`window.DEMO_ENDPOINT = "/collect";\nwindow.DEMO_CLIENT_ID = ${JSON.stringify(clientId)};`);
      }
      if (p === '/received' && req.method === 'GET') {
        const since = Number(url.searchParams.get('since') ?? 0);
        return send(res, 200, {
          events: relay.events.filter((e) => e.seq > since),
          duplicates: relay.duplicates,
          requests: relay.requests,
          refused: relay.refused,
          // The fake SALESmanago's calls; null when the receiver delivers to a real account.
          salesmanago: fake ? await fake.calls(Number(url.searchParams.get('callsSince') ?? 0)) : null,
          salla: api.log.filter((e) => e.seq > Number(url.searchParams.get('sallaSince') ?? 0)),
          webhooks,
        });
      }
      if (p === '/reset' && req.method === 'POST') {
        relay.reset();
        api.reset();
        webhooks.length = 0;
        await fake?.reset();
        return send(res, 200, { ok: true });
      }
      if (await api.handle(req, res, url, readBody)) return;
      if (req.method === 'GET' || req.method === 'HEAD') return serveStatic(req, res, p, headers, staticDirs);
      return send(res, 404, `not found: ${req.method} ${p}`);
    } catch (e) {
      if (!res.headersSent) return send(res, 500, { error: String(e) });
      res.destroy();
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
    relay,
    api,
    get faults() {
      return relay.faults;
    },
    setFaults: (f) => relay.setFaults(f),
    down,
    connect,
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
  const receiverPort = Number(arg('--receiver-port') ?? process.env.RECEIVER_PORT ?? 8787);
  const envFile = arg('--env-file') ?? null;
  const server = await startServer({ port });
  const demo = path.join(ROOT, 'target/demo');
  let stack;
  try {
    stack = await startStack({
      allowedOrigins: [server.url],
      receiverPort,
      envFile,
      dir: demo,
      // A real account's undelivered events must survive a restart; the fake's need not.
      dataDir: envFile ? path.join(demo, 'receiver-data') : undefined,
      keep: true,
    });
  } catch (e) {
    console.error(`demo: ${e.message}`);
    await server.close();
    process.exit(1);
  }
  server.connect(stack);
  const stop = async () => {
    await server.close();
    await stack.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  console.log(`demo storefront: ${server.url}/`);
  console.log(`the tracker posts to ${server.url}/collect, relayed to sm-receiver at ${stack.receiver.url} (log: ${path.relative(ROOT, stack.receiver.log)})`);
  console.log(stack.fake
    ? `sm-receiver delivers to the fake SALESmanago API (sm-fake) at ${stack.fake.url}; ${server.url}/received lists its calls`
    : `sm-receiver delivers to the SALESmanago account in ${envFile}`);
}
