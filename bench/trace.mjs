// BENCH_TRACE=1 for bench/compare.mjs: the renderer main thread's time during the burst under
// Chromium's tracing, as self time per trace event (a task, a timer, V8's compile and GC, a
// storage call, a fetch's start …), summed over the runs. What a CPU profile files as
// "(program)" — the browser's own work outside any JavaScript function — is named here.

export const tracing = process.env.BENCH_TRACE === '1';

const CATEGORIES = [
  'toplevel',
  'devtools.timeline',
  'blink',
  'v8',
  'v8.execute',
  'disabled-by-default-v8.compile',
  'v8.wasm',
  'disabled-by-default-v8.wasm.detailed',
  'disabled-by-default-v8.wasm.turbofan',
  'disabled-by-default-devtools.timeline',
  'loading',
  'mojom',
].join(',');

/** Starts tracing on a page's CDP session; returns a function that stops it and adds the run's
 * self times to `totals` (a Map, event name → µs). */
export async function startTrace(cdp) {
  const events = [];
  const onData = (d) => events.push(...d.value);
  cdp.on('Tracing.dataCollected', onData);
  const done = new Promise((r) => cdp.once('Tracing.tracingComplete', r));
  await cdp.send('Tracing.start', { categories: CATEGORIES, transferMode: 'ReportEvents' });
  return async (totals) => {
    await cdp.send('Tracing.end');
    await done;
    cdp.off('Tracing.dataCollected', onData);
    addSelfTimes(events, totals);
  };
}

function addSelfTimes(events, totals) {
  const main = events.find((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain');
  if (!main) return;
  // Complete events ('X') and begin/end pairs on the main thread, as spans.
  const spans = [];
  const open = [];
  for (const e of events) {
    if (e.pid !== main.pid || e.tid !== main.tid) continue;
    if (e.ph === 'X' && e.dur > 0) spans.push({ name: e.name, ts: e.ts, end: e.ts + e.dur });
    else if (e.ph === 'B') open.push(e);
    else if (e.ph === 'E') {
      const b = open.pop();
      if (b) spans.push({ name: b.name, ts: b.ts, end: e.ts });
    }
  }
  // Longest first among spans starting together, so a parent comes before its child.
  spans.sort((a, b) => a.ts - b.ts || b.end - a.end);
  const stack = [];
  const self = (s, us) => totals.set(s.name, (totals.get(s.name) ?? 0) + us);
  for (const s of spans) totals.set(`#${s.name}`, (totals.get(`#${s.name}`) ?? 0) + 1);
  for (const s of spans) {
    while (stack.length && stack.at(-1).end <= s.ts) stack.pop();
    const parent = stack.at(-1);
    if (parent) self(parent, -(Math.min(s.end, parent.end) - s.ts));
    self(s, s.end - s.ts);
    stack.push(s);
  }
}

/** Prints the totals, largest first. */
export function printTrace(title, totals, runs, top = 30) {
  const rows = [...totals.entries()].filter(([k]) => !k.startsWith('#')).sort((a, b) => b[1] - a[1]);
  const busy = rows.reduce((n, [, us]) => n + us, 0);
  console.log(`\ntrace of ${title}: ${(busy / 1000 / runs).toFixed(1)} ms on the main thread per burst; self time per trace event, ms and times per burst`);
  for (const [k, us] of rows.slice(0, process.env.BENCH_TOP ? +process.env.BENCH_TOP : top)) {
    const count = Math.round((totals.get(`#${k}`) ?? 0) / runs);
    console.log(`${(us / 1000 / runs).toFixed(2).padStart(8)} ms ${((100 * us) / busy).toFixed(1).padStart(5)}% ${String(count).padStart(6)}×  ${k}`);
  }
}
