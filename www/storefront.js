// A small Salla storefront driven by the real Twilight SDK (@salla.sa/twilight, loaded from
// node_modules by index.html). Each action does what the storefront does for a shopper: it emits on
// Twilight's event bus what Salla's servers (the `events` map of page data and API responses) or its
// web components emit. From there on, everything is Salla's own code: the analytics engine maps
// and transforms the event and calls every registered tracker, ours included.
(function () {
  const origin = location.origin;

  // Every storefront event name, so Salla's server-side allow-list lets them through.
  const EVENTS = [
    'Product Viewed', 'Product Added', 'Product Removed', 'Cart Viewed', 'Cart Updated',
    'Order Completed', 'Signed In', 'Signed Up', 'Signed Out', 'Promotion Viewed',
    'Promotion Clicked', 'Coupon Applied', 'Coupon Removed', 'Coupon Denied',
    'Product Added to Wishlist', 'Product Removed from Wishlist', 'Products Searched',
    'Product Shared', 'Product Reviewed', 'Product List Viewed', 'Product List Filtered',
    'User Profile Updated', 'Market Selected', 'Product Reordered', 'Recommendation List Viewed',
    'Product Clicked',
  ];

  const CATALOG = {
    1001: { id: 1001, name: 'عطر العود الملكي', price: 250.5, category: 'عطور', brand: 'دار العود', sku: 'OUD-1001' },
    1002: { id: 1002, name: 'مسك أبيض', price: 95, category: 'مسك', brand: 'دار العود', sku: 'MSK-1002' },
    1003: { id: 1003, name: 'بخور كمبودي', price: 180, category: 'بخور', brand: 'Oud House', sku: 'BKR-1003' },
  };
  const CART_ID = 'cart-7001';
  const cart = new Map(); // product id → quantity
  // The id the cart's order will have: fixed once Salla's servers know the order (the demo's
  // order.created button may send it before the thank-you page shows it).
  let pendingOrderId = null;
  const newOrderId = () => 'ord-' + Date.now();
  const orderLines = () => [...cart].map(([id, quantity]) => ({ product_id: String(id), name: CATALOG[id].name, price: CATALOG[id].price, quantity }));

  const productOf = (id) => ({ ...CATALOG[id], currency: 'SAR', url: `${origin}/p/${id}`, image_url: `${origin}/img/${id}.jpg`, quantity: 1 });
  const setPage = (slug, id = null) => {
    Salla.config.set('page.slug', slug);
    Salla.config.set('page.id', id);
  };
  const cartSummary = () => {
    const items = [...cart].map(([id, quantity], i) => ({
      id: 9000 + i, product_id: id, product_name: CATALOG[id].name, product_price: CATALOG[id].price,
      product_sku: CATALOG[id].sku, product_image: `${origin}/img/${id}.jpg`, quantity,
    }));
    const subTotal = items.reduce((n, it) => n + it.product_price * it.quantity, 0);
    return { id: CART_ID, sub_total: subTotal, total: +(subTotal * 1.15).toFixed(2), tax_amount: +(subTotal * 0.15).toFixed(2), total_discount: 0, real_shipping_cost: 0, count: items.length, items };
  };
  const emit = (name, ...args) => Salla.event.emit(name, ...args);

  const actions = {
    // Server events: what a product page's data, or an API response's `events`, carries.
    viewProduct(id = 1001) {
      setPage('product.single', id);
      Salla.event.dispatch('Product Viewed', [productOf(id)]);
    },
    addToCart(id = 1001, quantity = 1) {
      setPage('product.single', id);
      cart.set(id, (cart.get(id) ?? 0) + quantity);
      Salla.event.dispatch('Product Added', [{ ...productOf(id), quantity, cart_id: CART_ID, cart_item_id: 9000 + id }]);
    },
    removeFromCart(id = 1001) {
      setPage('cart');
      const quantity = cart.get(id) ?? 1;
      cart.delete(id);
      Salla.event.dispatch('Product Removed', [{ ...productOf(id), quantity, cart_id: CART_ID }]);
    },
    viewCart() {
      setPage('cart');
      Salla.event.dispatch('Cart Viewed', [{
        cart_id: CART_ID,
        products: [...cart].map(([id, quantity]) => ({ ...productOf(id), quantity, cart_item_id: 9000 + id })),
      }]);
    },
    // Twilight's cart module fires this after a quantity change on the cart page.
    changeQuantity(id = 1001, quantity = 3) {
      setPage('cart');
      cart.set(id, quantity);
      emit('cart::updated', cartSummary());
    },
    applyCoupon(code = 'EID10') {
      setPage('cart');
      emit('cart::coupon.added', { status: 200, success: true, data: { cart: { id: CART_ID, coupon: code, discount: 25 } } }, CART_ID);
    },
    denyCoupon(code = 'OLD2020') {
      setPage('cart');
      emit('cart::coupon.addition.failed', {
        response: { config: { data: JSON.stringify({ coupon: code }) }, data: { error: { message: 'الكوبون منتهي الصلاحية' } } },
      }, CART_ID);
    },
    signIn(email = 'noura@example.sa') {
      localStorage.setItem('user', JSON.stringify({ first_name: 'نورة', last_name: 'العتيبي', type: 'user', mobile: '+966500000000', email }));
      Salla.config.set('user.type', 'user');
      Salla.config.set('user.email', email);
      emit('auth::logged.in', { status: 200, success: true, data: { email } });
    },
    signOut() {
      localStorage.removeItem('user');
      Salla.config.set('user.type', 'guest');
      emit('auth::logged.out');
    },
    addToWishlist(id = 1002) {
      emit('wishlist::added', { status: 200, success: true, data: { product: { ...productOf(id), image: `${origin}/img/${id}.jpg` } } }, id);
    },
    removeFromWishlist(id = 1002) {
      emit('wishlist::removed', { status: 200, success: true, data: { product: { ...productOf(id), image: null } } }, id);
    },
    // The offer modal component.
    viewPromotion() {
      emit('promotion::viewed', [{ id: 55, creative: 'eid-banner', name: 'عرض العيد', position: 'buy_x_get_y_offer_modal' }]);
    },
    clickPromotion() {
      emit('promotion::clicked', [{ id: 55, creative: 'eid-banner', name: 'عرض العيد', position: 'buy_x_get_y_offer_modal' }]);
    },
    // The salla-search component.
    search(query = 'عود') {
      emit('Products Searched', { query, total: 12 });
    },
    // The share component, on a product page.
    share() {
      setPage('product.single', 1001);
      emit('share-element', { share_via: 'whatsapp', url: `${origin}/p/1001`, title: CATALOG[1001].name });
    },
    // The thank-you page's server event. The order is kept in `storefront.lastOrder` (the demo
    // sends Salla's order.created webhook for it).
    completeOrder(orderId = pendingOrderId ?? newOrderId()) {
      setPage('thank-you');
      pendingOrderId = null;
      const products = orderLines();
      const sub = products.reduce((n, p) => n + p.price * p.quantity, 0);
      window.storefront.lastOrder = { order_id: orderId, products };
      Salla.event.dispatch('Order Completed', [{
        order_id: orderId, checkout_id: CART_ID, total: +(sub * 1.15 + 25).toFixed(2),
        revenue: sub, shipping: 25, tax: +(sub * 0.15).toFixed(2), discount: 0, coupon: '', currency: 'SAR', products,
      }]);
      cart.clear();
    },
  };

  /**
   * Starts Salla's SDK as a storefront page does. `events` is the store's allow-list
   * (`jitsu.events`, which Salla's servers set per store): by default every event. `features`,
   * the store's (e.g. 'website-cookies' for the cookie bar), as the page's data would give them.
   */
  function boot({ events = EVENTS, features = [] } = {}) {
    Salla.init({
      debug: false,
      store: {
        id: 1305, name: 'متجر العود', username: 'oud-store', url: origin, api: origin + '/store/v1',
        features, settings: { arabic_numbers_enabled: false },
      },
      page: { slug: 'index', id: null },
      user: { type: 'guest', currency_code: 'SAR', language_code: 'ar' },
      currencies: { SAR: { code: 'SAR', name: 'ريال سعودي', symbol: 'ر.س', amount: 1, country_code: 'sa' } },
      jitsu: { host: origin, key: 'demo-key:demo-secret', events },
    });
  }

  /** The order Salla's order.created would be about: the cart's, once it is ordered (its id
   * kept for the thank-you page), else the order completed last; null with neither. */
  function currentOrder() {
    if (cart.size) return { order_id: (pendingOrderId ??= newOrderId()), products: orderLines() };
    return window.storefront.lastOrder;
  }

  window.storefront = { actions, boot, currentOrder, catalog: CATALOG, events: EVENTS, lastOrder: null };
})();
