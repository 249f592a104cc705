// One cold load of the ready benchmark's page (bench/pages-ready.html) under Chromium's tracing:
// the trace's events up to the tracker being ready, and the page's "ready" mark among them
// (console.timeStamp('sm-ready') in the page). Shared by bench/lazy-compile.mjs and
// bench/startup-trace.mjs.
export async function traceReadyLoad(browser, server, categories) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    const events = [];
    cdp.on('Tracing.dataCollected', (d) => events.push(...d.value));
    const done = new Promise((r) => cdp.once('Tracing.tracingComplete', r));
    await cdp.send('Tracing.start', { categories, transferMode: 'ReportEvents' });
    await page.goto(`${server.url}/test/pages-ready.html`);
    const r = await page.evaluate(() => window.readyPromise);
    if (!r.active) throw new Error('the tracker did not start');
    await cdp.send('Tracing.end');
    await done;
    const ready = events.find((e) => e.name === 'TimeStamp' && e.args?.data?.message === 'sm-ready');
    if (!ready) throw new Error('no ready mark in the trace');
    return { events, ready };
  } finally {
    await context.close();
  }
}
