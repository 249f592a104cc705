//! SQLite files older than the version the migrations start from (`0001_previous_schema.sql`):
//! brought to that version's shape before the migrations run. Only a file whose `events` table
//! lacks a column of that version is touched.

use super::Result;
use sqlx::{AnyPool, Executor, Row};

/// The columns of `table`.
async fn columns(pool: &AnyPool, table: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT name FROM pragma_table_info($1)")
        .bind(table)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<std::result::Result<_, _>>()?)
}

/// Brings a file from before anonymous ids or before tenants to the previous version's shape.
pub(super) async fn upgrade(pool: &AnyPool) -> Result<()> {
    let events = columns(pool, "events").await?;
    if events.is_empty() {
        return Ok(());
    }
    if events.iter().any(|c| c == "browser") {
        // Before anonymous ids, waiting events were keyed by `browser`, a hash of IP address,
        // User-Agent and Origin. The column goes; its rows get no anonymous id, so events that
        // were waiting keep waiting until they expire, and no anonymous id can ever claim them.
        pool.execute(
            "DROP INDEX IF EXISTS events_browser;
             DROP INDEX IF EXISTS events_cart;
             ALTER TABLE events DROP COLUMN browser;
             ALTER TABLE events ADD COLUMN anonymous_id TEXT;",
        )
        .await?;
        tracing::info!(
            "database migrated: waiting events are keyed by anonymous id, not by browser"
        );
    }
    if !events.iter().any(|c| c == "tenant") {
        // Before tenants, every event was the env file's account's (the empty key).
        pool.execute("ALTER TABLE events ADD COLUMN tenant TEXT NOT NULL DEFAULT ''")
            .await?;
    }
    let carts = columns(pool, "carts").await?;
    if !carts.is_empty() && !carts.iter().any(|c| c == "tenant") {
        // The key becomes (tenant, cart): two stores may use the same cart id.
        let mut tx = pool.begin().await?;
        tx.execute(
            "ALTER TABLE carts RENAME TO carts_before_tenants;
             CREATE TABLE carts (
                 tenant TEXT NOT NULL,
                 external_id TEXT NOT NULL,
                 contact TEXT,
                 sm_event_id TEXT NOT NULL,
                 updated_at INTEGER NOT NULL,
                 PRIMARY KEY (tenant, external_id)
             );
             INSERT INTO carts SELECT '', external_id, contact, sm_event_id, updated_at
                 FROM carts_before_tenants;
             DROP TABLE carts_before_tenants;",
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}
