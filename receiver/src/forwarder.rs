//! Delivers queued events to SALESmanago, one at a time in arrival order (a cart's add must have
//! its `eventId` before the update that follows it). A network error, 5xx or 429 pauses the whole
//! queue with exponential backoff (SALESmanago being down is not one event's problem, and pausing
//! everything keeps the order); an event SALESmanago refuses as invalid is logged with its id and
//! not retried.

use crate::salesmanago::{Answer, Client};
use crate::Shared;
use salla_salesmanago::outbox::backoff_ms;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A jitter source good enough to spread retries (not for secrets).
fn jitter() -> f64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(n % 1000) / 1000.0
}

/// Runs until `stopped` turns true, finishing the call in flight.
pub async fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let client = Client::new(shared.config.account.clone());
    let mut failures = 0u32;
    loop {
        if *stopped.borrow() {
            return;
        }
        let wait_before = now_ms().saturating_sub(shared.config.contact_wait.as_millis() as u64);
        match shared.store().expire_waiting(wait_before) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(events = n, "events expired waiting for a contact"),
            Err(e) => tracing::error!(error = %e, "could not expire waiting events"),
        }
        let pause = match deliver_due(&shared, &client, &stopped).await {
            Round::Done => {
                failures = 0;
                Duration::from_millis(500)
            }
            Round::Failed => {
                let wait = backoff_ms(failures, jitter());
                failures = failures.saturating_add(1);
                tracing::warn!(
                    retry_in_ms = wait,
                    "SALESmanago unavailable; delivery paused"
                );
                // New batches must not wake a paused forwarder early.
                tokio::select! {
                    _ = stopped.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                }
                continue;
            }
        };
        tokio::select! {
            _ = stopped.changed() => {}
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

enum Round {
    /// Nothing left due (or stopping).
    Done,
    /// SALESmanago could not be reached: pause before the next round.
    Failed,
}

async fn deliver_due(shared: &Shared, client: &Client, stopped: &watch::Receiver<bool>) -> Round {
    loop {
        let due = match shared.store().due(now_ms(), 100) {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "could not read the queue");
                return Round::Failed;
            }
        };
        if due.is_empty() {
            return Round::Done;
        }
        for event in due {
            if *stopped.borrow() {
                return Round::Done;
            }
            let cart_event = match (&event.event_type[..], &event.external_id) {
                // Not knowing would add a second CART for the cart: wait instead.
                ("CART", Some(cart)) => match shared.store().cart_event(cart) {
                    Ok(id) => id,
                    Err(e) => {
                        tracing::error!(error = %e, "could not read the cart's event id");
                        return Round::Failed;
                    }
                },
                _ => None,
            };
            let answer = client
                .send(
                    &event.contact_event,
                    event.contact_id.as_deref(),
                    event.email.as_deref(),
                    cart_event.as_deref(),
                    now_ms(),
                )
                .await;
            let mut store = shared.store();
            match answer {
                Answer::Taken(sm_id) => {
                    let sm_id = sm_id.or(cart_event);
                    if let Err(e) = store.delivered(&event, sm_id.as_deref(), now_ms()) {
                        tracing::error!(id = %event.id, error = %e, "delivered but not recorded");
                    }
                    tracing::info!(id = %event.id, kind = %event.event_type, update = sm_id.is_some() && event.event_type == "CART", "forwarded");
                }
                Answer::Refused(reason) => {
                    tracing::warn!(id = %event.id, %reason, "SALESmanago refused the event; not retried");
                    let _ = store.failed(&event.id, &reason);
                }
                Answer::Later(reason) => {
                    tracing::warn!(id = %event.id, %reason, "delivery failed; will retry");
                    // Due again at once when the pause ends: the queue keeps its order.
                    let _ = store.retry(&event.id, 0, &reason);
                    return Round::Failed;
                }
            }
        }
    }
}
