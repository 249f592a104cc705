// Never lose an event: the fault-injection suite, small enough for CI. The full 1,000-event run
// is `node bench/faults.mjs`.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { launch, serveSites, closePages } from './harness.mjs';
import { navigationsUnderFailure, navigationHeavy, closedTabReopened, earlierVersionRecords, brokenStorage, threeTabs, retryAfter, cartCoalescing, flushDuringSend } from './faults.mjs';

let browser;
let sites; // { pages, server }: the shop's origin, and the receiver's (relay → sm-receiver) on its own
before(async () => {
  sites = await serveSites();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await sites?.pages.close();
  await sites?.server.close();
});
afterEach(() => closePages(browser));

test('navigations under 30% failures, an outage and offline spells: nothing lost, nothing sent twice', async (t) => {
  const { figures, problems } = await navigationsUnderFailure(browser, sites, { events: 150, navigations: 5 });
  t.diagnostic(JSON.stringify(figures));
  assert.equal(figures.lost, 0);
  assert.equal(figures.doubleSends, 0);
  assert.equal(figures.duplicates, figures.legitimateDuplicates, 'every duplicate is a retry after an unseen success');
  assert.equal(figures.outboxLeft, 0);
  assert.ok(figures.failedRequests > 0, 'the receiver did fail');
  assert.deepEqual(problems, []);
});

test('leaving right after each event: the next page asks, and bodies are not sent again', async (t) => {
  const { figures, problems } = await navigationHeavy(browser, sites, { navigations: 6, perPage: 5, failRate: 0 });
  t.diagnostic(JSON.stringify(figures));
  assert.equal(figures.lost, 0);
  assert.equal(figures.outboxLeft, 0);
  assert.ok(figures.idsAsked > 0, 'the pages asked about their predecessors\' events');
  assert.ok(figures.idsHeld > 0, 'and the receiver held them');
  // Without the question every event of every page but the last reached the receiver twice.
  assert.ok(figures.receivedTwicePct <= 5, `${figures.receivedTwicePct}% of the bodies reached the receiver twice`);
  assert.deepEqual(problems, []);
});

test('a receiver that does not know the question: every event asked about is sent again, none lost', async (t) => {
  const { figures, problems } = await navigationHeavy(browser, sites, { navigations: 4, perPage: 5, failRate: 0, refuseConfirm: true, seed: 21 });
  t.diagnostic(JSON.stringify(figures));
  assert.equal(figures.lost, 0);
  assert.equal(figures.outboxLeft, 0);
  assert.ok(figures.idsAsked > 0 && figures.idsHeld === 0, 'asked, and told nothing');
  assert.ok(figures.receivedTwice > 0, 'so the bodies went again');
  assert.deepEqual(problems, []);
});

test('a tab closed with events pending: a later tab sends them', async (t) => {
  const figures = await closedTabReopened(browser, sites);
  t.diagnostic(JSON.stringify(figures));
  assert.equal(figures.lost, 0);
  assert.equal(figures.doubleSends, 0);
});

test('events an earlier version kept, one key each, are sent and their keys removed', async (t) => {
  const figures = await earlierVersionRecords(browser, sites);
  t.diagnostic(JSON.stringify(figures));
  assert.equal(figures.lost, 0);
  assert.equal(figures.doubleSends, 0);
  assert.deepEqual(figures.left, []);
});

for (const kind of ['full', 'disabled', 'garbage']) {
  test(`localStorage ${kind}: events still arrive, no exception`, async (t) => {
    const figures = await brokenStorage(browser, sites, kind);
    t.diagnostic(JSON.stringify(figures));
    assert.equal(figures.lost, 0);
    assert.equal(figures.pageErrors, 0);
    assert.deepEqual(figures.leftovers, [], 'damaged records are removed');
  });
}

test('three tabs producing events at once: no event sent twice', async (t) => {
  const figures = await threeTabs(browser, sites);
  t.diagnostic(JSON.stringify(figures));
  assert.equal(figures.lost, 0);
  assert.equal(figures.duplicates, 0);
});

test('three tabs without Web Locks (the storage lease): nothing lost', async (t) => {
  const figures = await threeTabs(browser, sites, 40, { webLocks: false });
  t.diagnostic(JSON.stringify(figures));
  assert.equal(figures.lost, 0);
  assert.equal(figures.accepted, figures.sent);
  // Each tab's storage is a copy that learns of another tab's writes over IPC, after the fact:
  // tabs starting together all find the storage lease free, and each sends what it finds
  // (src/browser/lease.rs). The receiver deduplicates by id: SALESmanago gets each event once.
});

test('429 with Retry-After is honoured', async (t) => {
  const figures = await retryAfter(browser, sites, 2);
  t.diagnostic(JSON.stringify(figures));
  assert.equal(figures.firstStatus, 429);
  assert.equal(figures.secondStatus, 200);
  assert.deepEqual(figures.vias.slice(0, 2), ['fetch', 'fetch'], 'the retry is a fetch, not a beacon of a page gone hidden');
  assert.ok(figures.waitedMs >= 1900, `waited ${figures.waitedMs} ms`);
});

test('cart changes while the receiver fails end in one CART for the latest cart', async (t) => {
  const figures = await cartCoalescing(browser, sites);
  t.diagnostic(JSON.stringify(figures));
  assert.equal(figures.cartEventsReceived, 1);
  assert.equal(figures.lastProducts, 'p0,p1,p2,p3,p4,p5,p6,p7,p8,p9');
  assert.equal(figures.lastValue, 100);
});

test('flush() while a send is still in flight waits for it and answers true', async (t) => {
  const figures = await flushDuringSend(browser, sites);
  t.diagnostic(JSON.stringify(figures));
  assert.equal(figures.flushed, true);
  assert.equal(figures.lost, 0, 'everything flush() answered for has arrived');
  assert.equal(figures.duplicates, 0);
});
