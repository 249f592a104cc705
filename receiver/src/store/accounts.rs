//! The accounts side: tenants (a store's SALESmanago settings) and contact cards.

use super::{ms, ContactState, Result, Store, StoredContact};
use crate::config::{Account, Secret};
use crate::salesmanago::ContactCard;
use crate::sealed::{open_account_secrets, seal_account_secrets};
use crate::tenants::{Status, StoreTenant};
use sqlx::AnyConnection;
use sqlx::Row;

/// Notes `card` inside the caller's transaction (see [`Store::note_contact`]).
pub(super) async fn note_contact_in(
    conn: &mut AnyConnection,
    client_id: &str,
    card: &ContactCard,
    now_ms: u64,
) -> Result<ContactState> {
    let row = sqlx::query(
        "INSERT INTO contacts (client_id, email, name, phone, pending, noted_at)
         VALUES ($1, $2, $3, $4, 1, $5)
         ON CONFLICT (client_id, email) DO UPDATE SET
             name = COALESCE(excluded.name, contacts.name),
             phone = COALESCE(excluded.phone, contacts.phone),
             pending = CASE WHEN contacts.pending = 1 OR contacts.contact_id IS NULL
                     OR (excluded.name IS NOT NULL AND excluded.name IS DISTINCT FROM contacts.name)
                     OR (excluded.phone IS NOT NULL AND excluded.phone IS DISTINCT FROM contacts.phone)
                 THEN 1 ELSE 0 END,
             noted_at = excluded.noted_at
         RETURNING contact_id, pending",
    )
    .bind(client_id)
    .bind(&card.email)
    .bind(card.name.as_deref())
    .bind(card.phone.as_deref())
    .bind(ms(now_ms))
    .fetch_one(conn)
    .await?;
    Ok(ContactState {
        contact_id: row.try_get(0)?,
        pending: row.try_get::<i64, _>(1)? != 0,
    })
}

impl Store {
    /// Every store's tenant, oldest settings first, its API key and secret opened (`sealed.rs`);
    /// secrets an earlier receiver stored in clear text are sealed now.
    pub async fn tenants(&self) -> Result<Vec<StoreTenant>> {
        let rows = sqlx::query(
            "SELECT store_id, client_id, endpoint, api_key, api_secret, owner, location, problem,
                 status
             FROM tenants ORDER BY updated_at",
        )
        .fetch_all(&self.pool)
        .await?;
        let rows = rows
            .iter()
            .map(|r| {
                let text = |i: usize| r.try_get::<Option<String>, _>(i);
                let account = match (text(2)?, text(3)?, text(4)?, text(5)?) {
                    (Some(endpoint), Some(key), Some(secret), Some(owner)) => Some(Account {
                        endpoint,
                        client_id: r.try_get(1)?,
                        api_key: Secret::from(key.as_str()),
                        api_secret: Secret::from(secret.as_str()),
                        owner,
                    }),
                    _ => None,
                };
                Ok(StoreTenant {
                    store_id: r.try_get(0)?,
                    client_id: r.try_get(1)?,
                    account,
                    location: text(6)?,
                    problem: text(7)?,
                    status: Status::parse(&r.try_get::<String, _>(8)?),
                })
            })
            .collect::<std::result::Result<Vec<StoreTenant>, sqlx::Error>>()?
            .into_iter()
            .map(|t| self.opened(t))
            .collect::<Vec<_>>();
        let mut tenants = Vec::with_capacity(rows.len());
        for (t, resealed) in rows {
            if let Some(sealed) = resealed {
                self.reseal(&t, &sealed).await?;
            }
            tenants.push(t);
        }
        Ok(tenants)
    }

    /// `t` with its secrets opened, and the sealed text to write back when its row held them in
    /// clear text (an earlier receiver's).
    fn opened(&self, mut t: StoreTenant) -> (StoreTenant, Option<crate::sealed::SealedSecrets>) {
        let resealed = open_account_secrets(&mut t, self.key.as_ref());
        (t, resealed)
    }

    /// Overwrites clear-text secrets of an earlier receiver with their sealed text; on SQLite
    /// with `secure_delete` and the WAL emptied, so that no copy of the clear text stays in the
    /// files.
    async fn reseal(&self, t: &StoreTenant, sealed: &crate::sealed::SealedSecrets) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        if self.backend == super::Backend::Sqlite {
            sqlx::query("PRAGMA secure_delete = ON")
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query(
            "UPDATE tenants SET api_key = $3, api_secret = $4 WHERE store_id = $1 AND client_id = $2",
        )
        .bind(&t.store_id)
        .bind(&t.client_id)
        .bind(&sealed.api_key)
        .bind(&sealed.api_secret)
        .execute(&mut *conn)
        .await?;
        if self.backend == super::Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut *conn)
                .await?;
            sqlx::query("PRAGMA secure_delete = OFF")
                .execute(&mut *conn)
                .await?;
        }
        tracing::info!(tenant = %t.key(), "the store's API key and secret, stored in clear text by an earlier receiver, are sealed now");
        Ok(())
    }

    /// Records a store's tenant from its settings; the store's other tenants are replaced.
    pub async fn save_tenant(&self, t: &StoreTenant, now_ms: u64) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE tenants SET status = 'replaced', updated_at = $3
             WHERE store_id = $1 AND client_id <> $2 AND status = 'active'",
        )
        .bind(&t.store_id)
        .bind(&t.client_id)
        .bind(ms(now_ms))
        .execute(&mut *tx)
        .await?;
        let a = t.account.as_ref();
        let sealed = seal_account_secrets(t, self.key.as_ref())?;
        sqlx::query(
            "INSERT INTO tenants (store_id, client_id, endpoint, api_key, api_secret, owner,
                 location, problem, status, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (store_id, client_id) DO UPDATE SET endpoint = excluded.endpoint,
                 api_key = excluded.api_key, api_secret = excluded.api_secret,
                 owner = excluded.owner, location = excluded.location,
                 problem = excluded.problem, status = excluded.status,
                 updated_at = excluded.updated_at",
        )
        .bind(&t.store_id)
        .bind(&t.client_id)
        .bind(a.map(|a| a.endpoint.as_str()))
        .bind(sealed.as_ref().map(|s| s.api_key.as_str()))
        .bind(sealed.as_ref().map(|s| s.api_secret.as_str()))
        .bind(a.map(|a| a.owner.as_str()))
        .bind(t.location.as_deref())
        .bind(t.problem.as_deref())
        .bind(t.status.as_str())
        .bind(ms(now_ms))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The store uninstalled the app: its tenants are marked so, and their events not yet
    /// delivered are cancelled. Returns how many were.
    pub async fn uninstall(&self, store_id: &str, now_ms: u64) -> Result<usize> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE tenants SET status = 'uninstalled', updated_at = $2 WHERE store_id = $1",
        )
        .bind(store_id)
        .bind(ms(now_ms))
        .execute(&mut *tx)
        .await?;
        let cancelled = sqlx::query(
            "UPDATE events SET state = 'cancelled', error = 'the store uninstalled the app',
                 claimed_until = 0
             WHERE state IN ('queued', 'waiting')
               AND tenant IN (SELECT store_id || ':' || client_id FROM tenants WHERE store_id = $1)",
        )
        .bind(store_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(usize::try_from(cancelled).unwrap_or(usize::MAX))
    }

    /// Notes a contact card of the account `client_id` (from a batch, or from any other source of
    /// shoppers): a new email, or a name or phone the card did not have, makes it pending (to be
    /// upserted); what the card holds is never erased by a card that lacks it.
    pub async fn note_contact(
        &self,
        client_id: &str,
        card: &ContactCard,
        now_ms: u64,
    ) -> Result<ContactState> {
        let mut conn = self.pool.acquire().await?;
        note_contact_in(&mut conn, client_id, card, now_ms).await
    }

    /// The stored card of `email`, if any.
    pub async fn contact(&self, client_id: &str, email: &str) -> Result<Option<StoredContact>> {
        let row = sqlx::query(
            "SELECT name, phone, contact_id, pending FROM contacts
             WHERE client_id = $1 AND email = $2",
        )
        .bind(client_id)
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(StoredContact {
            card: ContactCard {
                email: email.to_owned(),
                name: r.try_get(0)?,
                phone: r.try_get(1)?,
            },
            state: ContactState {
                contact_id: r.try_get(2)?,
                pending: r.try_get::<i64, _>(3)? != 0,
            },
        }))
    }

    /// Records that SALESmanago took `card` as `contact_id`. The card stays pending if it
    /// learnt something else meanwhile.
    pub async fn contact_upserted(
        &self,
        client_id: &str,
        card: &ContactCard,
        contact_id: &str,
        now_ms: u64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO contacts
               (client_id, email, name, phone, contact_id, pending, noted_at, upserted_at)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $6)
             ON CONFLICT (client_id, email) DO UPDATE SET
                 contact_id = excluded.contact_id,
                 upserted_at = excluded.upserted_at,
                 pending = CASE WHEN contacts.name IS DISTINCT FROM excluded.name
                     OR contacts.phone IS DISTINCT FROM excluded.phone THEN 1 ELSE 0 END",
        )
        .bind(client_id)
        .bind(&card.email)
        .bind(card.name.as_deref())
        .bind(card.phone.as_deref())
        .bind(contact_id)
        .bind(ms(now_ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
