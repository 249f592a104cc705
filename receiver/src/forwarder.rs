//! Delivers queued events to SALESmanago.
//!
//! Order matters within a contact and within a cart (a cart's add must have its `eventId` before
//! the update that follows it; a PURCHASE closes the contact's cart), not across contacts. So the
//! due events are split into [`lanes`]: events that share a contact or a cart go in one lane, in
//! arrival order, one call at a time; up to [`PARALLEL_LANES`] lanes run at once, because each
//! call waits on SALESmanago's network latency, not on us.
//!
//! A network error, 5xx, 408 or 429 pauses the whole queue (SALESmanago being down is not one
//! event's problem) for as long as [`retry`](crate::retry) says; the event is due again first
//! when the pause ends. An event SALESmanago refuses as invalid is logged with its id and not
//! retried.
//!
//! A refusal of the account (credentials, owner: [`Answer::Account`]) is no event's fault either,
//! and unlike an outage it does not pass by itself: delivery pauses **for that tenant** (one
//! store's wrong secret holds back no other store) with every event kept, `/health` and
//! `/metrics` name it, one log line names the settings to fix, and every
//! [`account_probe`](crate::config::Config::account_probe) one of its events is tried again. When
//! SALESmanago takes it, or the store's settings change, delivery resumes where it stopped.
//!
//! Each event goes out with its own tenant's credentials ([`crate::tenants`]); a lane never holds
//! two tenants' events (its keys name the tenant).
//!
//! An event that names an email goes only once the email's contact exists in the tenant's
//! SALESmanago account ([`contacts::ensure`] upserts it first if needed). The upsert's answer
//! counts as the event's: an outage or an account refusal pauses as above with the event kept; a
//! card SALESmanago refuses for itself drops the event (counted), since it has no contact to go to.

use crate::contacts::{self, NoContact};
use crate::salesmanago::{Answer, Client};
use crate::store::Outbound;
use crate::tenants::{self, label};
use crate::{now_ms, Shared};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// Lanes delivered at once.
pub const PARALLEL_LANES: usize = 8;
/// Events read from the queue per round.
const ROUND: usize = 200;
/// Finished events are forgotten after this long: beyond the tracker's 7-day retry horizon, so
/// no retry can arrive for an id the receiver no longer knows.
const KEEP_FINISHED: Duration = Duration::from_secs(30 * 24 * 3600);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// A jitter source good enough to spread retries (not for secrets).
fn jitter() -> f64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(n % 1000) / 1000.0
}

/// Runs until `stopped` turns true, finishing the calls in flight.
pub async fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let mut failures = 0u32;
    let mut last_prune: Option<Instant> = None;
    let mut probed: HashMap<String, Instant> = HashMap::new();
    loop {
        if *stopped.borrow() {
            return;
        }
        housekeeping(&shared, &mut last_prune).await;
        let paused: Vec<String> = shared.account_problems().into_keys().collect();
        probed.retain(|t, _| paused.contains(t));
        for tenant in &paused {
            if probed
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
        let paused: Vec<String> = shared.account_problems().into_keys().collect();
        match deliver_due(&shared, &stopped, &paused).await {
            Round::Account(refused) => {
                for (tenant, reason) in refused {
                    probed.insert(tenant.clone(), Instant::now());
                    pause_for_account(&shared, &tenant, &reason);
                }
                continue;
            }
            Round::Done => failures = 0,
            Round::Failed => {
                let wait = crate::retry::pause(failures, jitter());
                failures = failures.saturating_add(1);
                tracing::warn!(
                    retry_in_ms = wait.as_millis() as u64,
                    "SALESmanago unavailable; delivery paused"
                );
                // New batches must not wake a paused forwarder early.
                tokio::select! {
                    _ = stopped.changed() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
        }
        // A paused tenant's next probe may come before anything wakes the forwarder.
        let idle = if paused.is_empty() {
            Duration::from_millis(500)
        } else {
            Duration::from_millis(500).min(shared.config.account_probe)
        };
        tokio::select! {
            _ = stopped.changed() => {}
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(idle) => {}
        }
    }
}

async fn housekeeping(shared: &Arc<Shared>, last_prune: &mut Option<Instant>) {
    let wait_before = now_ms().saturating_sub(shared.config.contact_wait.as_millis() as u64);
    match shared
        .with_store(move |s| s.expire_waiting(wait_before))
        .await
    {
        Some(Ok(0)) => {}
        Some(Ok(n)) => tracing::warn!(events = n, "events expired waiting for a contact"),
        Some(Err(e)) => tracing::error!(error = %e, "could not expire waiting events"),
        None => {}
    }
    if last_prune.is_some_and(|t| t.elapsed() < PRUNE_EVERY) {
        return;
    }
    *last_prune = Some(Instant::now());
    let before = now_ms().saturating_sub(KEEP_FINISHED.as_millis() as u64);
    match shared.with_store(move |s| s.prune(before)).await {
        Some(Ok(0)) | None => {}
        Some(Ok(n)) => tracing::info!(events = n, "forgot finished events older than 30 days"),
        Some(Err(e)) => tracing::error!(error = %e, "could not prune finished events"),
    }
}

enum Round {
    /// Nothing left due (or stopping).
    Done,
    /// SALESmanago could not be reached (or the store failed): pause before the next round.
    Failed,
    /// SALESmanago refused these tenants' accounts (or they cannot deliver): pause each until a
    /// probe goes through or its settings change.
    Account(Vec<(String, String)>),
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
    let t = tenant.to_owned();
    let first = match shared.with_store(move |s| s.first_due(&t, now_ms())).await {
        Some(Ok(Some(first))) => first,
        _ => return false,
    };
    let client = match shared.client(tenant) {
        Ok(c) => c,
        Err(reason) => {
            pause_for_account(shared, tenant, &reason);
            return false;
        }
    };
    match deliver_lane(shared, &client, vec![first], stopped).await {
        Round::Done => true,
        Round::Account(refused) => {
            for (tenant, reason) in refused {
                tracing::debug!(tenant = label(&tenant), %reason, "account probe refused; delivery stays paused");
                pause_for_account(shared, &tenant, &reason);
            }
            false
        }
        Round::Failed => false,
    }
}

/// Splits due events (in arrival order) into lanes: two events that share a contact or a cart
/// end in the same lane, each lane keeps arrival order.
pub fn lanes(due: Vec<Outbound>) -> Vec<Vec<Outbound>> {
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut parent: Vec<usize> = (0..due.len()).collect();
    let mut first_with: HashMap<String, usize> = HashMap::new();
    for (i, e) in due.iter().enumerate() {
        // Keys name the tenant: two stores' shoppers or carts never share a lane.
        let t = &e.tenant;
        let contact = e.contact_key().map(|c| format!("contact:{t}:{c}"));
        let cart = (e.event_type == "CART")
            .then(|| e.external_id.as_ref().map(|x| format!("cart:{t}:{x}")))
            .flatten();
        for key in [contact, cart].into_iter().flatten() {
            match first_with.get(&key) {
                Some(&j) => {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a.max(b)] = a.min(b);
                }
                None => {
                    first_with.insert(key, i);
                }
            }
        }
    }
    let mut lane_of_root: HashMap<usize, usize> = HashMap::new();
    let mut out: Vec<Vec<Outbound>> = Vec::new();
    for (i, e) in due.into_iter().enumerate() {
        let r = root(&mut parent, i);
        let lane = *lane_of_root.entry(r).or_insert_with(|| {
            out.push(Vec::new());
            out.len() - 1
        });
        out[lane].push(e);
    }
    out
}

async fn deliver_due(
    shared: &Arc<Shared>,
    stopped: &watch::Receiver<bool>,
    paused: &[String],
) -> Round {
    let slots = Arc::new(Semaphore::new(PARALLEL_LANES));
    let mut paused = paused.to_vec();
    loop {
        let skip = paused.clone();
        let due = match shared
            .with_store(move |s| s.due_except(now_ms(), ROUND, &skip))
            .await
        {
            Some(Ok(due)) => due,
            Some(Err(e)) => {
                tracing::error!(error = %e, "could not read the queue");
                return Round::Failed;
            }
            None => return Round::Failed,
        };
        if due.is_empty() {
            return Round::Done;
        }
        let mut running = JoinSet::new();
        let mut account = Vec::new();
        for lane in lanes(due) {
            // One tenant per lane (its keys name the tenant).
            let tenant = lane[0].tenant.clone();
            if paused.contains(&tenant) {
                continue;
            }
            let client = match shared.client(&tenant) {
                Ok(c) => c,
                Err(reason) => {
                    paused.push(tenant.clone());
                    let store = shared
                        .tenants()
                        .uninstalled_store(&tenant)
                        .map(str::to_owned);
                    match store {
                        // A batch routed just before the uninstall and committed after it: cancelled
                        // as the uninstall cancelled the rest, not a paused account.
                        Some(store) => {
                            let _ = shared
                                .with_store(move |s| s.uninstall(&store, now_ms()))
                                .await;
                        }
                        None => account.push((tenant, reason)),
                    }
                    continue;
                }
            };
            let (shared, stopped, slots) = (shared.clone(), stopped.clone(), slots.clone());
            running.spawn(async move {
                let _slot = slots.acquire_owned().await;
                deliver_lane(&shared, &client, lane, &stopped).await
            });
        }
        let mut failed = false;
        while let Some(lane) = running.join_next().await {
            match lane {
                Ok(Round::Done) => {}
                Ok(Round::Account(refused)) => account.extend(refused),
                _ => failed = true,
            }
        }
        if !account.is_empty() {
            return Round::Account(account);
        }
        if failed {
            return Round::Failed;
        }
        if *stopped.borrow() {
            return Round::Done;
        }
    }
}

async fn deliver_lane(
    shared: &Arc<Shared>,
    client: &Client,
    lane: Vec<Outbound>,
    stopped: &watch::Receiver<bool>,
) -> Round {
    // The lane's emails whose contact exists, and those whose card SALESmanago refused: one
    // look (or upsert) per email, not per event.
    let mut contacts_exist: Vec<String> = Vec::new();
    let mut cards_refused: Vec<(String, String)> = Vec::new();
    for event in lane {
        if *stopped.borrow() {
            return Round::Done;
        }
        let m = &shared.metrics;
        if let Some(email) = event.email.as_deref() {
            let refused = cards_refused.iter().find(|(e, _)| e == email);
            if let Some((_, reason)) = refused {
                m.failed.fetch_add(1, Relaxed);
                let (id, reason) = (event.id.clone(), reason.clone());
                let _ = shared.with_store(move |s| s.failed(&id, &reason)).await;
                continue;
            }
            if !contacts_exist.iter().any(|e| e == email) {
                let id = event.id.clone();
                match contacts::ensure(shared, &event.tenant, email).await {
                    Ok(_) => contacts_exist.push(email.to_owned()),
                    Err(NoContact::Account(reason)) => {
                        let kept = reason.clone();
                        let _ = shared.with_store(move |s| s.retry(&id, 0, &kept)).await;
                        return Round::Account(vec![(event.tenant.clone(), reason)]);
                    }
                    Err(NoContact::Refused(reason)) => {
                        m.failed.fetch_add(1, Relaxed);
                        tracing::warn!(%id, %reason, "SALESmanago refused the event's contact card; the event is not sent");
                        let reason = format!("the contact could not be upserted: {reason}");
                        cards_refused.push((email.to_owned(), reason.clone()));
                        let _ = shared.with_store(move |s| s.failed(&id, &reason)).await;
                        continue;
                    }
                    Err(NoContact::Later(reason)) => {
                        tracing::warn!(%id, %reason, "the event's contact could not be upserted; will retry");
                        let _ = shared.with_store(move |s| s.retry(&id, 0, &reason)).await;
                        return Round::Failed;
                    }
                }
            }
        }
        let cart_event = match (&event.event_type[..], event.external_id.clone()) {
            // Not knowing would add a second CART for the cart: pause instead.
            ("CART", Some(cart)) => match shared
                .with_store({
                    let tenant = event.tenant.clone();
                    move |s| s.cart_event(&tenant, &cart)
                })
                .await
            {
                Some(Ok(id)) => id,
                Some(Err(e)) => {
                    tracing::error!(error = %e, "could not read the cart's event id");
                    return Round::Failed;
                }
                None => return Round::Failed,
            },
            _ => None,
        };
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
                now_ms(),
            )
            .await;
        let id = event.id.clone();
        match answer {
            Answer::Taken(sm_id) => {
                m.forwarded.fetch_add(1, Relaxed);
                let update = cart_event.is_some();
                let sm_id = sm_id.or(cart_event);
                tracing::info!(%id, kind = %event.event_type, update, "forwarded");
                // Unrecorded, it would be due again and sent twice: insist a while first.
                let event = Arc::new(event);
                let mut tries = 0u64;
                loop {
                    let (e, sm_id) = (event.clone(), sm_id.clone());
                    let recorded = shared
                        .with_store(move |s| s.delivered(&e, sm_id.as_deref(), now_ms()))
                        .await;
                    match recorded {
                        Some(Ok(())) => break,
                        _ if tries < 10 => tries += 1,
                        _ => {
                            tracing::error!(%id, "delivered but not recorded: it may be sent again");
                            return Round::Failed;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
            }
            Answer::Refused(reason) => {
                m.failed.fetch_add(1, Relaxed);
                tracing::warn!(%id, %reason, "SALESmanago refused the event; not retried");
                let _ = shared.with_store(move |s| s.failed(&id, &reason)).await;
            }
            Answer::Account(reason) => {
                m.account_refusals.fetch_add(1, Relaxed);
                tracing::debug!(%id, %reason, "SALESmanago refused the account; the event is kept");
                // Due again as it was: the queue keeps its order for when the account works.
                let kept = reason.clone();
                let _ = shared.with_store(move |s| s.retry(&id, 0, &kept)).await;
                return Round::Account(vec![(event.tenant, reason)]);
            }
            Answer::Later(reason) => {
                m.retried.fetch_add(1, Relaxed);
                tracing::warn!(%id, %reason, "delivery failed; will retry");
                // Due again at once when the pause ends: the queue keeps its order.
                let _ = shared.with_store(move |s| s.retry(&id, 0, &reason)).await;
                return Round::Failed;
            }
        }
    }
    Round::Done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(id: &str, kind: &str, contact: &str, cart: Option<&str>) -> Outbound {
        Outbound {
            id: id.into(),
            contact_event: "{}".into(),
            contact_id: Some(contact.into()),
            email: None,
            event_type: kind.into(),
            external_id: cart.map(Into::into),
            attempts: 0,
            tenant: String::new(),
        }
    }

    fn ids(lanes: &[Vec<Outbound>]) -> Vec<Vec<&str>> {
        lanes
            .iter()
            .map(|l| l.iter().map(|e| e.id.as_str()).collect())
            .collect()
    }

    #[test]
    fn lanes_keep_each_contact_and_cart_in_order() {
        let due = vec![
            out("a1", "VISIT", "a", None),
            out("b1", "CART", "b", Some("cart-1")),
            out("c1", "VISIT", "c", None),
            out("a2", "CART", "a", Some("cart-2")),
            // The same cart under a contact that named itself later: one lane with b's.
            out("d1", "CART", "d", Some("cart-1")),
            out("b2", "PURCHASE", "b", Some("order-1")),
            // A PURCHASE's externalId is an order id, not a cart: it joins nothing by it.
            out("e1", "PURCHASE", "e", Some("cart-2")),
            out("c2", "OTHER", "c", None),
        ];
        assert_eq!(
            ids(&lanes(due)),
            [
                vec!["a1", "a2"],
                vec!["b1", "d1", "b2"],
                vec!["c1", "c2"],
                vec!["e1"]
            ]
        );
    }

    #[test]
    fn lanes_merge_when_a_later_event_joins_two() {
        // x and y start apart; a CART of y's contact on x's cart joins them, and arrival order
        // across the merged lane is kept.
        let due = vec![
            out("x1", "CART", "x", Some("k")),
            out("y1", "VISIT", "y", None),
            out("y2", "CART", "y", Some("k")),
            out("x2", "VISIT", "x", None),
        ];
        assert_eq!(ids(&lanes(due)), [vec!["x1", "y1", "y2", "x2"]]);
    }
}
