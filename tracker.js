/*! SALESmanago tracker for Salla storefronts: the loader. Configuration: docs/configuration.md */
// Put it in <head> (async or defer are fine, twice is harmless), or as the Salla app's snippet
// (dist/snippet.js) before </body>. Configuration, first found wins per key: an init() call, the
// global window.SallaSalesmanagoConfig, data-* attributes on this tag, the query string of its src,
// the Salla app's public settings (salla.config.get("app.<key>")).
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
  // The tracker's files: beside the loader, or (the snippet, which Salla serves from its own CDN)
  // at the absolute base the build was given; a page may point both elsewhere.
  var base = w[K + 'AssetBase'] || SM_ASSET_BASE || src;

  function run(call) {
    var method = tracker && tracker[call[0]];
    return method && method.apply(tracker, call.slice(1));
  }

  // The Salla app's public settings, once Salla's SDK has started (resolves at once when it already
  // has); none when the SDK is not on the page yet. Blank form fields do not count: an empty
  // send_email would read as a bare attribute, i.e. true.
  function settings() {
    var s = w.salla;
    // Never a throw or a rejection into the page, and never a wait without end: an SDK that is
    // on the page but never starts (or whose onReady is not a promise) leaves the app's settings
    // out after 3 s, and the page's own configuration starts the tracker.
    return s && s.onReady
      ? Promise.race([
          Promise.resolve()
            .then(function () {
              return s.onReady();
            })
            .then(function () {
              var app = {};
              'client_id endpoint location send_email custom_events events debug monitoring sm_host'.split(' ').forEach(function (k) {
                var v = s.config.get('app.' + k);
                if (v != null && v !== '') app[k] = v;
              });
              // A settings form holds text: JSON for `events` (left as text when it is not, so that
              // the configuration names the mistake).
              try {
                if (typeof app.events == 'string') app.events = JSON.parse(app.events);
              } catch (e) {}
              return app;
            }),
          new Promise(function (r) {
            setTimeout(r, 3e3, {});
          }),
        ]).catch(function () {
          return {};
        })
      : {};
  }

  function boot(init, app) {
    if (booted) return;
    booted = 1;
    Promise.resolve(app || settings())
      .then(function (a) {
        app = a;
        return import(new URL('index.js', base).href);
      })
      .then(function (m) {
        return m.init([init || {}, w[K + 'Config'] || {}, data, query, app]);
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
  // Without an init() call, start from what the page or the Salla app already says; otherwise
  // wait for init().
  if (init || w[K + 'Config'] || Object.keys(data).length || Object.keys(query).length) {
    boot(init && init[1]);
  } else {
    Promise.resolve(settings()).then(function (app) {
      if (Object.keys(app).length) boot(0, app);
    });
  }
})(window, document);
