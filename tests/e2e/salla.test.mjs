// The real Salla storefront SDK (@salla.sa/twilight from npm) runs the demo page; its analytics
// engine calls our tracker, which posts to sm-receiver. Every storefront event must arrive mapped
// as docs/mapping.md says, whichever loads first, and whichever way it enters the tracker.
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { ACCOUNT, launch, serve, open, waitForEvents, pageProblems, closePages, stepByStep } from './harness.mjs';

let browser;
let server;
let baselineErrors;

before(async () => {
  server = await serve();
  browser = await launch();
  // What Salla's SDK prints on its own, without any tracker: the bar our tracker must not raise.
  const { page, seen } = await open(browser, `${server.url}/test/salla-only.html`);
  await page.waitForFunction(() => window.Salla && Salla.status === 'ready');
  await page.waitForTimeout(300);
  baselineErrors = seen.console.filter((m) => m.type === 'error').map((m) => m.text);
  await page.context().close();
});
after(async () => {
  await browser?.close();
  await server?.close();
});
afterEach(() => closePages(browser));
beforeEach(() => server.relay.reset());

const SHOPPER = [
  ['viewProduct', 1001], ['addToCart', 1001], ['addToCart', 1002, 2], ['removeFromCart', 1002],
  ['viewCart'], ['changeQuantity', 1001, 3], ['applyCoupon'], ['denyCoupon'], ['signIn'],
  ['addToWishlist', 1002], ['removeFromWishlist', 1002], ['viewPromotion'], ['clickPromotion'],
  ['search'], ['share'], ['completeOrder'], ['signOut'],
];

/** The shopper's steps, each one's event taken before the next (Signed Out sends none). */
const shop = (page, steps = SHOPPER) => stepByStep(page, server.relay, steps, ([action]) => (action === 'signOut' ? 0 : 1));

/** What Salla's analytics engine emitted, as trackers received it. */
const sallaHistory = (page) =>
  page.evaluate(() => Salla.analytics.history.filter((h) => h.action === 'track').map((h) => ({ name: h.eventName, payload: h.payload })));

const stripVolatile = ({ date, ...rest }) => rest;

test('the demo storefront: every event Salla emits arrives mapped as the contract says', async () => {
  const { page, seen } = await open(browser, `${server.url}/`);
  await page.evaluate(() => window.SallaSalesmanago.ready);
  await page.waitForFunction(() => Salla.status === 'ready');
  await shop(page);
  assert.equal(await page.evaluate(() => window.SallaSalesmanago.flush()), true);
  const history = await sallaHistory(page);
  const events = server.relay.events;
  const byId = new Map(events.map((e) => [e.id, e]));

  // One received event per Salla event, but Signed Out (no event by the table).
  for (const h of history) {
    const id = h.name === 'Product Shared' ? `${h.payload.event_id}:Product Shared` : h.payload.event_id;
    if (h.name === 'Signed Out') assert.ok(!byId.has(id), 'Signed Out sends nothing');
    else assert.ok(byId.has(id), `${h.name} (${id}) was not received`);
  }
  assert.deepEqual(events.map((e) => [e.source, e.contactEvent.contactExtEventType]), [
    ['Product Viewed', 'VISIT'], ['Product Added', 'CART'], ['Product Added', 'CART'],
    ['Product Removed', 'CART'], ['Cart Viewed', 'CART'], ['Cart Updated', 'CART'],
    ['Coupon Applied', 'OTHER'], ['Coupon Denied', 'OTHER'], ['Signed In', 'LOGIN'],
    ['Product Added to Wishlist', 'OTHER'], ['Product Removed from Wishlist', 'OTHER'],
    ['Promotion Viewed', 'OFFER'], ['Promotion Clicked', 'OFFER'], ['Products Searched', 'OTHER'],
    ['Product Shared', 'OTHER'], ['Order Completed', 'PURCHASE'],
  ]);
  const ce = events.map((e) => stripVolatile(e.contactEvent));
  const common = { location: 'oud-store', shopDomain: '127.0.0.1' };
  assert.deepEqual(ce[0], { ...common, contactExtEventType: 'VISIT', description: 'Product Viewed', products: '1001',
    value: 250.5, detail1: 'عطر العود الملكي', detail2: 'عطور', detail3: 'دار العود',
    detail4: `${server.url}/p/1001`, detail5: 'OUD-1001', detail6: 'SAR' });
  const cart = (i) => [ce[i].products, ce[i].value, ce[i].externalId, ce[i].detail2];
  assert.deepEqual(cart(1), ['1001', 250.5, 'cart-7001', '1']);
  assert.deepEqual(cart(2), ['1001,1002', 440.5, 'cart-7001', '1,2']);
  assert.deepEqual(cart(3), ['1001', 250.5, 'cart-7001', '1'], 'removing 1002 leaves the whole cart');
  assert.deepEqual(cart(4), ['1001', 250.5, 'cart-7001', '1']);
  const stated = +(751.5 * 1.15).toFixed(2);
  assert.deepEqual(cart(5), ['1001', stated, 'cart-7001', '3'], 'Cart Updated states the total with tax');
  assert.deepEqual(ce[1].detail1, 'عطر العود الملكي');
  assert.deepEqual([ce[6].value, ce[6].externalId, ce[6].detail1, ce[6].detail2], [25, 'cart-7001', 'Coupon Applied', 'EID10']);
  assert.deepEqual([ce[7].externalId, ce[7].detail2, ce[7].detail3], ['cart-7001', 'OLD2020', 'الكوبون منتهي الصلاحية']);
  assert.deepEqual([ce[9].products, ce[9].value, ce[9].detail1, ce[9].detail2], ['1002', 95, 'Product Added to Wishlist', 'مسك أبيض']);
  assert.deepEqual([ce[11].externalId, ce[11].detail3, ce[11].detail4], ['55', 'buy_x_get_y_offer_modal', 'Promotion Viewed']);
  assert.deepEqual([ce[13].detail2, ce[13].detail3], ['عود', '12']);
  assert.deepEqual([ce[14].products, ce[14].detail2], ['1001', 'whatsapp']);
  const purchase = ce[15];
  assert.equal(events.filter((e) => e.contactEvent.contactExtEventType === 'PURCHASE').length, 1);
  assert.deepEqual([purchase.products, purchase.detail2, purchase.detail4, purchase.detail6],
    ['1001', '3', 'SAR', '25']);
  assert.equal(purchase.value, +(751.5 * 1.15 + 25).toFixed(2));
  assert.match(purchase.externalId, /^ord-\d+$/);

  assert.deepEqual(await pageProblems(page, seen), []);
  assert.deepEqual(seen.foreign, [], 'nothing leaves 127.0.0.1');
  assert.deepEqual(seen.console.filter((m) => m.type === 'error').map((m) => m.text), baselineErrors,
    'the tracker adds no console error to what the SDK prints alone');
});

test('a tracker loaded after Salla gets what happened before it (Salla replays its history)', async () => {
  const { page, seen } = await open(browser, `${server.url}/test/salla-late.html`);
  await page.waitForFunction(() => window.Salla && Salla.status === 'ready');
  for (const [action, ...args] of [['viewProduct', 1003], ['addToCart', 1003], ['search']]) {
    await page.evaluate(([a, args]) => window.storefront.actions[a](...args), [action, args]);
  }
  await page.evaluate(() => window.loadTracker());
  await page.waitForFunction(() => window.SallaSalesmanago && window.SallaSalesmanago.loaded);
  await page.evaluate(() => window.SallaSalesmanago.ready);
  // What happened before it is sent before the shopper goes on (her next click is seconds away).
  await waitForEvents(server.relay, (ev) => ev.length >= 3, { what: 'the replayed events' });
  await shop(page, [['viewCart'], ['completeOrder']]);
  const events = server.relay.events;
  assert.deepEqual(events.map((e) => e.source), ['Product Viewed', 'Product Added', 'Products Searched', 'Cart Viewed', 'Order Completed']);
  assert.equal(events.at(-1).contactEvent.products, '1003');
  assert.deepEqual(await pageProblems(page, seen), []);
});

test('the same Salla payloads through DOM CustomEvents and the npm module map identically', async () => {
  // The reference: what the Salla hook produced.
  const ref = await open(browser, `${server.url}/`);
  await ref.page.evaluate(() => window.SallaSalesmanago.ready);
  await ref.page.waitForFunction(() => Salla.status === 'ready');
  await shop(ref.page);
  await ref.page.evaluate(() => window.SallaSalesmanago.flush());
  const history = (await sallaHistory(ref.page)).filter((h) => h.name !== 'Signed Out');
  const expected = server.relay.events.map((e) => [e.source, stripVolatile(e.contactEvent)]);
  await ref.context.close();

  for (const via of ['dom', 'npm']) {
    server.relay.reset();
    const { page, seen, context } = await open(browser, `${server.url}/test/replay.html`);
    await page.evaluate(() => Promise.all([window.SallaSalesmanago.ready, window.npmTracker]));
    // One at a time, as the shopper acted: each taken before the next (see `stepByStep`).
    for (const [i, { name, payload }] of history.entries()) {
      await page.evaluate(
        async ([name, payload, via]) => {
          // Fresh event ids: the two trackers on this page must not see each other's events.
          const p = { ...payload, event_id: `${via}-${payload.event_id}` };
          const tracker = via === 'dom' ? window.SallaSalesmanago : await window.npmTracker;
          if (via === 'dom') window.dispatchEvent(new CustomEvent(name, { detail: p }));
          else tracker.track(name, p);
          await tracker.flush();
        },
        [name, payload, via],
      );
      await waitForEvents(server.relay, (ev) => ev.length > i, { what: `${via}: ${name}` });
    }
    const got = await waitForEvents(server.relay, (ev) => ev.length >= expected.length, { what: `${via} events` });
    await page.waitForTimeout(200);
    assert.equal(server.relay.events.length, expected.length, `${via}: nothing extra`);
    // shopDomain differs only if the page's host did; both are 127.0.0.1.
    assert.deepEqual(got.map((e) => [e.source, stripVolatile(e.contactEvent)]), expected, via);
    assert.deepEqual(await pageProblems(page, seen), []);
    await context.close();
  }
});

test('Salla arriving after the tracker is noticed, and its history replayed', async () => {
  const { page, seen } = await open(browser, `${server.url}/test/salla-after.html`);
  assert.equal(await page.evaluate(() => window.SallaSalesmanago.ready.then((t) => t.active)), true);
  await page.waitForTimeout(300); // the tracker is idle, waiting for Salla without polling hard
  await page.evaluate(() => window.loadSalla());
  await page.evaluate(() => window.storefront.actions.viewProduct(1002));
  const events = await waitForEvents(server.relay, (ev) => ev.some((e) => e.source === 'Product Viewed'), { what: 'Product Viewed after Salla arrived' });
  assert.equal(events[0].clientId, ACCOUNT.clientId);
  assert.equal(events[0].contactEvent.products, '1002');
  assert.equal(events[0].contactEvent.location, '1305', 'the Salla store id is the default location');
  assert.deepEqual(await pageProblems(page, seen), []);
});
