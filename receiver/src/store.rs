//! Durable state: event ids already seen (deduplication), the outbound queue, events waiting for
//! a contact (under the browser's anonymous id), the cart `externalId` → SALESmanago `eventId`
//! map, and the contact cards (email → SALESmanago `contactId`, and whether the card changed since
//! it was last upserted).
//!
//! [`Store`] is the seam: [`SqliteStore`] is one file on one machine; several receivers behind a
//! load balancer would implement it on a shared database (PostgreSQL: `INSERT … ON CONFLICT DO
//! NOTHING` for dedupe, `SELECT … FOR UPDATE SKIP LOCKED` to share the queue).
//!
//! `accept` commits before the HTTP answer is written (SQLite in WAL mode with `synchronous =
//! FULL`), so a crash after a 2xx loses nothing.

use crate::salesmanago::ContactCard;
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
    /// The SALESmanago `eventId` of the CART event for this cart, if one was added.
    fn cart_event(&mut self, external_id: &str) -> Result<Option<String>>;
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
}

/// The error an older tracker's anonymous events are stored with.
pub const UNATTACHED: &str =
    "no contact and no anonymousId (an older tracker): no later batch can name its contact";

/// [`Store`] on one SQLite file.
pub struct SqliteStore {
    db: Connection,
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
        Ok(SqliteStore { db })
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
               (id, received_at, anonymous_id, source, event_type, external_id, contact_event, contact_id, email, state, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?.execute(params![
                e.id, now_ms as i64, anonymous_id, e.source, event_type, external_id,
                e.contact_event.to_json(), contact.contact_id, contact.email, state, error
            ])?;
        if inserted == 0 {
            accepted.duplicates += 1;
            continue;
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
                   AND state IN ('queued', 'waiting')",
            )?
            .execute(params![external_id, anonymous_id, e.id])?;
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
        // Events this browser sent before it named its contact go out now, as this contact.
        tx.prepare_cached(
            "UPDATE events SET state = 'queued', contact_id = ?1, email = ?2
             WHERE anonymous_id = ?3 AND state = 'waiting'",
        )?
        .execute(params![contact.contact_id, contact.email, anonymous_id])?;
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
            .map(|a| accept_one(&tx, a.batch, now_ms, max_waiting))
            .collect::<Result<_>>()?;
        tx.commit()?;
        Ok(accepted)
    }

    fn due(&mut self, now_ms: u64, limit: usize) -> Result<Vec<Outbound>> {
        let mut stmt = self.db.prepare_cached(
            "SELECT id, contact_event, contact_id, email, event_type, external_id, attempts FROM events
             WHERE state = 'queued' AND next_at <= ?1 ORDER BY rowid LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now_ms as i64, limit as i64], |r| {
            Ok(Outbound {
                id: r.get(0)?,
                contact_event: r.get(1)?,
                contact_id: r.get(2)?,
                email: r.get(3)?,
                event_type: r.get(4)?,
                external_id: r.get(5)?,
                attempts: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn cart_event(&mut self, external_id: &str) -> Result<Option<String>> {
        Ok(self
            .db
            .query_row(
                "SELECT sm_event_id FROM carts WHERE external_id = ?1",
                [external_id],
                |r| r.get(0),
            )
            .optional()?)
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
                    "INSERT INTO carts (external_id, contact, sm_event_id, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (external_id) DO UPDATE SET contact = ?2, sm_event_id = ?3, updated_at = ?4",
                    params![cart, event.contact_key(), sm_id, now_ms as i64],
                )?;
            }
            ("PURCHASE", _, _) => {
                // The order closes the contact's cart: the next CART starts a new event.
                tx.execute(
                    "DELETE FROM carts WHERE contact IS ?1",
                    params![event.contact_key()],
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
        Ok(self.db.execute(
            "DELETE FROM events WHERE received_at < ?1
               AND state IN ('sent', 'failed', 'superseded', 'expired')",
            params![before_ms as i64],
        )?)
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
