// The fault-injection scenarios, shared by the test suite (small runs) and bench/faults.mjs
// (the full 1,000-event run). Each returns figures; the callers assert or print them.
import { open } from './harness.mjs';

/** The shop page, served by `pages`, posting to the receiver `server` on another origin. */
export const shopUrl = (pages, server) => `${pages.url}/test/shop.html?r=${encodeURIComponent(server.url)}`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(predicate, timeout, what) {
  const end = Date.now() + timeout;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}

/**
 * Classifies what the receiver got for `ids`. A duplicate is legitimate when the tracker could not
 * have seen the first delivery's 2xx: it came by sendBeacon, or was stored and answered 503 (a lost
 * answer), or its 2xx was sent while its page was already going away (a navigation within 100 ms).
 * Any other duplicate is an event sent twice.
 */
export function account(relay, ids, navigations = []) {
  const accepted = new Set(relay.events.map((e) => e.id));
  const lost = ids.filter((id) => !accepted.has(id));
  const deliveries = new Map(); // id → stored deliveries, in order
  for (const row of relay.log) {
    if (!row.stored) continue;
    for (const id of row.ids) (deliveries.get(id) ?? deliveries.set(id, []).get(id)).push(row);
  }
  let legitimate = 0;
  const doubles = [];
  for (const id of ids) {
    const rows = deliveries.get(id) ?? [];
    for (let i = 1; i < rows.length; i++) {
      const first = rows[i - 1];
      const unseen =
        first.via === 'beacon' || first.status !== 200 || navigations.some((t) => first.at >= t - 100 && first.at <= t + 2000);
      if (unseen) legitimate++;
      else doubles.push(id);
    }
  }
  return {
    sent: ids.length,
    accepted: ids.filter((id) => accepted.has(id)).length,
    lost: lost.length,
    duplicates: relay.duplicates,
    legitimateDuplicates: legitimate,
    doubleSends: doubles.length,
    requests: relay.log.length,
    failedRequests: relay.log.filter((r) => r.status !== 200).length,
    beacons: relay.log.filter((r) => r.via === 'beacon').length,
  };
}

/** The shop page open in a fresh context, the relay reset and failing `failRate` (503). */
async function shopUnderFaults(browser, pages, server, { failRate, lostAnswerRate, seed }) {
  server.relay.reset();
  server.setFaults({ failRate, failStatus: 503, lostAnswerRate, seed });
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  const url = shopUrl(pages, server);
  await page.goto(url);
  return { context, page, problems, url };
}

/**
 * `events` events over `navigations` pages, receiver failing `failRate` at random (plus a few
 * lost answers), one outage of `outageSeconds`, two offline spells; a PURCHASE right before each
 * navigation. Healthy again at the end; waits until everything arrived and storage is empty.
 */
export async function navigationsUnderFailure(
  browser,
  { pages, server },
  { events = 200, navigations = 5, failRate = 0.3, outageSeconds = 2, seed = 7, bursts = 3, dwellMs = 600 } = {},
) {
  const { context, page, problems, url } = await shopUnderFaults(browser, pages, server, { failRate, lostAnswerRate: 0.05, seed });
  const ids = [];
  const navTimes = [];
  const perPage = Math.ceil(events / navigations);
  for (let n = 0; n < navigations; n++) {
    await page.evaluate(() => SallaSalesmanago.ready);
    const count = Math.min(perPage, events - ids.length);
    // The page's events come in a few bursts while the shopper is on it; the last is the order.
    for (let b = 0; b < bursts; b++) {
      const size = Math.floor(count / bursts) + (b === bursts - 1 ? count % bursts : 0);
      ids.push(...(await page.evaluate(([p, c]) => window.emit(p, c), [`n${n}b${b}`, size])));
      await sleep(dwellMs / bursts);
    }
    if (n === 1) server.down(outageSeconds);
    if (n === 2 || n === 3) {
      await context.setOffline(true);
      await sleep(400);
      await context.setOffline(false);
    }
    // Navigate right after the order, as a checkout redirect does.
    navTimes.push(Date.now());
    await page.goto(url);
  }
  await sleep(outageSeconds * 1000);
  server.setFaults({});
  await page.evaluate(() => SallaSalesmanago.ready);
  // A fresh page load picks up whatever is left; flush until the shared outbox is empty.
  await until(async () => {
    await page.evaluate(() => SallaSalesmanago.flush());
    return (await page.evaluate(() => window.pending())) === 0 && account(server.relay, ids).lost === 0;
  }, 60_000, 'every event accepted and the outbox empty');
  const figures = { ...account(server.relay, ids, navTimes), outboxLeft: await page.evaluate(() => window.pending()) };
  await context.close();
  return { figures, problems };
}

/**
 * Issue 14's navigation-heavy run: on each of `navigations` pages the shopper does `perPage`
 * things and leaves at once (add to cart, then the cart page: the common case), so the batch goes
 * by keepalive fetch or beacon and its page never sees the answer. The receiver fails `failRate`
 * of requests (503, nothing stored) and loses `lostAnswerRate` of its answers. Counts, per event,
 * how many times its body reached the receiver and how many times it was posted at all, and the
 * ids pages asked about instead of resending (`confirm`, docs/protocol.md §2.1).
 */
export async function navigationHeavy(
  browser,
  { pages, server },
  { navigations = 10, perPage = 6, failRate = 0.1, lostAnswerRate = 0, refuseConfirm = false, seed = 11 } = {},
) {
  const { context, page, problems, url } = await shopUnderFaults(browser, pages, server, { failRate, lostAnswerRate, seed });
  if (refuseConfirm) server.setFaults({ ...server.relay.current, refuseConfirm });
  const ids = [];
  for (let n = 0; n < navigations; n++) {
    await page.evaluate(() => SallaSalesmanago.ready);
    // Ids unique to the run: the receiver remembers earlier runs' ids, and holds them.
    ids.push(...(await page.evaluate(([p, c]) => window.emit(p, c), [`s${seed}nav${n}`, perPage])));
    await page.goto(url);
  }
  server.setFaults({ refuseConfirm });
  await page.evaluate(() => SallaSalesmanago.ready);
  // The last page stays open: it asks about, or sends, whatever is left.
  await until(
    async () => (await page.evaluate(() => window.pending())) === 0 && account(server.relay, ids).lost === 0,
    60_000,
    'every event accepted and the outbox empty',
  );
  const posted = new Map();
  const stored = new Map();
  for (const row of server.relay.log) {
    for (const id of row.ids) {
      posted.set(id, (posted.get(id) ?? 0) + 1);
      if (row.stored) stored.set(id, (stored.get(id) ?? 0) + 1);
    }
  }
  const moreThanOnce = (m) => ids.filter((id) => (m.get(id) ?? 0) > 1).length;
  const asked = server.relay.log.reduce((n, r) => n + (r.confirm?.length ?? 0), 0);
  const figures = {
    ...account(server.relay, ids),
    events: ids.length,
    // Bodies the receiver got again although it already held them: the waste issue 14 names.
    receivedTwice: moreThanOnce(stored),
    receivedTwicePct: +((100 * moreThanOnce(stored)) / ids.length).toFixed(1),
    // Bodies posted more than once at all, retries after a failure included.
    postedTwice: moreThanOnce(posted),
    postedTwicePct: +((100 * moreThanOnce(posted)) / ids.length).toFixed(1),
    // Event bodies in all requests, against events: 1 is the least there can be.
    bodiesPerEvent: +(server.relay.log.reduce((n, r) => n + r.ids.length, 0) / ids.length).toFixed(2),
    confirmRequests: server.relay.log.filter((r) => r.confirm?.length).length,
    idsAsked: asked,
    idsHeld: server.relay.log.reduce((n, r) => n + (r.answer?.held?.length ?? 0), 0),
    outboxLeft: await page.evaluate(() => window.pending()),
  };
  await context.close();
  return { figures, problems };
}

/** Events pending while the receiver fails; the tab closes; a later tab sends them. */
export async function closedTabReopened(browser, { pages, server }) {
  server.relay.reset();
  server.setFaults({ failRate: 1, failStatus: 503 });
  const context = await browser.newContext();
  let page = await context.newPage();
  await page.goto(shopUrl(pages, server));
  await page.evaluate(() => SallaSalesmanago.ready);
  const ids = await page.evaluate(() => window.emit('closed', 20));
  await sleep(300);
  await page.close(); // with events pending
  server.setFaults({});
  await sleep(200);
  page = await context.newPage();
  await page.goto(shopUrl(pages, server));
  await until(async () => account(server.relay, ids).lost === 0 && (await page.evaluate(() => window.pending())) === 0, 20_000, 'the closed tab\'s events');
  const figures = account(server.relay, ids);
  await context.close();
  return figures;
}

/**
 * Events an earlier version of the tracker left in storage, one key per event with the event as a
 * string of JSON (`sm:o:<id>`), and a page of this version: they go out, and their keys go.
 */
export async function earlierVersionRecords(browser, { pages, server }) {
  server.relay.reset();
  const ids = ['legacy-1', 'legacy-2'];
  const { page, context } = await open(browser, shopUrl(pages, server), {
    beforeLoad: (p) =>
      p.addInitScript((ids) => {
        if (sessionStorage.getItem('seeded')) return;
        sessionStorage.setItem('seeded', '1');
        ids.forEach((id, i) => {
          const event = { id, source: 'Products Searched', contactEvent: { date: Date.now(), contactExtEventType: 'OTHER', description: 'legacy ' + i } };
          localStorage.setItem('sm:o:' + id, JSON.stringify({ t: Date.now() - 1000 + i, c: 'O', e: JSON.stringify(event) }));
        });
      }, ids),
  });
  await page.evaluate(() => SallaSalesmanago.ready);
  await until(async () => account(server.relay, ids).lost === 0 && (await page.evaluate(() => window.pending())) === 0, 10_000, 'the earlier version\'s events');
  const left = await page.evaluate(() => Object.keys(localStorage).filter((k) => /^sm:[og]:/.test(k)));
  const figures = { ...account(server.relay, ids), left };
  await context.close();
  return figures;
}

/** localStorage full, disabled, or holding garbage: events still arrive in this page's life. */
export async function brokenStorage(browser, { pages, server }, kind) {
  server.relay.reset();
  const setups = {
    full: () => {
      const chunk = 'x'.repeat(512 * 1024);
      try {
        for (let i = 0; i < 100; i++) localStorage.setItem('filler-' + i, chunk);
      } catch {}
      try {
        for (let i = 0; i < 2000; i++) localStorage.setItem('small-' + i, 'x'.repeat(1024));
      } catch {}
    },
    disabled: () => {
      Object.defineProperty(window, 'localStorage', { get() { throw new DOMException('The operation is insecure.', 'SecurityError'); } });
    },
    garbage: () => {
      localStorage.setItem('sm:o:junk', 'not json');
      localStorage.setItem('sm:o:half', '{"t":"yesterday","c":"P","e":"{}"}');
      localStorage.setItem('sm_salla_cart', '{{{');
      localStorage.setItem('sm:lease', '"nonsense"');
    },
  };
  const { page, seen, context } = await open(browser, shopUrl(pages, server), { beforeLoad: (p) => p.addInitScript(setups[kind]) });
  await page.evaluate(() => SallaSalesmanago.ready);
  const ids = await page.evaluate((k) => window.emit(k, 12), kind);
  await until(() => account(server.relay, ids).lost === 0, 10_000, `events with ${kind} storage`);
  // The receiver's 2xx reaches the relay's log before the page has read it and removed what it
  // sent from storage: wait for the page to be done with its own events, then look at what is left.
  // The ids of the events stored: one per `sm:o:` key (earlier versions, and the garbage above),
  // each item's `i` in a `sm:g:` record.
  const stored = () =>
    page.evaluate(() =>
      Object.keys(localStorage).flatMap((k) => {
        if (k.startsWith('sm:o:')) return [k.slice('sm:o:'.length)];
        if (!k.startsWith('sm:g:')) return [];
        try {
          return JSON.parse(localStorage.getItem(k)).map((item) => item.i);
        } catch {
          return ['unreadable ' + k];
        }
      }),
    );
  if (kind === 'garbage') await until(async () => !(await stored()).some((id) => ids.includes(id)), 5_000, 'the page to unstore what was sent');
  const leftovers = kind === 'garbage' ? await stored() : [];
  const figures = { ...account(server.relay, ids), pageErrors: seen.pageErrors.length, leftovers };
  await context.close();
  return figures;
}

/** Three tabs of one store producing events at once. */
export async function threeTabs(browser, { pages: site, server }, perTab = 40, { webLocks = true } = {}) {
  server.relay.reset();
  const context = await browser.newContext();
  // A browser without Web Locks (Safari before 15.4): the tabs share the storage lease instead.
  if (!webLocks) await context.addInitScript(() => Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined }));
  const pages = await Promise.all([0, 1, 2].map(() => context.newPage()));
  await Promise.all(pages.map((p) => p.goto(shopUrl(site, server))));
  await Promise.all(pages.map((p) => p.evaluate(() => SallaSalesmanago.ready)));
  const ids = (await Promise.all(pages.map((p, i) => p.evaluate(([t, n]) => window.emit(t, n), [`tab${i}`, perTab])))).flat();
  await until(() => account(server.relay, ids).lost === 0, 20_000, 'events from three tabs');
  await sleep(500);
  const figures = account(server.relay, ids);
  await context.close();
  return figures;
}

/**
 * A 429 with Retry-After: the next attempt of the same event waits at least that long. Measured
 * between the arrivals of the refused request and of the retry carrying the same event (the log
 * stamps a request when it arrives), so a request of another page cannot stand in for either.
 */
export async function retryAfter(browser, { pages, server }, seconds = 2) {
  server.relay.reset();
  server.setFaults({ failRate: 1, failStatus: 429, retryAfter: seconds });
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(shopUrl(pages, server));
  await page.evaluate(() => SallaSalesmanago.ready);
  const ids = await page.evaluate(() => window.emit('ra', 1));
  const attempts = () => server.relay.log.filter((r) => r.ids.includes(ids[0]));
  await until(() => attempts().length >= 1, 5_000, 'the first attempt');
  server.setFaults({});
  await until(() => account(server.relay, ids).lost === 0, 15_000, 'the retry');
  const [first, second] = attempts();
  const figures = {
    waitedMs: second.at - first.at,
    firstStatus: first.status,
    secondStatus: second.status,
    // A beacon (the page went hidden: it sends what waits, backoff or not) is not a retry.
    vias: attempts().map((r) => r.via),
    attempts: attempts().length,
    otherRequests: server.relay.log.length - attempts().length,
  };
  await context.close();
  return figures;
}

/**
 * Ten cart changes while the receiver fails: it then gets one CART, for the latest cart.
 *
 * The changes are made once the tracker has heard the first attempt fail (flush() waits for that
 * answer): until then it has no reason to hold a CART back. The failure is a 429 with
 * Retry-After: 1, so that no retry is on the wire while the changes are queued (a CART on the wire
 * cannot be replaced, and a 503's backoff may be as short as 100 ms).
 */
export async function cartCoalescing(browser, { pages, server }) {
  server.relay.reset();
  server.setFaults({ failRate: 1, failStatus: 429, retryAfter: 1 });
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(shopUrl(pages, server));
  await page.evaluate(() => SallaSalesmanago.ready);
  await page.evaluate(() => SallaSalesmanago.track('Product Added', { event_id: 'cart-0', cart_id: 'c', product_id: 'p0', price: 10 }));
  await until(() => server.relay.log.length >= 1, 5_000, 'the first failed attempt');
  const flushedBeforeChanges = await page.evaluate(async () => {
    const empty = await SallaSalesmanago.flush();
    for (let i = 1; i < 10; i++) SallaSalesmanago.track('Product Added', { event_id: `cart-${i}`, cart_id: 'c', product_id: 'p' + i, price: 10 });
    return empty;
  });
  server.setFaults({});
  await until(async () => server.relay.events.length >= 1 && (await page.evaluate(() => window.pending())) === 0, 15_000, 'the coalesced cart');
  await sleep(300);
  const carts = server.relay.events.filter((e) => e.contactEvent.contactExtEventType === 'CART');
  const figures = {
    changes: 10,
    flushedBeforeChanges,
    cartEventsReceived: carts.length,
    lastProducts: carts.at(-1)?.contactEvent.products,
    lastValue: carts.at(-1)?.contactEvent.value,
  };
  await context.close();
  return figures;
}

/**
 * `flush()` called while a send started by the batch timer is still waiting for a slow receiver:
 * it must wait its turn and answer for everything, including an event tracked just before.
 */
export async function flushDuringSend(browser, { pages, server }, delayMs = 600) {
  server.relay.reset();
  server.setFaults({ delayMs });
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(shopUrl(pages, server));
  await page.evaluate(() => SallaSalesmanago.ready);
  const first = await page.evaluate(() => window.emit('slow-a', 3));
  await until(() => server.relay.requests >= 1, 5_000, 'the timer-driven send to arrive');
  const second = await page.evaluate(() => window.emit('slow-b', 2));
  const flushed = await page.evaluate(() => SallaSalesmanago.flush());
  // Read at once: what flush() answered for must already be at the receiver.
  const figures = { flushed, ...account(server.relay, [...first, ...second]) };
  server.setFaults({});
  await context.close();
  return figures;
}
