// The Salla app's way onto a storefront: settings from the app's public settings form
// (salla.config.get("app.<key>"), with the real Twilight SDK), and dist/snippet.js, which Salla
// serves from its own CDN while the tracker's files stay on the vendor's asset host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { startServer } from '../../www/server.mjs';
import { suite, open, waitForEvents, pageProblems } from './harness.mjs';

const ctx = suite();

/** Opens the app-settings page with `query`; returns the first event the receiver took, its page. */
async function viewedWith(query) {
  const { page, seen } = await open(ctx.browser, `${ctx.server.url}/test/app-settings.html?${query}`);
  const [event] = await waitForEvents(ctx.server.relay, (e) => e.length > 0, { what: 'the replayed Product Viewed' });
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
  ctx.server.relay.reset();
  ({ event } = await viewedWith('tag=from-tag&global=from-global'));
  assert.equal(event.contactEvent.location, 'from-global', 'SallaSalesmanagoConfig over data-location');
});

/**
 * Three origins, as for a Salla app: the shop (with the receiver's relay), Salla's CDN serving the
 * snippet built (as scripts/build.sh does) for an asset base on the vendor's asset host.
 */
async function threeOrigins(t) {
  const assets = await startServer({ port: 0 });
  t.after(() => assets.close());
  const cdnDir = await mkdtemp(path.join(tmpdir(), 'sm-snippet-'));
  t.after(() => rm(cdnDir, { recursive: true, force: true }));
  const cdn = await startServer({ port: 0, pages: cdnDir });
  t.after(() => cdn.close());
  return { assets, cdn, cdnDir };
}

/** Opens the shop page with the snippet at `src`; returns where the tracker's files came from. */
async function shopWithSnippet(query, assets) {
  const fetched = [];
  const { page, seen } = await open(ctx.browser, `${ctx.server.url}/test/app-settings.html?${query}`, {
    beforeLoad: (p) => p.on('request', (r) => fetched.push(r.url())),
  });
  const [event] = await waitForEvents(ctx.server.relay, (e) => e.length > 0, { what: 'the replayed Product Viewed' });
  assert.equal(event.source, 'Product Viewed');
  assert.equal(event.contactEvent.location, 'from-app', 'configured by the app settings alone');
  assert.equal((await page.evaluate(() => window.SallaSalesmanago.ready)).active, true);
  assert.deepEqual(await pageProblems(page, seen), []);
  for (const file of ['index.js', 'salesmanago_bg.wasm']) {
    assert.ok(fetched.includes(`${assets.url}/dist/${file}`), `${file} from the asset host; fetched: ${fetched.join(' ')}`);
  }
  return { page, fetched };
}

test('dist/snippet.js from Salla\'s CDN, placed after Twilight started, loads the tracker from the asset host', async (t) => {
  const { assets, cdn, cdnDir } = await threeOrigins(t);
  // The same esbuild step as scripts/build.sh, with this test's asset host as SM_ASSET_BASE.
  const out = await build({
    entryPoints: [path.resolve('tracker.js')], minify: true, write: false, logLevel: 'warning',
    define: { SM_ASSET_BASE: JSON.stringify(`${assets.url}/dist/`) },
  });
  await writeFile(path.join(cdnDir, 'snippet.js'), out.outputFiles[0].contents);
  const { fetched } = await shopWithSnippet(`src=${encodeURIComponent(`${cdn.url}/test/snippet.js`)}`, assets);
  assert.ok(!fetched.some((u) => u.startsWith(cdn.url) && !u.endsWith('/snippet.js')), 'nothing else from the CDN');
});

test('the built dist/snippet.js takes a page\'s window.SallaSalesmanagoAssetBase over its built-in base', async (t) => {
  const { assets, cdn, cdnDir } = await threeOrigins(t);
  await writeFile(path.join(cdnDir, 'snippet.js'), await readFile('dist/snippet.js'));
  const src = encodeURIComponent(`${cdn.url}/test/snippet.js`);
  await shopWithSnippet(`src=${src}&assets=${encodeURIComponent(`${assets.url}/dist/`)}`, assets);
});

for (const mode of ['never', 'throws', 'rejects', 'plain']) {
  test(`a salla object whose onReady ${mode === 'plain' ? 'gives nothing and whose config throws' : mode}: the tracker starts from the page's configuration, nothing reaches the page`, async () => {
    const { page, seen } = await open(ctx.browser, `${ctx.server.url}/test/salla-stalled.html?mode=${mode}`);
    const ready = await page.evaluate(() => window.SallaSalesmanago.ready.then((t) => t.active));
    assert.equal(ready, true);
    await page.evaluate(() => window.SallaSalesmanago.track('Products Searched', { event_id: 'stalled-1', query: 'oud' }));
    await waitForEvents(ctx.server.relay, (e) => e.some((x) => x.id === 'stalled-1'), { what: 'the event tracked after start' });
    assert.deepEqual(await pageProblems(page, seen), []);
  });
}
