// The npm module as a web developer uses it: bundled by esbuild from the package's own
// `exports`, and imported from a plain <script type="module">.
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { build } from 'esbuild';
import { mkdtemp, mkdir, copyFile, symlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ACCOUNT, launch, serve, open, waitForEvents, pageProblems, PAGES, closePages } from './harness.mjs';

const ROOT = path.resolve(PAGES, '../../..');
let browser;
let server;

before(async () => {
  // Resolve 'salla-salesmanago-tracker' the way a project that installed it would: through a
  // node_modules folder holding the package, read via its package.json `exports`.
  const modules = await mkdtemp(path.join(tmpdir(), 'sm-npm-'));
  await symlink(ROOT, path.join(modules, 'salla-salesmanago-tracker'));
  const out = path.join(PAGES, 'npm-bundle');
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  await build({
    entryPoints: [path.join(PAGES, '../npm-example.js')],
    bundle: true,
    format: 'esm',
    minify: true,
    outfile: path.join(out, 'app.js'),
    nodePaths: [modules],
    logLevel: 'error',
  });
  // What a bundler's asset step does: the wasm beside the bundle.
  await copyFile(path.join(ROOT, 'dist/salesmanago_bg.wasm'), path.join(out, 'salesmanago_bg.wasm'));
  await rm(modules, { recursive: true, force: true });
  server = await serve();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.close();
});
afterEach(() => closePages(browser));
beforeEach(() => server.relay.reset());

test('the bundled npm module tracks, flushes, and names the contact as configured', async () => {
  const { page, seen } = await open(browser, `${server.url}/test/npm.html`);
  await page.waitForFunction(() => window.result, null, { timeout: 10_000 });
  const result = await page.evaluate(() => window.result);
  assert.deepEqual(result, { active: true, emptyAfterFlush: true, identified: false });
  const events = await waitForEvents(server.relay, (ev) => ev.length >= 2);
  assert.deepEqual(events.map((e) => [e.id, e.contactEvent.contactExtEventType]), [
    ['npm-login', 'LOGIN'],
    ['npm-add', 'CART'],
  ]);
  assert.equal(events[1].contactEvent.value, 99.9);
  assert.equal(events[1].contactEvent.detail1, 'بخور');
  assert.deepEqual(events[1].contact, { email: 'noura@example.sa' }, 'sendEmail on, no refusal recorded');
  assert.deepEqual(await pageProblems(page, seen), []);
});

test('a plain <script type="module"> imports dist/index.js; init() twice gives one tracker', async () => {
  const { page, seen } = await open(browser, `${server.url}/test/module.html`);
  await page.waitForFunction(() => window.result, null, { timeout: 10_000 });
  assert.deepEqual(await page.evaluate(() => window.result), { same: true, empty: true });
  const [order] = await waitForEvents(server.relay, (ev) => ev.length >= 1);
  assert.equal(order.clientId, ACCOUNT.clientId, "the first init()'s");
  assert.deepEqual(order.contactEvent, {
    ...order.contactEvent,
    contactExtEventType: 'PURCHASE',
    products: 'a,b',
    value: 350,
    externalId: 'ord-1',
    detail1: 'مسك,عنبر',
    detail2: '2,1',
    detail3: '100,150',
    detail4: 'SAR',
  });
  assert.deepEqual(await pageProblems(page, seen), []);
});
