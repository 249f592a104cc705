//! Durable state: event ids already seen (deduplication), the outbound queue, events waiting for
//! a contact (under the browser's anonymous id), the cart `externalId` → SALESmanago `eventId`
//! map, the contact cards (email → SALESmanago `contactId`, and whether the card changed since
//! it was last upserted), the orders a PURCHASE was taken for (one PURCHASE per order, from the
//! browser or Salla's webhook), and the tenants. Every event, cart and order belongs to one tenant
//! (`tenants.rs`): a SALESmanago account; contact cards belong to an account's client id.
//!
//! One [`Store`] over two databases, chosen by `SM_DATABASE_URL`:
//! - **SQLite** (the default, no server): one file in the data directory, one process, one
//!   connection (transactions begin `IMMEDIATE`, so a claim is atomic), WAL with `synchronous =
//!   FULL` — except a claim's commit, which need not survive a crash (claims are let go at start);
//! - **PostgreSQL**: several receiver instances share it; claims take rows with
//!   `FOR UPDATE SKIP LOCKED`, duplicates meet the unique event id.
//!
//! The SQL is one text for both (sqlx's `Any` driver; both take `$n` parameters, `ON CONFLICT`,
//! `RETURNING`, `IS DISTINCT FROM`) except where [`Backend`] says otherwise. The schema is sqlx's
//! migrations in `receiver/migrations/{sqlite,postgres}`.
//!
//! Ordering lives here, not in an instance's memory: an event is claimed only when no earlier
//! event of its contact (or, for a CART, of its cart) is still queued, so whichever instance
//! delivers it, a cart's add precedes its updates and a contact's events keep their order.
//!
//! `accept` commits before the HTTP answer is written, so a crash after a 2xx loses nothing.

mod accept;
mod accounts;
mod legacy;
mod queue;

use crate::salesmanago::ContactCard;
use salla_salesmanago::received::ReceivedBatch;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Executor};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub use queue::{ClaimRequest, Counts};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Connections an instance holds to PostgreSQL (requests, the group writer and the forwarder's
/// lanes share them).
const POSTGRES_CONNECTIONS: u32 = 12;

/// Connections to the SQLite file: one. With more, readers could go on while a writer commits,
/// but writers waiting for the lock sleep in SQLite's busy handler: measured 2.6× slower under the
/// load benchmark than one connection every statement queues for.
const SQLITE_CONNECTIONS: u32 = 1;

/// Which database the store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file, one connection.
    Sqlite,
    /// A server several instances share.
    Postgres,
}

/// Where an event stands. Stored as its [`as_str`](EventState::as_str) text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventState {
    /// Named no contact yet: waits for a batch of its browser that names one.
    Waiting,
    /// Due for delivery (at `next_at`).
    Queued,
    /// SALESmanago took it.
    Sent,
    /// SALESmanago refused it on its own merits; not retried.
    Failed,
    /// Replaced before delivery (a newer CART of the cart, an order that closed it, or the same
    /// order with a contact).
    Superseded,
    /// Waited too long for a contact, or can never have one.
    Expired,
    /// A PURCHASE for an order that has one already.
    Duplicate,
    /// Its store uninstalled the app.
    Cancelled,
}

impl EventState {
    /// The stored text.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventState::Waiting => "waiting",
            EventState::Queued => "queued",
            EventState::Sent => "sent",
            EventState::Failed => "failed",
            EventState::Superseded => "superseded",
            EventState::Expired => "expired",
            EventState::Duplicate => "duplicate",
            EventState::Cancelled => "cancelled",
        }
    }

    /// Every state.
    pub const ALL: [EventState; 8] = [
        EventState::Waiting,
        EventState::Queued,
        EventState::Sent,
        EventState::Failed,
        EventState::Superseded,
        EventState::Expired,
        EventState::Duplicate,
        EventState::Cancelled,
    ];

    /// The state stored as `text`, if it is one.
    pub fn parse(text: &str) -> Option<EventState> {
        EventState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

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

/// An event claimed for delivery.
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

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or could not be reached.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought to this version.
    #[error("database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A store's secrets cannot be saved without `SM_SECRET_KEY`.
    #[error("{0}")]
    NoKey(#[from] crate::sealed::NoKey),
    /// The database's location is not usable.
    #[error("database location: {0}")]
    Location(String),
}

impl StoreError {
    /// The database rolled the transaction back because it met another one (PostgreSQL's
    /// deadlock or serialization failure: SQLSTATE 40P01, 40001); trying again is safe.
    pub fn is_conflict(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("40P01" | "40001"))
            }
            _ => false,
        }
    }
}

pub(crate) type Result<T> = std::result::Result<T, StoreError>;

/// The receiver's durable state (cheap to clone: a pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Seals the stores' API keys and secrets (`SM_SECRET_KEY`, `sealed.rs`).
    key: Option<crate::sealed::SealingKey>,
}

impl Store {
    /// Opens the database: PostgreSQL at `database_url` when given, else the SQLite file in
    /// `data_dir` (created if missing). Brings its schema to this version.
    pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let store = match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let options = AnyConnectOptions::from_str(url)?
                    .log_statements(tracing::log::LevelFilter::Trace)
                    .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(2));
                let pool = AnyPoolOptions::new()
                    .max_connections(POSTGRES_CONNECTIONS)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                POSTGRES_MIGRATIONS.run(&pool).await?;
                Store {
                    pool,
                    backend: Backend::Postgres,
                    key: None,
                }
            }
            Some(other) => {
                return Err(StoreError::Location(format!(
                    "SM_DATABASE_URL must start with postgres:// (leave it unset for SQLite in \
                     SM_DATA_DIR), got \"{}\"",
                    other.split('@').next_back().unwrap_or_default()
                )))
            }
            None => {
                std::fs::create_dir_all(data_dir)
                    .map_err(|e| StoreError::Location(format!("{}: {e}", data_dir.display())))?;
                let file = std::path::absolute(data_dir.join("receiver.sqlite3"))
                    .map_err(|e| StoreError::Location(format!("{}: {e}", data_dir.display())))?;
                let url = format!("sqlite://{}?mode=rwc", file.display());
                let options = AnyConnectOptions::from_str(&url)?
                    .log_statements(tracing::log::LevelFilter::Trace);
                let pool = AnyPoolOptions::new()
                    // One writer: every statement queues for the one connection. Transactions
                    // that write still begin IMMEDIATE (`Store::begin`), so that a second process
                    // on the same file (which the receiver does not do) could not break a claim.
                    .max_connections(SQLITE_CONNECTIONS)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA busy_timeout = 5000;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?;
                legacy::upgrade(&pool).await?;
                SQLITE_MIGRATIONS.run(&pool).await?;
                // One process per file: a claim left in it is this process's previous life's
                // (stopped, or killed mid-call), due again now rather than when its lease ends.
                sqlx::query("UPDATE events SET claimed_until = 0 WHERE claimed_until <> 0")
                    .execute(&pool)
                    .await?;
                Store {
                    pool,
                    backend: Backend::Sqlite,
                    key: None,
                }
            }
        };
        Ok(store)
    }

    /// The key that seals the stores' API keys and secrets. Without one, a tenant with an
    /// account cannot be saved, and sealed secrets cannot be opened.
    pub fn with_sealing_key(mut self, key: Option<crate::sealed::SealingKey>) -> Store {
        self.key = key;
        self
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that writes. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`,
    /// waiting up to `busy_timeout` for another writer): one that read first and wrote later
    /// could find another writer's commit between the two and be refused.
    pub(crate) async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the connections (a stopping receiver; tests that open the same file again).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `u64` milliseconds as the databases' signed 64-bit integers.
pub(crate) fn ms(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}
