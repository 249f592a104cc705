// Who the events are about (docs/mapping.md §4), on the real Twilight SDK: the browser's
// anonymous id in every batch, the signed-in shopper's email, name and phone only where the
// merchant and the shopper allow, the contact id a receiver answers kept in the smclient cookie,
// and SALESmanago's monitoring script loaded once, after consent, never harming the page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { suite, open, waitForEvents, pageProblems } from './harness.mjs';

const ctx = suite();

/** A small HTTP server on 127.0.0.1 (closed after the test) answering `handler(req, body)`. */
async function small(t, handler) {
  const s = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => handler(req, res, body));
  });
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => s.close(r)));
  s.url = `http://127.0.0.1:${s.address().port}`;
  return s;
}

/** Opens identity.html with `query` once the tracker and Salla's SDK both run. */
async function storefront(query = '', options) {
  const opened = await open(ctx.browser, `${ctx.server.url}/test/identity.html?${query}`, options);
  await opened.page.evaluate(() => window.SallaSalesmanago.ready);
  await opened.page.waitForFunction(() => window.Salla && Salla.status === 'ready');
  return opened;
}

/** Tracks a search with this event_id and sends it now. */
const send = (page, id) =>
  page.evaluate(async (id) => {
    window.SallaSalesmanago.track('Products Searched', { query: 'عود', event_id: id });
    return window.SallaSalesmanago.flush();
  }, id);

const byId = (id) => ctx.server.relay.events.find((e) => e.id === id);

test("the anonymous id is Salla's analytics id on the first page, kept in sm_aid, sent in every batch, the same after a reload", async () => {
  const { page, seen } = await storefront();
  const sallaId = await page.evaluate(() => Salla.analytics.getAnonymousId());
  assert.match(sallaId, /^[A-Za-z0-9._:-]{1,64}$/, "Salla's analytics has an id on this store");
  await page.evaluate(() => window.storefront.actions.viewProduct(1001));
  assert.equal(await page.evaluate(() => window.SallaSalesmanago.flush()), true);
  // The next event is tracked as the page goes: it leaves by sendBeacon, or with the next page.
  await page.evaluate(() => {
    window.storefront.actions.viewProduct(1002);
    location.reload();
  });
  await page.waitForFunction(() => window.SallaSalesmanago?.loaded && window.Salla?.status === 'ready');
  await page.evaluate(() => window.SallaSalesmanago.ready);
  // (Salla's analytics cannot keep its cookie on 127.0.0.1 and makes a new id on every page: the
  // tracker keeps the one it took.)
  await send(page, 'after-reload');
  const events = await waitForEvents(ctx.server.relay, (ev) => ev.length >= 3, { what: 'three events' });
  assert.deepEqual(
    events.map((e) => [e.anonymousId, e.storeId]),
    events.map(() => [sallaId, '1305']),
    'every batch: the same anonymous id, and the Salla store id',
  );
  assert.equal(await page.evaluate(() => localStorage.getItem('sm_aid')), sallaId, 'kept for pages that send before Salla is ready');
  assert.deepEqual(await pageProblems(page, seen), []);
});

test("without Salla: the tracker's own id, kept in localStorage sm_aid; with storage refused, one id for the page", async () => {
  const { page, seen } = await open(ctx.browser, `${ctx.server.url}/test/loader.html`);
  await page.evaluate(() => window.SallaSalesmanago.ready);
  const [first] = await waitForEvents(ctx.server.relay, (ev) => ev.length >= 2, { what: 'the pre-load events' });
  assert.match(first.anonymousId, /^[0-9a-f]{32}$/, '128 random bits in hex');
  assert.equal(first.storeId, undefined, 'no Salla, no store id');
  assert.equal(await page.evaluate(() => localStorage.getItem('sm_aid')), first.anonymousId);
  await page.reload();
  await page.evaluate(() => window.SallaSalesmanago.ready);
  await send(page, 'own-after-reload');
  assert.equal(byId('own-after-reload').anonymousId, first.anonymousId, 'the same after a reload');
  assert.deepEqual(await pageProblems(page, seen), []);

  // Another browser whose storage refuses everything: an id all the same, one for the page.
  const denied = await open(ctx.browser, `${ctx.server.url}/test/loader.html`, {
    beforeLoad: (p) =>
      p.addInitScript(() =>
        Object.defineProperty(window, 'localStorage', { get() { throw new DOMException('denied', 'SecurityError'); } }),
      ),
  });
  await denied.page.evaluate(() => window.SallaSalesmanago.ready);
  await send(denied.page, 'denied-1');
  await send(denied.page, 'denied-2');
  const ids = [byId('denied-1').anonymousId, byId('denied-2').anonymousId];
  assert.match(ids[0], /^[0-9a-f]{32}$/);
  assert.equal(ids[1], ids[0]);
  assert.notEqual(ids[0], first.anonymousId, 'another browser, another id');
  assert.deepEqual(await pageProblems(denied.page, denied.seen), []);
});

test("the shopper's email, name and phone: with sendEmail, unless the shopper refused", async () => {
  // Signed In through Salla's own engine: its payload carries the names and the mobile number.
  const { page, seen } = await storefront('send=1');
  await page.evaluate(() => window.storefront.actions.signIn());
  await page.evaluate(() => window.SallaSalesmanago.flush());
  const login = ctx.server.relay.events.find((e) => e.source === 'Signed In');
  assert.deepEqual(login.contact, { email: 'noura@example.sa', name: 'نورة العتيبي', phone: '+966500000000' });
  assert.deepEqual(await pageProblems(page, seen), []);
  await page.context().close();

  // Salla's record of a customer signed in on an earlier page, on a store with the cookie bar.
  const bar = await storefront('send=1&bar=1');
  const p = bar.page;
  await p.evaluate(() => window.signedInUser());
  await send(p, 'undecided');
  await p.evaluate(() => Salla.storage.set('cookies-consent', 'rejected'));
  await send(p, 'rejected');
  await p.evaluate(() => {
    Salla.storage.set('cookies-consent', 'accepted');
    document.cookie = 'advertising_cookies=false; path=/';
  });
  await send(p, 'custom-choices-without-advertising');
  await p.evaluate(() => (document.cookie = 'advertising_cookies=true; path=/'));
  await send(p, 'accepted');
  await p.evaluate(() => window.storefront.actions.signOut());
  await send(p, 'signed-out');
  // A shopper who signs in with a mobile number only.
  await p.evaluate(() =>
    window.SallaSalesmanago.track('Signed In', { event_id: 'mobile-only', first_name: 'سارة', mobile: '+966 50 111 2222', type: 'user' }),
  );
  await send(p, 'after-mobile-only');
  const noura = { email: 'noura@example.sa', name: 'نورة العتيبي', phone: '+966501234567' };
  assert.deepEqual(byId('undecided').contact, noura, "no answer from the shopper yet is no refusal");
  assert.deepEqual(byId('rejected').contact, {}, 'the cookie bar said no');
  assert.deepEqual(byId('custom-choices-without-advertising').contact, {}, 'advertising cookies off');
  assert.deepEqual(byId('accepted').contact, noura);
  assert.deepEqual(byId('signed-out').contact, {}, "Signed Out: Salla's record no longer counts");
  assert.equal((await p.context().cookies()).find((c) => c.name === 'smclient'), undefined, 'Signed Out deletes smclient');
  assert.deepEqual(byId('after-mobile-only').contact, { name: 'سارة', phone: '+966501112222' });
  assert.deepEqual(await pageProblems(p, bar.seen), []);
  await bar.context.close();

  // sendEmail off (the default): nothing personal, whatever the shopper allowed.
  const off = await storefront('');
  await off.page.evaluate(() => window.signedInUser());
  await off.page.evaluate(() => window.storefront.actions.signIn());
  await send(off.page, 'send-email-off');
  assert.deepEqual(byId('send-email-off').contact, {});
  assert.deepEqual(await pageProblems(off.page, off.seen), []);
});

/** A receiver that takes every batch and answers `receiver.answer` ({ body, type }). */
async function contactReceiver(t) {
  const receiver = await small(t, (req, res, body) => {
    const cors = { 'Access-Control-Allow-Origin': req.headers.origin ?? '*', Vary: 'Origin' };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...cors, 'Access-Control-Allow-Methods': 'POST' });
      return res.end();
    }
    receiver.batches.push(JSON.parse(body));
    res.writeHead(200, { ...cors, 'Content-Type': receiver.answer.type ?? 'application/json' });
    res.end(receiver.answer.body);
  });
  receiver.batches = [];
  receiver.answer = { body: JSON.stringify({ accepted: 1, duplicates: 0, contactId: 'c-123' }) };
  return receiver;
}

const smclient = async (page) => (await page.context().cookies()).find((c) => c.name === 'smclient');

test('a 2xx naming contactId is kept in the smclient cookie and named by later batches; not when the shopper refused cookies', async (t) => {
  const receiver = await contactReceiver(t);
  const endpoint = encodeURIComponent(`${receiver.url}/collect`);
  const { page, seen } = await storefront(`endpoint=${endpoint}`);
  assert.equal(await send(page, 'named'), true);
  await page.waitForFunction(() => document.cookie.includes('smclient=c-123'));
  const cookie = await smclient(page);
  assert.equal(cookie.path, '/');
  assert.equal(cookie.sameSite, 'Lax');
  assert.equal(cookie.secure, false, 'Secure only on https');
  // Written for 10 years, as SALESmanago's plugins do; Chromium keeps a cookie 400 days at most.
  const days = (cookie.expires * 1000 - Date.now()) / (24 * 3600e3);
  assert.ok(days > 399 && days <= 400, `the longest a browser keeps it, got ${days} days`);
  await send(page, 'later');
  assert.deepEqual(receiver.batches.at(-1).contact, { contactId: 'c-123' });
  assert.equal(receiver.batches.at(-1).events[0].id, 'later');

  // Other receivers answer 2xx with an empty body, or text: still a success, nothing written.
  for (const answer of [{ body: '' }, { body: 'ok', type: 'text/plain' }, { body: '{"contactId": 7}' }]) {
    receiver.answer = answer;
    await page.evaluate(() => (document.cookie = 'smclient=; path=/; max-age=0'));
    assert.equal(await send(page, `plain-${receiver.batches.length}`), true, `${JSON.stringify(answer)} is a success`);
    await page.waitForTimeout(100);
    assert.equal(await smclient(page), undefined, JSON.stringify(answer));
  }
  assert.deepEqual(await pageProblems(page, seen), []);
  await page.context().close();

  // The cookie bar said no: the answer's contact id is not written.
  receiver.answer = { body: JSON.stringify({ accepted: 1, duplicates: 0, contactId: 'c-123' }) };
  const refused = await storefront(`bar=1&endpoint=${endpoint}`);
  await refused.page.evaluate(() => Salla.storage.set('cookies-consent', 'rejected'));
  assert.equal(await send(refused.page, 'refused'), true);
  await refused.page.waitForTimeout(300);
  assert.equal(await smclient(refused.page), undefined);
  assert.equal(receiver.batches.at(-1).events[0].id, 'refused');
  assert.equal(receiver.batches.at(-1).anonymousId, undefined, 'a shopper who refused is not followed across pages');
  assert.deepEqual(await pageProblems(refused.page, refused.seen), []);
});

test("reading the answer's body holds nothing up: flush() resolves on the status, the cookie follows the body", async (t) => {
  // The 2xx's head and half its body at once, the rest (with contactId) 3 s later.
  const slow = await small(t, (req, res) => {
    const cors = { 'Access-Control-Allow-Origin': req.headers.origin ?? '*', Vary: 'Origin' };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...cors, 'Access-Control-Allow-Methods': 'POST' });
      return res.end();
    }
    res.writeHead(200, { ...cors, 'Content-Type': 'application/json' });
    res.write('{"accepted":1,"duplicates":0,');
    setTimeout(() => res.end('"contactId":"c-slow"}'), 3000);
  });
  const { page, seen } = await storefront(`endpoint=${encodeURIComponent(`${slow.url}/collect`)}`);
  const started = Date.now();
  assert.equal(await send(page, 'slow-body'), true, 'the batch is done with');
  const flushedIn = Date.now() - started;
  assert.ok(flushedIn < 2500, `flush() waited ${flushedIn} ms for a body it does not need`);
  assert.equal(await smclient(page), undefined, 'the body has not arrived yet');
  await page.waitForFunction(() => document.cookie.includes('smclient=c-slow'), null, { timeout: 10_000 });
  assert.deepEqual(await pageProblems(page, seen), []);
});

/** Serves SALESmanago's monitoring script (or answers `sm.status`), counting requests. */
async function monitoringHost(t) {
  const sm = await small(t, (req, res) => {
    sm.requests.push(req.url);
    if (sm.status !== 200 || req.url !== '/static/sm.js') {
      res.writeHead(sm.status === 200 ? 404 : sm.status);
      return res.end('not here');
    }
    res.writeHead(200, { 'Content-Type': 'text/javascript' });
    res.end('window.__smRuns = (window.__smRuns || 0) + 1;');
  });
  sm.requests = [];
  sm.status = 200;
  return sm;
}

test("SALESmanago's monitoring script: once, at once on a store without the cookie bar, also set in the Salla app's settings", async (t) => {
  const sm = await monitoringHost(t);
  const { page, seen } = await storefront(`monitoring=${encodeURIComponent(sm.url)}`);
  await page.waitForFunction(() => window.__smRuns === 1);
  assert.equal(await page.evaluate(() => window._smid), 'demo-client');
  await send(page, 'm-1');
  await send(page, 'm-2');
  await page.waitForTimeout(100);
  assert.deepEqual(sm.requests, ['/static/sm.js'], 'loaded once');
  assert.equal(await page.evaluate(() => document.querySelectorAll('script[src*="/static/sm.js"]').length), 1);
  assert.deepEqual(await pageProblems(page, seen), []);
  await page.context().close();

  // The same from the Salla app's settings form (monitoring, sm_host).
  const app = await storefront(`app_sm_host=${encodeURIComponent(sm.url)}`);
  await app.page.waitForFunction(() => window.__smRuns === 1);
  assert.equal(await app.page.evaluate(() => window._smid), 'demo-client');
  assert.deepEqual(sm.requests, ['/static/sm.js', '/static/sm.js'], 'once on each page');
  assert.deepEqual(await pageProblems(app.page, app.seen), []);
});

test('the monitoring script waits for consent where the store has the cookie bar (or without Salla), and never loads on a refusal', async (t) => {
  const sm = await monitoringHost(t);
  const host = encodeURIComponent(sm.url);
  const { page, seen } = await storefront(`bar=1&monitoring=${host}`);
  await send(page, 'before-consent');
  await page.waitForTimeout(300);
  assert.deepEqual(sm.requests, [], 'not before the shopper answered');
  assert.equal(await page.evaluate(() => window._smid), undefined);
  await page.evaluate(() => Salla.storage.set('cookies-consent', 'accepted'));
  await send(page, 'after-consent');
  await page.waitForFunction(() => window.__smRuns === 1);
  await send(page, 'after-consent-2');
  await page.waitForTimeout(100);
  assert.deepEqual(sm.requests, ['/static/sm.js'], 'once');
  assert.deepEqual(await pageProblems(page, seen), []);
  await page.context().close();

  const refused = await storefront(`bar=1&monitoring=${host}`);
  await refused.page.evaluate(() => Salla.storage.set('cookies-consent', 'rejected'));
  await send(refused.page, 'refused-1');
  await refused.page.evaluate(() => window.SallaSalesmanago.setConsent(false));
  await send(refused.page, 'refused-2');
  await refused.page.waitForTimeout(300);
  assert.deepEqual(sm.requests, ['/static/sm.js'], 'nothing more after a refusal');
  assert.equal(await refused.page.evaluate(() => window._smid), undefined);
  assert.deepEqual(await pageProblems(refused.page, refused.seen), []);
  await refused.context.close();

  // Without Salla's SDK nothing says whether the store asks: the page's setConsent(true) decides.
  const bare = await open(ctx.browser, `${ctx.server.url}/test/no-salla.html?monitoring=${host}`);
  await bare.page.evaluate(() => window.SallaSalesmanago.ready);
  await send(bare.page, 'no-salla');
  await bare.page.waitForTimeout(300);
  assert.deepEqual(sm.requests, ['/static/sm.js'], 'not without consent');
  await bare.page.evaluate(() => window.SallaSalesmanago.setConsent(true));
  await bare.page.waitForFunction(() => window.__smRuns === 1);
  assert.deepEqual(await pageProblems(bare.page, bare.seen), []);
});

test('a monitoring script that 404s or cannot be reached harms nothing; one the merchant installed is not loaded again', async (t) => {
  const sm = await monitoringHost(t);
  sm.status = 404;
  const closed = await small(t, () => {});
  const unreachable = closed.url;
  await new Promise((r) => closed.close(r));
  for (const [what, host] of [['404', sm.url], ['unreachable', unreachable]]) {
    ctx.server.relay.reset();
    const { page, seen, context } = await storefront(`monitoring=${encodeURIComponent(host)}`);
    await page.waitForFunction(() => document.querySelector('script[src*="/static/sm.js"]'));
    await page.waitForTimeout(200);
    assert.equal(await send(page, `after-${what}`), true, `${what}: the tracker goes on`);
    assert.ok(byId(`after-${what}`), `${what}: the event arrived`);
    assert.deepEqual(await pageProblems(page, seen), [], what);
    await context.close();
  }
  assert.deepEqual(sm.requests, ['/static/sm.js'], 'the 404 host was asked once');

  sm.status = 200;
  const installed = await storefront(`smid=merchant-own&monitoring=${encodeURIComponent(sm.url)}`);
  await send(installed.page, 'installed');
  await installed.page.waitForTimeout(200);
  assert.deepEqual(sm.requests, ['/static/sm.js'], 'not loaded again');
  assert.equal(await installed.page.evaluate(() => window._smid), 'merchant-own');
  assert.deepEqual(await pageProblems(installed.page, installed.seen), []);
});
