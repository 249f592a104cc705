//! Durable state: event ids already seen (deduplication), the outbound queue, events waiting for
//! a contact (under the browser's anonymous id), the cart `externalId` → SALESmanago `eventId`
//! map, the contact cards (email → SALESmanago `contactId`, and whether the card changed since
//! it was last upserted), the orders a PURCHASE was taken for (one PURCHASE per order, from the
//! browser or Salla's webhook), and the tenants. Every event, cart and order belongs to one tenant
//! (`tenants.rs`): a SALESmanago account; contact cards belong to an account's client id.
//!
//! [`Store`] is the seam: [`SqliteStore`] is one file on one machine; several receivers behind a
//! load balancer would implement it on a shared database (PostgreSQL: `INSERT … ON CONFLICT DO
//! NOTHING` for dedupe, `SELECT … FOR UPDATE SKIP LOCKED` to share the queue).
//!
//! `accept` commits before the HTTP answer is written (SQLite in WAL mode with `synchronous =
//! FULL`), so a crash after a 2xx loses nothing.

use crate::config::{Account, Secret};
use crate::salesmanago::ContactCard;
use crate::sealed::{open_account_secrets, seal_account_secrets, SealingKey};
use crate::tenants::{Status, StoreTenant};
use rusqlite::{params, Connection, OptionalExtension};
use salla_salesmanago::received::ReceivedBatch;
use salla_salesmanago::salesmanago::ExternalEventType;
use std::path::Path;

/// What a batch did to the store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accepted {
    /// Events stored for the first time.
    pub new: usize,
    /// Events whose id was already stored (taken, not forwarded again).
    pub duplicates: usize,
    /// New events that named no contact and came without an anonymous id (an older tracker):
    /// nothing can ever name their contact, so they are stored finished (`expired`) at once.
    pub unattached: usize,
    /// The contact of the batch's email, after its card was noted.
    pub contact: Option<ContactState>,
}

/// Where a contact card stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactState {
    /// Its SALESmanago `contactId`, once an upsert answered one.
    pub contact_id: Option<String>,
    /// The card was never upserted, or learnt a name or phone since: upsert it before its events
    /// go out.
    pub pending: bool,
}

/// A contact card as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContact {
    /// The card (its latest known name and phone).
    pub card: ContactCard,
    /// Where it stands.
    pub state: ContactState,
}

/// An event due for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Outbound {
    /// The tenant whose account it goes to (`tenants::ENV` for the env file's).
    pub tenant: String,
    /// The tracker's event id.
    pub id: String,
    /// The `contactEvent`, as JSON text, exactly as received.
    pub contact_event: String,
    /// `contactId` of the contact.
    pub contact_id: Option<String>,
    /// Email of the contact.
    pub email: Option<String>,
    /// `contactExtEventType`.
    pub event_type: String,
    /// `externalId` (the cart id of a CART).
    pub external_id: Option<String>,
    /// Attempts so far.
    pub attempts: u32,
}

impl Outbound {
    /// The contact as one key: contact id, else email.
    pub fn contact_key(&self) -> Option<&str> {
        self.contact_id.as_deref().or(self.email.as_deref())
    }
}

/// Events by state, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Waiting for delivery.
    pub queued: u64,
    /// Waiting for a contact.
    pub waiting: u64,
    /// Delivered.
    pub sent: u64,
    /// Refused by SALESmanago (validation); not retried.
    pub failed: u64,
    /// Replaced by a newer CART of the same cart before delivery.
    pub superseded: u64,
    /// Waited too long for a contact.
    pub expired: u64,
    /// A PURCHASE for an order already taken (from the browser or Salla's webhook).
    pub duplicate: u64,
    /// Dropped when their store uninstalled the app.
    pub cancelled: u64,
}

/// A PURCHASE from Salla's `order.created` webhook, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookOrder {
    /// Its tenant.
    pub tenant: String,
    /// Its event id (`salla:order:<store>:<order id>`): a second delivery is a duplicate.
    pub id: String,
    /// The `contactEvent`, as JSON text (checked like a batch's).
    pub contact_event: String,
    /// The customer's email: the contact.
    pub email: String,
    /// The ids the storefront may know the order by (`id`, `reference_id`).
    pub order_keys: Vec<String>,
}

/// What storing a [`WebhookOrder`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderOutcome {
    /// Queued: this is the order's PURCHASE. `carts_closed` CART events of the customer still
    /// queued were closed by it.
    Queued {
        /// CART events closed.
        carts_closed: usize,
    },
    /// The order's PURCHASE was already taken (from the browser, or this same webhook before).
    Duplicate,
}

/// A storage failure.
#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "storage: {}", self.0)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// The receiver's durable state.
pub trait Store: Send {
    /// Stores validated batches durably, all in one commit (group commit: one disk flush for
    /// every request waiting at that moment), with the contact card of each batch that names an
    /// email. `max_waiting` bounds how many events may wait for a contact per anonymous id. The
    /// answer is one [`Accepted`] per batch, in order.
    fn accept(
        &mut self,
        arriving: &[Arriving<'_>],
        now_ms: u64,
        max_waiting: usize,
    ) -> Result<Vec<Accepted>>;
    /// Events due at `now_ms`, oldest first.
    fn due(&mut self, now_ms: u64, limit: usize) -> Result<Vec<Outbound>>;
    /// Events of the tenants in `paused` are left out.
    fn due_except(&mut self, now_ms: u64, limit: usize, paused: &[String])
        -> Result<Vec<Outbound>>;
    /// The tenant's first due event (the account probe of a paused tenant).
    fn first_due(&mut self, tenant: &str, now_ms: u64) -> Result<Option<Outbound>>;
    /// The SALESmanago `eventId` of the tenant's CART event for this cart, if one was added.
    fn cart_event(&mut self, tenant: &str, external_id: &str) -> Result<Option<String>>;
    /// Stores a PURCHASE from Salla's webhook, unless the order has one already.
    fn accept_order(&mut self, order: &WebhookOrder, now_ms: u64) -> Result<OrderOutcome>;
    /// Every store's tenant, its API key and secret opened (`sealed.rs`); secrets an earlier
    /// receiver stored in clear text are sealed now.
    fn tenants(&mut self) -> Result<Vec<StoreTenant>>;
    /// Records a store's tenant from its settings, its API key and secret sealed; the store's
    /// other tenants are replaced.
    fn save_tenant(&mut self, tenant: &StoreTenant, now_ms: u64) -> Result<()>;
    /// The store uninstalled the app: its tenants are marked so, and their events not yet
    /// delivered are cancelled. Returns how many were.
    fn uninstall(&mut self, store_id: &str, now_ms: u64) -> Result<usize>;
    /// Records a delivery: a CART's `eventId` for its cart; a PURCHASE forgets the contact's carts.
    fn delivered(&mut self, event: &Outbound, sm_event_id: Option<&str>, now_ms: u64)
        -> Result<()>;
    /// Delivery failed for a reason that may pass: try again at `next_at_ms`.
    fn retry(&mut self, id: &str, next_at_ms: u64, error: &str) -> Result<()>;
    /// SALESmanago refused the event: it will not be retried.
    fn failed(&mut self, id: &str, error: &str) -> Result<()>;
    /// Gives up on events that waited for a contact since before `before_ms`.
    fn expire_waiting(&mut self, before_ms: u64) -> Result<usize>;
    /// Forgets finished events (sent, failed, superseded, expired) received before
    /// `before_ms`: their ids no longer deduplicate, so `before_ms` must be older than anything a
    /// tracker still retries.
    fn prune(&mut self, before_ms: u64) -> Result<usize>;
    /// Events by state.
    fn counts(&mut self) -> Result<Counts>;
    /// Notes a contact card of the account `client_id` (from a batch, or from any other source of
    /// shoppers): a new email, or a name or phone the card did not have, makes it pending (to be
    /// upserted); what the card holds is never erased by a card that lacks it.
    fn note_contact(
        &mut self,
        client_id: &str,
        card: &ContactCard,
        now_ms: u64,
    ) -> Result<ContactState>;
    /// The stored card of `email`, if any.
    fn contact(&mut self, client_id: &str, email: &str) -> Result<Option<StoredContact>>;
    /// Records that SALESmanago took `card` as `contact_id`. The card stays pending if it
    /// learnt something else meanwhile.
    fn contact_upserted(
        &mut self,
        client_id: &str,
        card: &ContactCard,
        contact_id: &str,
        now_ms: u64,
    ) -> Result<()>;
}

/// A batch on its way into the store.
#[derive(Debug, Clone, Copy)]
pub struct Arriving<'a> {
    /// The validated batch: its anonymous id is the browser's, never an address or user agent
    /// (two shoppers behind one carrier NAT with the same browser are two browsers).
    pub batch: &'a ReceivedBatch,
    /// The tenant the batch was routed to (`tenants::ENV` for the env file's account).
    pub tenant: &'a str,
}

/// The error an older tracker's anonymous events are stored with.
pub const UNATTACHED: &str =
    "no contact and no anonymousId (an older tracker): no later batch can name its contact";

/// [`Store`] on one SQLite file.
pub struct SqliteStore {
    db: Connection,
    /// Seals the stores' API keys and secrets (`SM_SECRET_KEY`).
    key: Option<SealingKey>,
}

impl SqliteStore {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<SqliteStore> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError(format!("{}: {e}", dir.display())))?;
        let db = Connection::open(dir.join("receiver.sqlite3"))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 5000;",
        )?;
        migrate_browser_key(&db)?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS events (
                 id TEXT PRIMARY KEY,
                 received_at INTEGER NOT NULL,
                 -- The browser's anonymous id; NULL for an older tracker's events (and for events
                 -- stored before anonymous ids, which nothing can name any more).
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
                 error TEXT
             );
             -- The queue in arrival order: within one state an index on it is in rowid order.
             DROP INDEX IF EXISTS events_due;
             CREATE INDEX IF NOT EXISTS events_state ON events (state);
             CREATE INDEX IF NOT EXISTS events_anonymous ON events (anonymous_id, state);
             -- A new CART finds the older ones of its cart still waiting without a scan.
             CREATE INDEX IF NOT EXISTS events_cart_of ON events (external_id, anonymous_id, state)
                 WHERE event_type = 'CART';
             CREATE INDEX IF NOT EXISTS events_received ON events (received_at);
             CREATE TABLE IF NOT EXISTS carts (
                 external_id TEXT PRIMARY KEY,
                 contact TEXT,
                 sm_event_id TEXT NOT NULL,
                 updated_at INTEGER NOT NULL
             );
             -- One row per shopper of an account: upserted once, again when the card learns a
             -- name or phone (pending = 1 until then).
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
             );",
        )?;
        migrate_to_tenants(&db)?;
        db.execute_batch(
            "CREATE INDEX IF NOT EXISTS events_tenant ON events (tenant, state);
             -- One PURCHASE per order and tenant: every id the order is known by, and the event.
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
             );",
        )?;
        Ok(SqliteStore { db, key: None })
    }

    /// The key that seals the stores' API keys and secrets. Without one, a tenant with an
    /// account cannot be saved, and sealed secrets cannot be opened.
    pub fn with_sealing_key(mut self, key: Option<SealingKey>) -> SqliteStore {
        self.key = key;
        self
    }
}

/// A data dir from before anonymous ids keyed waiting events by `browser`, a hash of IP address,
/// User-Agent and Origin. The column goes (with its indexes); its rows get no anonymous id, so
/// events that were waiting keep waiting until they expire as before, and no anonymous id can ever
/// claim them.
fn migrate_browser_key(db: &Connection) -> Result<()> {
    let old = db
        .prepare("SELECT 1 FROM pragma_table_info('events') WHERE name = 'browser'")?
        .exists([])?;
    if old {
        db.execute_batch(
            "BEGIN;
             DROP INDEX IF EXISTS events_browser;
             DROP INDEX IF EXISTS events_cart;
             ALTER TABLE events DROP COLUMN browser;
             ALTER TABLE events ADD COLUMN anonymous_id TEXT;
             COMMIT;",
        )?;
        tracing::info!(
            "database migrated: waiting events are keyed by anonymous id, not by browser"
        );
    }
    Ok(())
}

/// An [`Outbound`] from a row of `id, contact_event, contact_id, email, event_type, external_id,
/// attempts, tenant`.
fn outbound(r: &rusqlite::Row<'_>) -> rusqlite::Result<Outbound> {
    Ok(Outbound {
        id: r.get(0)?,
        contact_event: r.get(1)?,
        contact_id: r.get(2)?,
        email: r.get(3)?,
        event_type: r.get(4)?,
        external_id: r.get(5)?,
        attempts: r.get(6)?,
        tenant: r.get(7)?,
    })
}

/// A database from before tenants: its events, carts and orders are the env file's account's
/// (`tenants::ENV`, the empty key).
fn migrate_to_tenants(db: &Connection) -> Result<()> {
    let has_tenant = |table: &str| -> Result<bool> {
        let mut stmt = db.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
        let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(names
            .collect::<rusqlite::Result<Vec<_>>>()?
            .iter()
            .any(|n| n == "tenant"))
    };
    if !has_tenant("events")? {
        db.execute_batch("ALTER TABLE events ADD COLUMN tenant TEXT NOT NULL DEFAULT ''")?;
    }
    if !has_tenant("carts")? {
        // The key becomes (tenant, cart): two stores may use the same cart id.
        db.execute_batch(
            "BEGIN;
             ALTER TABLE carts RENAME TO carts_before_tenants;
             CREATE TABLE carts (
                 tenant TEXT NOT NULL,
                 external_id TEXT NOT NULL,
                 contact TEXT,
                 sm_event_id TEXT NOT NULL,
                 updated_at INTEGER NOT NULL,
                 PRIMARY KEY (tenant, external_id)
             );
             INSERT INTO carts SELECT '', external_id, contact, sm_event_id, updated_at
                 FROM carts_before_tenants;
             DROP TABLE carts_before_tenants;
             COMMIT;",
        )?;
    }
    Ok(())
}

/// What an order's PURCHASE meets in `orders`.
enum Claim {
    /// The first PURCHASE of the order.
    New,
    /// The order has a PURCHASE that goes out (or went, or was refused): this one is a duplicate.
    Duplicate,
}

/// Claims the order known by `keys` for the PURCHASE `event_id` of `tenant`, inside the caller's
/// transaction. An earlier PURCHASE of the order still waiting for a contact gives way to one that
/// has a contact (it is superseded): otherwise a webhook's order with the customer's email would
/// be a duplicate of an anonymous browser PURCHASE that may never be sent.
fn claim_order(
    tx: &rusqlite::Transaction<'_>,
    tenant: &str,
    keys: &[&str],
    event_id: &str,
    named: bool,
) -> Result<Claim> {
    let mut earlier: Vec<(String, String)> = Vec::new();
    for k in keys {
        let found: Option<(String, String)> = tx
            .query_row(
                "SELECT o.event_id, COALESCE(e.state, 'sent') FROM orders o
                 LEFT JOIN events e ON e.id = o.event_id
                 WHERE o.tenant = ?1 AND o.order_key = ?2",
                params![tenant, k],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        earlier.extend(found.filter(|(id, _)| id != event_id));
    }
    let goes_out = |state: &str| matches!(state, "queued" | "sent" | "failed");
    if earlier.iter().any(|(_, state)| goes_out(state)) || (!earlier.is_empty() && !named) {
        return Ok(Claim::Duplicate);
    }
    for (id, _) in &earlier {
        tx.execute(
            "UPDATE events SET state = 'superseded', error = 'the order came again with a contact'
             WHERE id = ?1 AND state = 'waiting'",
            [id],
        )?;
    }
    for k in keys {
        tx.execute(
            "INSERT INTO orders (tenant, order_key, event_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (tenant, order_key) DO UPDATE SET event_id = ?3",
            params![tenant, k, event_id],
        )?;
    }
    Ok(Claim::New)
}

fn note_contact(
    db: &Connection,
    client_id: &str,
    card: &ContactCard,
    now_ms: u64,
) -> Result<ContactState> {
    Ok(db
        .prepare_cached(
            "INSERT INTO contacts (client_id, email, name, phone, pending, noted_at)
             VALUES (?1, ?2, ?3, ?4, 1, ?5)
             ON CONFLICT (client_id, email) DO UPDATE SET
                 name = coalesce(excluded.name, name),
                 phone = coalesce(excluded.phone, phone),
                 pending = pending OR contact_id IS NULL
                     OR (excluded.name IS NOT NULL AND excluded.name IS NOT name)
                     OR (excluded.phone IS NOT NULL AND excluded.phone IS NOT phone),
                 noted_at = excluded.noted_at
             RETURNING contact_id, pending",
        )?
        .query_row(
            params![client_id, card.email, card.name, card.phone, now_ms as i64],
            |r| {
                Ok(ContactState {
                    contact_id: r.get(0)?,
                    pending: r.get(1)?,
                })
            },
        )?)
}

/// One batch, inside the caller's transaction.
fn accept_one(
    tx: &rusqlite::Transaction<'_>,
    batch: &ReceivedBatch,
    tenant: &str,
    now_ms: u64,
    max_waiting: usize,
) -> Result<Accepted> {
    let mut accepted = Accepted::default();
    let contact = &batch.contact;
    let named = contact.names_a_contact();
    let anonymous_id = batch.anonymous_id.as_ref().map(|a| a.as_str());
    let (state, error) = match (named, anonymous_id) {
        (true, _) => ("queued", None),
        (false, Some(_)) => ("waiting", None),
        (false, None) => ("expired", Some(UNATTACHED)),
    };
    for e in &batch.events {
        let event_type = e.contact_event.event_type.as_str();
        let external_id = e.contact_event.external_id.as_deref();
        let inserted = tx.prepare_cached(
            "INSERT OR IGNORE INTO events
               (id, received_at, anonymous_id, source, event_type, external_id, contact_event, contact_id, email, state, error, tenant)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?.execute(params![
                e.id, now_ms as i64, anonymous_id, e.source, event_type, external_id,
                e.contact_event.to_json(), contact.contact_id, contact.email, state, error, tenant
            ])?;
        if inserted == 0 {
            accepted.duplicates += 1;
            continue;
        }
        // One PURCHASE per order: the webhook's `order.created` may have come first.
        if let (ExternalEventType::Purchase, Some(order)) =
            (e.contact_event.event_type, external_id)
        {
            if let Claim::Duplicate = claim_order(tx, tenant, &[order], &e.id, named)? {
                tx.execute(
                    "UPDATE events SET state = 'duplicate', error = 'the order has a PURCHASE already' WHERE id = ?1",
                    [&e.id],
                )?;
                accepted.duplicates += 1;
                continue;
            }
        }
        accepted.new += 1;
        if error.is_some() {
            accepted.unattached += 1;
            continue;
        }
        // The latest cart wins: an older CART of the same cart still waiting would overwrite
        // a newer one in SALESmanago if it went later.
        if e.contact_event.event_type == ExternalEventType::Cart {
            tx.prepare_cached(
                "UPDATE events SET state = 'superseded'
                 WHERE event_type = 'CART' AND external_id IS ?1 AND anonymous_id IS ?2 AND id != ?3
                   AND state IN ('queued', 'waiting') AND tenant = ?4",
            )?
            .execute(params![external_id, anonymous_id, e.id, tenant])?;
        }
    }
    if let Some(email) = &contact.email {
        let card = ContactCard {
            email: email.clone(),
            name: contact.name.clone(),
            phone: contact.phone.clone(),
        };
        accepted.contact = Some(note_contact(tx, &batch.client_id, &card, now_ms)?);
    }
    let Some(anonymous_id) = anonymous_id else {
        return Ok(accepted);
    };
    if named {
        // Events this browser sent before it named its contact go out now, as this contact
        // (of the same tenant only: a contact is one account's).
        tx.prepare_cached(
            "UPDATE events SET state = 'queued', contact_id = ?1, email = ?2
             WHERE anonymous_id = ?3 AND state = 'waiting' AND tenant = ?4",
        )?
        .execute(params![
            contact.contact_id,
            contact.email,
            anonymous_id,
            tenant
        ])?;
    } else {
        tx.prepare_cached(
            "UPDATE events SET state = 'expired', error = 'too many events waiting for a contact'
             WHERE rowid IN (SELECT rowid FROM events WHERE anonymous_id = ?1 AND state = 'waiting'
                             ORDER BY rowid DESC LIMIT -1 OFFSET ?2)",
        )?
        .execute(params![anonymous_id, max_waiting as i64])?;
    }
    Ok(accepted)
}

impl Store for SqliteStore {
    fn accept(
        &mut self,
        arriving: &[Arriving<'_>],
        now_ms: u64,
        max_waiting: usize,
    ) -> Result<Vec<Accepted>> {
        let tx = self.db.transaction()?;
        let accepted = arriving
            .iter()
            .map(|a| accept_one(&tx, a.batch, a.tenant, now_ms, max_waiting))
            .collect::<Result<_>>()?;
        tx.commit()?;
        Ok(accepted)
    }

    fn due(&mut self, now_ms: u64, limit: usize) -> Result<Vec<Outbound>> {
        self.due_except(now_ms, limit, &[])
    }

    fn due_except(
        &mut self,
        now_ms: u64,
        limit: usize,
        paused: &[String],
    ) -> Result<Vec<Outbound>> {
        let paused = serde_json::to_string(paused).unwrap_or_else(|_| "[]".into());
        let mut stmt = self.db.prepare_cached(
            "SELECT id, contact_event, contact_id, email, event_type, external_id, attempts, tenant FROM events
             WHERE state = 'queued' AND next_at <= ?1
               AND tenant NOT IN (SELECT value FROM json_each(?3))
             ORDER BY rowid LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now_ms as i64, limit as i64, paused], outbound)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn first_due(&mut self, tenant: &str, now_ms: u64) -> Result<Option<Outbound>> {
        Ok(self
            .db
            .prepare_cached(
                "SELECT id, contact_event, contact_id, email, event_type, external_id, attempts, tenant FROM events
                 WHERE state = 'queued' AND next_at <= ?1 AND tenant = ?2 ORDER BY rowid LIMIT 1",
            )?
            .query_row(params![now_ms as i64, tenant], outbound)
            .optional()?)
    }

    fn cart_event(&mut self, tenant: &str, external_id: &str) -> Result<Option<String>> {
        Ok(self
            .db
            .query_row(
                "SELECT sm_event_id FROM carts WHERE tenant = ?1 AND external_id = ?2",
                [tenant, external_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn accept_order(&mut self, order: &WebhookOrder, now_ms: u64) -> Result<OrderOutcome> {
        let tx = self.db.transaction()?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO events
               (id, received_at, source, event_type, external_id, contact_event, email, state, tenant)
             VALUES (?1, ?2, 'order.created', 'PURCHASE', ?3, ?4, ?5, 'queued', ?6)",
            params![
                order.id, now_ms as i64, order.order_keys.first(), order.contact_event,
                order.email, order.tenant
            ],
        )?;
        if inserted == 0 {
            return Ok(OrderOutcome::Duplicate);
        }
        let keys: Vec<&str> = order.order_keys.iter().map(String::as_str).collect();
        let outcome = match claim_order(&tx, &order.tenant, &keys, &order.id, true)? {
            Claim::Duplicate => {
                tx.execute(
                    "UPDATE events SET state = 'duplicate', error = 'the order has a PURCHASE already' WHERE id = ?1",
                    [&order.id],
                )?;
                OrderOutcome::Duplicate
            }
            Claim::New => {
                // The order closes the customer's cart: a CART still queued would describe a
                // cart that was just bought (and could start an abandoned-cart message).
                let carts_closed = tx.execute(
                    "UPDATE events SET state = 'superseded', error = 'closed by the order from Salla'
                     WHERE tenant = ?1 AND event_type = 'CART' AND email = ?2 AND state = 'queued'",
                    params![order.tenant, order.email],
                )?;
                OrderOutcome::Queued { carts_closed }
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    fn tenants(&mut self) -> Result<Vec<StoreTenant>> {
        let mut stmt = self.db.prepare(
            "SELECT store_id, client_id, endpoint, api_key, api_secret, owner, location, problem, status
             FROM tenants ORDER BY updated_at",
        )?;
        let rows = stmt.query_map([], |r| {
            let text = |i| r.get::<_, Option<String>>(i);
            let account = match (text(2)?, text(3)?, text(4)?, text(5)?) {
                (Some(endpoint), Some(key), Some(secret), Some(owner)) => Some(Account {
                    endpoint,
                    client_id: r.get(1)?,
                    api_key: Secret::from(key.as_str()),
                    api_secret: Secret::from(secret.as_str()),
                    owner,
                }),
                _ => None,
            };
            Ok(StoreTenant {
                store_id: r.get(0)?,
                client_id: r.get(1)?,
                account,
                location: text(6)?,
                problem: text(7)?,
                status: Status::parse(&r.get::<_, String>(8)?),
            })
        })?;
        let mut tenants: Vec<StoreTenant> = rows.collect::<rusqlite::Result<_>>()?;
        drop(stmt);
        for t in &mut tenants {
            if let Some(sealed) = open_account_secrets(t, self.key.as_ref()) {
                // Clear text from an earlier receiver: overwritten (secure_delete), and the WAL
                // emptied, so that no copy of it stays in the files.
                self.db.execute_batch("PRAGMA secure_delete = ON")?;
                self.db.execute(
                    "UPDATE tenants SET api_key = ?3, api_secret = ?4 WHERE store_id = ?1 AND client_id = ?2",
                    params![t.store_id, t.client_id, sealed.api_key, sealed.api_secret],
                )?;
                self.db
                    .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA secure_delete = OFF")?;
                tracing::info!(tenant = %t.key(), "the store's API key and secret, stored in clear text by an earlier receiver, are sealed now");
            }
        }
        Ok(tenants)
    }

    fn save_tenant(&mut self, t: &StoreTenant, now_ms: u64) -> Result<()> {
        let tx = self.db.transaction()?;
        tx.execute(
            "UPDATE tenants SET status = 'replaced', updated_at = ?3
             WHERE store_id = ?1 AND client_id != ?2 AND status = 'active'",
            params![t.store_id, t.client_id, now_ms as i64],
        )?;
        let a = t.account.as_ref();
        let sealed =
            seal_account_secrets(t, self.key.as_ref()).map_err(|e| StoreError(e.to_string()))?;
        tx.execute(
            "INSERT INTO tenants (store_id, client_id, endpoint, api_key, api_secret, owner, location, problem, status, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (store_id, client_id) DO UPDATE SET endpoint = ?3, api_key = ?4,
                 api_secret = ?5, owner = ?6, location = ?7, problem = ?8, status = ?9, updated_at = ?10",
            params![
                t.store_id,
                t.client_id,
                a.map(|a| &a.endpoint),
                sealed.as_ref().map(|s| &s.api_key),
                sealed.as_ref().map(|s| &s.api_secret),
                a.map(|a| &a.owner),
                t.location,
                t.problem,
                t.status.as_str(),
                now_ms as i64
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn uninstall(&mut self, store_id: &str, now_ms: u64) -> Result<usize> {
        let tx = self.db.transaction()?;
        tx.execute(
            "UPDATE tenants SET status = 'uninstalled', updated_at = ?2 WHERE store_id = ?1",
            params![store_id, now_ms as i64],
        )?;
        let cancelled = tx.execute(
            "UPDATE events SET state = 'cancelled', error = 'the store uninstalled the app'
             WHERE state IN ('queued', 'waiting')
               AND tenant IN (SELECT store_id || ':' || client_id FROM tenants WHERE store_id = ?1)",
            [store_id],
        )?;
        tx.commit()?;
        Ok(cancelled)
    }

    fn delivered(
        &mut self,
        event: &Outbound,
        sm_event_id: Option<&str>,
        now_ms: u64,
    ) -> Result<()> {
        let tx = self.db.transaction()?;
        tx.execute(
            "UPDATE events SET state = 'sent', sm_event_id = ?2, attempts = attempts + 1, error = NULL WHERE id = ?1",
            params![event.id, sm_event_id],
        )?;
        match (event.event_type.as_str(), &event.external_id, sm_event_id) {
            ("CART", Some(cart), Some(sm_id)) => {
                tx.execute(
                    "INSERT INTO carts (tenant, external_id, contact, sm_event_id, updated_at) VALUES (?5, ?1, ?2, ?3, ?4)
                     ON CONFLICT (tenant, external_id) DO UPDATE SET contact = ?2, sm_event_id = ?3, updated_at = ?4",
                    params![cart, event.contact_key(), sm_id, now_ms as i64, event.tenant],
                )?;
            }
            ("PURCHASE", _, _) => {
                // The order closes the contact's cart: the next CART starts a new event.
                tx.execute(
                    "DELETE FROM carts WHERE contact IS ?1 AND tenant = ?2",
                    params![event.contact_key(), event.tenant],
                )?;
            }
            _ => {}
        }
        tx.commit()?;
        Ok(())
    }

    fn retry(&mut self, id: &str, next_at_ms: u64, error: &str) -> Result<()> {
        self.db.execute(
            "UPDATE events SET attempts = attempts + 1, next_at = ?2, error = ?3 WHERE id = ?1",
            params![id, next_at_ms as i64, error],
        )?;
        Ok(())
    }

    fn failed(&mut self, id: &str, error: &str) -> Result<()> {
        self.db.execute(
            "UPDATE events SET state = 'failed', attempts = attempts + 1, error = ?2 WHERE id = ?1",
            params![id, error],
        )?;
        Ok(())
    }

    fn expire_waiting(&mut self, before_ms: u64) -> Result<usize> {
        Ok(self.db.execute(
            "UPDATE events SET state = 'expired', error = 'no contact named in time'
             WHERE state = 'waiting' AND received_at < ?1",
            params![before_ms as i64],
        )?)
    }

    fn prune(&mut self, before_ms: u64) -> Result<usize> {
        let pruned = self.db.execute(
            "DELETE FROM events WHERE received_at < ?1
               AND state IN ('sent', 'failed', 'superseded', 'expired', 'duplicate', 'cancelled')",
            params![before_ms as i64],
        )?;
        // An order's PURCHASE forgotten, the order is too: Salla delivers again within minutes,
        // a shopper's tracker retries for 7 days, both far inside the 30 days kept.
        self.db.execute(
            "DELETE FROM orders WHERE event_id NOT IN (SELECT id FROM events)",
            [],
        )?;
        Ok(pruned)
    }

    fn counts(&mut self) -> Result<Counts> {
        let mut c = Counts::default();
        let mut stmt = self
            .db
            .prepare_cached("SELECT state, COUNT(*) FROM events GROUP BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (state, n) = row?;
            let n = n as u64;
            match state.as_str() {
                "queued" => c.queued = n,
                "waiting" => c.waiting = n,
                "sent" => c.sent = n,
                "failed" => c.failed = n,
                "superseded" => c.superseded = n,
                "expired" => c.expired = n,
                "duplicate" => c.duplicate = n,
                "cancelled" => c.cancelled = n,
                _ => {}
            }
        }
        Ok(c)
    }

    fn note_contact(
        &mut self,
        client_id: &str,
        card: &ContactCard,
        now_ms: u64,
    ) -> Result<ContactState> {
        note_contact(&self.db, client_id, card, now_ms)
    }

    fn contact(&mut self, client_id: &str, email: &str) -> Result<Option<StoredContact>> {
        Ok(self
            .db
            .prepare_cached(
                "SELECT name, phone, contact_id, pending FROM contacts
                 WHERE client_id = ?1 AND email = ?2",
            )?
            .query_row(params![client_id, email], |r| {
                Ok(StoredContact {
                    card: ContactCard {
                        email: email.to_owned(),
                        name: r.get(0)?,
                        phone: r.get(1)?,
                    },
                    state: ContactState {
                        contact_id: r.get(2)?,
                        pending: r.get(3)?,
                    },
                })
            })
            .optional()?)
    }

    fn contact_upserted(
        &mut self,
        client_id: &str,
        card: &ContactCard,
        contact_id: &str,
        now_ms: u64,
    ) -> Result<()> {
        self.db
            .prepare_cached(
                "INSERT INTO contacts
                   (client_id, email, name, phone, contact_id, pending, noted_at, upserted_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6)
                 ON CONFLICT (client_id, email) DO UPDATE SET
                     contact_id = excluded.contact_id,
                     upserted_at = excluded.upserted_at,
                     pending = name IS NOT excluded.name OR phone IS NOT excluded.phone",
            )?
            .execute(params![
                client_id,
                card.email,
                card.name,
                card.phone,
                contact_id,
                now_ms as i64
            ])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("sm-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_database_from_before_tenants_is_the_env_accounts() {
        let d = dir("migrate");
        {
            // The schema of the previous version, with a queued event and a known cart.
            let db = Connection::open(d.join("receiver.sqlite3")).unwrap();
            db.execute_batch(
                "CREATE TABLE events (
                     id TEXT PRIMARY KEY, received_at INTEGER NOT NULL, browser TEXT NOT NULL,
                     source TEXT NOT NULL, event_type TEXT NOT NULL, external_id TEXT,
                     contact_event TEXT NOT NULL, contact_id TEXT, email TEXT, state TEXT NOT NULL,
                     attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL DEFAULT 0,
                     sm_event_id TEXT, error TEXT);
                 CREATE TABLE carts (external_id TEXT PRIMARY KEY, contact TEXT,
                     sm_event_id TEXT NOT NULL, updated_at INTEGER NOT NULL);
                 INSERT INTO events (id, received_at, browser, source, event_type, external_id,
                     contact_event, contact_id, state)
                   VALUES ('e1', 1, 'b', 'Cart Viewed', 'CART', '9', '{}', 'c-1', 'queued');
                 INSERT INTO carts VALUES ('9', 'c-1', 'sm-7', 1);",
            )
            .unwrap();
        }
        let mut s = SqliteStore::open(&d).unwrap();
        let due = s.due(10, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].tenant, crate::tenants::ENV);
        assert_eq!(s.cart_event("", "9").unwrap().as_deref(), Some("sm-7"));
        assert_eq!(
            s.cart_event("1:c", "9").unwrap(),
            None,
            "carts are per tenant"
        );
        drop(s);
        // Opening again changes nothing.
        let mut s = SqliteStore::open(&d).unwrap();
        assert_eq!(s.due(10, 10).unwrap().len(), 1);
    }

    #[test]
    fn tenants_are_kept_with_their_secrets_and_replaced_by_new_settings() {
        let key = crate::sealed::SealingKey::generate();
        let mut s = SqliteStore::open(&dir("tenants"))
            .unwrap()
            .with_sealing_key(Some(key));
        let settings = |client: &str| {
            serde_json::json!({ "client_id": client, "api_key": "k", "api_secret": "s",
                "owner": "o@x.example", "api_endpoint": "https://app3.salesmanago.pl" })
        };
        let t = |client: &str| {
            let serde_json::Value::Object(m) = settings(client) else {
                unreachable!()
            };
            crate::tenants::from_settings("42", &m).unwrap()
        };
        s.save_tenant(&t("a"), 1).unwrap();
        s.save_tenant(&t("b"), 2).unwrap();
        let kept = s.tenants().unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!(
            (kept[0].client_id.as_str(), kept[0].status),
            ("a", Status::Replaced)
        );
        assert_eq!(kept[1], t("b"));
        assert_eq!(s.uninstall("42", 3).unwrap(), 0);
        assert!(s
            .tenants()
            .unwrap()
            .iter()
            .all(|t| t.status == Status::Uninstalled));
    }
}
