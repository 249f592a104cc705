/*! SALESmanago tracker for Salla storefronts: the loader. Put it in <head> (async or defer are
 * fine, twice is harmless). Configuration, first found wins per key: an init() call, the global
 * window.SallaSalesmanagoConfig, data-* attributes on this tag, the query string of its src. */
(function (w, d) {
  var K = 'SallaSalesmanago';
  var queued = w[K];
  if (queued && queued.loaded) return;
  var queue = Array.isArray(queued) ? queued.slice() : [];
  var script = d.currentScript;
  var src = script && script.src;
  var data = {};
  var query = {};
  var tracker;
  var booted;
  var ready;

  function run(call) {
    var method = tracker && tracker[call[0]];
    return method && method.apply(tracker, call.slice(1));
  }

  function boot(init) {
    if (booted) return;
    booted = 1;
    Promise.resolve()
      .then(function () {
        return import(new URL('index.js', src).href);
      })
      .then(function (m) {
        return m.init([init || {}, w[K + 'Config'] || {}, data, query]);
      })
      .then(
        function (t) {
          tracker = t;
          queue.splice(0).forEach(run);
          ready(t);
        },
        function (e) {
          console.warn('[salesmanago] the tracker could not load; it is off.', String(e));
        }
      );
  }

  var api = (w[K] = {
    loaded: 1,
    // Resolves to the tracker once it runs (`active` false if it could not start); never rejects.
    ready: new Promise(function (r) {
      ready = r;
    }),
    push: function (call) {
      if (call && call[0] == 'init') return boot(call[1]);
      return tracker ? run(call) : void queue.push(call);
    },
  });
  'init track flush setConsent identify shutdown'.split(' ').forEach(function (m) {
    api[m] = function () {
      return api.push([m].concat([].slice.call(arguments)));
    };
  });

  try {
    for (var k in script.dataset) data[k] = script.dataset[k];
    if (typeof data.events == 'string') data.events = JSON.parse(data.events);
  } catch (e) {}
  try {
    new URL(src).searchParams.forEach(function (v, k) {
      query[k] = v;
    });
  } catch (e) {}

  var init = queue.filter(function (c) {
    return c && c[0] == 'init';
  })[0];
  queue = queue.filter(function (c) {
    return !(c && c[0] == 'init');
  });
  // Without an init() call, start from what the page already says; otherwise wait for init().
  if (init || w[K + 'Config'] || Object.keys(data).length || Object.keys(query).length) {
    boot(init && init[1]);
  }
})(window, document);
