//! A fresh PostgreSQL database per test (or benchmark run), on the server `scripts/test.sh`
//! starts and names in `SM_TEST_DATABASE_URL` (the URL of its `postgres` database). Each
//! database is created with `CREATE DATABASE` and dropped after, so runs never see each other's
//! rows.

use sqlx::{Connection, Executor, PgConnection};
use std::time::{SystemTime, UNIX_EPOCH};

/// The variable that names the server (scripts/test.sh sets it).
pub const SERVER_VAR: &str = "SM_TEST_DATABASE_URL";
/// With `1`, a test that finds no server fails instead of skipping (scripts/test.sh sets it).
pub const REQUIRE_VAR: &str = "SM_REQUIRE_POSTGRES";

/// The server a test runs against, or `None` when there is none: the caller returns (skipped),
/// after this printed why. Panics instead when `SM_REQUIRE_POSTGRES=1`: a run that must test
/// PostgreSQL cannot pass without it.
pub fn server_for_test() -> Option<String> {
    // The suite's SQLite pass leaves PostgreSQL's own tests to the PostgreSQL pass (scripts/test.sh
    // runs the receiver's suite on each database).
    if std::env::var("SM_TEST_BACKEND").as_deref() != Ok("postgres") {
        println!("skipped: a PostgreSQL test, run with SM_TEST_BACKEND=postgres (scripts/test.sh's second pass)");
        return None;
    }
    match std::env::var(SERVER_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ if std::env::var(REQUIRE_VAR).is_ok_and(|v| v.trim() == "1") => {
            panic!("{REQUIRE_VAR}=1 but no {SERVER_VAR}: scripts/test.sh provides one")
        }
        _ => {
            println!("skipped: no {SERVER_VAR} (scripts/test.sh provides one)");
            None
        }
    }
}

/// `url` naming the database `name` instead of the one it names: the path after the
/// authority is the database; the query (`?host=/run/…`, `sslmode`, …) is kept.
pub fn with_database(url: &str, name: &str) -> String {
    let (authority, _, query) = parts(url);
    match query {
        Some(q) => format!("{authority}/{name}?{q}"),
        None => format!("{authority}/{name}"),
    }
}

/// `url` as sqlx reads it: an empty host (`postgres://user@/db?host=/run/pg`, as libpq takes
/// for a Unix socket) becomes `localhost`, which sqlx 0.8 requires (it refuses an empty host);
/// the `host` parameter still names the socket directory.
pub fn normalized(url: &str) -> String {
    let (authority, path, query) = parts(url);
    match query {
        Some(q) => format!("{authority}{path}?{q}"),
        None => format!("{authority}{path}"),
    }
}

/// (scheme and authority, with a host; the path; the query).
fn parts(url: &str) -> (String, &str, Option<&str>) {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let authority = &base[after_scheme..end];
    let (user, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let host = if host.is_empty() || host.starts_with(':') {
        format!("localhost{host}")
    } else {
        host.to_owned()
    };
    (
        format!("{}{user}{host}", &base[..after_scheme]),
        &base[end..],
        query,
    )
}

/// A database made for one test; dropped by [`Database::drop_now`], or when this goes out of
/// scope (also while a failed test unwinds).
pub struct Database {
    /// Its URL: the receivers' `SM_DATABASE_URL`.
    pub url: String,
    /// Its name.
    pub name: String,
    server: String,
    dropped: bool,
}

impl Database {
    /// Creates a database named after `label` (and this process, and the time) on `server`.
    pub async fn create(server: &str, label: &str) -> Database {
        let server = normalized(server);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "sm_{label}_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000
        );
        let mut admin = PgConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {SERVER_VAR} ({server}): {e}"));
        admin
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = admin.close().await;
        Database {
            url: with_database(&server, &name),
            name,
            server,
            dropped: false,
        }
    }

    /// How many tables the receiver made in it (in any schema but the system's): none means
    /// the receiver did not use it.
    pub async fn tables(&self) -> i64 {
        let mut c = PgConnection::connect(&self.url).await.unwrap();
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        let _ = c.close().await;
        n
    }

    /// Drops it (any connection left, such as a killed receiver's, is ended first).
    pub async fn drop_now(mut self) {
        self.dropped = true;
        drop_database(&self.server, &self.name).await;
    }
}

async fn drop_database(server: &str, name: &str) {
    match PgConnection::connect(server).await {
        Ok(mut admin) => {
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            if let Err(e) = admin.execute(sql.as_str()).await {
                eprintln!("could not drop database {name}: {e}");
            }
            let _ = admin.close().await;
        }
        Err(e) => eprintln!("could not drop database {name}: {e}"),
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // No async drop: a thread of its own with a runtime of its own (the test's may be
        // the one unwinding).
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_database(&server, &name));
            }
        })
        .join();
    }
}
