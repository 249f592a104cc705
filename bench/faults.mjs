// The full fault-injection run of issue 4 (too slow for every CI run; tests/e2e/faults.test.mjs is
// the small one): 1,000 events over 20 navigations with the receiver failing 30% at random (and 5%
// lost answers), one 5-second outage and two offline spells; then the other scenarios, larger.
// Prints a table and the JSON.
//
//   node bench/faults.mjs
import { launch, serveSites } from '../tests/e2e/harness.mjs';
import { navigationsUnderFailure, closedTabReopened, brokenStorage, threeTabs, retryAfter } from '../tests/e2e/faults.mjs';

const sites = await serveSites();
const browser = await launch();
const rows = {};
try {
  const started = Date.now();
  const nav = await navigationsUnderFailure(browser, sites, { events: 1000, navigations: 20, failRate: 0.3, outageSeconds: 5, bursts: 4, dwellMs: 1200 });
  rows['1,000 events, 20 navigations, 30% failures, 5 s outage, 2 offline spells'] = { ...nav.figures, pageErrors: nav.problems.length, seconds: Math.round((Date.now() - started) / 1000) };
  rows['tab closed with 20 pending, reopened'] = await closedTabReopened(browser, sites);
  for (const kind of ['full', 'disabled', 'garbage']) rows[`localStorage ${kind}`] = await brokenStorage(browser, sites, kind);
  rows['three tabs × 100 events at once'] = await threeTabs(browser, sites, 100);
  rows['429 with Retry-After: 2'] = await retryAfter(browser, sites, 2);
} finally {
  await browser.close();
  await sites.pages.close();
  await sites.server.close();
}
const cols = ['sent', 'accepted', 'lost', 'duplicates', 'legitimateDuplicates', 'doubleSends', 'requests', 'failedRequests', 'beacons'];
console.log(['scenario'.padEnd(72), ...cols.map((c) => c.slice(0, 10).padStart(11))].join(''));
for (const [name, f] of Object.entries(rows)) {
  console.log([name.padEnd(72), ...cols.map((c) => String(f[c] ?? '').padStart(11))].join(''));
}
console.log(JSON.stringify(rows, null, 1));
