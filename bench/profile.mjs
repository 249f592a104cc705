// BENCH_PROFILE=1 for bench/compare.mjs and bench/ready.mjs: where the main thread's time goes, as
// self time per function (sampled every 50 µs) and per file (the wasm, the glue, the page, the
// browser's own), summed over the runs. Build with `SM_WASM_NAMES=1 bash scripts/build.sh` for
// the wasm's own function names. BENCH_PROFILE=inclusive counts each function's callees too
// (time with the function anywhere on the stack): what a whole step costs, not only its own code.
// BENCH_CALLERS=<regex> (with BENCH_PROFILE=1): the self time of the functions whose names match,
// counted under their nearest caller that does not match, as "<caller> → <regex>": who makes
// `memcmp` or the allocator busy.

export const profiling = Boolean(process.env.BENCH_PROFILE);
const inclusive = process.env.BENCH_PROFILE === 'inclusive';
const callers = process.env.BENCH_CALLERS ? new RegExp(process.env.BENCH_CALLERS) : null;

/** Starts the sampling profiler on a page's CDP session. */
export async function startProfile(cdp) {
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 50 });
  await cdp.send('Profiler.start');
}

/** Stops it and adds the run's self times to `totals` (a Map, function → µs). */
export async function stopProfile(cdp, totals) {
  const { profile } = await cdp.send('Profiler.stop');
  const byNode = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const name = (f) => {
    const file = f.url ? f.url.split('/').pop() : '';
    return `${f.functionName || '(anonymous)'}${file ? ` ${file}` : ''}`;
  };
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const keys = new Set([name(byNode.get(id))]);
    if (callers && callers.test(name(byNode.get(id)))) {
      let p = parent.get(id);
      while (p !== undefined && callers.test(name(byNode.get(p)))) p = parent.get(p);
      if (p !== undefined) keys.add(`${name(byNode.get(p))} → ${callers.source}`);
    }
    if (inclusive) for (let p = parent.get(id); p !== undefined; p = parent.get(p)) keys.add(name(byNode.get(p)));
    for (const key of keys) totals.set(key, (totals.get(key) ?? 0) + us);
  });
}

/** Prints the totals: per file, then the `top` functions, idle left out. */
export function printProfile(title, totals, top = 40) {
  const rows = [...totals.entries()].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]);
  const busy = rows.reduce((n, [, us]) => n + us, 0);
  const line = (us, k) => console.log(`${(us / 1000).toFixed(1).padStart(8)} ms ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${k}`);
  console.log(`\nprofile of ${title}: ${(busy / 1000).toFixed(1)} ms ${inclusive ? '(summed over callers, so more than the time busy)' : 'busy'} over the runs; ${inclusive ? 'time with each function on the stack' : 'self time'} per file, then per function`);
  const files = new Map();
  for (const [k, us] of rows) {
    const file = k.includes(' ') && /\.(wasm|js|html)$/.test(k) ? k.split(' ').pop() : '(browser)';
    files.set(file, (files.get(file) ?? 0) + us);
  }
  for (const [f, us] of [...files.entries()].sort((a, b) => b[1] - a[1])) line(us, `[${f}]`);
  for (const [k, us] of rows.slice(0, process.env.BENCH_TOP ? +process.env.BENCH_TOP : top)) line(us, k);
}
