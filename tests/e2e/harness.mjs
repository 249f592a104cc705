// Shared by the end-to-end tests: the real local server (www/server.mjs), the real receiver
// behind its relay with the fake SALESmanago API behind that (www/stack.mjs), and Debian's
// Chromium driven by playwright-core. Nothing is mocked: the built dist/ runs in the browser and
// posts over HTTP to sm-receiver on 127.0.0.1, which decides what it takes.
import { chromium } from 'playwright-core';
import { before, after, beforeEach, afterEach } from 'node:test';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../www/server.mjs';
import { DEMO_ACCOUNT, startStack } from '../../www/stack.mjs';

/** The SALESmanago account of the test stack: every test page's tracker names its client id. */
export const ACCOUNT = DEMO_ACCOUNT;

export const PAGES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pages');

export const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run', '--disable-quic',
];

export function launch() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/**
 * The storefront's server (test pages under /test/) relaying /collect to a stack of its own:
 * sm-receiver, which allows this origin and those in `allow`, delivering to sm-fake. `server.relay`
 * is what the tracker sent and was answered; `server.stack.fake` what reached SALESmanago.
 * `close()` stops all three.
 */
export async function serve({ allow = [], ...options } = {}) {
  const server = await startServer({ port: 0, pages: PAGES, ...options });
  let stack;
  try {
    stack = await startStack({ allowedOrigins: [server.url, ...allow] });
  } catch (e) {
    await server.close();
    throw e;
  }
  server.connect(stack);
  const closeServer = server.close;
  return Object.assign(server, {
    stack,
    close: async () => {
      await closeServer();
      await stack.close();
    },
  });
}

/**
 * Two origins, as on a storefront: `pages` serves the shop, and `server` is the receiver's own
 * (its relay to sm-receiver), so that it can go down while the shop stays up and the tracker
 * posts cross-origin.
 */
export async function serveSites() {
  const pages = await startServer({ port: 0, pages: PAGES });
  try {
    return { pages, server: await serve({ allow: [pages.url] }) };
  } catch (e) {
    await pages.close();
    throw e;
  }
}

/**
 * Opens a page that records every console message and every error the page itself would see
 * (uncaught exceptions and unhandled rejections), plus any request that leaves 127.0.0.1.
 */
export async function open(browser, url, { beforeLoad } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const seen = { console: [], pageErrors: [], foreign: [] };
  page.on('console', (m) => seen.console.push({ type: m.type(), text: m.text() }));
  page.on('pageerror', (e) => seen.pageErrors.push(String(e)));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (!['127.0.0.1', 'localhost'].includes(u.hostname) && u.protocol.startsWith('http')) seen.foreign.push(r.url());
  });
  // Unhandled rejections reach the page's own handlers; record them where the test can read them.
  await page.addInitScript(() => {
    window.__rejections = [];
    window.addEventListener('unhandledrejection', (e) => window.__rejections.push(String(e.reason)));
    window.addEventListener('error', (e) => (window.__errors = (window.__errors || []).concat(String(e.message))));
  });
  if (beforeLoad) await beforeLoad(page);
  await page.goto(url);
  return { page, context, seen };
}

/** Waits until `predicate(events)` holds for the events sm-receiver took (`relay.events`), or fails. */
export async function waitForEvents(relay, predicate, { timeout = 5000, what = 'events' } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    if (predicate(relay.events)) return relay.events;
    if (Date.now() > end) {
      throw new Error(
        `timed out waiting for ${what}; taken: ${JSON.stringify(relay.events.map((e) => [e.source, e.contactEvent.contactExtEventType]))}` +
          `; refused by sm-receiver: ${JSON.stringify(relay.refused)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * The shopper's storefront actions (`[action, ...args]`, window.storefront.actions) at a
 * shopper's pace: each one's events taken by the receiver before the next action. `sends(step)`
 * is how many events a step sends (one by default). Actions fired within one moment merge: the
 * CARTs of one cart still waiting to be sent become the latest one (docs/mapping.md §3).
 */
export async function stepByStep(page, relay, steps, sends = () => 1) {
  for (const step of steps) {
    const [action, ...args] = step;
    const expected = relay.events.length + sends(step);
    await page.evaluate(([a, args]) => window.storefront.actions[a](...args), [action, args]);
    // Sent now: the batch timer would give way to the send just made, still settling, and try
    // again seconds later (see src/browser/lease.rs).
    await page.evaluate(() => window.SallaSalesmanago.flush());
    await waitForEvents(relay, (ev) => ev.length >= expected, { what: `the event of ${action}` });
  }
}

/** The errors a host page would have seen: must always be empty. */
export async function pageProblems(page, seen) {
  const inPage = await page.evaluate(() => ({ rejections: window.__rejections || [], errors: window.__errors || [] }));
  return [...seen.pageErrors, ...inPage.rejections, ...inPage.errors];
}

/** Closes every page a test left open (a failed assertion skips its own close), so that one
 * failure cannot keep sending into the next test's receiver. */
export async function closePages(browser) {
  // Bounded: closing a context while one of its pages is mid-navigation can hang playwright;
  // a context left open then is harmless (the browser closes it at the end).
  const bounded = (p) => Promise.race([p.catch(() => {}), new Promise((r) => setTimeout(r, 3000).unref())]);
  await Promise.all((browser?.contexts() ?? []).map((c) => bounded(c.close())));
}

/**
 * The usual test file: one page server (relay, sm-receiver, sm-fake; `serveOptions` as for
 * `serve`) and one Chromium for the whole file, each test's pages closed after it and, with
 * `reset`, the relay's log emptied before it. `browser` and `server` are set once `before` ran.
 */
export function suite(serveOptions, { reset = true } = {}) {
  const s = { browser: undefined, server: undefined };
  before(async () => {
    s.server = await serve(serveOptions);
    s.browser = await launch();
  });
  after(async () => {
    await s.browser?.close();
    await s.server?.close();
  });
  afterEach(() => closePages(s.browser));
  if (reset) beforeEach(() => s.server.relay.reset());
  return s;
}
