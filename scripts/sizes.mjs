// Prints the size of each built artefact, raw and gzip -9, and what a storefront page downloads
// (loader + bundled glue + wasm); writes the same figures to dist/sizes.json.
//
// With --check it is the size gate of `npm test`: it fails when the loader or the page is over its
// ceiling. Sizes are deterministic for a given toolchain, so this is a fair test (timings are not,
// and stay in bench/).
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const files = {
  loader: 'dist/tracker.js',
  snippet: 'dist/snippet.js',
  glue: 'dist/index.js',
  wasm: 'dist/salesmanago_bg.wasm',
  types: 'dist/index.d.ts',
  // Not in the page's figure: loaded only when there is something to say (src/words.rs).
  messages: 'dist/messages.js',
};
const sizes = {};
for (const [what, file] of Object.entries(files)) {
  const bytes = readFileSync(file);
  sizes[what] = { file, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
}
const page = ['loader', 'glue', 'wasm'];
sizes.page = {
  file: 'loader + glue + wasm',
  raw: page.reduce((n, k) => n + sizes[k].raw, 0),
  gzip: page.reduce((n, k) => n + sizes[k].gzip, 0),
};
writeFileSync('dist/sizes.json', JSON.stringify(sizes, null, 2) + '\n');
const kb = (n) => (n / 1024).toFixed(1).padStart(7) + ' KB';
console.log('artefact'.padEnd(34) + 'raw'.padStart(10) + 'gzip'.padStart(11));
for (const { file, raw, gzip } of Object.values(sizes)) console.log(file.padEnd(34) + kb(raw) + ' ' + kb(gzip));

// The ceilings, gzip bytes. The loader meets its budget (1 KB), and so does the Salla app snippet
// (the same loader with the asset base built in; a page loads one or the other, so the page's
// figure counts the loader). The page's budget (issue 6) is
// 18 KB; it is not met yet, so its ceiling is a ratchet a little above the current size: the gate
// stops the page from growing back while the work toward 18 KB goes on. Lower it with every cut.
// Raised by 2,800 B for the events the allow-list withholds, taken from Twilight's event bus
// (docs/mapping.md §1): measured +2,752 B gzip (47,605 → 50,357 B); and by 4,096 B, exactly what the
// browser's identity measured: anonymous id, name and phone, the smclient cookie from the
// receiver's answer, SALESmanago's monitoring script. Both together measure 54,378 B (+6,818 B);
// the review's consent fixes (no anonymous id after a refusal, no smclient after Signed Out,
// SALESmanago's `sm` queue beside _smid) 54,510 B; monitoring without a usable smHost a warning,
// not the tracker off, 54,676 B. Issue 14: asking the receiver about an earlier page's unanswered
// events instead of resending them (docs/protocol.md §2.1) measured +1,906 B; the words of every
// message moved out to dist/messages.js (src/words.rs) −1,028 B, and the panic hook that
// `panic=immediate-abort` never calls −153 B: 55,401 B; fetch bodies as bytes +27 B: 55,428 B;
// a payload read in one call (bench: −17 % main-thread time per event) +385 B: 55,813 B; one store-id look for all three callers −5 B: 55,808 B.
// The lease fix +28 B: 55,836 B; outbox records embedding the event's JSON, written directly
// −273 B: 55,563 B; the outbox kept one record per slice of work instead of one per event
// (bench: −31 % main-thread time per event) +1,248 B: 56,811 B; no clone of the cart per event
// −239 B: 56,572 B; the records' bookkeeping moved to the pure core (src/kept.rs, tested
// natively with two tabs sharing a store) behind a Store trait +290 B: 56,862 B; the tab's id and
// Salla's SDK looked for after ready (173 → 140 functions compiled before ready,
// bench/lazy-compile.mjs) +51 B: 56,913 B; a cart's quantities and prices written straight into
// their lists, and the queue's duplicate-id check by last byte first (bench, three interleaved
// pairs: 209–224 → 191–202 µs/event) +122 B: 57,035 B; every id check of the queue by last byte
// first, and a record's events written into one string (187–213 → 183–197 µs/event) +26 B:
// 57,061 B; the glue's compile hint (//# allFunctionsCalledOnLoad: instantiated → ready −0.9 ms)
// +21 B, and the start path trimmed (140 → 128 functions compiled before ready: listener types
// as one static text, config keys compared byte by byte; a payload's texts sliced out of the
// tape rather than rebuilt char by char) +57 B: 57,139 B; every message and key put together by
// one small `words::cat` instead of the standard library's generic `concat`/`join` −250 B:
// 56,889 B; the catalog's names kept once, in the listed text, and read out of it by index (no
// second copy for `Kind::name`) −77 B: 56,812 B; the CARTs of one cart changed within one slice
// of work made once, for its last state (`Pipeline::holding_carts`; with the outbox replacing a
// waiting CART of the same cart, the burst bench went 4.5× → 2.6× → 1.4–1.7× the floor) +466 B:
// 57,278 B, bought on purpose: per event was issue 14's budget within reach; the page's `track`
// calls queued in JavaScript by the npm entry and read by the wasm in one call per slice, not
// one trip into the wasm each (cart burst 67–94 → 51–63 µs/event, 1.6–1.8× the floor; distinct
// events 133–141 → 102–117; the page's call 13–15 → 7–10 µs) +533 B: 57,811 B. Coarser imports
// (issue 14): localStorage through one inline function instead of web-sys's six −438 B: 57,373 B; a request and the reading of its answer through one (fetch, RequestInit and
// its setters, Uint8Array, Response, status, headers, JSON; sendBeacon and navigator) −451 B:
// 56,922 B; the page's facts (cookies, protocol, hostname, query, onLine, visibility), a cookie's
// writing and randomness through one function each (document, location, navigator, crypto and
// their properties; the backoff's jitter from the same random bytes) −393 B: 56,529 B; promises
// made with `new Promise(executor)` in JavaScript and the Web Lock's request, options, callback
// and hold in one function (js-sys's two-argument closure glue, Object, Reflect.set, call3,
// Promise.resolve gone) −309 B: 56,220 B; a promise's settling in one function (then and two
// binds) −59 B: 56,161 B; the registration with Salla's analytics (Salla, analytics,
// registerTracker, onReady, the tracker object) in the bus's inline module −438 B: 55,723 B; the
// promise executor and the request's reading behind `dyn` (one copy each) −36 B: 55,687 B; Salla's
// SDK read (store id, cookie bar record, features, anonymous id, user) as facts of the page,
// through the same function, instead of Reflect gets and calls −380 B: 55,307 B. Bought for the
// per-event budget: an answer's events removed by walking the batch in queue order among the
// events in flight (+112 B), and random ids from a 256-byte pool (+81 B): distinct events
// 132–137 → 116–128 µs/event in three interleaved pairs: 55,500 B. Every closure called once
// behind `dyn` (timers, the promise executor, a 2xx's contact id, Salla's onReady): one copy of
// wasm-bindgen's closure glue per signature instead of per call site (3,021 → 1,526 B raw)
// −246 B: 55,254 B. The mapping's details passed as a slice of borrowed texts, not arrays of
// cloned ones (no clone, no drop glue, one copy of set_details for every count) −368 B: 54,886 B;
// a ContactEvent's JSON written field by field, not through a list of its fields −41 B: 54,845 B;
// the configuration's sources merged as borrowed fields, not copied −59 B: 54,786 B. A lock
// request that will not run its job frees the job (it leaked, once per send that found the lock
// taken) +44 B: 54,830 B. Review: the lock's JavaScript no longer repeats has_web_locks' check,
// and a confirmation no longer re-checks the 2xx its JavaScript already required −10 B: 54,820 B.
// Debug lines joined only when debug is on −54 B; truncate's fast path +9 B; a hash of each id
// beside its outbox entry (push's duplicate check) +71 B; Salla's facts not tried without Salla
// +16 B; records of at most 15 KB, a batch taking whole ones (a burst's events written once, not
// twice) +94 B; requests up to 192 KiB when they cannot outlive the page anyway +13 B: 54,969 B.
// A payload from Salla's hook, a DOM event or the wasm's own track() read at once, not copied
// with structuredClone (the Snapshot type and its import) −151 B: 54,818 B. Bought for the
// per-event budget: the outbox's byte total kept as it changes, JSON strings and id hashes read
// by index +25 B; the pipeline's ids seen and the outbox's queue searched through a filter of id
// hashes (a burst of events carrying Salla's event_id compared each with the 512 before it) +308
// B: 55,151 B. Iterator chains the wasm compiled one copy of per caller and type (collect,
// filter_map, zip, retain, str::replace, split().map().collect(); dyn Iterator, whose vtables
// bring nth and advance_by) written as loops over slices −2,230 B; the inbox's two VecDeques as a
// Vec with a head index −136 B; every closure handed to the page one of two types −262 B:
// 52,535 B. A fresh event id written in one pass −111 B; a flat payload copied by the npm
// entry's own loop, not structuredClone (the page's track() call 7.4–8.2 → 4.6–4.9 µs) +69 B:
// 52,493 B. The payload walker's functions made once, not as closures per payload, and no
// regular expression run on a text without a NUL (distinct events 67–68.4 → 64.4–65.8 µs in two
// interleaved runs) +4 B: 52,497 B. The clock read once per event, and in a slice after every
// fourth event rather than each (67.1–68.2 → 66–67.1 µs) +24 B: 52,521 B. The cart's fields
// assigned clones rather than `clone_from` (one Clone per type, not two) −91 B: 52,430 B.
// Review: the cart's value and an order's total from its lines summed by one function, as they
// were by two loops alike +15 B: 52,445 B. A payload's keys and the outbox's ids compared by one
// `value::same_text` (last byte first) −45 B: 52,400 B. Hex digits written by one
// `value::push_hex` for JSON escapes, `protocol::hex` and event ids −32 B: 52,368 B. Bought for
// the per-event budget: an event's payload kept as the tape it crossed in (the events of one
// read sharing one text) and its fields read straight off it, no `Value` tree built and dropped
// per event (distinct events 65.1 → 61, a cart's 41.6 → 37.9 µs/event, interleaved) +967 B:
// 53,335 B. A payload's fields found on its tape once per reader, not by walking the tape for
// each field looked up (`salla::parse` 8.4 → 4.2 ms a burst in the profile) +129 B: 53,464 B.
const CEILINGS = { loader: 1024, snippet: 1024, page: 53_464 };
const PAGE_TARGET = 18 * 1024;

if (process.argv.includes('--check')) {
  let over = false;
  for (const [what, max] of Object.entries(CEILINGS)) {
    const ok = sizes[what].gzip <= max;
    over ||= !ok;
    console.log(`size gate: ${sizes[what].file} ${sizes[what].gzip} B gzip ${ok ? '<=' : 'OVER'} ${max} B`);
  }
  if (sizes.page.gzip > PAGE_TARGET) {
    console.log(`size gate: the page budget of ${PAGE_TARGET} B gzip is not met yet (${sizes.page.gzip} B)`);
  }
  if (over) {
    console.error('size gate: dist/ is over its ceiling (see scripts/sizes.mjs)');
    process.exit(1);
  }
}
