// Stands in for what a Salla storefront's servers answer, so the real Twilight SDK runs on
// 127.0.0.1 with no network: the store API (any /store/v1/... call gets a plausible success), the
// store's translations script (without it Twilight falls back to Salla's CDN), and the analytics
// sink that Salla's own Jitsu tracker posts to (/_app/e/...). Every call is logged.
export function sallaApi() {
  const log = [];
  let seq = 0;
  const api = {
    log,
    reset() {
      log.length = 0;
    },
    async handle(req, res, url, readBody) {
      const p = url.pathname;
      if (p.startsWith('/languages/assets/')) {
        res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' });
        res.end('window.translations = window.translations || {};');
        return true;
      }
      const sink = p.startsWith('/_app/e');
      if (!sink && !p.startsWith('/store/v1/')) return false;
      if (req.method === 'OPTIONS') {
        res.writeHead(204, {
          'Access-Control-Allow-Origin': req.headers.origin ?? '*',
          'Access-Control-Allow-Credentials': 'true',
          'Access-Control-Allow-Methods': 'GET, POST, PUT, DELETE, OPTIONS',
          'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] ?? '*',
        });
        res.end();
        return true;
      }
      const body = req.method === 'GET' ? '' : await readBody(req).catch(() => '');
      log.push({ seq: ++seq, method: req.method, path: p, sink, bytes: body.length });
      res.writeHead(200, {
        'Content-Type': 'application/json',
        'Access-Control-Allow-Origin': req.headers.origin ?? '*',
        'Access-Control-Allow-Credentials': 'true',
      });
      // The wishlist answers with the product it names: Salla's analytics engine reads
      // `data.product` from it.
      const favorite = p.match(/^\/store\/v1\/products\/favorites\/(\d+)$/);
      const data = favorite ? { product: { id: Number(favorite[1]) } } : {};
      res.end(JSON.stringify(sink ? {} : { status: 200, success: true, data }));
      return true;
    },
  };
  return api;
}
