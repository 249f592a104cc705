-- The schema as the receiver made it before migrations were managed (the last version that opened
-- its SQLite file with CREATE TABLE IF NOT EXISTS). On a database of that version every statement
-- here finds its object and does nothing; on an empty one it creates that version's schema, which
-- the migrations after this one change. Older files (a `browser` column, no `tenant`) are brought
-- to this shape first by store/legacy.rs.
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL,
    anonymous_id TEXT,
    source TEXT NOT NULL,
    event_type TEXT NOT NULL,
    external_id TEXT,
    contact_event TEXT NOT NULL,
    contact_id TEXT,
    email TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL DEFAULT 0,
    sm_event_id TEXT,
    error TEXT,
    tenant TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS events_state ON events (state);
CREATE INDEX IF NOT EXISTS events_anonymous ON events (anonymous_id, state);
CREATE INDEX IF NOT EXISTS events_cart_of ON events (external_id, anonymous_id, state)
    WHERE event_type = 'CART';
CREATE INDEX IF NOT EXISTS events_received ON events (received_at);
CREATE INDEX IF NOT EXISTS events_tenant ON events (tenant, state);
CREATE TABLE IF NOT EXISTS carts (
    tenant TEXT NOT NULL,
    external_id TEXT NOT NULL,
    contact TEXT,
    sm_event_id TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, external_id)
);
CREATE TABLE IF NOT EXISTS contacts (
    client_id TEXT NOT NULL,
    email TEXT NOT NULL,
    name TEXT,
    phone TEXT,
    contact_id TEXT,
    pending INTEGER NOT NULL,
    noted_at INTEGER NOT NULL,
    upserted_at INTEGER,
    PRIMARY KEY (client_id, email)
);
CREATE TABLE IF NOT EXISTS orders (
    tenant TEXT NOT NULL,
    order_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (tenant, order_key)
);
CREATE TABLE IF NOT EXISTS tenants (
    store_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    endpoint TEXT,
    api_key TEXT,
    api_secret TEXT,
    owner TEXT,
    location TEXT,
    problem TEXT,
    status TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (store_id, client_id)
);
