//! The outbound queue: claiming due events (atomically, a lease per claim, in each contact's and
//! cart's order, fairly across tenants), recording what SALESmanago answered, and housekeeping
//! (events that waited too long, finished events past their retention).

use super::{ms, Backend, EventState, Outbound, Result, Store};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::time::Duration;

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

/// What a claim takes.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    /// At most this many events.
    pub limit: usize,
    /// At most this many of one tenant (one store's backlog cannot fill a round).
    pub per_tenant: usize,
    /// Only this tenant's (the account probe of a paused tenant).
    pub only: Option<&'a str>,
    /// Not these tenants' (paused, or backing off after SALESmanago failed them).
    pub except: &'a [String],
    /// Events of these tenants the claimer holds already (its calls in flight): they count
    /// against `per_tenant`.
    pub held: &'a [(String, usize)],
    /// How long the claim holds: past it, another instance may take the events (this one died).
    pub lease: Duration,
}

/// The columns [`outbound`] reads.
const OUTBOUND: &str =
    "id, contact_event, contact_id, email, event_type, external_id, attempts, tenant";

fn outbound(r: &AnyRow) -> std::result::Result<Outbound, sqlx::Error> {
    Ok(Outbound {
        id: r.try_get(0)?,
        contact_event: r.try_get(1)?,
        contact_id: r.try_get(2)?,
        email: r.try_get(3)?,
        event_type: r.try_get(4)?,
        external_id: r.try_get(5)?,
        attempts: u32::try_from(r.try_get::<i64, _>(6)?).unwrap_or(u32::MAX),
        tenant: r.try_get(7)?,
    })
}

/// The first `$3` events of tenant `$1` a claim may take at `$2`: queued, due, not claimed by
/// anyone, and first of their contact and (a CART) of their cart — an earlier event of either
/// still queued, or superseded while its call was on its way (claimed), holds them back: until
/// that call is recorded the contact's order would break, and a cart's SALESmanago eventId is
/// not known, so a newer CART would add a second event. Each `(… OR claimed_until > 0)` term is
/// the partial index's own condition, written out so that the planner may use it.
fn first_of_tenant(backend: Backend) -> String {
    let lock = match backend {
        // BEGIN IMMEDIATE (`Store::begin`): no other writer between the read and the update.
        Backend::Sqlite => "",
        // Rows another instance is claiming right now are skipped, not waited for.
        Backend::Postgres => "FOR UPDATE OF e SKIP LOCKED",
    };
    format!(
        "SELECT e.seq FROM events e
         WHERE e.tenant = $1 AND e.state = 'queued' AND e.next_at <= $2 AND e.claimed_until <= $2
           AND NOT EXISTS (
               SELECT 1 FROM events p
               WHERE p.tenant = e.tenant AND p.seq < e.seq
                 AND COALESCE(p.contact_id, p.email) = COALESCE(e.contact_id, e.email)
                 AND (p.state = 'queued' OR p.claimed_until > 0)
                 AND (p.state = 'queued' OR p.claimed_until > $2))
           AND NOT (e.event_type = 'CART' AND EXISTS (
               SELECT 1 FROM events p
               WHERE p.tenant = e.tenant AND p.event_type = 'CART'
                 AND p.external_id = e.external_id AND p.seq < e.seq
                 AND (p.state = 'queued' OR p.claimed_until > $2)))
         ORDER BY e.seq LIMIT $3 {lock}"
    )
}

impl Store {
    /// Claims due events for delivery, in one transaction: each is the first queued event of its
    /// contact and of its cart, so that however many instances deliver, a contact's events and a
    /// cart's add and updates go in order; tenants take turns, the one waiting longest first,
    /// `per_tenant` events each at most. The events stay claimed until they are recorded
    /// ([`delivered`](Store::delivered), [`retry`](Store::retry), [`failed`](Store::failed)),
    /// released, or the lease passes.
    ///
    /// Its cost follows the tenants with due events and the events it takes, not the queue's
    /// length: each tenant's queue is read in order only until its first claimable events.
    pub async fn claim(&self, now_ms: u64, req: &ClaimRequest<'_>) -> Result<Vec<Outbound>> {
        let now = ms(now_ms);
        // A claim lives as long as its process on SQLite (claims are let go at start): its
        // commit need not wait for the disk, which every accepted batch's does.
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA synchronous = NORMAL")
                .execute(&self.pool)
                .await?;
        }
        let claimed = self.claim_in(now, now_ms, req).await;
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA synchronous = FULL")
                .execute(&self.pool)
                .await?;
        }
        claimed
    }

    async fn claim_in(
        &self,
        now: i64,
        now_ms: u64,
        req: &ClaimRequest<'_>,
    ) -> Result<Vec<Outbound>> {
        let mut tx = self.begin().await?;
        let tenants: Vec<String> = match req.only {
            Some(t) => vec![t.to_owned()],
            None => sqlx::query(
                "SELECT tenant FROM events
                 WHERE state = 'queued' AND next_at <= $1 AND claimed_until <= $1
                 GROUP BY tenant ORDER BY MIN(seq)",
            )
            .bind(now)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<std::result::Result<_, _>>()?,
        };
        let first = first_of_tenant(self.backend);
        let mut picked: Vec<i64> = Vec::new();
        for tenant in tenants.iter().filter(|t| !req.except.contains(t)) {
            let held = req
                .held
                .iter()
                .find(|(t, _)| t == tenant)
                .map_or(0, |(_, n)| *n);
            let want = req
                .per_tenant
                .saturating_sub(held)
                .min(req.limit.saturating_sub(picked.len()));
            if want == 0 && picked.len() < req.limit {
                continue;
            }
            if want == 0 {
                break;
            }
            for row in sqlx::query(&first)
                .bind(tenant)
                .bind(now)
                .bind(i64::try_from(want).unwrap_or(i64::MAX))
                .fetch_all(&mut *tx)
                .await?
            {
                picked.push(row.try_get(0)?);
            }
        }
        if picked.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let until = now_ms.saturating_add(req.lease.as_millis() as u64);
        let list = (0..picked.len())
            .map(|i| format!("${}", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE events SET claimed_until = $1 WHERE seq IN ({list}) RETURNING {OUTBOUND}, seq"
        );
        let mut update = sqlx::query(&sql).bind(ms(until));
        for seq in &picked {
            update = update.bind(*seq);
        }
        let rows = update.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        // RETURNING gives no order: arrival order.
        let mut claimed = rows
            .iter()
            .map(|r| Ok((r.try_get::<i64, _>(8)?, outbound(r)?)))
            .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?;
        claimed.sort_by_key(|(seq, _)| *seq);
        Ok(claimed.into_iter().map(|(_, e)| e).collect())
    }

    /// Whether a claimed event is still to be sent: a newer CART of its cart, an order that
    /// closed its cart, or its store's uninstall may have finished it while it was claimed. One
    /// that is not has its claim let go.
    pub async fn still_queued(&self, id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT state FROM events WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let state: Option<String> = row.map(|r| r.try_get(0)).transpose()?;
        if state.as_deref() == Some(EventState::Queued.as_str()) {
            return Ok(true);
        }
        sqlx::query("UPDATE events SET claimed_until = 0 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(false)
    }

    /// Which of `ids` the tenant holds (taken from any batch, in any state): an earlier page's
    /// request whose answer it never saw (`docs/protocol.md` §2.1). One query, ids as parameters.
    pub async fn held(&self, tenant: &str, ids: &[String]) -> Result<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = (2..ids.len() + 2)
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT id FROM events WHERE tenant = $1 AND id IN ({list})");
        let mut query = sqlx::query(&sql).bind(tenant);
        for id in ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<std::result::Result<_, _>>()?)
    }

    /// Lets go of claimed events not delivered (a stopping instance): due again at once.
    pub async fn release(&self, ids: &[String]) -> Result<()> {
        for id in ids {
            sqlx::query("UPDATE events SET claimed_until = 0 WHERE id = $1 AND state = 'queued'")
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// The SALESmanago `eventId` of the tenant's CART event for this cart, if one was added.
    pub async fn cart_event(&self, tenant: &str, external_id: &str) -> Result<Option<String>> {
        let row =
            sqlx::query("SELECT sm_event_id FROM carts WHERE tenant = $1 AND external_id = $2")
                .bind(tenant)
                .bind(external_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Records a delivery: a CART's `eventId` for its cart; a PURCHASE forgets the contact's carts.
    pub async fn delivered(
        &self,
        event: &Outbound,
        sm_event_id: Option<&str>,
        now_ms: u64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE events SET state = 'sent', sm_event_id = $2, attempts = attempts + 1,
                 error = NULL, claimed_until = 0
             WHERE id = $1",
        )
        .bind(&event.id)
        .bind(sm_event_id)
        .execute(&mut *tx)
        .await?;
        match (event.event_type.as_str(), &event.external_id, sm_event_id) {
            ("CART", Some(cart), Some(sm_id)) => {
                sqlx::query(
                    "INSERT INTO carts (tenant, external_id, contact, sm_event_id, updated_at)
                     VALUES ($5, $1, $2, $3, $4)
                     ON CONFLICT (tenant, external_id) DO UPDATE SET contact = excluded.contact,
                         sm_event_id = excluded.sm_event_id, updated_at = excluded.updated_at",
                )
                .bind(cart)
                .bind(event.contact_key())
                .bind(sm_id)
                .bind(ms(now_ms))
                .bind(&event.tenant)
                .execute(&mut *tx)
                .await?;
            }
            ("PURCHASE", _, _) => {
                // The order closes the contact's cart: the next CART starts a new event.
                sqlx::query(
                    "DELETE FROM carts WHERE contact IS NOT DISTINCT FROM $1 AND tenant = $2",
                )
                .bind(event.contact_key())
                .bind(&event.tenant)
                .execute(&mut *tx)
                .await?;
            }
            _ => {}
        }
        tx.commit().await?;
        Ok(())
    }

    /// Delivery failed for a reason that may pass: due again at `next_at_ms`, for any instance.
    pub async fn retry(&self, id: &str, next_at_ms: u64, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE events SET attempts = attempts + 1, next_at = $2, error = $3, claimed_until = 0
             WHERE id = $1",
        )
        .bind(id)
        .bind(ms(next_at_ms))
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// SALESmanago refused the event: it will not be retried.
    pub async fn failed(&self, id: &str, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE events SET state = 'failed', attempts = attempts + 1, error = $2,
                 claimed_until = 0
             WHERE id = $1",
        )
        .bind(id)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives up on events that waited for a contact since before `before_ms`.
    pub async fn expire_waiting(&self, before_ms: u64) -> Result<usize> {
        let n = sqlx::query(
            "UPDATE events SET state = 'expired', error = 'no contact named in time'
             WHERE state = 'waiting' AND received_at < $1",
        )
        .bind(ms(before_ms))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Forgets finished events (sent, failed, superseded, expired, duplicate, cancelled)
    /// received before `before_ms`, and the orders whose PURCHASE they were: their ids no longer
    /// deduplicate, so `before_ms` must be older than anything a tracker still retries.
    pub async fn prune(&self, before_ms: u64) -> Result<usize> {
        let mut tx = self.begin().await?;
        let pruned = sqlx::query(
            "DELETE FROM events WHERE received_at < $1
               AND state IN ('sent', 'failed', 'superseded', 'expired', 'duplicate', 'cancelled')",
        )
        .bind(ms(before_ms))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // An order's PURCHASE forgotten, the order is too: Salla delivers again within minutes,
        // a shopper's tracker retries for 7 days, both far inside the 30 days kept.
        sqlx::query(
            "DELETE FROM orders WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = orders.event_id)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(usize::try_from(pruned).unwrap_or(usize::MAX))
    }

    /// Events by state.
    pub async fn counts(&self) -> Result<Counts> {
        let mut c = Counts::default();
        let rows = sqlx::query("SELECT state, COUNT(*) FROM events GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            let state: String = row.try_get(0)?;
            let n = u64::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0);
            let slot = match EventState::parse(&state) {
                Some(EventState::Queued) => &mut c.queued,
                Some(EventState::Waiting) => &mut c.waiting,
                Some(EventState::Sent) => &mut c.sent,
                Some(EventState::Failed) => &mut c.failed,
                Some(EventState::Superseded) => &mut c.superseded,
                Some(EventState::Expired) => &mut c.expired,
                Some(EventState::Duplicate) => &mut c.duplicate,
                Some(EventState::Cancelled) => &mut c.cancelled,
                None => continue,
            };
            *slot = n;
        }
        Ok(c)
    }
}
