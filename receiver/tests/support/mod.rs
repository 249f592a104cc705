//! Test support: the receiver's configuration for the fake SALESmanago API (the
//! `fake-salesmanago` crate), batches, and helpers to run the receiver against it.
// Each test binary (and the load benchmark) uses a part of it.
#![allow(dead_code, unused_imports)]

/// A fresh PostgreSQL database per test (tests/instances.rs, the load benchmark).
pub mod database;

pub use fake_salesmanago::{Call, Fake};
use salla_salesmanago_receiver::config::{Account, Config, Secret};
use serde_json::{json, Value as J};
use std::time::{Duration, Instant};

/// The fake's (demo) account: the receiver must authenticate as it.
pub const CLIENT_ID: &str = fake_salesmanago::DEMO_CLIENT_ID;
pub const API_KEY: &str = fake_salesmanago::DEMO_API_KEY;
pub const API_SECRET: &str = fake_salesmanago::DEMO_API_SECRET;
pub const OWNER: &str = fake_salesmanago::DEMO_OWNER;
pub const ORIGIN: &str = "https://store.example";

pub fn config(sm_url: &str, data_dir: &std::path::Path) -> Config {
    Config {
        account: Some(Account {
            endpoint: sm_url.to_owned(),
            client_id: CLIENT_ID.into(),
            api_key: Secret::from(API_KEY),
            api_secret: Secret::from(API_SECRET),
            owner: OWNER.into(),
        }),
        webhook: None,
        secret_key: None,
        salla_store_id: None,
        allowed_origins: vec![ORIGIN.into()],
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_owned(),
        database_url: database_url(data_dir),
        claim_lease: Duration::from_secs(60),
        parallel_calls: salla_salesmanago_receiver::forwarder::PARALLEL_LANES,
        keep_finished: Duration::from_secs(30 * 24 * 3600),
        max_body_bytes: 256 * 1024,
        rate_per_ip: 10_000,
        rate_per_origin: 100_000,
        rate_per_store: 100_000,
        trust_proxy: false,
        allow_no_origin: false,
        contact_wait: Duration::from_secs(3600),
        contact_wait_max: 100,
        account_probe: Duration::from_millis(300),
    }
}

/// A fresh directory under the target dir, removed first if present.
/// A fresh directory under the temp dir, removed first if present; with the PostgreSQL backend
/// ([`postgres`]), a fresh database of the same name too.
pub fn data_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sm-receiver-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(server) = postgres() {
        let db = database_name(&dir);
        psql(
            &server,
            &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        );
        psql(&server, &format!("CREATE DATABASE {db}"));
    }
    dir
}

/// The PostgreSQL server the suite runs against, when it runs against one: `SM_TEST_BACKEND=
/// postgres` with `SM_TEST_DATABASE_URL` (scripts/test.sh runs the receiver's suite once on SQLite,
/// once so). Each test's database is named after its data directory ([`database_url`]).
pub fn postgres() -> Option<String> {
    if std::env::var("SM_TEST_BACKEND").as_deref() != Ok("postgres") {
        return None;
    }
    Some(std::env::var("SM_TEST_DATABASE_URL").expect(
        "SM_TEST_BACKEND=postgres needs SM_TEST_DATABASE_URL (scripts/test.sh starts a server)",
    ))
}

/// The database of the test whose data directory is `dir`: `None` on SQLite (the file in `dir`).
pub fn database_url(dir: &std::path::Path) -> Option<String> {
    let server = postgres()?;
    // The server's URL names its `postgres` database: the same server, this test's database.
    Some(database::with_database(&server, &database_name(dir)))
}

/// A database name (at most 63 characters) for `dir`.
fn database_name(dir: &std::path::Path) -> String {
    let name: String = dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let name = format!("t_{name}");
    if name.len() <= 63 {
        return name;
    }
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{}_{hash:016x}", &name[..40])
}

fn psql(server: &str, sql: &str) {
    let out = std::process::Command::new("psql")
        .args([server, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect(
            "psql runs (Debian's postgresql-client, installed with postgresql by scripts/setup.sh)",
        );
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn event(id: &str, kind: &str, external_id: Option<&str>, products: &str) -> J {
    let mut ce = json!({ "date": 1_763_829_999_000u64, "contactExtEventType": kind, "products": products, "description": id });
    if let Some(x) = external_id {
        ce["externalId"] = json!(x);
    }
    json!({ "id": id, "source": "test", "contactEvent": ce })
}

/// The anonymous id of [`batch`]'s browser.
pub const BROWSER: &str = "test-browser";

/// A batch from the browser [`BROWSER`].
pub fn batch(events: Vec<J>, contact: J) -> J {
    batch_from(Some(BROWSER), events, contact)
}

/// A batch from the browser with anonymous id `anonymous_id` (`None`: an older tracker's, which
/// sends none).
pub fn batch_from(anonymous_id: Option<&str>, events: Vec<J>, contact: J) -> J {
    let mut b = json!({ "v": 1, "clientId": CLIENT_ID, "sentAt": 1_763_830_000_000u64, "contact": contact, "events": events });
    if let Some(id) = anonymous_id {
        b["anonymousId"] = json!(id);
    }
    b
}

/// The text of the receiver's `/metrics`.
pub async fn metrics(receiver: &str) -> String {
    reqwest::get(format!("{receiver}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of one metric in `/metrics` text.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

pub async fn post(receiver: &str, body: &J) -> (u16, J) {
    post_raw(receiver, body.to_string(), Some(ORIGIN)).await
}

pub async fn post_raw(receiver: &str, body: String, origin: Option<&str>) -> (u16, J) {
    let mut req = reqwest::Client::new()
        .post(format!("{receiver}/collect"))
        .header("Content-Type", "text/plain;charset=UTF-8")
        .header("User-Agent", "test-browser")
        .body(body);
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(J::Null))
}

/// A POST of `body` to `/collect` from `origin`, with `headers` more: the status, the headers and
/// the JSON body of the answer.
pub async fn post_with(
    receiver: &str,
    body: &J,
    origin: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, J) {
    let mut req = reqwest::Client::new()
        .post(format!("{receiver}/collect"))
        .header("Content-Type", "text/plain;charset=UTF-8")
        .body(body.to_string());
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(J::Null))
}

/// A header of an answer, as text ("" when it has none).
pub fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .map_or("", |v| v.to_str().unwrap_or("(not text)"))
}

/// A command that runs `program` (the receiver, or a wrapper such as `taskset` in front of it)
/// configured for the fake account, on 127.0.0.1:`port`, with its database in `dir`.
pub fn receiver_command(
    program: &str,
    sm_url: &str,
    dir: &std::path::Path,
    port: u16,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    if let Some(url) = database_url(dir) {
        // A claim of a killed instance is taken again after this lease (SQLite releases them at
        // start instead: one process per file).
        cmd.env("SM_DATABASE_URL", url).env("SM_CLAIM_LEASE", "2");
    }
    cmd.env("SM_API_ENDPOINT", sm_url)
        .env("SM_CLIENT_ID", CLIENT_ID)
        .env("SM_API_KEY", API_KEY)
        .env("SM_API_SECRET", API_SECRET)
        .env("SM_OWNER", OWNER)
        .env("SM_ALLOWED_ORIGINS", ORIGIN)
        .env("SM_LISTEN", format!("127.0.0.1:{port}"))
        .env("SM_DATA_DIR", dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until the receiver at `url` answers `/health` (or panics after 10 s).
pub async fn wait_healthy(url: &str) {
    let end = Instant::now() + Duration::from_secs(10);
    while reqwest::get(format!("{url}/health"))
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < end, "the receiver did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A GET's status and text.
pub async fn get_text(url: String) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Waits until `/health` answers `status`, and returns its text.
pub async fn health_becomes(url: &str, status: u16) -> String {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let (got, text) = get_text(format!("{url}/health")).await;
        if got == status {
            return text;
        }
        assert!(Instant::now() < end, "/health stayed {got}: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A receiver on a fresh data dir named `name`, delivering to a fresh fake; and its URL.
pub async fn running(name: &str) -> (Fake, salla_salesmanago_receiver::Running, String) {
    let sm = Fake::start().await;
    let r = salla_salesmanago_receiver::start(config(&sm.url, &data_dir(name)))
        .await
        .unwrap();
    let url = format!("http://{}", r.addr);
    (sm, r, url)
}
