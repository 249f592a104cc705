// Issue 14's navigation-heavy run: on each page the shopper does a few things and leaves at once
// (add to cart, then the cart page), so every page's batch goes by keepalive fetch or beacon and
// its page never sees the answer; the receiver fails some requests (503, nothing stored) and
// loses some answers (stored, answered 503). Counts lost events, bodies that reached the
// receiver more than once (the waste the budget is about: ≤ 5 %), bodies posted more than once
// at all (retries after a real failure included) and the ids asked about instead
// (docs/protocol.md §2.1). Real Chromium, sm-receiver and sm-fake, as the e2e suite.
// A benchmark, not a test: run it, quote the figures.
//
//   node bench/navigation.mjs [runs=3] [navigations=20] [perPage=6] [failRate=0.1] [lostAnswerRate=0.02]
import { launch, serveSites } from '../tests/e2e/harness.mjs';
import { navigationHeavy } from '../tests/e2e/faults.mjs';

const [runs = 3, navigations = 20, perPage = 6, failRate = 0.1, lostAnswerRate = 0.02] = process.argv.slice(2).map(Number);
const sites = await serveSites();
const browser = await launch();
const rows = [];
try {
  for (let run = 0; run < runs; run++) {
    const { figures, problems } = await navigationHeavy(browser, sites, { navigations, perPage, failRate, lostAnswerRate, seed: 11 + run });
    rows.push({ ...figures, pageErrors: problems.length });
    process.stderr.write(`run ${run + 1}/${runs} done\n`);
  }
} finally {
  await browser.close();
  await sites.pages.close();
  await sites.server.close();
}
const cols = ['events', 'lost', 'receivedTwice', 'receivedTwicePct', 'postedTwice', 'postedTwicePct', 'bodiesPerEvent', 'requests', 'failedRequests', 'beacons', 'confirmRequests', 'idsAsked', 'idsHeld', 'pageErrors'];
console.log(`${navigations} navigations × ${perPage} events, ${failRate * 100}% of requests failing (503), ${lostAnswerRate * 100}% of answers lost`);
console.log(['run', ...cols].map((c) => c.padStart(17)).join(''));
rows.forEach((r, i) => console.log([String(i + 1), ...cols.map((c) => String(r[c]))].map((c) => c.padStart(17)).join('')));
console.log(JSON.stringify({ navigations, perPage, failRate, lostAnswerRate, rows }));
