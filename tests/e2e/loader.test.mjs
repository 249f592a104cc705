// The loader as a merchant uses it: one <script> tag, the built dist/, real Chromium, the real
// receiver (sm-receiver) on 127.0.0.1 behind the page server's relay.
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { ACCOUNT, launch, serve, open, waitForEvents, pageProblems, closePages } from './harness.mjs';

let browser;
let server;

before(async () => {
  server = await serve({
    headers: (p) =>
      p === '/test/csp.html' ? { 'Content-Security-Policy': "default-src 'self'; script-src 'self'" } : {},
  });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.close();
});
afterEach(() => closePages(browser));
beforeEach(() => server.relay.reset());

const bySource = (events, source) => events.filter((e) => e.source === source);

test('a script tag delivers pre-load, DOM and manual events, mapped, once', async () => {
  const { page, seen } = await open(browser, `${server.url}/test/loader.html`);
  await page.evaluate(() => window.SallaSalesmanago.ready);
  await page.evaluate(() => {
    const detail = {
      event_id: 'dom-1', product_id: 1001, name: 'عطر العود', price: '250.50', currency: 'SAR',
      category: 'عطور', brand: 'Oud House', sku: 'OUD-1', url: 'https://store.example/p/1001',
    };
    window.dispatchEvent(new CustomEvent('Product Viewed', { detail }));
    // The same event again, through another source: sent once.
    window.SallaSalesmanago.track('Product Viewed', detail);
    window.SallaSalesmanago.track('Product Added', {
      event_id: 'man-1', cart_id: 77, product_id: 1001, name: 'عطر العود', price: 250.5, quantity: 2, currency: 'SAR',
    });
  });
  const events = await waitForEvents(server.relay, (ev) => ev.length >= 4, { what: 'four events' });
  await page.waitForTimeout(300); // anything extra would arrive now
  assert.deepEqual(
    server.relay.events.map((e) => [e.source, e.contactEvent.contactExtEventType]),
    [
      ['Products Searched', 'OTHER'],
      ['Promotion Viewed', 'OFFER'],
      ['Product Viewed', 'VISIT'],
      ['Product Added', 'CART'],
    ],
    'pre-load calls first, in order; the duplicate Product Viewed once',
  );
  const [search] = bySource(events, 'Products Searched');
  assert.equal(search.id, 'pre-1');
  assert.equal(search.clientId, ACCOUNT.clientId);
  const viewed = bySource(events, 'Product Viewed')[0].contactEvent;
  assert.deepEqual(
    { ...viewed, date: typeof viewed.date },
    {
      date: 'number', contactExtEventType: 'VISIT', products: '1001', description: 'Product Viewed',
      location: 'store-e2e', shopDomain: '127.0.0.1', value: 250.5, detail1: 'عطر العود', detail2: 'عطور',
      detail3: 'Oud House', detail4: 'https://store.example/p/1001', detail5: 'OUD-1', detail6: 'SAR',
    },
  );
  const added = bySource(events, 'Product Added')[0].contactEvent;
  assert.equal(added.externalId, '77');
  assert.equal(added.value, 501);
  assert.equal(added.detail2, '2');
  assert.ok(Math.abs(added.date - Date.now()) < 60_000, 'date is now, in milliseconds');
  assert.equal(server.relay.duplicates, 0);
  assert.deepEqual(await pageProblems(page, seen), []);
  // The second copy of the script did nothing: one tracker, one "ready".
  assert.equal(seen.console.filter((m) => m.text === '[salesmanago] ready').length, 1);
  assert.deepEqual(seen.foreign, []);
  assert.ok(seen.console.some((m) => m.text.includes('[salesmanago]') && m.text.includes('Product Added → CART')), 'debug log');
});

/** The loader's test page once its pre-load events arrived and their answer is in (nothing in
 * flight: an answer that came in the middle of a test's burst would send what the burst had queued
 * so far); `before`: how many the relay had. */
async function loaderPage() {
  const opened = await open(browser, `${server.url}/test/loader.html`);
  await opened.page.evaluate(() => window.SallaSalesmanago.ready);
  await waitForEvents(server.relay, (ev) => ev.length >= 2, { what: 'the pre-load events' });
  assert.equal(await opened.page.evaluate(() => window.SallaSalesmanago.flush()), true);
  return { ...opened, before: server.relay.events.length };
}

/** What the relay took after its first `before` events, once the tracker has nothing left and
 * anything extra has had time to arrive. */
async function takenSince(page, before) {
  assert.equal(await page.evaluate(() => window.SallaSalesmanago.flush()), true);
  await page.waitForTimeout(300);
  return server.relay.events.slice(before);
}

test('a burst of changes to one cart: one CART, for the cart as it ended; what came between still sent', async () => {
  const { page, seen, before } = await loaderPage();
  // One moment, as a storefront script that fills a cart would: nine lines, a product viewed
  // between them.
  await page.evaluate(() => {
    const add = (i) => window.SallaSalesmanago.track('Product Added', {
      event_id: `burst-${i}`, cart_id: 'c-9', product_id: 2000 + i, price: 10, currency: 'SAR',
    });
    for (let i = 0; i < 4; i++) add(i);
    window.SallaSalesmanago.track('Product Viewed', { event_id: 'burst-view', product_id: 3000, price: 5 });
    for (let i = 4; i < 9; i++) add(i);
  });
  const got = await takenSince(page, before);
  assert.deepEqual(got.map((e) => [e.id, e.contactEvent.contactExtEventType]), [['burst-view', 'VISIT'], ['burst-8', 'CART']]);
  const cart = got[1].contactEvent;
  assert.equal(cart.externalId, 'c-9');
  assert.equal(cart.products, Array.from({ length: 9 }, (_, i) => 2000 + i).join(','));
  assert.equal(cart.value, 90);
  assert.deepEqual(await pageProblems(page, seen), []);
});

test('events keep the order the page made them in, whichever way each came in', async () => {
  const { page, seen, before } = await loaderPage();
  // One task: calls the entry queues for the wasm, one it cannot copy (read at once), a DOM
  // event (straight into the wasm), and a call of another kind between them.
  await page.evaluate(() => {
    const t = window.SallaSalesmanago;
    t.track('Product Viewed', { event_id: 'o-1', product_id: 1 });
    t.track('Product Viewed', { event_id: 'o-2', product_id: 2, onClick() {} });
    t.track('Product Viewed', { event_id: 'o-3', product_id: 3 });
    window.dispatchEvent(new CustomEvent('Product Viewed', { detail: { event_id: 'o-4', product_id: 4 } }));
    t.track('Signed Out', { event_id: 'o-5' });
    t.track('Product Viewed', { event_id: 'o-6', product_id: 6 });
  });
  const got = await takenSince(page, before);
  assert.deepEqual(got.map((e) => [e.id, e.contactEvent.products]), [['o-1', '1'], ['o-2', '2'], ['o-3', '3'], ['o-4', '4'], ['o-6', '6']]);
  assert.deepEqual(await pageProblems(page, seen), []);
});

test('a burst of events goes out as one request', async () => {
  const { page } = await open(browser, `${server.url}/test/loader.html`);
  await page.evaluate(() => window.SallaSalesmanago.ready);
  await waitForEvents(server.relay, (ev) => ev.length >= 2);
  // From an idle tracker: the pre-load events' request must be answered and done with, or the
  // burst may be split at that answer (the send loop takes what is queued by then).
  assert.equal(await page.evaluate(() => window.SallaSalesmanago.flush()), true);
  const before = server.relay.log.length;
  await page.evaluate(() => {
    for (let i = 0; i < 30; i++) {
      window.SallaSalesmanago.track('Products Searched', { query: `q${i}`, event_id: `burst-${i}` });
    }
  });
  await waitForEvents(server.relay, (ev) => ev.length >= 32, { what: '30 burst events' });
  const requests = server.relay.log.slice(before).map((r) => ({ burst: r.ids.filter((id) => id.startsWith('burst-')).length, ids: r.ids.length, via: r.via }));
  assert.deepEqual(requests, [{ burst: 30, ids: 30, via: 'fetch' }], 'one request, with the whole burst and nothing else');
});

test('the Partners Portal URL alone configures the tracker', async () => {
  const { page, seen } = await open(browser, `${server.url}/test/query.html`);
  await page.evaluate(() => window.SallaSalesmanago.ready);
  await page.evaluate(() => window.SallaSalesmanago.track('Signed In', { email: 'noura@example.sa' }));
  const [login] = await waitForEvents(server.relay, (ev) => ev.length >= 1);
  assert.equal(login.clientId, ACCOUNT.clientId, 'client_id from the query string');
  assert.equal(login.contactEvent.contactExtEventType, 'LOGIN');
  assert.equal(login.contactEvent.location, 'store-q');
  assert.deepEqual(login.contact, {}, 'no email: sendEmail is off by default');
  assert.deepEqual(await pageProblems(page, seen), []);
});

test('malformed payloads never reach the page, and the next event still goes out', async () => {
  const { page, seen } = await open(browser, `${server.url}/test/loader.html`);
  await page.evaluate(() => window.SallaSalesmanago.ready);
  await waitForEvents(server.relay, (ev) => ev.length >= 2);
  await page.evaluate(() => {
    const t = window.SallaSalesmanago;
    const cyclic = { product_id: 'c1' };
    cyclic.self = cyclic;
    cyclic.list = [cyclic, cyclic];
    const hostile = {};
    Object.defineProperty(hostile, 'product_id', { enumerable: true, get() { throw new Error('boom'); } });
    const huge = 'ع'.repeat(1_000_000);
    t.track('Product Viewed', cyclic);
    t.track('Product Viewed', hostile);
    t.track('Product Viewed', { product_id: { nested: [1, 2, { deep: true }] }, price: NaN });
    t.track('Product Viewed', { product_id: '1', name: huge, price: 'abc', quantity: -3 });
    t.track('Cart Viewed', 'not an object');
    t.track(undefined, undefined);
    t.track(42, null);
    t.track('Order Completed', new Proxy({}, { ownKeys() { throw new Error('proxy'); } }));
    window.dispatchEvent(new CustomEvent('Product Added', { detail: cyclic }));
    window.dispatchEvent(new Event('Product Removed'));
    t.track('Products Searched', { query: 'still working', event_id: 'after-junk' });
  });
  const events = await waitForEvents(server.relay, (ev) => ev.some((e) => e.id === 'after-junk'), { what: 'the event after the junk' });
  const viewed = events.filter((e) => e.source === 'Product Viewed').map((e) => e.contactEvent);
  // The cyclic payload and the one with a usable id (huge name cut to 255) were sent; the rest dropped.
  assert.deepEqual(viewed.map((e) => e.products), ['c1', '1']);
  assert.equal(viewed[1].detail1.length, 255);
  assert.equal(viewed[1].value, undefined, 'price "abc" is left out, never NaN');
  assert.deepEqual(await pageProblems(page, seen), []);
  assert.ok(!seen.console.some((m) => m.type === 'error'), JSON.stringify(seen.console.filter((m) => m.type === 'error')));
});

test('what track() is given is what goes out, whatever the page does with its object afterwards', async () => {
  const { page, seen } = await open(browser, `${server.url}/test/loader.html`);
  await page.evaluate(() => window.SallaSalesmanago.ready);
  await waitForEvents(server.relay, (ev) => ev.length >= 2);
  await page.evaluate(() => {
    const t = window.SallaSalesmanago;
    // A flat payload (copied by the npm entry's own loop) and a nested one (structuredClone),
    // both changed by the page in the same task, before the tracker reads them.
    const flat = { product_id: 'snap-1', name: 'before', price: 10, event_id: 'snap-flat' };
    const order = { order_id: 'o-snap', total: 5, products: [{ product_id: 'p1', quantity: 1, price: 5 }], event_id: 'snap-nested' };
    t.track('Product Viewed', flat);
    t.track('Order Completed', order);
    flat.product_id = 'changed';
    flat.name = 'after';
    order.products[0].product_id = 'changed';
    order.products.push({ product_id: 'p2', quantity: 1 });
  });
  const events = await waitForEvents(server.relay, (ev) => ['snap-flat', 'snap-nested'].every((id) => ev.some((e) => e.id === id)), { what: 'both events' });
  const viewed = events.find((e) => e.id === 'snap-flat').contactEvent;
  assert.equal(viewed.products, 'snap-1');
  assert.equal(viewed.detail1, 'before');
  const order = events.find((e) => e.id === 'snap-nested').contactEvent;
  assert.equal(order.products, 'p1');
  assert.equal(order.externalId, 'o-snap');
  assert.deepEqual(await pageProblems(page, seen), []);
});

test('a page whose CSP forbids WebAssembly gets one console message and no exception', async () => {
  const { page, seen } = await open(browser, `${server.url}/test/csp.html`);
  const active = await page.evaluate(() => window.SallaSalesmanago.ready.then((t) => t.active));
  assert.equal(active, false);
  await page.evaluate(() => window.SallaSalesmanago.track('Products Searched', { query: 'x' }));
  await page.waitForTimeout(200);
  const ours = seen.console.filter((m) => m.text.includes('[salesmanago]'));
  assert.equal(ours.length, 1, JSON.stringify(ours));
  assert.match(ours[0].text, /WebAssembly is unavailable or blocked/);
  assert.deepEqual(await pageProblems(page, seen), []);
  assert.equal(server.relay.requests, 0);
});

test('a missing endpoint is reported once, in words a merchant can act on', async () => {
  const { page, seen } = await open(browser, `${server.url}/test/no-endpoint.html`);
  const active = await page.evaluate(() => window.SallaSalesmanago.ready.then((t) => t.active));
  assert.equal(active, false);
  // The words arrive with dist/messages.js, loaded because there is something to say.
  const ours = () => seen.console.filter((m) => m.text.includes('[salesmanago]'));
  for (let waited = 0; !ours().length && waited < 5000; waited += 50) await page.waitForTimeout(50);
  await page.waitForTimeout(200);
  assert.deepEqual(
    ours().map((m) => m.text),
    ['[salesmanago] `endpoint` (data-endpoint on the script tag) is missing; the tracker is off'],
  );
  assert.deepEqual(await pageProblems(page, seen), []);
});

test('words that cannot be loaded leave a message still naming what is wrong, and no error', async () => {
  const { page, seen } = await open(browser, `${server.url}/test/no-endpoint.html`, {
    beforeLoad: (p) => p.route('**/messages.js', (r) => r.abort()),
  });
  assert.equal(await page.evaluate(() => window.SallaSalesmanago.ready.then((t) => t.active)), false);
  const ours = () => seen.console.filter((m) => m.text.includes('[salesmanago]'));
  for (let waited = 0; !ours().length && waited < 5000; waited += 50) await page.waitForTimeout(50);
  await page.waitForTimeout(200);
  assert.equal(ours().length, 1, JSON.stringify(ours()));
  assert.equal(ours()[0].type, 'warning');
  assert.match(ours()[0].text, /^\[salesmanago\] `endpoint` \(data-endpoint#. #.#.$/, 'the key, and the codes of the words');
  assert.deepEqual(await pageProblems(page, seen), []);
});

test('an event tracked just before the page navigates away still arrives', async () => {
  const { page, seen } = await open(browser, `${server.url}/test/loader.html`);
  await page.evaluate(() => window.SallaSalesmanago.ready);
  await waitForEvents(server.relay, (ev) => ev.length >= 2);
  await page.evaluate(() => {
    window.SallaSalesmanago.track('Order Completed', { order_id: 'exit-1', total: 10, event_id: 'exit-1' });
    // Navigate right after this evaluation returns: an evaluation whose page is torn down under
    // it can leave playwright waiting on it.
    setTimeout(() => (window.location.href = '/test/query.html'), 0);
  });
  const events = await waitForEvents(server.relay, (ev) => ev.some((e) => e.id === 'exit-1'), { what: 'the PURCHASE sent on exit' });
  assert.equal(events.find((e) => e.id === 'exit-1').contactEvent.contactExtEventType, 'PURCHASE');
  assert.deepEqual(seen.pageErrors, []);
});

test('the smclient cookie names the contact; a refused cookie bar withholds the email', async () => {
  const { page, seen } = await open(browser, `${server.url}/test/loader.html`, {
    beforeLoad: (p) =>
      p.addInitScript(() => {
        document.cookie = 'smclient=contact-123; path=/';
      }),
  });
  await page.evaluate(() => window.SallaSalesmanago.ready);
  await page.evaluate(() => {
    const t = window.SallaSalesmanago;
    t.identify('noura@example.sa');
    t.track('Products Searched', { query: 'a', event_id: 'c-1' });
  });
  const [first] = (await waitForEvents(server.relay, (ev) => ev.some((e) => e.id === 'c-1'))).filter((e) => e.id === 'c-1');
  assert.deepEqual(first.contact, { contactId: 'contact-123' }, 'sendEmail is off on this page: no email');
  assert.deepEqual(await pageProblems(page, seen), []);
});

test('sendEmail sends the email only while the shopper has not refused', async () => {
  const { page, seen } = await open(browser, `${server.url}/test/consent.html`);
  await page.evaluate(() => window.SallaSalesmanago.ready);
  await page.evaluate(async () => {
    const t = window.SallaSalesmanago;
    t.track('Signed In', { email: 'noura@example.sa', event_id: 'refused' });
    await t.flush();
    window.consentState = 'accepted';
    t.track('Products Searched', { query: 'a', event_id: 'accepted' });
    await t.flush();
    t.setConsent(false);
    t.track('Products Searched', { query: 'b', event_id: 'override' });
    await t.flush();
    t.setConsent(true);
    t.track('Signed Out', {});
    t.track('Products Searched', { query: 'c', event_id: 'signed-out' });
  });
  const events = await waitForEvents(server.relay, (ev) => ev.length >= 4);
  const contact = Object.fromEntries(events.map((e) => [e.id, e.contact]));
  assert.deepEqual(contact.refused, {}, 'the cookie bar said no');
  assert.deepEqual(contact.accepted, { email: 'noura@example.sa' });
  assert.deepEqual(contact.override, {}, 'setConsent(false) overrides');
  assert.deepEqual(contact['signed-out'], {}, 'Signed Out forgets the email and the smclient contact');
  const smclient = (await page.context().cookies()).find((c) => c.name === 'smclient');
  assert.equal(smclient, undefined, 'Signed Out deletes the smclient cookie');
  assert.deepEqual(await pageProblems(page, seen), []);
});

test('an init() call wins over the global object, which wins over data-* and the query string', async () => {
  const { page, seen } = await open(browser, `${server.url}/test/init.html`);
  await page.evaluate(() => window.SallaSalesmanago.ready);
  const [e] = await waitForEvents(server.relay, (ev) => ev.length >= 1);
  assert.equal(e.id, 'q-1', 'the queued call ran after init');
  assert.equal(e.clientId, ACCOUNT.clientId, "init()'s clientId, not the global's");
  assert.equal(e.contactEvent.location, 'from-global');
  assert.deepEqual(await pageProblems(page, seen), []);
});

test('?sm_debug=1 in the page URL turns on the decision log', async () => {
  const { page, seen } = await open(browser, `${server.url}/test/query.html?sm_debug=1`);
  await page.evaluate(() => window.SallaSalesmanago.ready);
  await page.evaluate(() => window.SallaSalesmanago.track('Product List Viewed', { list_id: 'x' }));
  await page.waitForTimeout(100);
  const log = seen.console.map((m) => m.text);
  assert.ok(log.includes('[salesmanago] ready'), JSON.stringify(log));
  assert.ok(log.some((t) => t.includes('Product List Viewed: not sent, off by default')), JSON.stringify(log));
});

test('an internal failure stops the tracker quietly: one warning, no exception in the page', async () => {
  const { page, seen } = await open(browser, `${server.url}/test/loader.html`);
  await page.evaluate(() => window.SallaSalesmanago.ready);
  await waitForEvents(server.relay, (ev) => ev.length >= 2);
  const before = server.relay.events.length;
  await page.evaluate(async () => {
    // The debug log calls console.log from inside the wasm: make it throw there until the
    // tracker has said it stopped (or 5 s), however slow the machine; the events are processed
    // in a later task, not inside track().
    const log = console.log;
    const warn = console.warn;
    let stopped = false;
    console.log = () => { throw new Error('hostile console'); };
    console.warn = (...args) => {
      stopped ||= args.some((a) => String(a).includes('internal error'));
      return warn.apply(console, args);
    };
    window.SallaSalesmanago.track('Products Searched', { query: 'x' });
    window.dispatchEvent(new CustomEvent('Product Viewed', { detail: { product_id: '1' } }));
    window.SallaSalesmanago.track('Products Searched', { query: 'y' });
    for (let waited = 0; !stopped && waited < 5000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    console.log = log;
    console.warn = warn;
  });
  await page.waitForTimeout(300);
  const warnings = seen.console.filter((m) => m.type === 'warning' && m.text.includes('[salesmanago]'));
  assert.equal(warnings.length, 1, JSON.stringify(warnings));
  assert.match(warnings[0].text, /internal error; the tracker has stopped/);
  assert.deepEqual(await pageProblems(page, seen), []);
  assert.equal(server.relay.events.length, before, 'quiet afterwards');
});
