//! Contacts: SALESmanago files an event only under a contact that exists, so a shopper named by
//! email is upserted (`contact/upsert`) before any of their events is sent, and once, not per batch.
//!
//! A card is noted in the store with the batch that names it ([`crate::store::Store::accept`]), or
//! by any other source of shoppers through [`crate::store::Store::note_contact`]. [`ensure`] turns
//! a noted email into a `contactId`: from the store when the card was upserted and has learnt
//! nothing since, else by one upsert. `/collect` calls it inline (bounded by [`INLINE_WAIT`]) to
//! answer the `contactId`; the forwarder calls it before it sends an email's events. Both may ask
//! for the same email at once: one lock per email (striped) lets one upsert go, and the other
//! reads its result.

use crate::salesmanago::{Answer, ContactCard};
use crate::store::ContactState;
use crate::{now_ms, Shared};
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// How long `/collect` waits for an upsert before it answers without the `contactId` (the batch is
/// stored by then; the forwarder finishes the upsert). Short: a tracker holds its queue meanwhile,
/// and a shopper's page may be leaving.
pub const INLINE_WAIT: Duration = Duration::from_secs(2);

/// Locks that serialise the upserts of one email (an email always takes the same one).
pub struct Locks([tokio::sync::Mutex<()>; 64]);

impl Default for Locks {
    fn default() -> Self {
        Locks(std::array::from_fn(|_| tokio::sync::Mutex::new(())))
    }
}

impl Locks {
    fn of(&self, email: &str) -> &tokio::sync::Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        email.hash(&mut h);
        &self.0[(h.finish() % self.0.len() as u64) as usize]
    }
}

/// Why [`ensure`] has no `contactId` to give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoContact {
    /// SALESmanago refused the card for itself: retrying it will not help.
    Refused(String),
    /// SALESmanago refused the account (credentials, owner): pause, keep every event.
    Account(String),
    /// Unreachable, 5xx, 429, a timeout, or the store failed: try again later.
    Later(String),
}

/// The `contactId` of `email` in `tenant`'s account, upserting its card first when SALESmanago does not
/// have it as stored. An email with no card noted (a queue from before contact cards) is upserted
/// with the email alone. `Err` says why not (the upsert's answer is counted here); the caller
/// decides what it means for its events.
pub async fn ensure(shared: &Arc<Shared>, tenant: &str, email: &str) -> Result<String, NoContact> {
    // A tenant that cannot deliver (incomplete settings) cannot upsert either: an account problem.
    let client = shared.client(tenant).map_err(NoContact::Account)?;
    let _one_at_a_time = shared.contact_locks.of(email).lock().await;
    // Cards belong to the account (its client id): two stores of one account share them.
    let client_id = client.client_id().to_owned();
    let stored = match shared.store.contact(&client_id, email).await {
        Ok(stored) => stored,
        Err(e) => return Err(NoContact::Later(e.to_string())),
    };
    let card = match stored {
        Some(s) if !s.state.pending => {
            if let Some(id) = s.state.contact_id {
                return Ok(id);
            }
            s.card
        }
        Some(s) => s.card,
        None => ContactCard {
            email: email.to_owned(),
            name: None,
            phone: None,
        },
    };
    let m = &shared.metrics;
    match client.upsert_contact(&card, now_ms()).await {
        Answer::Taken(Some(id)) => {
            m.contacts_upserted.fetch_add(1, Relaxed);
            tracing::info!(contact_id = %id, "contact upserted");
            // Unrecorded, the next ensure upserts again: harmless (an upsert is idempotent).
            if let Err(e) = shared
                .store
                .contact_upserted(&client_id, &card, &id, now_ms())
                .await
            {
                tracing::error!(error = %e, "could not record a contactId");
            }
            Ok(id)
        }
        Answer::Taken(None) => {
            m.contact_upserts_retried.fetch_add(1, Relaxed);
            Err(NoContact::Later("contact/upsert: no contactId".into()))
        }
        Answer::Account(reason) => {
            m.account_refusals.fetch_add(1, Relaxed);
            Err(NoContact::Account(reason))
        }
        Answer::Refused(reason) => {
            m.contact_upserts_refused.fetch_add(1, Relaxed);
            // Without the address: it is personal data.
            tracing::warn!(%reason, "SALESmanago refused a contact card");
            Err(NoContact::Refused(reason))
        }
        Answer::Later(reason) => {
            m.contact_upserts_retried.fetch_add(1, Relaxed);
            Err(NoContact::Later(reason))
        }
    }
}

/// Notes `card` (from any source of shoppers) in `tenant`'s account and makes sure SALESmanago has
/// it: the `contactId`, upserting only when the card is new or learnt a name or phone.
pub async fn note_and_ensure(
    shared: &Arc<Shared>,
    tenant: &str,
    card: ContactCard,
) -> Result<String, NoContact> {
    let client = shared.client(tenant).map_err(NoContact::Account)?;
    match shared
        .store
        .note_contact(client.client_id(), &card, now_ms())
        .await
    {
        Ok(_) => ensure(shared, tenant, &card.email).await,
        Err(e) => Err(NoContact::Later(e.to_string())),
    }
}

/// The `contactId` of `email` for an answer that cannot wait long (a batch's, a webhook's): the
/// stored one when the card has nothing new for SALESmanago; else the upsert's, if it answers
/// within [`INLINE_WAIT`] (it goes on after that, and the forwarder upserts before the email's
/// events go in any case). While the
/// account is paused no upsert is tried here; a contact known before is still answered.
pub async fn within_wait(
    shared: &Arc<Shared>,
    tenant: &str,
    email: String,
    state: ContactState,
) -> Option<String> {
    if !state.pending || shared.account_problems().contains_key(tenant) {
        return state.contact_id;
    }
    let upsert = tokio::spawn({
        let (shared, tenant) = (shared.clone(), tenant.to_owned());
        async move {
            let answer = ensure(&shared, &tenant, &email).await;
            if let Err(NoContact::Account(reason)) = &answer {
                crate::forwarder::pause_for_account(&shared, &tenant, reason);
            }
            answer
        }
    });
    match tokio::time::timeout(INLINE_WAIT, upsert).await {
        Ok(Ok(Ok(id))) => Some(id),
        _ => state.contact_id,
    }
}
