// sm-receiver over HTTP, through the page server's relay (which must hand its answers back as
// they are): protocol v1 checked as SALESmanago checks external events, each violation named in
// the 4xx, duplicates counted and not delivered twice, CORS only for the allowed origin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ACCOUNT, serve } from './harness.mjs';

let server;
before(async () => {
  server = await serve();
});
after(() => server?.close());

const event = (id, contactEvent = {}) => ({
  id,
  source: 'Product Viewed',
  contactEvent: { date: 1_763_829_999_000, contactExtEventType: 'VISIT', products: '1001', value: 250.5, description: `event ${id}`, ...contactEvent },
});
const body = (events, extra = {}) => ({
  v: 1, clientId: ACCOUNT.clientId, sentAt: 1_763_830_000_000, contact: { contactId: 'contact-1' }, events, ...extra,
});
const post = (b, origin = server.url) =>
  fetch(`${server.url}/collect`, {
    method: 'POST',
    headers: { 'Content-Type': 'text/plain;charset=UTF-8', Origin: origin },
    body: typeof b === 'string' ? b : JSON.stringify(b),
  }).then(async (r) => ({
    status: r.status,
    json: await r.json(),
    // Header names are case-insensitive (tower-http writes them lowercase); Vary lists Origin
    // among the request headers the answer depends on.
    cors: [
      r.headers.get('access-control-allow-origin'),
      r.headers.get('access-control-expose-headers')?.toLowerCase() ?? null,
      (r.headers.get('vary') ?? '').toLowerCase().split(/,\s*/).includes('origin'),
    ],
  }));

async function delivered(n) {
  const end = Date.now() + 10_000;
  for (;;) {
    const calls = await server.stack.fake.calls();
    if (calls.length >= n) return calls;
    assert.ok(Date.now() < end, `${calls.length} of ${n} events reached SALESmanago`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a valid batch is taken; the same ids again are counted as duplicates', async () => {
  server.relay.reset();
  const cors = [server.url, 'retry-after', true];
  assert.deepEqual(await post(body([event('a'), event('b')])), { status: 200, json: { accepted: 2, duplicates: 0 }, cors });
  assert.deepEqual((await post(body([event('b'), event('c')]))).json, { accepted: 1, duplicates: 1 });
  assert.equal(server.relay.events.length, 3);
  assert.equal(server.relay.duplicates, 1);
  // Delivered once each: the duplicate b does not reach SALESmanago again.
  await delivered(3);
  await new Promise((r) => setTimeout(r, 300));
  const calls = await server.stack.fake.calls();
  assert.deepEqual(calls.map((c) => [c.method, c.body.contactEvent.description, c.body.contactId]).sort(), [
    ['addContactExtEvent', 'event a', 'contact-1'],
    ['addContactExtEvent', 'event b', 'contact-1'],
    ['addContactExtEvent', 'event c', 'contact-1'],
  ]);
});

test('every violation is refused with a 4xx that names it, and nothing is stored', async () => {
  server.relay.reset();
  const cases = [
    ['{not json', 'the body is not JSON'],
    [body([event('x')], { v: 2 }), 'v must be 1'],
    [body([]), 'events must hold 1 to 1000 events, got 0'],
    [body([event('x')], { clientId: 'another-account' }), 'clientId "another-account" is not this receiver\'s SALESmanago account'],
    [body([event('x', { contactExtEventType: 'cart' })]), 'events[0].contactEvent.contactExtEventType "cart" must be in capitals: CART'],
    [body([event('x', { contactExtEventType: 'VISITS' })]), 'events[0].contactEvent.contactExtEventType "VISITS" is not a SALESmanago type'],
    [body([event('x', { value: '12' })]), 'events[0].contactEvent.value must be a number'],
    [body([event('x', { value: 1.234 })]), 'events[0].contactEvent.value must have at most 2 decimals'],
    [body([event('x', { date: 1_763_829_999 })]), 'events[0].contactEvent.date must be milliseconds since the epoch'],
    [body([event('x', { detail1: 'x'.repeat(256) })]), 'events[0].contactEvent.detail1 is 256 characters; it must be 1 to 255'],
    [body([event('x', { detail21: 'x' })]), 'events[0].contactEvent.detail21 is not a SALESmanago contactEvent field'],
    [body([event('x', { products: '1, 2' })]), 'events[0].contactEvent.products must be ids separated by single commas'],
    [body([event('x', { location: 'l'.repeat(37) })]), 'events[0].contactEvent.location is 37 characters; it must be 1 to 36'],
    [body([event('ok'), event('')]), 'events[1].id must be text of 1 to 255 characters'],
  ];
  for (const [b, message] of cases) {
    const r = await post(b);
    assert.equal(r.status, 400, message);
    assert.ok(r.json.error.includes(message), `${r.json.error} ∌ ${message}`);
    assert.equal(r.cors[0], server.url, 'a refusal the page can read');
  }
  // A storefront the receiver does not serve: 403, and no CORS header lets that page read it.
  const foreign = await post(body([event('x')]), 'https://another-store.example');
  assert.equal(foreign.status, 403);
  assert.match(foreign.json.error, /origin https:\/\/another-store\.example is not allowed/);
  assert.equal(foreign.cors[0], null);

  assert.equal(server.relay.events.length, 0);
  // Nothing of the refused batches was kept: their ids are new to the receiver.
  assert.deepEqual((await post(body([event('x'), event('ok')]))).json, { accepted: 2, duplicates: 0 });
});
