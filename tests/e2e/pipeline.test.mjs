// The whole path: the demo storefront (real Salla SDK) → the tracker → the page server's relay →
// the Rust receiver (target/debug/sm-receiver) → SALESmanago's API (sm-fake, which checks the sha,
// the contact and every contactEvent, and answers eventIds).
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { launch, serve, open, pageProblems, closePages } from './harness.mjs';

let browser;
let server;

before(async () => {
  server = await serve();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.close();
});
afterEach(() => closePages(browser));

test('storefront → tracker → receiver → SALESmanago: one cart event updated in place, one purchase', async () => {
  const { page, seen } = await open(browser, `${server.url}/`);
  await page.evaluate(() => window.SallaSalesmanago.ready);
  await page.waitForFunction(() => Salla.status === 'ready');
  const steps = [
    ['viewProduct', 1001], ['addToCart', 1001], ['addToCart', 1002, 2], ['removeFromCart', 1002],
    ['viewCart'], ['changeQuantity', 1001, 3], ['applyCoupon'], ['signIn'], ['addToWishlist', 1002],
    ['viewPromotion'], ['search'], ['share'], ['completeOrder'],
  ];
  for (const [action, ...args] of steps) {
    await page.evaluate(([a, args]) => window.storefront.actions[a](...args), [action, args]);
    await page.waitForTimeout(120); // a shopper's pace: each change reaches SALESmanago
  }
  await page.evaluate(() => window.SallaSalesmanago.flush());
  const typeOf = (c) => c.body.contactEvent?.contactExtEventType;
  const end = Date.now() + 15_000;
  let calls = await server.stack.fake.calls();
  while (!calls.some((c) => typeOf(c) === 'PURCHASE')) {
    assert.ok(Date.now() < end, `no PURCHASE reached SALESmanago: ${JSON.stringify(calls.map((c) => c.method + ' ' + (c.body.contactEvent?.description ?? c.refused)))}`);
    await new Promise((r) => setTimeout(r, 100));
    calls = await server.stack.fake.calls();
  }
  await new Promise((r) => setTimeout(r, 600));
  calls = await server.stack.fake.calls();
  assert.deepEqual(calls.filter((c) => c.refused), [], 'SALESmanago refused nothing');
  const carts = calls.filter((c) => typeOf(c) === 'CART');
  assert.equal(carts[0].method, 'addContactExtEvent');
  assert.ok(carts.length >= 2);
  assert.ok(
    carts.slice(1).every((c) => c.method === 'updateContactExtEvent' && c.body.contactEvent.eventId === carts[0].eventId && c.eventId === carts[0].eventId),
    'later cart changes update the same SALESmanago event',
  );
  assert.equal(carts.at(-1).body.contactEvent.products, '1001');
  assert.equal(carts.at(-1).body.contactEvent.detail2, '3');
  const purchases = calls.filter((c) => typeOf(c) === 'PURCHASE');
  assert.equal(purchases.length, 1);
  assert.equal(purchases[0].method, 'addContactExtEvent');
  const others = calls.filter((c) => !['CART', 'PURCHASE'].includes(typeOf(c))).map((c) => c.body.contactEvent.description);
  assert.deepEqual(others, ['Product Viewed', 'Coupon Applied', 'Signed In', 'Product Added to Wishlist', 'Promotion Viewed', 'Products Searched', 'Product Shared']);
  assert.ok(calls.every((c) => /^demo-contact-\d+$/.test(c.body.contactId)), 'the smclient cookie names the contact');
  assert.deepEqual(await pageProblems(page, seen), []);

  // The panel shows the whole path.
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length >= 13);
  const viewed = await page.locator('#rows tr', { hasText: 'Product Viewed' }).innerText();
  assert.match(viewed, /Product Viewed[\s\S]*VISIT[\s\S]*addContactExtEvent → sm-\d+/);
  const order = await page.locator('#rows tr', { hasText: 'Order Completed' }).innerText();
  assert.match(order, /PURCHASE[\s\S]*addContactExtEvent → sm-\d+/);
});
