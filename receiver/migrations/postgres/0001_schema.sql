-- The receiver's schema on PostgreSQL (the same tables as SQLite's after its migrations; see
-- migrations/sqlite). Several receiver instances share it: events are claimed with a lease
-- (`claimed_until`), deduplicated by their id's uniqueness, and ordered by `seq`.
CREATE TABLE events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL DEFAULT '',
    received_at BIGINT NOT NULL,
    anonymous_id TEXT,
    source TEXT NOT NULL,
    event_type TEXT NOT NULL,
    external_id TEXT,
    contact_event TEXT NOT NULL,
    contact_id TEXT,
    email TEXT,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL DEFAULT 0,
    claimed_until BIGINT NOT NULL DEFAULT 0,
    sm_event_id TEXT,
    error TEXT
);
CREATE INDEX events_queue ON events (tenant, seq) WHERE state = 'queued';
CREATE INDEX events_contact ON events (tenant, (COALESCE(contact_id, email)), seq)
    WHERE state = 'queued' OR claimed_until > 0;
CREATE INDEX events_cart ON events (tenant, external_id, seq) WHERE event_type = 'CART';
CREATE INDEX events_anonymous ON events (anonymous_id, state);
CREATE INDEX events_state ON events (state, received_at);
CREATE INDEX events_received ON events (received_at);
CREATE INDEX events_email ON events (tenant, email) WHERE event_type = 'CART';

-- A CART's SALESmanago eventId per cart: the next CART of the cart updates that event.
CREATE TABLE carts (
    tenant TEXT NOT NULL,
    external_id TEXT NOT NULL,
    contact TEXT,
    sm_event_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, external_id)
);
-- One row per shopper of an account: upserted once, again when the card learns a name or phone
-- (pending = 1 until then).
CREATE TABLE contacts (
    client_id TEXT NOT NULL,
    email TEXT NOT NULL,
    name TEXT,
    phone TEXT,
    contact_id TEXT,
    pending BIGINT NOT NULL,
    noted_at BIGINT NOT NULL,
    upserted_at BIGINT,
    PRIMARY KEY (client_id, email)
);
-- One PURCHASE per order and tenant: every id the order is known by, and the event.
CREATE TABLE orders (
    tenant TEXT NOT NULL,
    order_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (tenant, order_key)
);
CREATE INDEX orders_event ON orders (event_id);
CREATE TABLE tenants (
    store_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    endpoint TEXT,
    api_key TEXT,
    api_secret TEXT,
    owner TEXT,
    location TEXT,
    problem TEXT,
    status TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (store_id, client_id)
);
