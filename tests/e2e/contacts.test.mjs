// Issue 12 as a shopper and a merchant see it, on the whole real stack: Chromium running Salla's
// Twilight SDK and the built tracker, the relay, sm-receiver, and sm-fake (SALESmanago) behind it.
// A shopper with no smclient cookie browses anonymously (her events wait at the receiver), signs
// in, and becomes one SALESmanago contact: upserted once, its id in her smclient cookie, her
// earlier events delivered as that contact. A shopper who refused the cookie bar gives nothing
// personal away. A purchase seen by both the browser and Salla's order.created webhook reaches
// SALESmanago once, whichever arrives first.
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { launch, serve, open, waitForEvents, pageProblems, closePages } from './harness.mjs';
import { orderCreated } from '../../www/salla-api.mjs';

let browser;
let server;
let fake;

before(async () => {
  server = await serve();
  fake = server.stack.fake;
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.close();
});
afterEach(() => closePages(browser));
beforeEach(async () => {
  server.relay.reset();
  await fake.reset();
});

const EMAIL = 'noura@example.sa';
const STORE = 1305; // the demo store's Salla id (www/storefront.js)

/** Opens identity.html with `query` once the tracker and Salla's SDK both run, recording every
 * request for SALESmanago's monitoring script (served from this server: it answers 404, which
 * harms nothing, and the request alone says whether the tracker loaded it). */
async function storefront(query) {
  const opened = await open(browser, `${server.url}/test/identity.html?${query}`, {
    beforeLoad: (page) => page.on('request', (r) => r.url().includes('/static/sm.js') && opened.monitoring.push(r.url())),
  });
  opened.monitoring = [];
  await opened.page.evaluate(() => window.SallaSalesmanago.ready);
  await opened.page.waitForFunction(() => window.Salla && Salla.status === 'ready');
  return opened;
}

const act = (page, action, ...args) =>
  page.evaluate(([action, args]) => window.storefront.actions[action](...args), [action, args]);
const flush = (page) => page.evaluate(() => window.SallaSalesmanago.flush());
const smclient = async (page) => (await page.context().cookies()).find((c) => c.name === 'smclient')?.value;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** sm-fake's calls once `predicate(calls)` holds (or fails, naming what it saw). */
async function fakeCalls(predicate, what, timeout = 10_000) {
  const end = Date.now() + timeout;
  for (;;) {
    const calls = await fake.calls();
    if (predicate(calls)) return calls;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; sm-fake saw ${JSON.stringify(calls.map((c) => [c.method, c.body.contactEvent?.contactExtEventType, c.refused]))}`);
    await sleep(50);
  }
}
const upserts = (calls) => calls.filter((c) => c.method === 'upsert');
const events = (calls) => calls.filter((c) => c.method !== 'upsert' && !c.refused);
const purchases = (calls) => events(calls).filter((c) => c.body.contactEvent.contactExtEventType === 'PURCHASE');

test('a fresh shopper with no smclient: anonymous events wait, she signs in, one contact upsert, its id in smclient, her earlier events delivered as that contact', async () => {
  const { page, seen, monitoring } = await storefront(`send=1&monitoring=${encodeURIComponent(server.url)}`);
  assert.equal(await smclient(page), undefined, 'a fresh shopper: no smclient cookie');

  // Browsing anonymously: the receiver takes the events and keeps them for a contact.
  await act(page, 'viewProduct', 1001);
  await act(page, 'addToCart', 1001);
  assert.equal(await flush(page), true);
  const anonymous = await waitForEvents(server.relay, (ev) => ev.some((e) => e.source === 'Product Added'), { what: 'the anonymous events' });
  const anonymousIds = anonymous.map((e) => e.id);
  const aid = anonymous[0].anonymousId;
  assert.ok(aid, 'every batch names the browser');
  assert.deepEqual(anonymous.map((e) => [e.anonymousId, e.contact]), anonymous.map(() => [aid, {}]), 'nobody named yet');
  assert.ok(server.relay.log.every((r) => r.answer?.contactId === undefined), 'no contact to answer');
  await sleep(500);
  assert.deepEqual(await fake.calls(), [], 'nothing reaches SALESmanago before the shopper is known');

  // She signs in (Salla's Signed In, with her email): sendEmail is on, and this store has no cookie bar.
  await act(page, 'signIn', EMAIL);
  assert.equal(await flush(page), true);
  const login = (await waitForEvents(server.relay, (ev) => ev.some((e) => e.source === 'Signed In'), { what: 'Signed In' }))
    .find((e) => e.source === 'Signed In');
  assert.equal(login.contact.email, EMAIL);
  assert.equal(login.anonymousId, aid);
  await page.waitForFunction(() => /(^|; )smclient=/.test(document.cookie), null, { timeout: 10_000 });
  const calls = await fakeCalls((c) => events(c).length >= anonymousIds.length + 1, 'the earlier events and the LOGIN');
  const [upsert, ...more] = upserts(calls);
  assert.equal(more.length, 0, 'exactly one contact upsert');
  assert.equal(upsert.body.contact.email, EMAIL);
  assert.equal(await smclient(page), upsert.contactId, "the cookie is the contactId SALESmanago gave");

  // The anonymous events went out after the upsert, as that contact.
  const delivered = events(calls);
  const sentAs = (c) => c.body.contactId ?? c.body.email;
  assert.deepEqual(
    delivered.map((c) => c.body.contactEvent.contactExtEventType).sort(),
    ['CART', 'LOGIN', 'VISIT'],
    'the product view, the cart and the login, each once',
  );
  for (const c of delivered) {
    assert.ok(c.n > upsert.n, `${c.method} after the upsert`);
    assert.ok([upsert.contactId, EMAIL].includes(sentAs(c)), `${c.body.contactEvent.contactExtEventType} sent as the contact, got ${sentAs(c)}`);
  }

  // Later batches name the contact by the cookie; no second upsert.
  await act(page, 'viewProduct', 1002);
  assert.equal(await flush(page), true);
  const later = server.relay.events.at(-1);
  assert.equal(later.contact.contactId, upsert.contactId);
  const after = await fakeCalls((c) => events(c).length === delivered.length + 1, 'the later VISIT');
  assert.equal(upserts(after).length, 1, 'still one upsert');
  // The batch names her by the cookie and, still signed in, by her email: the receiver files it
  // by the email (docs/protocol.md §3, "The email wins"), which is the same contact.
  const last = events(after).at(-1);
  assert.equal(last.body.email, EMAIL);
  assert.equal(last.body.contactId, undefined);

  assert.ok(monitoring.length === 1, `no cookie bar: the monitoring script is loaded once (${monitoring})`);
  assert.deepEqual(await pageProblems(page, seen), []);
});

test('a refused cookie bar: no smclient cookie, no email, name or phone in any batch, no monitoring script', async () => {
  const { page, seen, monitoring } = await storefront(`send=1&bar=1&monitoring=${encodeURIComponent(server.url)}`);
  await page.evaluate(() => Salla.storage.set('cookies-consent', 'rejected'));
  await act(page, 'viewProduct', 1001);
  await act(page, 'signIn', EMAIL);
  await page.evaluate(() => window.signedInUser());
  await act(page, 'addToCart', 1001);
  assert.equal(await flush(page), true);
  const taken = await waitForEvents(server.relay, (ev) => ev.some((e) => e.source === 'Signed In') && ev.some((e) => e.source === 'Product Added'), {
    what: 'the events',
  });
  await sleep(500);
  for (const r of server.relay.log) {
    assert.equal(r.upstream, 200, 'each batch taken');
    assert.equal(r.answer.contactId, undefined, 'no contact named, none answered');
  }
  assert.deepEqual(taken.map((e) => e.contact), taken.map(() => ({})), 'nothing personal in any batch');
  assert.equal(await smclient(page), undefined, 'no smclient cookie');
  assert.deepEqual(monitoring, [], 'no monitoring script');
  assert.deepEqual(await fake.calls(), [], 'no upsert, and no event for nobody');
  assert.deepEqual(await pageProblems(page, seen), []);
});

/** A signed-in shopper (sendEmail on, no cookie bar) with the cookie in place and a cart. */
async function shopperWithCart() {
  const opened = await storefront('send=1');
  await act(opened.page, 'signIn', EMAIL);
  await act(opened.page, 'addToCart', 1001);
  await act(opened.page, 'addToCart', 1003);
  assert.equal(await flush(opened.page), true);
  await opened.page.waitForFunction(() => /(^|; )smclient=/.test(document.cookie), null, { timeout: 10_000 });
  return opened;
}

/** The order.created Salla sends for the order the browser knows as `orderId`. */
const webhookFor = (orderId, salla) =>
  orderCreated({
    merchant: STORE, id: salla, reference: orderId, email: EMAIL,
    products: [{ product_id: '1001', name: 'عطر العود الملكي', price: 250.5, quantity: 1 }],
  });

test("the browser's PURCHASE, then Salla's signed order.created for the same order: one PURCHASE at SALESmanago", async () => {
  const { page, seen } = await shopperWithCart();
  await act(page, 'completeOrder', 'ord-browser-first');
  assert.equal(await flush(page), true);
  const [first] = purchases(await fakeCalls((c) => purchases(c).length === 1, "the browser's PURCHASE"));
  assert.equal(first.body.contactEvent.externalId, 'ord-browser-first');

  const { status, answer } = await server.stack.webhook(webhookFor('ord-browser-first', 1904101001));
  assert.equal(status, 200);
  assert.equal(answer.duplicates, 1, `the receiver knows the order: ${JSON.stringify(answer)}`);
  // A second delivery of the same webhook changes nothing either.
  assert.equal((await server.stack.webhook(webhookFor('ord-browser-first', 1904101001))).answer.duplicates, 1);
  await sleep(1000);
  assert.equal(purchases(await fake.calls()).length, 1, 'exactly one PURCHASE');
  assert.deepEqual(await pageProblems(page, seen), []);
});

test("Salla's signed order.created first, then the browser's PURCHASE for the same order: one PURCHASE at SALESmanago", async () => {
  const { page, seen } = await shopperWithCart();
  const { status, answer } = await server.stack.webhook(webhookFor('ord-webhook-first', 1904102002));
  assert.equal(status, 200, JSON.stringify(answer));
  assert.equal(answer.accepted, 1, JSON.stringify(answer));
  const [first] = purchases(await fakeCalls((c) => purchases(c).length === 1, "the webhook's PURCHASE"));
  assert.equal(first.body.contactEvent.externalId, '1904102002', "Salla's order id");

  await act(page, 'completeOrder', 'ord-webhook-first');
  assert.equal(await flush(page), true);
  const purchase = await waitForEvents(server.relay, (ev) => ev.some((e) => e.source === 'Order Completed'), { what: 'Order Completed' });
  assert.ok(purchase, 'the receiver took the browser PURCHASE');
  assert.equal(server.relay.log.at(-1).answer.duplicates, 1, 'as a duplicate of the webhook order');
  await sleep(1000);
  assert.equal(purchases(await fake.calls()).length, 1, 'exactly one PURCHASE');
  assert.deepEqual(await pageProblems(page, seen), []);
});

test('an unsigned or forged order.created is refused by the real receiver and stores nothing', async () => {
  const body = webhookFor('ord-forged', 1904103003);
  for (const headers of [{}, { 'X-Salla-Signature': '0'.repeat(64) }]) {
    const r = await fetch(`${server.stack.receiver.url}/salla/webhook`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body),
    });
    assert.equal(r.status, 401);
  }
  await sleep(500);
  assert.deepEqual(await fake.calls(), []);
});
