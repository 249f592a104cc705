// The whole path: the demo storefront (real Salla SDK) → the tracker → the Rust receiver
// (target/debug/sm-receiver) → SALESmanago's API (the demo server's fake, which checks the sha,
// the contact and every contactEvent, and answers eventIds).
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { launch, serve, open, pageProblems, PAGES, closePages } from './harness.mjs';
import { DEMO_ACCOUNT } from '../../www/salesmanago-fake.mjs';

const ROOT = path.resolve(PAGES, '../../..');
let browser;
let server;
let receiver;

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

before(async () => {
  const port = await freePort();
  const receiverUrl = `http://127.0.0.1:${port}`;
  server = await serve({ receiver: receiverUrl });
  receiver = spawn(path.join(ROOT, 'target/debug/sm-receiver'), [], {
    env: {
      ...process.env,
      SM_API_ENDPOINT: server.url, SM_CLIENT_ID: DEMO_ACCOUNT.clientId, SM_API_KEY: DEMO_ACCOUNT.apiKey,
      SM_API_SECRET: DEMO_ACCOUNT.apiSecret, SM_OWNER: DEMO_ACCOUNT.owner, SM_ALLOWED_ORIGINS: server.url,
      SM_LISTEN: `127.0.0.1:${port}`, SM_DATA_DIR: path.join(ROOT, `target/e2e-receiver-${process.pid}`),
    },
    stdio: 'ignore',
  });
  for (let i = 0; ; i++) {
    const ok = await fetch(`${receiverUrl}/health`).then((r) => r.ok, () => false);
    if (ok) break;
    if (i > 200) throw new Error('the receiver did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  browser = await launch();
});
after(async () => {
  await browser?.close();
  receiver?.kill();
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
  const calls = server.salesmanago.calls;
  const end = Date.now() + 15_000;
  while (!calls.some((c) => c.contactEvent?.contactExtEventType === 'PURCHASE')) {
    assert.ok(Date.now() < end, `no PURCHASE reached SALESmanago: ${JSON.stringify(calls.map((c) => c.method + ' ' + (c.contactEvent?.description ?? c.refused)))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 600));
  assert.deepEqual(calls.filter((c) => c.refused), [], 'SALESmanago refused nothing');
  const carts = calls.filter((c) => c.contactEvent.contactExtEventType === 'CART');
  assert.equal(carts[0].method, 'addContactExtEvent');
  assert.ok(carts.length >= 2);
  assert.ok(carts.slice(1).every((c) => c.method === 'updateContactExtEvent' && c.eventId === carts[0].eventId), 'later cart changes update the same SALESmanago event');
  assert.equal(carts.at(-1).contactEvent.products, '1001');
  assert.equal(carts.at(-1).contactEvent.detail2, '3');
  const purchases = calls.filter((c) => c.contactEvent.contactExtEventType === 'PURCHASE');
  assert.equal(purchases.length, 1);
  assert.equal(purchases[0].method, 'addContactExtEvent');
  const others = calls.filter((c) => !['CART', 'PURCHASE'].includes(c.contactEvent.contactExtEventType)).map((c) => c.contactEvent.description);
  assert.deepEqual(others, ['Product Viewed', 'Coupon Applied', 'Signed In', 'Product Added to Wishlist', 'Promotion Viewed', 'Products Searched', 'Product Shared']);
  assert.ok(calls.every((c) => /^demo-contact-\d+$/.test(c.contactId)), 'the smclient cookie names the contact');
  assert.deepEqual(await pageProblems(page, seen), []);

  // The panel shows the whole path.
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length >= 13);
  const viewed = await page.locator('#rows tr', { hasText: 'Product Viewed' }).innerText();
  assert.match(viewed, /Product Viewed[\s\S]*VISIT[\s\S]*addContactExtEvent → sm-\d+/);
  const order = await page.locator('#rows tr', { hasText: 'Order Completed' }).innerText();
  assert.match(order, /PURCHASE[\s\S]*addContactExtEvent → sm-\d+/);
});
