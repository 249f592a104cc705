//! Delivers queued events to SALESmanago.
//!
//! Whenever a call slot is free, the forwarder **claims** due events from the store
//! ([`Store::claim`](crate::store::Store::claim)): atomically, with a lease, only the first queued
//! event of each contact and of each cart. So several instances can share one database: none
//! takes an event another holds, and a contact's events and a cart's add and updates go in order
//! whichever instance sends them. Up to [`PARALLEL_LANES`] calls run at once, because each call
//! waits on SALESmanago's network latency, not on us; at most [`PER_TENANT`] of them for one
//! tenant, so that one store's backlog or slow answers cannot hold back the others.
//!
//! A network error, 5xx, 408 or 429 backs off **that tenant** for as long as
//! [`retry`](crate::retry) says (its event is due again first when the pause ends): one store's
//! outage or rate limit slows no other store. An event SALESmanago refuses as invalid is logged
//! with its id and not retried.
//!
//! A refusal of the account (credentials, owner: [`Answer::Account`]) is no event's fault either,
//! and unlike an outage it does not pass by itself: delivery pauses for that tenant with every
//! event kept, `/health` and `/metrics` name it, one log line names the settings to fix, and every
//! [`account_probe`](crate::config::Config::account_probe) one of its events is tried again. When
//! SALESmanago takes it, or the store's settings change, delivery resumes where it stopped.
//!
//! Each event goes out with its own tenant's credentials ([`crate::tenants`]).
//!
//! An event that names an email goes only once the email's contact exists in the tenant's
//! SALESmanago account ([`contacts::ensure`] upserts it first if needed). The upsert's answer
//! counts as the event's: an outage or an account refusal pauses as above with the event kept; a
//! card SALESmanago refuses for itself drops the event (counted), since it has no contact to go to.

use crate::contacts::{self, NoContact};
use crate::salesmanago::{Answer, Client};
use crate::store::{ClaimRequest, Outbound};
use crate::tenants::{self, label};
use crate::{now_ms, Shared};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Calls to SALESmanago in flight at once, by default (`SM_PARALLEL_CALLS`).
pub const PARALLEL_LANES: usize = 8;
/// Calls of one tenant in flight at once, at most, by default (half of the instance's): a store
/// with a backlog of thousands, or whose SALESmanago answers slowly, leaves the other slots to the
/// other stores (and one account's API never gets more than this many calls at once from one
/// instance).
pub const PER_TENANT: usize = PARALLEL_LANES / 2;
/// How often the housekeeping, the tenants' refresh and the account probes run, at most.
const CHORES_EVERY: Duration = Duration::from_millis(500);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How often the tenants are read again (another instance may have taken a store's settings).
const REFRESH_TENANTS: Duration = Duration::from_secs(2);

/// A jitter source good enough to spread retries (not for secrets).
fn jitter() -> f64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(n % 1000) / 1000.0
}

/// Tenants SALESmanago could not take calls for, and until when this instance leaves them be.
#[derive(Default)]
struct Backoff {
    tenants: HashMap<String, (u32, Instant)>,
}

impl Backoff {
    /// `tenant` failed again: how long it waits.
    fn failed(&mut self, tenant: &str) -> Duration {
        let failures = self.tenants.get(tenant).map_or(0, |(n, _)| *n);
        let wait = crate::retry::pause(failures, jitter());
        self.tenants.insert(
            tenant.to_owned(),
            (failures.saturating_add(1), Instant::now() + wait),
        );
        wait
    }

    /// `tenant`'s calls go through again.
    fn succeeded(&mut self, tenant: &str) {
        self.tenants.remove(tenant);
    }

    /// Tenants still waiting, and how long until the first of them may go.
    fn waiting(&self) -> (Vec<String>, Option<Duration>) {
        let now = Instant::now();
        let waiting: Vec<(&String, Instant)> = self
            .tenants
            .iter()
            .filter(|(_, (_, until))| *until > now)
            .map(|(t, (_, until))| (t, *until))
            .collect();
        let next = waiting.iter().map(|(_, until)| *until - now).min();
        (waiting.into_iter().map(|(t, _)| t.clone()).collect(), next)
    }
}

/// Runs until `stopped` turns true, finishing the calls in flight.
///
/// A pipeline, not rounds: whenever a call ends, its slot is filled by a new claim, so a store
/// whose calls hang until they time out holds [`PER_TENANT`] slots at most, never the others'.
pub async fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let mut store_failures = 0u32;
    let mut backoff = Backoff::default();
    let mut last_prune: Option<Instant> = None;
    let mut last_chores: Option<Instant> = None;
    let mut last_refresh = Instant::now();
    let mut probed: HashMap<String, Instant> = HashMap::new();
    let mut running: JoinSet<(String, Outcome)> = JoinSet::new();
    let mut in_flight: HashMap<String, usize> = HashMap::new();
    loop {
        if *stopped.borrow() {
            // Let the calls in flight end and be recorded.
            while let Some(done) = running.join_next().await {
                let _ = done;
            }
            return;
        }
        if last_chores.is_none_or(|t| t.elapsed() >= CHORES_EVERY) {
            last_chores = Some(Instant::now());
            housekeeping(&shared, &mut last_prune).await;
            if last_refresh.elapsed() >= REFRESH_TENANTS {
                last_refresh = Instant::now();
                if let Err(e) = shared.refresh_tenants().await {
                    tracing::error!(error = %e, "could not read the tenants");
                }
            }
            let paused: Vec<String> = shared.account_problems().into_keys().collect();
            probed.retain(|t, _| paused.contains(t));
            for tenant in &paused {
                if in_flight.get(tenant).is_some_and(|n| *n > 0)
                    || probed
                        .get(tenant)
                        .is_some_and(|at| at.elapsed() < shared.config.account_probe)
                {
                    continue;
                }
                probed.insert(tenant.clone(), Instant::now());
                if probe(&shared, tenant, &stopped).await {
                    resume(&shared, tenant);
                }
            }
        }
        let paused: Vec<String> = shared.account_problems().into_keys().collect();
        let (waiting, next_end) = backoff.waiting();
        let parallel = shared.config.parallel_calls;
        let free = parallel.saturating_sub(running.len());
        let mut claimed_any = false;
        if free > 0 {
            let except: Vec<String> = paused.iter().chain(&waiting).cloned().collect();
            let held: Vec<(String, usize)> =
                in_flight.iter().map(|(t, n)| (t.clone(), *n)).collect();
            match claim(&shared, free, &except, &held).await {
                Err(()) => {
                    // The database failed: nothing can be claimed or recorded; wait, try again.
                    let wait = crate::retry::pause(store_failures, jitter());
                    store_failures = store_failures.saturating_add(1);
                    tokio::select! {
                        _ = stopped.changed() => {}
                        _ = tokio::time::sleep(wait) => {}
                    }
                    continue;
                }
                Ok(claimed) => {
                    store_failures = 0;
                    claimed_any = !claimed.is_empty();
                    for (event, client) in claimed {
                        let tenant = event.tenant.clone();
                        *in_flight.entry(tenant.clone()).or_default() += 1;
                        let (shared, stopped) = (shared.clone(), stopped.clone());
                        running.spawn(async move {
                            let outcome = deliver(&shared, &client, event, &stopped).await;
                            (tenant, outcome)
                        });
                    }
                }
            }
        }
        // Wait for a call to end, or (nothing claimable) for new work: a new batch wakes the
        // forwarder; a paused tenant's probe, the end of a back-off, or another instance's
        // released claims may come before that.
        let mut idle = if claimed_any && free > 0 && running.len() < parallel {
            Duration::ZERO
        } else {
            CHORES_EVERY
        };
        if !paused.is_empty() {
            idle = idle.min(shared.config.account_probe);
        }
        if let Some(next) = next_end {
            idle = idle.min(next);
        }
        tokio::select! {
            _ = stopped.changed() => {}
            Some(done) = running.join_next(), if !running.is_empty() => {
                match done {
                    Ok((tenant, outcome)) => {
                        if let Some(n) = in_flight.get_mut(&tenant) {
                            *n = n.saturating_sub(1);
                        }
                        match outcome {
                            Outcome::Done => backoff.succeeded(&tenant),
                            Outcome::Later => {
                                let wait = backoff.failed(&tenant);
                                tracing::warn!(
                                    tenant = label(&tenant),
                                    retry_in_ms = wait.as_millis() as u64,
                                    "SALESmanago unavailable; this tenant's delivery paused"
                                );
                            }
                            Outcome::Account(reason) => {
                                probed.insert(tenant.clone(), Instant::now());
                                pause_for_account(&shared, &tenant, &reason);
                            }
                            Outcome::Stopped => {}
                        }
                    }
                    // A panicking delivery leaves its event claimed: taken again after the lease.
                    Err(e) => {
                        tracing::error!(error = %e, "a delivery task failed");
                        in_flight.retain(|_, n| *n > 0);
                    }
                }
            }
            _ = shared.wake.notified(), if running.len() < parallel => {}
            _ = tokio::time::sleep(idle) => {}
        }
        in_flight.retain(|_, n| *n > 0);
    }
}

async fn housekeeping(shared: &Arc<Shared>, last_prune: &mut Option<Instant>) {
    let wait_before = now_ms().saturating_sub(shared.config.contact_wait.as_millis() as u64);
    match shared.store.expire_waiting(wait_before).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(events = n, "events expired waiting for a contact"),
        Err(e) => tracing::error!(error = %e, "could not expire waiting events"),
    }
    if last_prune.is_some_and(|t| t.elapsed() < PRUNE_EVERY) {
        return;
    }
    *last_prune = Some(Instant::now());
    // Finished events are forgotten past the retention: beyond the tracker's 7-day retry
    // horizon, so no retry can arrive for an id the receiver no longer knows.
    let before = now_ms().saturating_sub(shared.config.keep_finished.as_millis() as u64);
    match shared.store.prune(before).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            events = n,
            keep_days = shared.config.keep_finished.as_secs() / 86_400,
            "forgot finished events past their retention"
        ),
        Err(e) => tracing::error!(error = %e, "could not prune finished events"),
    }
}

/// How one event's delivery ended, for its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Recorded: taken, refused on its own merits, or its contact refused.
    Done,
    /// SALESmanago could not be reached (or the store could not record): the tenant backs off.
    Later,
    /// SALESmanago refused the tenant's account (or it cannot deliver): paused until a probe goes
    /// through or its settings change.
    Account(String),
    /// The receiver is stopping: not sent, released.
    Stopped,
}

/// The settings an account refusal points at, in the order they are most often wrong: the env
/// file's variables, or the keys of a store's settings form.
pub fn account_settings(tenant: &str) -> String {
    use crate::tenants::keys::*;
    if tenant == tenants::ENV {
        "SM_API_SECRET, SM_API_KEY, SM_CLIENT_ID, SM_OWNER, SM_API_ENDPOINT".into()
    } else {
        format!("the store's app settings {API_SECRET}, {API_KEY}, {CLIENT_ID}, {OWNER}, {API_ENDPOINT}")
    }
}

/// Pauses delivery for `tenant` (logged once, until [`resume`]).
pub(crate) fn pause_for_account(shared: &Shared, tenant: &str, reason: &str) {
    let mut problems = shared
        .account_problems
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if !problems.contains_key(tenant) {
        // The one line an operator needs; the probes that follow log at debug level only.
        tracing::error!(
            tenant = label(tenant),
            %reason,
            probe_every_s = shared.config.account_probe.as_secs_f64(),
            "SALESmanago refused the account, not an event: delivery paused for this tenant, \
             every event kept; check {} (the API secret changes when it is regenerated in \
             SALESmanago), then restart, change the settings or wait for the next probe",
            account_settings(tenant)
        );
    }
    problems.insert(tenant.to_owned(), reason.to_owned());
}

/// Delivery resumes for `tenant` (a probe went through, or its settings changed).
pub fn resume(shared: &Shared, tenant: &str) {
    let was = shared
        .account_problems
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(tenant);
    if was.is_some() {
        tracing::info!(
            tenant = label(tenant),
            "SALESmanago took a call for the account again: delivery resumed"
        );
        shared.wake.notify_one();
    }
}

/// While `tenant` is paused: tries its first due event alone. True when SALESmanago took it;
/// a refusal of the event on its own merits also says the account works.
async fn probe(shared: &Arc<Shared>, tenant: &str, stopped: &watch::Receiver<bool>) -> bool {
    let request = ClaimRequest {
        limit: 1,
        per_tenant: 1,
        only: Some(tenant),
        except: &[],
        held: &[],
        lease: shared.config.claim_lease,
    };
    let first = match shared.store.claim(now_ms(), &request).await {
        Ok(mut claimed) if !claimed.is_empty() => claimed.remove(0),
        _ => return false,
    };
    let client = match shared.client(tenant) {
        Ok(c) => c,
        Err(reason) => {
            release(shared, &first.id).await;
            pause_for_account(shared, tenant, &reason);
            return false;
        }
    };
    match deliver(shared, &client, first, stopped).await {
        Outcome::Done => true,
        Outcome::Account(reason) => {
            tracing::debug!(tenant = label(tenant), %reason, "account probe refused; delivery stays paused");
            pause_for_account(shared, tenant, &reason);
            false
        }
        Outcome::Later | Outcome::Stopped => false,
    }
}

/// Lets go of a claimed event that was not tried (due again at once, for any instance).
async fn release(shared: &Shared, id: &str) {
    if let Err(e) = shared.store.release(&[id.to_owned()]).await {
        tracing::error!(%id, error = %e, "could not release a claimed event; another instance takes it when its lease ends");
    }
}

/// Claims up to `limit` due events (tenants in `except` left out), with each one's client; an
/// event whose tenant cannot deliver is released (a paused account) or cancelled (an uninstalled
/// store). `Err` when the store could not be read.
async fn claim(
    shared: &Arc<Shared>,
    limit: usize,
    except: &[String],
    held: &[(String, usize)],
) -> Result<Vec<(Outbound, Client)>, ()> {
    let request = ClaimRequest {
        limit,
        per_tenant: (shared.config.parallel_calls / 2).max(1),
        only: None,
        except,
        held,
        lease: shared.config.claim_lease,
    };
    let claimed = match shared.store.claim(now_ms(), &request).await {
        Ok(claimed) => claimed,
        Err(e) => {
            tracing::error!(error = %e, "could not claim due events");
            return Err(());
        }
    };
    let mut ready = Vec::with_capacity(claimed.len());
    for event in claimed {
        let mut client = shared.client(&event.tenant);
        if client.is_err() && !shared.tenants().knows(&event.tenant) {
            // Routed by another instance to a store it took since this one last read the
            // tenants (every REFRESH_TENANTS): read them now, rather than pausing a tenant that
            // only this instance does not know yet.
            if shared.refresh_tenants().await.is_ok() {
                client = shared.client(&event.tenant);
            }
        }
        match client {
            Ok(client) => ready.push((event, client)),
            Err(reason) => {
                let store = shared
                    .tenants()
                    .uninstalled_store(&event.tenant)
                    .map(str::to_owned);
                match store {
                    // A batch routed just before the uninstall and committed after it: cancelled
                    // as the uninstall cancelled the rest, not a paused account.
                    Some(store) => {
                        if let Err(e) = shared.store.uninstall(&store, now_ms()).await {
                            tracing::error!(error = %e, "could not cancel an uninstalled store's events");
                        }
                    }
                    None => {
                        release(shared, &event.id).await;
                        pause_for_account(shared, &event.tenant, &reason);
                    }
                }
            }
        }
    }
    Ok(ready)
}

/// Delivers one claimed event and records the answer.
async fn deliver(
    shared: &Arc<Shared>,
    client: &Client,
    event: Outbound,
    stopped: &watch::Receiver<bool>,
) -> Outcome {
    if *stopped.borrow() {
        release(shared, &event.id).await;
        return Outcome::Stopped;
    }
    let m = &shared.metrics;
    let id = event.id.clone();
    let now = now_ms;
    if let Some(email) = event.email.as_deref() {
        match contacts::ensure(shared, &event.tenant, email).await {
            Ok(_) => {}
            Err(NoContact::Account(reason)) => {
                record_retry(shared, &id, 0, &reason).await;
                return Outcome::Account(reason);
            }
            Err(NoContact::Refused(reason)) => {
                m.failed.fetch_add(1, Relaxed);
                tracing::warn!(%id, %reason, "SALESmanago refused the event's contact card; the event is not sent");
                let reason = format!("the contact could not be upserted: {reason}");
                record_failed(shared, &id, &reason).await;
                return Outcome::Done;
            }
            Err(NoContact::Later(reason)) => {
                tracing::warn!(%id, %reason, "the event's contact could not be upserted; will retry");
                record_retry(shared, &id, later(&event), &reason).await;
                return Outcome::Later;
            }
        }
    }
    let cart_event = match (&event.event_type[..], event.external_id.as_deref()) {
        // Not knowing would add a second CART for the cart: try again later instead.
        ("CART", Some(cart)) => match shared.store.cart_event(&event.tenant, cart).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "could not read the cart's event id");
                record_retry(
                    shared,
                    &id,
                    later(&event),
                    "could not read the cart's event id",
                )
                .await;
                return Outcome::Later;
            }
        },
        _ => None,
    };
    // The upsert may have taken a while: a newer CART, the order, or the store's uninstall may
    // have finished this event meanwhile (what is on its way already cannot be called back).
    match shared.store.still_queued(&id).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(%id, "finished while it was claimed; not sent");
            return Outcome::Done;
        }
        Err(e) => {
            tracing::error!(%id, error = %e, "could not read the event's state");
            record_retry(
                shared,
                &id,
                later(&event),
                "could not read the event's state",
            )
            .await;
            return Outcome::Later;
        }
    }
    // An email names the shopper who signed in; the `smclient` id beside it may be the cookie
    // of someone who used this browser before (docs/protocol.md §3), and SALESmanago would
    // file the event under that id. The email's contact exists by now (ensured above).
    let contact_id = event
        .contact_id
        .as_deref()
        .filter(|_| event.email.is_none());
    let answer = client
        .send(
            &event.contact_event,
            contact_id,
            event.email.as_deref(),
            cart_event.as_deref(),
            now(),
        )
        .await;
    match answer {
        Answer::Taken(sm_id) => {
            m.forwarded.fetch_add(1, Relaxed);
            let update = cart_event.is_some();
            let sm_id = sm_id.or(cart_event);
            tracing::info!(%id, kind = %event.event_type, update, "forwarded");
            // Unrecorded, it would be due again (after the lease) and sent twice: insist a
            // while first.
            let mut tries = 0u64;
            loop {
                match shared
                    .store
                    .delivered(&event, sm_id.as_deref(), now())
                    .await
                {
                    Ok(()) => return Outcome::Done,
                    Err(_) if tries < 10 => tries += 1,
                    Err(e) => {
                        tracing::error!(%id, error = %e, "delivered but not recorded: it may be sent again");
                        return Outcome::Later;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200 * tries)).await;
            }
        }
        Answer::Refused(reason) => {
            m.failed.fetch_add(1, Relaxed);
            tracing::warn!(%id, %reason, "SALESmanago refused the event; not retried");
            record_failed(shared, &id, &reason).await;
            Outcome::Done
        }
        Answer::Account(reason) => {
            m.account_refusals.fetch_add(1, Relaxed);
            tracing::debug!(%id, %reason, "SALESmanago refused the account; the event is kept");
            // Due again as it was: the queue keeps its order for when the account works.
            record_retry(shared, &id, 0, &reason).await;
            Outcome::Account(reason)
        }
        Answer::Later(reason) => {
            m.retried.fetch_add(1, Relaxed);
            tracing::warn!(%id, %reason, "delivery failed; will retry");
            // Due again after its own pause, for every instance (this one also leaves the tenant
            // be meanwhile); the contact's and cart's later events wait behind it, in order.
            record_retry(shared, &id, later(&event), &reason).await;
            Outcome::Later
        }
    }
}

/// The event goes again, at `next_at_ms` (0: as soon as its tenant may).
async fn record_retry(shared: &Shared, id: &str, next_at_ms: u64, reason: &str) {
    if let Err(e) = shared.store.retry(id, next_at_ms, reason).await {
        tracing::error!(%id, error = %e, "could not record a retry; the event is due again when its claim ends");
    }
}

/// When an event SALESmanago could not take is due again: its own attempts' pause, kept in the
/// store, so that no instance calls for it before then.
fn later(event: &Outbound) -> u64 {
    now_ms().saturating_add(crate::retry::pause(event.attempts, jitter()).as_millis() as u64)
}

/// The event is not sent, ever.
async fn record_failed(shared: &Shared, id: &str, reason: &str) {
    if let Err(e) = shared.store.failed(id, reason).await {
        tracing::error!(%id, error = %e, "could not record a refusal; the event may be tried again");
    }
}
