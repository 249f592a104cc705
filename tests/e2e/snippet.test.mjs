// The Salla app's way onto a storefront: settings from the app's public settings form
// (salla.config.get("app.<key>"), with the real Twilight SDK), and dist/snippet.js, which Salla
// serves from its own CDN while the tracker's files stay on the vendor's asset host.
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { launch, serve, open, waitForEvents, pageProblems, closePages } from './harness.mjs';

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
beforeEach(() => server.relay.reset());

/** Opens the app-settings page with `query`; returns the first event the receiver took, its page. */
async function viewedWith(query) {
  const { page, seen } = await open(browser, `${server.url}/test/app-settings.html?${query}`);
  const [event] = await waitForEvents(server.relay, (e) => e.length > 0, { what: 'the replayed Product Viewed' });
  assert.deepEqual(await pageProblems(page, seen), []);
  return { event, page, seen };
}

test('the app settings alone configure the tracker: client id, endpoint, location, events', async () => {
  const { event, page } = await viewedWith('');
  assert.equal(event.source, 'Product Viewed');
  assert.equal(event.contactEvent.location, 'from-app');
  // events from the form's JSON text: Product Viewed as OTHER instead of VISIT.
  assert.equal(event.contactEvent.contactExtEventType, 'OTHER');
  assert.equal((await page.evaluate(() => window.SallaSalesmanago.ready)).active, true);
});

test('the page says more than the app: data-* on the tag, then the global object, win per key', async () => {
  let { event } = await viewedWith('tag=from-tag');
  assert.equal(event.contactEvent.location, 'from-tag', 'data-location over app.location');
  assert.equal(event.contactEvent.contactExtEventType, 'OTHER', 'the other keys still from the app');
  server.relay.reset();
  ({ event } = await viewedWith('tag=from-tag&global=from-global'));
  assert.equal(event.contactEvent.location, 'from-global', 'SallaSalesmanagoConfig over data-location');
});

