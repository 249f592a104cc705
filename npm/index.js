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
  const tracker = guard(() => start(sources, guard))();
  if (!tracker) return inert;
  return Object.freeze({
    active: true,
    track: guard((name, payload) => tracker.track(name, payload)),
    flush: () => {
      const p = guard(() => tracker.flush())();
      return p ? p.catch((error) => (stop(error), false)) : Promise.resolve(false);
    },
    setConsent: guard((granted) => tracker.setConsent(!!granted)),
    identify: (email) => guard(() => tracker.identify(email))() === true,
    shutdown: guard(() => tracker.shutdown()),
  });
}
