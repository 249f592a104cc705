// The demo's live panel: each Salla event (as Salla's analytics engine hands it to trackers)
// beside the SALESmanago event the local receiver accepted for it, matched by event id.
(function () {
  const rows = document.getElementById('rows');
  const counts = document.getElementById('counts');
  const seen = []; // { id, name, at }
  const received = new Map(); // id → record
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
      track: (name, payload) => seen.push({ id: payload && payload.event_id, name, at: new Date() }),
      page: (payload) => seen.push({ id: payload && payload.event_id, name: 'page', at: new Date() }),
    }),
  );

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
    rows.innerHTML = seen
      .slice()
      .reverse()
      .map((s) => {
        const name = document.createElement('td');
        name.textContent = `${s.at.toLocaleTimeString()}  ${s.name}`;
        return `<tr>${name.outerHTML}${cell(received.get(s.id))}</tr>`;
      })
      .join('');
    counts.textContent = `(${seen.length} from Salla, ${received.size} received)`;
  }

  async function poll() {
    try {
      const r = await fetch(`/received?since=${since}`).then((res) => res.json());
      for (const e of r.events) {
        received.set(e.id, e);
        since = Math.max(since, e.seq);
      }
    } catch {}
    render();
    setTimeout(poll, 400);
  }
  poll();
})();
