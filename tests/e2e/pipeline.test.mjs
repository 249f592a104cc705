// The whole path: the demo storefront (real Salla SDK) → the tracker → the page server's relay →
// the Rust receiver (target/debug/sm-receiver) → SALESmanago's API (sm-fake, which checks the sha,
// the contact and every contactEvent, and answers eventIds).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { suite, open, pageProblems } from './harness.mjs';

const ctx = suite(undefined, { reset: false });

const typeOf = (c) => c.body.contactEvent?.contactExtEventType;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** sm-fake's calls once `predicate(calls)` holds. */
async function callsWhen(predicate, what) {
  const end = Date.now() + 15_000;
  for (;;) {
    const calls = await ctx.server.stack.fake.calls();
    if (predicate(calls)) return calls;
    assert.ok(Date.now() < end, `${what} did not reach SALESmanago: ${JSON.stringify(calls.map((c) => c.method + ' ' + (c.body.contactEvent?.description ?? c.refused ?? '')))}`);
    await sleep(100);
  }
}

test('the demo: a shopper without SALESmanago cookie becomes a contact on sign-in; one cart event updated in place; one purchase, from the browser or from Salla', async () => {
  const { page, seen } = await open(ctx.browser, `${ctx.server.url}/`);
  await page.evaluate(() => window.SallaSalesmanago.ready);
  await page.waitForFunction(() => Salla.status === 'ready');
  const act = async ([action, ...args]) => {
    await page.evaluate(([a, args]) => window.storefront.actions[a](...args), [action, args]);
    await page.waitForTimeout(120); // a shopper's pace: each change reaches SALESmanago
  };
  const row = (text) => page.locator('#rows tr', { hasText: text }).first();
  assert.equal(await page.evaluate(() => document.cookie), '', 'the demo writes no smclient cookie');

  // Anonymous: the receiver takes the events and keeps them until the shopper is known.
  for (const step of [['viewProduct', 1001], ['addToCart', 1001]]) await act(step);
  await page.evaluate(() => window.SallaSalesmanago.flush());
  await page.waitForFunction(() => /waiting at the receiver/.test(document.querySelector('#rows')?.innerText));
  assert.match(await page.locator('#smclient').innerText(), /none: an anonymous shopper/);
  assert.deepEqual(await ctx.server.stack.fake.calls(), [], 'nothing delivered for an anonymous shopper');

  // She signs in: the receiver upserts her contact, the tracker writes its id to smclient.
  await act(['signIn']);
  await page.evaluate(() => window.SallaSalesmanago.flush());
  await page.waitForFunction(() => /(^|; )smclient=/.test(document.cookie), null, { timeout: 10_000 });
  const [upsert, ...more] = (await callsWhen((c) => c.some((x) => typeOf(x) === 'LOGIN'), 'Signed In')).filter((c) => c.method === 'upsert');
  assert.equal(more.length, 0, 'one contact upsert');
  const contactId = await page.evaluate(() => document.cookie.match(/smclient=([^;]*)/)[1]);
  assert.equal(contactId, upsert.contactId, 'smclient is the contactId SALESmanago gave');
  await page.waitForFunction((id) => document.querySelector('#smclient').innerText.includes(id), contactId);
  assert.match(await page.locator('#upserts').innerText(), new RegExp(`noura@example.sa → ${contactId}`));
  // The panel shows the anonymous events delivered as her contact.
  await page.locator('#rows tr', { hasText: 'Product Viewed' }).filter({ hasText: 'as noura@example.sa' }).waitFor({ timeout: 10_000 });
  assert.match(await row('Product Viewed').innerText(), /VISIT[\s\S]*addContactExtEvent → sm-\d+[\s\S]*as noura@example\.sa/);

  const steps = [
    ['addToCart', 1002, 2], ['removeFromCart', 1002], ['viewCart'], ['changeQuantity', 1001, 3],
    ['applyCoupon'], ['addToWishlist', 1002], ['viewPromotion'], ['search'], ['share'], ['completeOrder'],
  ];
  for (const step of steps) await act(step);
  await page.evaluate(() => window.SallaSalesmanago.flush());
  await callsWhen((c) => c.some((x) => typeOf(x) === 'PURCHASE'), 'the PURCHASE');
  await sleep(600);
  const all = await ctx.server.stack.fake.calls();
  assert.deepEqual(all.filter((c) => c.refused), [], 'SALESmanago refused nothing');
  const calls = all.filter((c) => c.method !== 'upsert');
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
  assert.deepEqual(others, ['Product Viewed', 'Signed In', 'Coupon Applied', 'Product Added to Wishlist', 'Promotion Viewed', 'Products Searched', 'Product Shared']);
  assert.ok(calls.every((c) => c.body.contactId === contactId || c.body.email === 'noura@example.sa'), 'every event as her contact');
  assert.deepEqual(await pageProblems(page, seen), []);

  // The panel shows the whole path.
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length >= 13);
  const order = await row('Order Completed').innerText();
  assert.match(order, /PURCHASE[\s\S]*addContactExtEvent → sm-\d+/);

  // Salla's order.created for the order the browser completed: a duplicate, still one PURCHASE.
  const browserOrder = await page.evaluate(() => storefront.lastOrder.order_id);
  const orderRow = page.locator('#orders tr', { hasText: browserOrder });
  await page.click('#order-created');
  await orderRow.filter({ hasText: 'duplicate' }).waitFor({ timeout: 10_000 });
  await sleep(600);
  assert.equal((await ctx.server.stack.fake.calls()).filter((c) => typeOf(c) === 'PURCHASE').length, 1);
  assert.match(await orderRow.innerText(), /browser: PURCHASE taken[\s\S]*order\.created \d+ → 200 duplicate[\s\S]*from the browser[\s\S]*\(1 PURCHASE sent/);

  // The other way round: Salla's order.created for the cart's order first, then the thank-you page.
  await act(['addToCart', 1003]);
  await page.click('#order-created');
  const webhookOrder = await page.evaluate(() => storefront.currentOrder().order_id);
  await callsWhen((c) => c.filter((x) => typeOf(x) === 'PURCHASE').length === 2, "the webhook's PURCHASE");
  await act(['completeOrder']);
  assert.equal(await page.evaluate(() => storefront.lastOrder.order_id), webhookOrder, 'the thank-you page shows the order Salla sent');
  await page.evaluate(() => window.SallaSalesmanago.flush());
  const second = page.locator('#orders tr', { hasText: webhookOrder });
  await second.filter({ hasText: 'browser: PURCHASE taken' }).waitFor({ timeout: 10_000 });
  await sleep(600);
  assert.equal((await ctx.server.stack.fake.calls()).filter((c) => typeOf(c) === 'PURCHASE').length, 2, 'one per order');
  assert.match(await second.innerText(), /accepted[\s\S]*from the webhook[\s\S]*\(1 PURCHASE sent/);
  await page
    .locator('#rows tr', { hasText: webhookOrder })
    .filter({ hasText: "not sent: the order's PURCHASE went from Salla's order.created" })
    .waitFor({ timeout: 5000 });
  assert.equal((await ctx.server.stack.fake.calls()).filter((c) => c.method === 'upsert').length, 1, 'the webhooks name the same card: still one upsert');

  // A new shopper: no smclient, another anonymous id.
  const aid = await page.evaluate(() => localStorage.getItem('sm_aid'));
  assert.ok(aid, 'the tracker kept an anonymous id');
  await page.click('#new-shopper');
  await page.waitForFunction(() => window.SallaSalesmanago?.loaded && window.Salla?.status === 'ready');
  await page.evaluate(() => window.SallaSalesmanago.ready);
  assert.equal(await page.evaluate(() => document.cookie), '');
  await act(['viewProduct', 1002]);
  await page.evaluate(() => window.SallaSalesmanago.flush());
  const last = ctx.server.relay.events.at(-1);
  assert.equal(last.source, 'Product Viewed');
  assert.ok(last.anonymousId && last.anonymousId !== aid, `another anonymous id: ${last.anonymousId} after ${aid}`);
  assert.deepEqual(last.contact, {}, 'nobody named');
  assert.deepEqual(await pageProblems(page, seen), []);
});
