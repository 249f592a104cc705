-- Events get an explicit arrival sequence (`seq`, the rowid they had) and a claim: an instance
-- that takes an event to deliver it holds it until `claimed_until`, so that no other takes it
-- meanwhile, and one that died lets go when the time passes. The table is rebuilt (SQLite adds
-- neither a primary key nor a unique column in place).
CREATE TABLE events_next (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL DEFAULT '',
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
    claimed_until INTEGER NOT NULL DEFAULT 0,
    sm_event_id TEXT,
    error TEXT
);
INSERT INTO events_next (seq, id, tenant, received_at, anonymous_id, source, event_type,
        external_id, contact_event, contact_id, email, state, attempts, next_at, sm_event_id, error)
    SELECT rowid, id, tenant, received_at, anonymous_id, source, event_type, external_id,
        contact_event, contact_id, email, state, attempts, next_at, sm_event_id, error
    FROM events ORDER BY rowid;
DROP TABLE events;
ALTER TABLE events_next RENAME TO events;
-- The queue of each tenant in arrival order (the claim ranks tenants' events against each other).
CREATE INDEX events_queue ON events (tenant, seq) WHERE state = 'queued';
-- "Is an earlier event of this contact still queued, or on its way?" (a contact's events go in
-- order).
CREATE INDEX events_contact ON events (tenant, (COALESCE(contact_id, email)), seq)
    WHERE state = 'queued' OR claimed_until > 0;
-- A cart's CART events: the newest supersedes the older ones, and they go in order (one superseded
-- while it was being sent holds the next until its call is recorded).
CREATE INDEX events_cart ON events (tenant, external_id, seq) WHERE event_type = 'CART';
CREATE INDEX events_anonymous ON events (anonymous_id, state);
CREATE INDEX events_state ON events (state, received_at);
CREATE INDEX events_received ON events (received_at);
CREATE INDEX events_email ON events (tenant, email) WHERE event_type = 'CART';
CREATE INDEX orders_event ON orders (event_id);
