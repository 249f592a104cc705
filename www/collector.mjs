// The local collector: a relay in front of the real receiver (sm-receiver). It knows no
// SALESmanago rule and decides nothing about a batch: `/collect` is forwarded byte for byte, and
// the receiver's answer (status, headers — CORS and Retry-After included — and body) comes back
// as the receiver gave it. What the relay adds is what the tests and the demo need around that:
//
// - a log of what the tracker sent and what it was answered (`log`, `requests`), and the events
//   of every batch the receiver took with a 2xx (`events`, `duplicates` as the receiver counted
//   them), so a test can count requests, duplicates and how each came (fetch or sendBeacon);
// - fault switches (see `defaultFaults`) that make the receiver look broken to the tracker.
//
// No HTTP server here: www/server.mjs mounts `Relay.handle` on its `/collect`.
import http from 'node:http';

/**
 * Switches that make the receiver misbehave, for the fault suite and the demo. All default off.
 * - failRate: fraction of POSTs answered `failStatus` (500, 503 or 429) by the relay, not
 *   forwarded; with 429, `retryAfter` seconds are sent in Retry-After.
 * - lostAnswerRate: fraction of POSTs forwarded, and taken by the receiver, whose 2xx is replaced
 *   by a 503, as when a response is lost: the tracker must retry, and the receiver deduplicate.
 * - delayMs: every answer waits this long (after the receiver answered).
 * - refuseSources: Salla event names answered 400 by the relay (a receiver that will never take
 *   them).
 * - refuseConfirm: a request that only asks which events are held (docs/protocol.md §2.1) is
 *   answered 400, as a receiver that predates the question answers it.
 * - seed: for the random choices, so a run can be repeated.
 * Going down (connections refused) is the server's: `down(seconds)` in www/server.mjs.
 */
export function defaultFaults() {
  return { failRate: 0, failStatus: 503, retryAfter: 1, lostAnswerRate: 0, delayMs: 0, refuseSources: [], refuseConfirm: false, seed: 1 };
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

// Connection-level headers belong to one hop; everything else passes through.
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host',
]);
// The CORS headers the receiver gives a POST from an allowed origin: copied onto the relay's own
// (injected) answers, so that the browser lets the tracker read them as it would the receiver's.
const CORS_OF_A_POST = ['access-control-allow-origin', 'vary', 'access-control-expose-headers'];
// A test relay, not a service: this only guards against a runaway page.
const MAX_RELAYED = 16 * 1024 * 1024;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function readBytes(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_RELAYED) {
        reject(new Error(`the relay takes at most ${MAX_RELAYED} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** One request to `upstream`; resolves with `{ status, headers, body }` (body a Buffer). */
function forward(upstream, { method, path, headers, body }) {
  return new Promise((resolve, reject) => {
    const url = new URL(path, upstream);
    const out = http.request(url, { method, headers: { ...headers, 'content-length': body.length } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    out.on('error', reject);
    out.end(body);
  });
}

function passable(headers) {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP_BY_HOP.has(k.toLowerCase())));
}

/** What the log keeps of a body: the batch as sent, if it is JSON at all (never judged here). */
function readBatch(body) {
  try {
    const batch = JSON.parse(body.toString('utf8'));
    return batch && Array.isArray(batch.events) ? batch : null;
  } catch {
    return null;
  }
}

/** The ids a request asks about (`confirm`, docs/protocol.md §2.1), or []. */
function readConfirm(body) {
  try {
    const ids = JSON.parse(body.toString('utf8'))?.confirm;
    return Array.isArray(ids) ? ids : [];
  } catch {
    return [];
  }
}

export class Relay {
  /** `upstream`: the receiver's base URL (`http://127.0.0.1:PORT`); null until one is set. */
  constructor({ upstream = null } = {}) {
    this.upstream = upstream;
    // origin → the CORS headers the receiver gives it (its allowed origins are fixed at start).
    this.corsCache = new Map();
    this.setFaults({});
    this.reset();
  }

  /** Forgets what was sent and answered (not the receiver's memory: ids it holds stay held). */
  reset() {
    // One row per POST, in the order they arrived: { seq, at (arrival, ms), answeredAt, ids,
    // via: 'fetch' | 'beacon', status (what the tracker got), upstream (the receiver's status,
    // null if not forwarded or unreachable), answer (the receiver's JSON), stored (the receiver
    // took the batch: 2xx), fault (the switch that answered instead, if any), confirm (ids asked
    // about, docs/protocol.md §2.1) }.
    this.log = [];
    // Every event of a batch the receiver answered 2xx, the first time its id was seen since the
    // reset: { seq, id, source, contactEvent, contact, clientId, anonymousId, storeId, receivedAt,
    // via }.
    this.events = [];
    this.byId = new Map();
    // The receiver's own count of events it already held (its answers' `duplicates`).
    this.duplicates = 0;
    this.requests = 0;
  }

  get faults() {
    return this.current;
  }

  setFaults(f) {
    this.current = { ...defaultFaults(), ...f };
    this.rand = random(this.current.seed);
    return this.current;
  }

  /** The receiver's refusals (4xx), with its words: `{ at, status, error }`. */
  get refused() {
    return this.log
      .filter((r) => r.upstream >= 400 && r.upstream < 500)
      .map((r) => ({ at: r.at, status: r.upstream, error: r.answer?.error }));
  }

  /** Handles a request to `/collect` (any method; only POSTs are logged). */
  async handle(req, res) {
    const at = Date.now();
    if (req.method === 'POST') this.requests++;
    let body;
    try {
      body = await readBytes(req);
    } catch (e) {
      return this.#answer(res, { status: 413, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: e.message }) });
    }
    const headers = passable(req.headers);
    const peer = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${headers['x-forwarded-for']}, ${peer}` : peer;
    const request = { method: req.method, path: req.url, headers, body };
    if (req.method !== 'POST') return this.#answer(res, await this.#forward(request));

    const batch = readBatch(body);
    const row = {
      seq: this.requests,
      at,
      answeredAt: null,
      ids: batch ? batch.events.map((e) => e?.id) : [],
      // Ids asked about by a page that never saw an earlier answer: no event bodies.
      confirm: readConfirm(body),
      // sendBeacon requests are no-cors; the tracker's fetches are cors.
      via: req.headers['sec-fetch-mode'] === 'no-cors' ? 'beacon' : 'fetch',
      status: null,
      upstream: null,
      answer: null,
      stored: false,
      fault: null,
    };
    // Decided before the first await, so that a test that sees this request arrive and turns a
    // fault off cannot change how this one is answered.
    const f = this.current;
    const refusedSource = batch?.events.find((e) => f.refuseSources.includes(e?.source))?.source;
    const fail = !refusedSource && this.rand() < f.failRate;
    this.log.push(row);

    let answer;
    if (f.refuseConfirm && !batch && row.confirm.length) {
      row.fault = 'refuseConfirm';
      answer = await this.#injected(req, 400, { error: 'events is missing' });
    } else if (refusedSource) {
      row.fault = 'refuseSources';
      answer = await this.#injected(req, 400, { error: `events: ${refusedSource} is refused by this receiver (relay fault switch)` });
    } else if (fail) {
      row.fault = 'failRate';
      const extra = f.failStatus === 429 ? { 'retry-after': String(f.retryAfter) } : {};
      answer = await this.#injected(req, f.failStatus, { error: 'injected failure (relay fault switch)' }, extra);
    } else {
      answer = await this.#forward(request);
      row.upstream = answer.upstream;
      row.answer = answer.json;
      row.stored = answer.upstream >= 200 && answer.upstream < 300;
      if (row.stored) this.#took(batch, answer.json, row);
      if (row.stored && this.rand() < f.lostAnswerRate) {
        row.fault = 'lostAnswerRate';
        answer = await this.#injected(req, 503, { error: 'injected: taken by the receiver, answer lost (relay fault switch)' });
      }
    }
    if (f.delayMs) await sleep(f.delayMs);
    row.status = answer.status;
    row.answeredAt = Date.now();
    return this.#answer(res, answer);
  }

  /** The receiver's answer, or a 502 naming why there is none. */
  async #forward(request) {
    if (!this.upstream) {
      return { status: 502, upstream: null, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: 'relay: no receiver is running behind this server' }) };
    }
    try {
      const r = await forward(this.upstream, request);
      let json = null;
      try {
        json = JSON.parse(r.body.toString('utf8'));
      } catch {}
      return { status: r.status, upstream: r.status, headers: passable(r.headers), body: r.body, json };
    } catch (e) {
      return { status: 502, upstream: null, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: `relay: the receiver is unreachable (${e.code ?? e.message})` }) };
    }
  }

  /** An answer of the relay's own, with the CORS headers the receiver gives this origin. */
  async #injected(req, status, json, extra = {}) {
    const cors = await this.#corsFor(req.headers.origin);
    return { status, headers: { 'content-type': 'application/json', ...cors, ...extra }, body: JSON.stringify(json) };
  }

  /** Asks the receiver (a preflight) which CORS headers it gives `origin`. */
  async #corsFor(origin) {
    if (!origin || !this.upstream) return {};
    const key = `${this.upstream} ${origin}`;
    if (!this.corsCache.has(key)) {
      const r = await forward(this.upstream, {
        method: 'OPTIONS',
        path: '/collect',
        headers: { origin, 'access-control-request-method': 'POST' },
        body: Buffer.alloc(0),
      }).catch(() => null);
      const cors = {};
      for (const k of CORS_OF_A_POST) if (r?.headers[k]) cors[k] = r.headers[k];
      this.corsCache.set(key, cors);
    }
    return this.corsCache.get(key);
  }

  #took(batch, json, row) {
    this.duplicates += Number(json?.duplicates ?? 0);
    for (const ev of batch?.events ?? []) {
      if (this.byId.has(ev.id)) continue;
      const record = {
        seq: this.events.length + 1,
        id: ev.id,
        source: ev.source,
        contactEvent: ev.contactEvent,
        contact: batch.contact ?? {},
        clientId: batch.clientId,
        anonymousId: batch.anonymousId,
        storeId: batch.storeId,
        receivedAt: row.at,
        via: row.via,
      };
      this.byId.set(ev.id, record);
      this.events.push(record);
    }
  }

  // No header of the relay's own (not even Cache-Control): Chromium keeps a page's keepalive
  // budget for an answer marked no-store, which sm-receiver's answers are not.
  #answer(res, { status, headers, body }) {
    if (res.destroyed) return;
    res.writeHead(status, headers);
    res.end(body);
  }
}
