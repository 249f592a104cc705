// The npm entry: loads the wasm and hands back a tracker. Thin on purpose: every decision lives
// in the Rust core. Nothing here throws or rejects into the page: a failure gives one console
// message and an inert tracker whose `active` is false.
import load, { start } from '../target/bindgen/salesmanago.js';

const PREFIX = '[salesmanago]';
let stopped = false;
let running;

function stop(error) {
  if (stopped) return;
  stopped = true;
  console.warn(PREFIX, 'internal error; the tracker has stopped (the shop is not affected)', error);
}

// Every function the browser or the page calls into the wasm goes through this: a panic in Rust
// traps, which JavaScript sees as an exception; it must end here, not in the host page.
function guard(f) {
  return function (a, b) {
    if (stopped) return undefined;
    try {
      return f(a, b);
    } catch (error) {
      stop(error);
      return undefined;
    }
  };
}

const inert = Object.freeze({
  active: false,
  track() {},
  flush: () => Promise.resolve(false),
  setConsent() {},
  identify: () => false,
  shutdown() {},
});

// A copy of a plain object whose values are all text, numbers, booleans, null or undefined (most
// storefront payloads), made without structuredClone's serialising round trip; `undefined` for
// anything else, which structuredClone copies. (A getter that throws throws here as there.)
function flat(payload) {
  if (Object.getPrototypeOf(payload) !== Object.prototype) return undefined;
  const copy = {};
  for (const key of Object.keys(payload)) {
    const value = payload[key];
    if ((typeof value === 'object' && value !== null) || typeof value === 'function' || typeof value === 'symbol') return undefined;
    copy[key] = value;
  }
  return copy;
}

/**
 * Starts the tracker (once per page: later calls resolve to the same tracker).
 * @param {object|object[]} config `{ clientId, endpoint, ... }`, or several sources, most
 *   important first. `wasmUrl` says where `salesmanago_bg.wasm` is when a bundler moved it.
 * @returns {Promise<Tracker>}
 */
export function init(config) {
  if (!running) running = boot(config);
  return running;
}

async function boot(config) {
  const sources = (Array.isArray(config) ? config : [config]).map((c) => Object.assign({}, c));
  const wasmUrl = sources.map((c) => c.wasmUrl).find(Boolean);
  sources.forEach((c) => delete c.wasmUrl);
  try {
    if (typeof WebAssembly !== 'object') throw new Error('no WebAssembly in this browser');
    await load(wasmUrl ? { module_or_path: wasmUrl } : undefined);
  } catch (error) {
    console.warn(
      PREFIX,
      "WebAssembly is unavailable or blocked on this page (a Content-Security-Policy without 'wasm-unsafe-eval'?); the tracker is off.",
      String(error),
    );
    return inert;
  }
  // The page's events, copied, until the tracker takes them (name, payload, name, payload …): a
  // call is a copy and a push, not a trip into the wasm; the tracker reads the queue in one go,
  // ahead of any other call (src/browser/inbox.rs).
  const pending = [];
  const tracker = guard(() => start(sources, guard, pending))();
  if (!tracker) return inert;
  const trackNow = guard((name, payload) => tracker.track(name, payload));
  const wake = guard(() => tracker.wake());
  return Object.freeze({
    active: true,
    track(name, payload) {
      if (stopped) return;
      let copy = payload;
      if (typeof payload === 'object' && payload !== null) {
        try {
          copy = flat(payload) ?? structuredClone(payload);
        } catch (e) {
          // What the browser cannot copy (a Proxy, a function inside; no structuredClone) the
          // tracker reads at once, after what is queued.
          return trackNow(name, payload);
        }
      }
      pending.push(typeof name === 'string' ? name : '', copy);
      // The first since the tracker last took them: it schedules its next slice. Once it has
      // stopped, nothing will take them.
      if (pending.length === 2 && !wake()) pending.length = 0;
    },
    flush: () => {
      const p = guard(() => tracker.flush())();
      return p ? p.catch((error) => (stop(error), false)) : Promise.resolve(false);
    },
    setConsent: guard((granted) => tracker.setConsent(!!granted)),
    identify: (email) => guard(() => tracker.identify(email))() === true,
    shutdown: guard(() => tracker.shutdown()),
  });
}
