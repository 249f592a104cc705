// Loaded first, synchronously, by every comparison page (bench/compare.mjs). Everything a tracker
// is measured with lives here, so the three pages differ only in the tracker they load.
(function () {
  'use strict';

  // Long tasks (> 50 ms) from the very start of the page; `buffered` also hands over any that
  // happened before this observer existed.
  var longTasks = [];
  try {
    new PerformanceObserver(function (list) {
      list.getEntries().forEach(function (e) {
        longTasks.push({ start: e.startTime, duration: e.duration });
      });
    }).observe({ type: 'longtask', buffered: true });
  } catch (e) {}

  // performance.memory counts the JS heap only; a wasm tracker keeps its data in linear memory,
  // which is outside it. Remember every exported WebAssembly.Memory so the bench can add it.
  var memories = [];
  function keep(result) {
    // When the compiled, instantiated module reached the page: splits "wasm arrived → ready"
    // into the browser's compile/instantiate and the tracker's own start-up.
    if (window.bench && window.bench.instantiatedAt === null) window.bench.instantiatedAt = performance.now();
    var instance = result && (result.instance || result);
    var exports = (instance && instance.exports) || {};
    Object.keys(exports).forEach(function (k) {
      if (exports[k] instanceof WebAssembly.Memory) memories.push(exports[k]);
    });
    return result;
  }
  ['instantiate', 'instantiateStreaming'].forEach(function (name) {
    var original = WebAssembly[name];
    if (typeof original !== 'function') return;
    WebAssembly[name] = function () {
      return original.apply(this, arguments).then(keep);
    };
  });

  // A storefront's cart has a handful of lines, not a thousand: cycling through 20 products keeps
  // the cart (which our tracker resends whole on every change) at a realistic size.
  var PRODUCTS = 20;
  var NAME = 'عطر العود الملكي';
  var IDS = /[?&]ids=1/.test(location.search);
  var VIEWED = /[?&]event=viewed/.test(location.search);
  function payloadOf(i) {
    if (VIEWED) {
      return { product_id: String(1001 + (i % PRODUCTS)), name: NAME, price: 10 + (i % PRODUCTS), currency: 'SAR' };
    }
    return { product_id: String(1001 + (i % PRODUCTS)), name: NAME, price: 10 + (i % PRODUCTS), quantity: 1, cart_id: 'c1', currency: 'SAR' };
  }

  var resolveReady;
  var script = document.currentScript;
  window.bench = {
    // The competitors' collector (bench/compare.mjs's sink), written into the page's tag.
    sink: script && script.dataset.sink,
    // Each page sets this to "send event number i" with its tracker's public API.
    track: null,
    // Each page calls this once its tracker can take events; `readyAt` is on the page's clock.
    readyAt: null,
    // When the wasm module, if any, was compiled and instantiated (set by the wrapper above).
    instantiatedAt: null,
    ready: new Promise(function (r) {
      resolveReady = r;
    }),
    markReady: function () {
      if (window.bench.readyAt === null) window.bench.readyAt = performance.now();
      resolveReady(window.bench.readyAt);
    },
    // The event of the burst: Product Added (one cart, changed 1,000 times), or with ?event=viewed
    // Product Viewed (1,000 views, none replacing another).
    event: VIEWED ? 'Product Viewed' : 'Product Added',
    // The same storefront payload for every tracker: a product added to the cart, or viewed.
    payload: function (i) {
      var p = payloadOf(i);
      // With ?ids=1, an event_id as Salla's tracker calls carry (a UUID, unique per event).
      if (IDS) p.event_id = '6f1c2a3b-1d2e-4f50-8a9b-' + String(1e11 + i);
      return p;
    },
    // n calls in one synchronous loop, in a task of the page's own (as a click handler would be):
    // Chromium reports no long tasks for script the DevTools protocol evaluates directly.
    burst: function (n, from) {
      return new Promise(function (resolve, reject) {
        setTimeout(function () {
          try {
            resolve(loop(n, from));
          } catch (e) {
            reject(e);
          }
        }, 0);
      });
    },
    longTasks: longTasks,
    wasmBytes: function () {
      return memories.reduce(function (n, m) {
        return n + m.buffer.byteLength;
      }, 0);
    },
  };

  // The whole loop's time, and each call's in µs (5 µs resolution when cross-origin isolated).
  function loop(n, from) {
    var track = window.bench.track;
    var each = new Array(n);
    var t0 = performance.now();
    for (var i = 0; i < n; i++) {
      var a = performance.now();
      track(from + i);
      each[i] = (performance.now() - a) * 1000;
    }
    return { ms: performance.now() - t0, each: each };
  }
})();
