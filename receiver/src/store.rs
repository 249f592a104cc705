//! Durable state: event ids already seen (deduplication), the outbound queue, events waiting for
//! a contact, and the cart `externalId` → SALESmanago `eventId` map.
//!
//! [`Store`] is the seam: [`SqliteStore`] is one file on one machine; several receivers behind a
//! load balancer would implement it on a shared database (PostgreSQL: `INSERT … ON CONFLICT DO
//! NOTHING` for dedupe, `SELECT … FOR UPDATE SKIP LOCKED` to share the queue).
//!
//! `accept` commits before the HTTP answer is written (SQLite in WAL mode with `synchronous =
//! FULL`), so a crash after a 2xx loses nothing.

use rusqlite::{params, Connection, OptionalExtension};
use salla_salesmanago::received::ReceivedBatch;
use salla_salesmanago::salesmanago::ExternalEventType;
use std::path::Path;

/// What a batch did to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Accepted {
    /// Events stored for the first time.
    pub new: usize,
    /// Events whose id was already stored (taken, not forwarded again).
    pub duplicates: usize,
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
    /// every request waiting at that moment). `max_waiting` bounds how many events may wait for a
    /// contact per browser. The answer is one [`Accepted`] per batch, in order.
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
}

/// A batch on its way into the store.
#[derive(Debug, Clone, Copy)]
pub struct Arriving<'a> {
    /// The validated batch.
    pub batch: &'a ReceivedBatch,
    /// The sending browser (see `http::browser_key`).
    pub browser: &'a str,
}

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
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS events (
                 id TEXT PRIMARY KEY,
                 received_at INTEGER NOT NULL,
                 browser TEXT NOT NULL,
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
             CREATE INDEX IF NOT EXISTS events_browser ON events (browser, state);
             -- A new CART finds the older ones of its cart still waiting without a scan.
             CREATE INDEX IF NOT EXISTS events_cart ON events (external_id, browser, state)
                 WHERE event_type = 'CART';
             CREATE INDEX IF NOT EXISTS events_received ON events (received_at);
             CREATE TABLE IF NOT EXISTS carts (
                 external_id TEXT PRIMARY KEY,
                 contact TEXT,
                 sm_event_id TEXT NOT NULL,
                 updated_at INTEGER NOT NULL
             );",
        )?;
        Ok(SqliteStore { db })
    }
}

/// One batch, inside the caller's transaction.
fn accept_one(
    tx: &rusqlite::Transaction<'_>,
    batch: &ReceivedBatch,
    browser: &str,
    now_ms: u64,
    max_waiting: usize,
) -> Result<Accepted> {
    let mut accepted = Accepted::default();
    let named = batch.contact.contact_id.is_some() || batch.contact.email.is_some();
    let state = if named { "queued" } else { "waiting" };
    for e in &batch.events {
        let event_type = e.contact_event.event_type.as_str();
        let external_id = e.contact_event.external_id.as_deref();
        let inserted = tx.prepare_cached(
            "INSERT OR IGNORE INTO events
               (id, received_at, browser, source, event_type, external_id, contact_event, contact_id, email, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?.execute(params![
                e.id, now_ms as i64, browser, e.source, event_type, external_id,
                e.contact_event.to_json(), batch.contact.contact_id, batch.contact.email, state
            ])?;
        if inserted == 0 {
            accepted.duplicates += 1;
            continue;
        }
        accepted.new += 1;
        // The latest cart wins: an older CART of the same cart still waiting would overwrite
        // a newer one in SALESmanago if it went later.
        if e.contact_event.event_type == ExternalEventType::Cart {
            tx.prepare_cached(
                "UPDATE events SET state = 'superseded'
                 WHERE event_type = 'CART' AND external_id IS ?1 AND browser = ?2 AND id != ?3
                   AND state IN ('queued', 'waiting')",
            )?
            .execute(params![external_id, browser, e.id])?;
        }
    }
    if named {
        // Events this browser sent before it named its contact go out now, as this contact.
        tx.execute(
            "UPDATE events SET state = 'queued', contact_id = ?1, email = ?2
             WHERE browser = ?3 AND state = 'waiting'",
            params![batch.contact.contact_id, batch.contact.email, browser],
        )?;
    } else {
        tx.execute(
            "UPDATE events SET state = 'expired', error = 'too many events waiting for a contact'
             WHERE rowid IN (SELECT rowid FROM events WHERE browser = ?1 AND state = 'waiting'
                             ORDER BY rowid DESC LIMIT -1 OFFSET ?2)",
            params![browser, max_waiting as i64],
        )?;
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
            .map(|a| accept_one(&tx, a.batch, a.browser, now_ms, max_waiting))
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
}
