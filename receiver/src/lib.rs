//! The receiver: takes the tracker's protocol v1 batches over HTTP, stores them durably, and
//! delivers each event once to SALESmanago's API v2, holding the credentials the browser must
//! never see.
//!
//! Layers, in the order data flows: [`http`] (accept, validate with the tracker's own core,
//! CORS, limits) and [`webhook`] (Salla's own calls: orders, customers, the app's settings) →
//! [`store`] (durable, deduplicating) → [`forwarder`] (paced by [`retry`]) → [`salesmanago`]
//! (API v2), each event with its own [`tenants`]' account. [`contacts`] makes sure the contact an
//! email names exists in SALESmanago before its events go (asked by `/collect`, by the webhooks
//! and by the forwarder).

pub mod config;
pub mod contacts;
pub mod forwarder;
pub mod http;
pub mod retry;
pub mod salesmanago;
pub mod sealed;
pub mod store;
pub mod tenants;
pub mod webhook;
pub mod writer;

use config::Config;
use salesmanago::Client;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use store::Store;
use tenants::Tenants;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// Counters that live as long as the process (the store keeps the durable ones).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events stored for the first time.
    pub accepted: AtomicU64,
    /// Events whose id was already stored.
    pub duplicates: AtomicU64,
    /// Requests refused (4xx).
    pub refused_requests: AtomicU64,
    /// Requests refused by a rate limit.
    pub rate_limited: AtomicU64,
    /// Batches whose `contact.email` was not an email address: the email dropped, events kept.
    pub emails_dropped: AtomicU64,
    /// Batches whose `contact.phone` was not `+` and digits: the phone dropped, events kept.
    pub phones_dropped: AtomicU64,
    /// Batches that named the shopper by phone only (no email, no contactId): SALESmanago files
    /// no contact card without an email, so their events wait for one like anonymous events.
    pub phone_only_batches: AtomicU64,
    /// Events stored finished at once: no contact and no anonymous id (an older tracker).
    pub unattached: AtomicU64,
    /// Contact cards SALESmanago took (`contact/upsert`).
    pub contacts_upserted: AtomicU64,
    /// Contact cards SALESmanago refused for themselves.
    pub contact_upserts_refused: AtomicU64,
    /// Upserts to be tried again (network, 5xx, 429, no answer in time).
    pub contact_upserts_retried: AtomicU64,
    /// `/collect` answers that carried a `contactId`.
    pub contact_ids_answered: AtomicU64,
    /// Ids an earlier page asked about (`confirm`) that the receiver held: bodies not resent.
    pub confirmed: AtomicU64,
    /// Events SALESmanago took.
    pub forwarded: AtomicU64,
    /// Events SALESmanago refused (not retried).
    pub failed: AtomicU64,
    /// Calls that will be tried again (network, 5xx, 429).
    pub retried: AtomicU64,
    /// Calls SALESmanago refused for the account (credentials, owner), the probes included.
    pub account_refusals: AtomicU64,
    /// Salla webhooks taken (stored or acted on), duplicates included.
    pub webhooks_taken: AtomicU64,
    /// Webhook calls refused: not authenticated (401) or unreadable (400).
    pub webhooks_refused: AtomicU64,
    /// Webhooks of events the receiver does not act on, answered 2xx.
    pub webhooks_ignored: AtomicU64,
    /// `order.created` without a usable customer email: no PURCHASE from the webhook (the
    /// browser's, if any, is the order's).
    pub webhook_orders_without_email: AtomicU64,
}

/// What the layers share.
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// The durable state (SQLite, or PostgreSQL shared with other instances).
    pub store: Store,
    /// In-memory counters.
    pub metrics: Metrics,
    /// Wakes the forwarder when a batch was stored.
    pub wake: Notify,
    /// The tenants: the env file's account and the stores' (kept in the store too).
    pub tenants: RwLock<Tenants>,
    /// Tenants whose delivery is paused, and why (SALESmanago refused the account, or the
    /// store's settings are incomplete).
    pub account_problems: Mutex<BTreeMap<String, String>>,
    /// One SALESmanago client per tenant, made again when its account changes.
    pub clients: Mutex<HashMap<String, (config::Account, Client)>>,
    /// One upsert at a time per email.
    pub contact_locks: contacts::Locks,
}

impl Shared {
    /// Tenants whose delivery is paused, and why.
    pub fn account_problems(&self) -> BTreeMap<String, String> {
        self.account_problems
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Why delivery is paused for the env file's account, if it is.
    pub fn account_problem(&self) -> Option<String> {
        self.account_problems().remove(tenants::ENV)
    }

    /// The SALESmanago client of `tenant`'s current account, or why it cannot deliver
    /// (incomplete settings, uninstalled, unknown).
    pub fn client(&self, tenant: &str) -> Result<Client, String> {
        let account = self.tenants().account(tenant)?.clone();
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        match clients.get(tenant) {
            Some((a, c)) if *a == account => Ok(c.clone()),
            _ => {
                let client = Client::new(account.clone());
                clients.insert(tenant.to_owned(), (account, client.clone()));
                Ok(client)
            }
        }
    }

    /// Reads the stores' tenants again from the database: another instance may have taken a
    /// store's settings (or its uninstall) since.
    pub async fn refresh_tenants(&self) -> Result<(), store::StoreError> {
        let stores = self.store.tenants().await?;
        let mut tenants = self.tenants.write().unwrap_or_else(|p| p.into_inner());
        tenants.stores = stores.into_iter().map(|t| (t.key(), t)).collect();
        Ok(())
    }

    /// The tenants, also after a panic elsewhere while they were written (each write is whole).
    pub fn tenants(&self) -> std::sync::RwLockReadGuard<'_, Tenants> {
        self.tenants.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A running receiver.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Shared state (tests read the store through it).
    pub shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    forwarder: JoinHandle<()>,
}

impl Running {
    /// Stops taking requests, lets the forwarder finish the call in flight, and returns. Events
    /// not yet delivered stay in the store for the next start.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
        let _ = self.forwarder.await;
    }
}

/// Opens the store and starts the HTTP server and the forwarder.
pub async fn start(config: Config) -> Result<Running, String> {
    if config.webhook.is_some() && config.secret_key.is_none() {
        return Err(config::no_secret_key());
    }
    let store = Store::open(config.database_url.as_deref(), &config.data_dir)
        .await
        .map_err(|e| e.to_string())?
        .with_sealing_key(config.secret_key.clone());
    let tenants = Tenants {
        env: config.account.clone(),
        env_store: config.salla_store_id.clone(),
        stores: store
            .tenants()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|t| (t.key(), t))
            .collect(),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // A store whose secrets SM_SECRET_KEY cannot open is paused from the start (logged once
    // when its row was read), not taken for an account SALESmanago refused.
    let unopened: BTreeMap<String, String> = tenants
        .stores
        .iter()
        .filter(|(_, t)| sealed::unopened(t))
        .map(|(k, t)| (k.clone(), t.problem.clone().unwrap_or_default()))
        .collect();
    let shared = Arc::new(Shared {
        clients: Mutex::new(HashMap::new()),
        contact_locks: contacts::Locks::default(),
        config,
        store,
        metrics: Metrics::default(),
        wake: Notify::new(),
        tenants: RwLock::new(tenants),
        account_problems: Mutex::new(unopened),
    });
    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(http::serve(listener, shared.clone(), stopped.clone()));
    let forwarder = tokio::spawn(forwarder::run(shared.clone(), stopped));
    tracing::info!(%addr, "receiver listening");
    Ok(Running {
        addr,
        shared,
        stop,
        server,
        forwarder,
    })
}
