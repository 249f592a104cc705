//! Taking events in: a batch from the tracker (deduplicated, waiting or queued, older CARTs of
//! the cart superseded, the browser's waiting events released when it names its contact) and a
//! PURCHASE from Salla's `order.created` (one per order, whichever source came first).

use super::accounts::note_contact_in;
use super::{
    ms, Accepted, Arriving, EventState, OrderOutcome, Result, Store, WebhookOrder, UNATTACHED,
};
use crate::salesmanago::ContactCard;
use salla_salesmanago::received::ReceivedBatch;
use salla_salesmanago::salesmanago::ExternalEventType;
use sqlx::AnyConnection;
use sqlx::Row;

use EventState::{Duplicate, Expired, Queued, Superseded, Waiting};

/// How often a transaction that met another instance's (a deadlock, on PostgreSQL) is tried again:
/// the database rolled it back whole, so trying again is safe.
const CONFLICT_RETRIES: u32 = 5;

/// What an order's PURCHASE meets in `orders`.
enum Claim {
    /// The first PURCHASE of the order.
    New,
    /// The order has a PURCHASE that goes out (or went, or was refused): this one is a duplicate.
    Duplicate,
}

impl Store {
    /// Stores validated batches durably, all in one commit (group commit: one disk flush for
    /// every request waiting at that moment), with the contact card of each batch that names an
    /// email. `max_waiting` bounds how many events may wait for a contact per anonymous id. The
    /// answer is one [`Accepted`] per batch, in order.
    pub async fn accept(
        &self,
        arriving: &[Arriving<'_>],
        now_ms: u64,
        max_waiting: usize,
    ) -> Result<Vec<Accepted>> {
        let mut attempt = 0;
        loop {
            match self.accept_all(arriving, now_ms, max_waiting).await {
                Err(e) if e.is_conflict() && attempt < CONFLICT_RETRIES => attempt += 1,
                done => return done,
            }
        }
    }

    async fn accept_all(
        &self,
        arriving: &[Arriving<'_>],
        now_ms: u64,
        max_waiting: usize,
    ) -> Result<Vec<Accepted>> {
        let mut tx = self.begin().await?;
        let mut accepted = Vec::with_capacity(arriving.len());
        for a in arriving {
            accepted.push(
                self.accept_one(&mut tx, a.batch, a.tenant, now_ms, max_waiting)
                    .await?,
            );
        }
        tx.commit().await?;
        Ok(accepted)
    }

    /// One batch, inside the caller's transaction.
    async fn accept_one(
        &self,
        tx: &mut AnyConnection,
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
            (true, _) => (Queued, None),
            (false, Some(_)) => (Waiting, None),
            (false, None) => (Expired, Some(UNATTACHED)),
        };
        let mut inserted = insert_events(tx, batch, tenant, now_ms, state, error).await?;
        for e in &batch.events {
            let external_id = e.contact_event.external_id.as_deref();
            // Each id once: a second event of the batch with the same id is a duplicate too.
            let Some(at) = inserted.iter().position(|id| *id == e.id) else {
                accepted.duplicates += 1;
                continue;
            };
            inserted.swap_remove(at);
            // One PURCHASE per order: the webhook's `order.created` may have come first.
            if let (ExternalEventType::Purchase, Some(order)) =
                (e.contact_event.event_type, external_id)
            {
                if let Claim::Duplicate = claim_order(tx, tenant, &[order], &e.id, named).await? {
                    set_state(tx, &e.id, Duplicate, "the order has a PURCHASE already").await?;
                    accepted.duplicates += 1;
                    continue;
                }
            }
            accepted.new += 1;
            if error.is_some() {
                accepted.unattached += 1;
                continue;
            }
            // The latest cart wins (the batch's events are all stored by now: only older ones go
            // by arrival, `seq`): an older CART of the same cart still waiting would overwrite
            // a newer one in SALESmanago if it went later. One being delivered right now (claimed)
            // is superseded too; this one waits for that call to end (see `queue::candidates`).
            if e.contact_event.event_type == ExternalEventType::Cart {
                sqlx::query(
                    "UPDATE events SET state = $5
                     WHERE tenant = $4 AND event_type = 'CART' AND external_id IS NOT DISTINCT FROM $1
                       AND anonymous_id IS NOT DISTINCT FROM $2
                       AND seq < (SELECT seq FROM events WHERE id = $3)
                       AND state IN ('queued', 'waiting')",
                )
                .bind(external_id)
                .bind(anonymous_id)
                .bind(&e.id)
                .bind(tenant)
                .bind(Superseded.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
        if let Some(email) = &contact.email {
            let card = ContactCard {
                email: email.clone(),
                name: contact.name.clone(),
                phone: contact.phone.clone(),
            };
            accepted.contact = Some(note_contact_in(tx, &batch.client_id, &card, now_ms).await?);
        }
        let Some(anonymous_id) = anonymous_id else {
            return Ok(accepted);
        };
        if named {
            // Events this browser sent before it named its contact go out now, as this contact
            // (of the same tenant only: a contact is one account's).
            sqlx::query(
                "UPDATE events SET state = 'queued', contact_id = $1, email = $2
                 WHERE anonymous_id = $3 AND state = 'waiting' AND tenant = $4",
            )
            .bind(contact.contact_id.as_deref())
            .bind(contact.email.as_deref())
            .bind(anonymous_id)
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        } else {
            // The newest `max_waiting` wait; older ones expire.
            let sql = match self.backend {
                super::Backend::Sqlite => {
                    "UPDATE events SET state = 'expired', error = 'too many events waiting for a contact'
                     WHERE seq IN (SELECT seq FROM events WHERE anonymous_id = $1 AND state = 'waiting'
                                   ORDER BY seq DESC LIMIT -1 OFFSET $2)"
                }
                super::Backend::Postgres => {
                    "UPDATE events SET state = 'expired', error = 'too many events waiting for a contact'
                     WHERE seq IN (SELECT seq FROM events WHERE anonymous_id = $1 AND state = 'waiting'
                                   ORDER BY seq DESC OFFSET $2)"
                }
            };
            sqlx::query(sql)
                .bind(anonymous_id)
                .bind(i64::try_from(max_waiting).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
        }
        Ok(accepted)
    }

    /// Stores a PURCHASE from Salla's webhook, unless the order has one already.
    pub async fn accept_order(&self, order: &WebhookOrder, now_ms: u64) -> Result<OrderOutcome> {
        let mut attempt = 0;
        loop {
            match self.accept_order_once(order, now_ms).await {
                Err(e) if e.is_conflict() && attempt < CONFLICT_RETRIES => attempt += 1,
                done => return done,
            }
        }
    }

    async fn accept_order_once(&self, order: &WebhookOrder, now_ms: u64) -> Result<OrderOutcome> {
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO events (id, received_at, source, event_type, external_id, contact_event,
                 email, state, tenant)
             VALUES ($1, $2, 'order.created', 'PURCHASE', $3, $4, $5, 'queued', $6)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&order.id)
        .bind(ms(now_ms))
        .bind(order.order_keys.first().map(String::as_str))
        .bind(&order.contact_event)
        .bind(&order.email)
        .bind(&order.tenant)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(OrderOutcome::Duplicate);
        }
        let keys: Vec<&str> = order.order_keys.iter().map(String::as_str).collect();
        let outcome = match claim_order(&mut tx, &order.tenant, &keys, &order.id, true).await? {
            Claim::Duplicate => {
                set_state(
                    &mut tx,
                    &order.id,
                    Duplicate,
                    "the order has a PURCHASE already",
                )
                .await?;
                OrderOutcome::Duplicate
            }
            Claim::New => {
                // The order closes the customer's cart: a CART still queued would describe a
                // cart that was just bought (and could start an abandoned-cart message).
                let carts_closed = sqlx::query(
                    "UPDATE events SET state = 'superseded', error = 'closed by the order from Salla'
                     WHERE tenant = $1 AND event_type = 'CART' AND email = $2 AND state = 'queued'",
                )
                .bind(&order.tenant)
                .bind(&order.email)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                OrderOutcome::Queued {
                    carts_closed: usize::try_from(carts_closed).unwrap_or(usize::MAX),
                }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }
}

/// Inserts a batch's events in one statement (one round trip to the database, not one per
/// event); answers the ids that were new (an id stored before, or twice in the batch, is
/// inserted once).
async fn insert_events(
    tx: &mut AnyConnection,
    batch: &ReceivedBatch,
    tenant: &str,
    now_ms: u64,
    state: EventState,
    error: Option<&str>,
) -> Result<Vec<String>> {
    if batch.events.is_empty() {
        return Ok(Vec::new());
    }
    // $1–$7 are the batch's; each event has five of its own.
    let rows = (0..batch.events.len())
        .map(|i| {
            let p = 8 + 5 * i;
            format!(
                "(${p}, $1, $2, ${}, ${}, ${}, ${}, $3, $4, $5, $6, $7)",
                p + 1,
                p + 2,
                p + 3,
                p + 4
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO events (id, received_at, anonymous_id, source, event_type, external_id,
             contact_event, contact_id, email, state, error, tenant)
         VALUES {rows}
         ON CONFLICT (id) DO NOTHING
         RETURNING id"
    );
    let contact = &batch.contact;
    let mut query = sqlx::query(&sql)
        .bind(ms(now_ms))
        .bind(batch.anonymous_id.as_ref().map(|a| a.as_str()))
        .bind(contact.contact_id.as_deref())
        .bind(contact.email.as_deref())
        .bind(state.as_str())
        .bind(error)
        .bind(tenant);
    for e in &batch.events {
        query = query
            .bind(&e.id)
            .bind(&e.source)
            .bind(e.contact_event.event_type.as_str())
            .bind(e.contact_event.external_id.as_deref())
            .bind(e.contact_event.to_json());
    }
    query
        .fetch_all(tx)
        .await?
        .iter()
        .map(|r| Ok(r.try_get::<String, _>(0)?))
        .collect()
}

/// Sets a new event's state and why.
async fn set_state(tx: &mut AnyConnection, id: &str, state: EventState, why: &str) -> Result<()> {
    sqlx::query("UPDATE events SET state = $2, error = $3 WHERE id = $1")
        .bind(id)
        .bind(state.as_str())
        .bind(why)
        .execute(tx)
        .await?;
    Ok(())
}

/// Claims the order known by `keys` for the PURCHASE `event_id` of `tenant`, inside the caller's
/// transaction. An earlier PURCHASE of the order still waiting for a contact gives way to one that
/// has a contact (it is superseded): otherwise a webhook's order with the customer's email would
/// be a duplicate of an anonymous browser PURCHASE that may never be sent.
async fn claim_order(
    tx: &mut AnyConnection,
    tenant: &str,
    keys: &[&str],
    event_id: &str,
    named: bool,
) -> Result<Claim> {
    // Insert first, read on conflict: two instances taking the same order at once meet at the
    // key's uniqueness (the second waits for the first's commit), never both see it free.
    let mut earlier: Vec<(String, String, String)> = Vec::new();
    for k in keys {
        let inserted = sqlx::query(
            "INSERT INTO orders (tenant, order_key, event_id) VALUES ($1, $2, $3)
             ON CONFLICT (tenant, order_key) DO NOTHING",
        )
        .bind(tenant)
        .bind(*k)
        .bind(event_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            continue;
        }
        let row = sqlx::query(
            "SELECT o.event_id, COALESCE(e.state, 'sent') FROM orders o
             LEFT JOIN events e ON e.id = o.event_id
             WHERE o.tenant = $1 AND o.order_key = $2",
        )
        .bind(tenant)
        .bind(*k)
        .fetch_one(&mut *tx)
        .await?;
        let (id, state): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        if id != event_id {
            earlier.push(((*k).to_owned(), id, state));
        }
    }
    let goes_out = |state: &str| matches!(state, "queued" | "sent" | "failed");
    if earlier.iter().any(|(_, _, state)| goes_out(state)) || (!earlier.is_empty() && !named) {
        sqlx::query("DELETE FROM orders WHERE tenant = $1 AND event_id = $2")
            .bind(tenant)
            .bind(event_id)
            .execute(&mut *tx)
            .await?;
        return Ok(Claim::Duplicate);
    }
    for (key, id, _) in &earlier {
        sqlx::query(
            "UPDATE events SET state = 'superseded', error = 'the order came again with a contact'
             WHERE id = $1 AND state = 'waiting'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE orders SET event_id = $3 WHERE tenant = $1 AND order_key = $2")
            .bind(tenant)
            .bind(key)
            .bind(event_id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(Claim::New)
}
