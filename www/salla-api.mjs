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

/**
 * The `order.created` webhook Salla's servers send the app for an order of store `merchant`
 * (docs/webhooks.md §3; its shape after Salla's documented example): `id` Salla's order id,
 * `reference_id` the number the storefront shows, the customer's email, name and mobile, and the
 * items of `products` (`{ product_id, name, price, quantity }`, as the storefront's Order
 * Completed carries them).
 */
export function orderCreated({ merchant, id, reference, email, products, shipping = 25 }) {
  const sub = products.reduce((n, p) => n + p.price * p.quantity, 0);
  return {
    event: 'order.created',
    merchant,
    created_at: new Date().toString(),
    data: {
      id,
      reference_id: reference,
      currency: 'SAR',
      amounts: { total: { amount: +(sub * 1.15 + shipping).toFixed(2), currency: 'SAR' }, shipping_cost: { amount: shipping } },
      items: products.map((p, i) => ({
        id: 500 + i, name: p.name, quantity: p.quantity, product: { id: Number(p.product_id) },
        amounts: { price_without_tax: { amount: p.price } },
      })),
      // The demo storefront's signed-in shopper (www/storefront.js signIn), the same card.
      customer: { id: 77, first_name: 'نورة', last_name: 'العتيبي', mobile: 500000000, mobile_code: '+966', email },
      status: { slug: 'under_review' },
    },
  };
}
