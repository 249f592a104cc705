// The demo's live panel: each Salla event (as Salla's analytics engine hands it to trackers)
// beside the SALESmanago event the tracker sent for it and sm-receiver took (matched by event id),
// and the API call the receiver then made to the fake SALESmanago.
(function () {
  const rows = document.getElementById('rows');
  const counts = document.getElementById('counts');
  const seen = []; // { id, name, at (ms) }
  const received = new Map(); // id → what the tracker sent, for events sm-receiver took
  let calls = []; // SALESmanago API calls the receiver made: { method, eventId, contactEvent }
  let fakeApi = true; // false when the receiver delivers to a real account (receiver.env)
  let since = 0;

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
          : sent.contactEvent.contactExtEventType === 'CART'
            ? '— not delivered (yet, or replaced by a newer CART of its cart)'
            : '— not delivered (yet)';
    } else {
      td.innerHTML = '<b class="type"></b> <span class="main"></span>';
      td.querySelector('.type').textContent = call.method === 'updateContactExtEvent' ? 'update' : 'add';
      td.querySelector('.main').textContent = `${call.method} → ${call.eventId}`;
    }
    return td.outerHTML;
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

  function render() {
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
      calls = (r.salesmanago || [])
        .filter((c) => !c.refused)
        .map((c) => ({ method: c.method, eventId: c.eventId, contactEvent: c.body.contactEvent }));
    } catch {}
    render();
    setTimeout(poll, 400);
  }
  poll();
})();
