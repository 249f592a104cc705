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
 * Starts the server. Options: `port` (0 for any free one), `host`, `headers(pathname)` extra
 * headers for static files (tests use it to set a CSP), `pages` a folder served under /test/.
 * Returns `{ url, port, store, server, close() }`.
 */
export async function startServer({
  port = 8080,
  host = '127.0.0.1',
  headers = () => ({}),
  pages = null,
} = {}) {
  const staticDirs = pages ? [['/test/', path.resolve(pages)], ...STATIC] : STATIC;
  const store = new Store();
  const api = sallaApi();
  const sockets = new Set();
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
        const { batch, error } = validateBody(text);
        if (error) {
          store.refused.push({ error, at: Date.now() });
          return send(res, 400, { error }, CORS);
        }
        return send(res, 200, store.accept(batch), CORS);
      }
      if (p === '/received' && req.method === 'GET') {
        const since = Number(url.searchParams.get('since') ?? 0);
        return send(res, 200, {
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
  return {
    url: `http://${host}:${actual}`,
    port: actual,
    store,
    api,
    server,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(resolve);
      }),
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--port');
  const port = i > 0 ? Number(process.argv[i + 1]) : Number(process.env.PORT ?? 8080);
  const { url } = await startServer({ port });
  console.log(`demo storefront: ${url}/   (the tracker's events: ${url}/received)`);
}
