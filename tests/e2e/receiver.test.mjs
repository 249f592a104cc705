// The local receiver over HTTP: protocol v1 checked as SALESmanago checks external events, each
// violation named in the 4xx, duplicates counted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serve } from './harness.mjs';

let server;
before(async () => {
  server = await serve();
});
after(() => server?.close());

const event = (id, contactEvent = {}) => ({
  id,
  source: 'Product Viewed',
  contactEvent: { date: 1_763_829_999_000, contactExtEventType: 'VISIT', products: '1001', value: 250.5, ...contactEvent },
});
const body = (events, extra = {}) => ({ v: 1, clientId: 'c', sentAt: 1_763_830_000_000, contact: {}, events, ...extra });
const post = (b) =>
  fetch(`${server.url}/collect`, { method: 'POST', headers: { 'Content-Type': 'text/plain;charset=UTF-8' }, body: typeof b === 'string' ? b : JSON.stringify(b) })
    .then(async (r) => ({ status: r.status, json: await r.json(), cors: r.headers.get('access-control-allow-origin') }));

test('a valid batch is taken; the same ids again are counted as duplicates', async () => {
  server.store.reset();
  assert.deepEqual(await post(body([event('a'), event('b')])), { status: 200, json: { accepted: 2, duplicates: 0 }, cors: '*' });
  assert.deepEqual((await post(body([event('b'), event('c')]))).json, { accepted: 1, duplicates: 1 });
  assert.equal(server.store.events.length, 3);
  assert.equal(server.store.duplicates, 1);
});

test('every violation is refused with a 400 that names it, and nothing is stored', async () => {
  server.store.reset();
  const cases = [
    ['{not json', 'the body is not JSON'],
    [body([event('x')], { v: 2 }), 'v must be 1'],
    [body([]), 'events must be a non-empty array'],
    [body([event('x', { contactExtEventType: 'cart' })]), 'events[0].contactEvent.contactExtEventType "cart" is not a SALESmanago type (capitals: CART)'],
    [body([event('x', { value: '12' })]), 'events[0].contactEvent.value must be a number'],
    [body([event('x', { value: 1.234 })]), 'at most 2 decimals'],
    [body([event('x', { date: 1_763_829_999 })]), 'events[0].contactEvent.date must be milliseconds since the epoch'],
    [body([event('x', { detail1: 'x'.repeat(256) })]), 'events[0].contactEvent.detail1 is 256 characters; the limit is 255'],
    [body([event('x', { detail21: 'x' })]), 'events[0].contactEvent.detail21 is not a SALESmanago contactEvent field'],
    [body([event('x', { products: '1, 2' })]), 'events[0].contactEvent.products must be ids separated by single commas'],
    [body([event('x', { location: 'l'.repeat(37) })]), 'location is 37 characters; the limit is 36'],
    [body([event('')]), 'events[0].id must be text'],
  ];
  for (const [b, message] of cases) {
    const r = await post(b);
    assert.equal(r.status, 400, message);
    assert.ok(r.json.error.includes(message), `${r.json.error} ∌ ${message}`);
  }
  assert.equal(server.store.events.length, 0);
});
