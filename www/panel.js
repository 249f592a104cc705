// The demo's live panel: each Salla event (as Salla's analytics engine hands it to trackers)
// beside the SALESmanago event the tracker sent for it and sm-receiver took (matched by event id),
// and the API call the receiver then made to the fake SALESmanago, with the contact it named;
// who this browser is (its anonymous id, the smclient cookie the tracker wrote, the contacts
// upserted); and each order, with which source's PURCHASE reached SALESmanago.
(function () {
  const rows = document.getElementById('rows');
  const counts = document.getElementById('counts');
  const seen = []; // { id, name, at (ms) }
  const received = new Map(); // id → what the tracker sent, for events sm-receiver took
  let calls = []; // SALESmanago event calls the receiver made: { method, eventId, contactEvent, contact }
  let upserts = []; // its contact upserts: { email, contactId }
  let webhooks = []; // the order.created calls the demo sent as Salla
  let fakeApi = true; // false when the receiver delivers to a real account (receiver.env)
  let since = 0;
  const $ = (id) => document.getElementById(id);

  // A new shopper: the page's head forgets who this browser was (index.html).
  $('new-shopper').addEventListener('click', () => location.assign('/?new-shopper'));
  // Salla's servers tell the app about the order: the demo server signs order.created with the
  // app's webhook secret and posts it to sm-receiver's /salla/webhook.
  $('order-created').addEventListener('click', async () => {
    const order = storefront.currentOrder();
    if (!order) return alert('Add something to the cart first: order.created is about an order.');
    await fetch('/demo/order-created', {
      method: 'POST',
      body: JSON.stringify({
        storeId: Salla.config.get('store.id'),
        reference: order.order_id,
        email: Salla.config.get('user.email') || 'noura@example.sa',
        products: order.products,
      }),
    }).catch(() => {});
  });

  const products = document.getElementById('products');
  for (const p of Object.values(storefront.catalog)) {
    const card = document.createElement('div');
    card.className = 'product';
    card.innerHTML = `<h3 dir="rtl"></h3><p class="price"></p>
      <button data-action="viewProduct" data-id="${p.id}">View</button>
      <button data-action="addToCart" data-id="${p.id}">Add to cart</button>
      <button data-action="removeFromCart" data-id="${p.id}">Remove</button>
      <button data-action="addToWishlist" data-id="${p.id}">♡ Wishlist</button>`;
    card.querySelector('h3').textContent = p.name;
    card.querySelector('.price').textContent = `${p.price} SAR`;
    products.appendChild(card);
  }
  document.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-action]');
    if (!b) return;
    const id = b.dataset.id ? Number(b.dataset.id) : undefined;
    storefront.actions[b.dataset.action](id);
  });

  // A second tracker, for display only: what Salla emitted.
  Salla.onReady(() =>
    Salla.analytics.registerTracker({
      name: 'demo-panel',
      track: (name, payload) => seen.push({ id: payload && payload.event_id, name, at: Date.now() }),
      page: (payload) => seen.push({ id: payload && payload.event_id, name: 'page', at: Date.now() }),
    }),
  );

  // A SALESmanago call carries no tracker id, but the receiver passes the contactEvent through
  // as the tracker wrote it: match the call by its type, description and date.
  const callFor = (sent, used) =>
    sent &&
    calls.find((c) => {
      const e = c.contactEvent;
      const t = sent.contactEvent;
      return !used.has(c) && e && e.contactExtEventType === t.contactExtEventType && e.description === t.description && e.date === t.date;
    });

  const apiCell = (call, sent) => {
    const td = document.createElement('td');
    if (!call) {
      td.className = 'none';
      td.textContent = !fakeApi
        ? '— sent to your SALESmanago account (target/demo/receiver.log)'
        : !sent
          ? '—'
          : byWebhook(sent)
            ? `— not sent: the order's PURCHASE went from Salla's order.created (${byWebhook(sent).method} → ${byWebhook(sent).eventId}; see Orders)`
            : waiting(sent)
            ? '— waiting at the receiver: an anonymous shopper (goes out as her contact once she signs in)'
            : sent.contactEvent.contactExtEventType === 'CART'
            ? '— not delivered (yet, or replaced by a newer CART of its cart)'
            : '— not delivered (yet)';
    } else {
      td.innerHTML = '<b class="type"></b> <span class="main"></span><div class="details"></div>';
      td.querySelector('.type').textContent = call.method === 'updateContactExtEvent' ? 'update' : 'add';
      td.querySelector('.main').textContent = `${call.method} → ${call.eventId}`;
      td.querySelector('.details').textContent = `as ${call.contact}`;
    }
    return td.outerHTML;
  };
  const waiting = (sent) => !sent.contact.contactId && !sent.contact.email;
  // The webhook's PURCHASE of the order a browser PURCHASE names, when that one went instead.
  const byWebhook = (sent) => {
    const hook = sent.contactEvent.contactExtEventType === 'PURCHASE' && webhooks.find((w) => w.reference === sent.contactEvent.externalId);
    return hook && calls.find((c) => c.contactEvent?.contactExtEventType === 'PURCHASE' && c.contactEvent.externalId === hook.id);
  };

  const cell = (record) => {
    if (!record) return '<td class="none">— not sent (see the console with ?sm_debug=1 for why)</td>';
    const e = record.contactEvent;
    const details = Object.keys(e).filter((k) => k.startsWith('detail')).map((k) => `${k}: ${e[k]}`);
    const main = [
      e.products && `products ${e.products}`,
      e.value !== undefined && `value ${e.value}`,
      e.externalId && `externalId ${e.externalId}`,
    ].filter(Boolean);
    const td = document.createElement('td');
    td.innerHTML = `<b class="type"></b> <span class="main"></span><div class="details"></div>`;
    td.querySelector('.type').textContent = e.contactExtEventType;
    td.querySelector('.main').textContent = main.join(' · ');
    td.querySelector('.details').textContent = details.join(' · ');
    return td.outerHTML;
  };

  function renderIdentity() {
    $('aid').textContent = localStorage.getItem('sm_aid') || '— (none yet)';
    const cookie = document.cookie.match(/(?:^|; )smclient=([^;]*)/);
    $('smclient').textContent = cookie
      ? `${decodeURIComponent(cookie[1])} (written by the tracker from the receiver's answer)`
      : '— none: an anonymous shopper';
    $('upserts').textContent = !fakeApi
      ? '(your SALESmanago account: see target/demo/receiver.log)'
      : [...new Set(upserts.map((u) => `${u.email} → ${u.contactId}`))]
          .map((card) => `${card} (${upserts.filter((u) => `${u.email} → ${u.contactId}` === card).length} upsert call(s))`)
          .join(', ') || '—';
  }

  // One row per order: the browser's PURCHASE (externalId = the storefront's order id) and Salla's
  // order.created (its reference_id is that id; the webhook's PURCHASE has Salla's own order id
  // as externalId, which is how the panel tells the two apart at SALESmanago).
  function renderOrders() {
    const orders = new Map(); // reference → { browser, webhook }
    const entry = (ref) => orders.get(ref) ?? orders.set(ref, {}).get(ref);
    for (const e of received.values()) {
      if (e.contactEvent.contactExtEventType === 'PURCHASE') entry(e.contactEvent.externalId).browser = e;
    }
    for (const w of webhooks) entry(w.reference).webhook = w;
    if (!orders.size) return;
    const purchases = calls.filter((c) => c.contactEvent?.contactExtEventType === 'PURCHASE');
    const lines = [...orders].map(([ref, { browser, webhook }]) => {
      const sources = [
        browser ? 'browser: PURCHASE taken by the receiver' : 'browser: — (no Order Completed)',
        webhook
          ? `Salla: order.created ${webhook.id} → ${webhook.status} ${webhook.answer?.duplicates ? 'duplicate (the order is known)' : webhook.answer?.accepted ? 'accepted' : JSON.stringify(webhook.answer)}`
          : 'Salla: — (no order.created yet)',
      ];
      const got = purchases.filter((c) => c.contactEvent.externalId === ref || c.contactEvent.externalId === webhook?.id);
      const td = (text, cls = '') => {
        const cell = document.createElement('td');
        cell.className = cls;
        cell.textContent = text;
        return cell;
      };
      const delivered = td('', got.length ? '' : 'none');
      if (!got.length) delivered.textContent = fakeApi ? '— not delivered (yet)' : '— sent to your SALESmanago account';
      for (const c of got) {
        const from = c.contactEvent.externalId === ref ? 'browser' : 'webhook';
        delivered.insertAdjacentHTML('beforeend', `<span class="source">from the ${from}</span> `);
        delivered.append(`${c.method} → ${c.eventId} as ${c.contact}`);
      }
      if (got.length) delivered.append(` (${got.length} PURCHASE${got.length === 1 ? '' : 'S'} sent to SALESmanago)`);
      return `<tr>${td(ref).outerHTML}${td(sources.join(' · ')).outerHTML}${delivered.outerHTML}</tr>`;
    });
    $('orders').innerHTML = lines.reverse().join('');
  }

  function render() {
    renderIdentity();
    renderOrders();
    if (!seen.length) return;
    const used = new Set();
    const lines = seen.map((s) => {
      const sent = received.get(s.id);
      const call = callFor(sent, used);
      if (call) used.add(call);
      const name = document.createElement('td');
      name.textContent = `${new Date(s.at).toLocaleTimeString()}  ${s.name}`;
      return `<tr>${name.outerHTML}${cell(sent)}${apiCell(call, sent)}</tr>`;
    });
    rows.innerHTML = lines.reverse().join('');
    counts.textContent = fakeApi
      ? `(${seen.length} from Salla, ${received.size} taken by the receiver, ${used.size} delivered to SALESmanago)`
      : `(${seen.length} from Salla, ${received.size} taken by the receiver)`;
  }

  async function poll() {
    try {
      const r = await fetch(`/received?since=${since}`).then((res) => res.json());
      for (const e of r.events) {
        received.set(e.id, e);
        since = Math.max(since, e.seq);
      }
      fakeApi = r.salesmanago !== null;
      webhooks = r.webhooks;
      const taken = (r.salesmanago || []).filter((c) => !c.refused);
      upserts = taken.filter((c) => c.method === 'upsert').map((c) => ({ email: c.body.contact.email, contactId: c.contactId }));
      calls = taken
        .filter((c) => c.method !== 'upsert')
        .map((c) => ({ method: c.method, eventId: c.eventId, contactEvent: c.body.contactEvent, contact: c.body.contactId ?? c.body.email }));
    } catch {}
    render();
    setTimeout(poll, 400);
  }
  poll();
})();
