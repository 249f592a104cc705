// Shared by the end-to-end tests: the real local server (www/server.mjs) and Debian's Chromium
// driven by playwright-core. Nothing is mocked: the built dist/ runs in the browser and posts
// over HTTP to the receiver on 127.0.0.1.
import { chromium } from 'playwright-core';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../www/server.mjs';

export const PAGES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pages');

export const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run', '--disable-quic',
];

export function launch() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

export function serve(options = {}) {
  return startServer({ port: 0, pages: PAGES, ...options });
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

/** Waits until `predicate(events)` holds for what the receiver accepted, or fails. */
export async function waitForEvents(store, predicate, { timeout = 5000, what = 'events' } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    if (predicate(store.events)) return store.events;
    if (Date.now() > end) {
      throw new Error(`timed out waiting for ${what}; received: ${JSON.stringify(store.events.map((e) => [e.source, e.contactEvent.contactExtEventType]))}`);
    }
    await new Promise((r) => setTimeout(r, 25));
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
