//! Several `sm-receiver` processes over one PostgreSQL database (`SM_DATABASE_URL`), as behind a
//! load balancer: Cloud Mode stores made tenants through signed `app.settings.updated` webhooks
//! sent to either instance, then the tracker's batches posted to either at random, with
//! duplicates and retries.
//!
//! - Two instances: every event goes out exactly once, under its own store's credentials and its
//!   own shopper's contact; per contact and per cart in the order posted; each cart one add and
//!   then updates of that add's `eventId`, ending in the last CART posted.
//! - One instance killed (SIGKILL) while it forwards: the other delivers everything, including
//!   what the dead one had claimed (after the claim's lease, `SM_CLAIM_LEASE`); the only events
//!   sent twice are calls the dead one had in flight. Started again, it serves the same database.
//!
//! Each test gets a fresh database on the server `SM_TEST_DATABASE_URL` names (scripts/test.sh
//! starts one); without it the tests print that they are skipped, unless `SM_REQUIRE_POSTGRES=1`.
//! `SM_TEST_SEED` repeats a run's plan (which events, batches, duplicates).

mod support;

use fake_salesmanago::Account as FakeAccount;
use salla_salesmanago_receiver::forwarder::PARALLEL_LANES;
use salla_salesmanago_receiver::webhook::auth::sign;
use serde_json::{json, Value as J};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::database::{self, Database};
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const WEBHOOK_SECRET: &str = "whsec-instances";
/// `SM_SECRET_KEY`: the same for every instance, which open each other's sealed store secrets.
const SECRET_KEY: &str = "5f0c2a9e4b7d1386a0e9c4f2b8d61735c9e0a4f7b2d8163e5a0c9f4b7e2d8613";
/// `SM_CLAIM_LEASE`: how long an event claimed by an instance that died stays its own.
const LEASE_SECS: u64 = 3;
const DELIVERY_DEADLINE: Duration = Duration::from_secs(120);
/// Shoppers posting at the same time (each posts its own batches one after the other).
const SHOPPERS_AT_ONCE: usize = 32;

/// The tests start processes that take both cores: one test at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[test]
fn a_database_url_names_another_database_and_keeps_its_parameters() {
    use database::with_database;
    assert_eq!(
        with_database("postgres://postgres@/postgres?host=/tmp/pg", "sm_x"),
        "postgres://postgres@localhost/sm_x?host=/tmp/pg",
        "sqlx refuses an empty host; the socket is the host parameter's"
    );
    assert_eq!(
        database::normalized("postgres://postgres@/postgres?host=/tmp/pg"),
        "postgres://postgres@localhost/postgres?host=/tmp/pg"
    );
    assert_eq!(
        database::normalized("postgres://postgres@db:5432/postgres"),
        "postgres://postgres@db:5432/postgres"
    );
    assert_eq!(
        with_database(
            "postgres:///postgres?host=%2Fw%2Ftarget%2Fpg&port=5433&user=postgres",
            "sm_x"
        ),
        "postgres://localhost/sm_x?host=%2Fw%2Ftarget%2Fpg&port=5433&user=postgres",
        "scripts/pg.sh's form"
    );
    assert_eq!(
        with_database("postgres://@:5433/postgres", "sm_x"),
        "postgres://@localhost:5433/sm_x"
    );
    assert_eq!(
        with_database("postgres://u:p@127.0.0.1:5433/postgres", "sm_x"),
        "postgres://u:p@127.0.0.1:5433/sm_x"
    );
    assert_eq!(
        with_database("postgresql://localhost", "sm_x"),
        "postgresql://localhost/sm_x"
    );
}

// ---------------------------------------------------------------------------------------------
// A small deterministic PRNG: the plan of a run is repeatable from its seed.

#[derive(Clone)]
struct Rng(u64);

impl Rng {
    /// `SM_TEST_SEED`, or the clock.
    fn from_env(test: &str) -> Rng {
        let seed = std::env::var("SM_TEST_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        println!("{test}: seed {seed} (SM_TEST_SEED={seed} repeats this run's plan)");
        Rng(seed)
    }

    /// splitmix64.
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    fn fork(&mut self) -> Rng {
        Rng(self.next())
    }
}

// ---------------------------------------------------------------------------------------------
// Stores: one SALESmanago account each, made a tenant by its settings webhook.

fn store_id(store: usize) -> u64 {
    7001 + store as u64
}

fn account(store: usize) -> FakeAccount {
    FakeAccount {
        client_id: format!("client-{store}"),
        api_key: format!("key-{store}"),
        api_secret: format!("secret-{store}"),
        owner: format!("owner@store-{store}.example"),
    }
}

fn settings(store: usize, sm_url: &str) -> J {
    let a = account(store);
    json!({
        "event": "app.settings.updated", "merchant": store_id(store),
        "created_at": "Tue Dec 01 2026 10:00:00 GMT+0300",
        "data": { "id": 1, "app_name": "SALESmanago", "settings": {
            "client_id": a.client_id, "api_key": a.api_key, "api_secret": a.api_secret,
            "owner": a.owner, "api_endpoint": sm_url,
            "endpoint": "https://collect.example/collect", "send_email": "true"
        } }
    })
}

async fn webhook(client: &reqwest::Client, url: &str, body: &J) -> (u16, J) {
    let raw = body.to_string();
    let r = client
        .post(format!("{url}/salla/webhook"))
        .header("Content-Type", "application/json")
        .header("X-Salla-Signature", sign(WEBHOOK_SECRET, raw.as_bytes()))
        .header("X-Salla-Security-Strategy", "Signature")
        .body(raw)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(J::Null))
}

/// Every store's settings, each to an instance at random (one in ten to both, as Salla may
/// deliver a webhook twice). The batches posted right after may reach the instance that did not
/// take the settings: it must find the tenant in the database (on a miss).
async fn make_tenants(
    client: &reqwest::Client,
    urls: &[String],
    stores: usize,
    sm: &Fake,
    rng: &mut Rng,
) {
    for store in 0..stores {
        sm.add_account(account(store));
        let body = settings(store, &sm.url);
        let first = rng.below(urls.len());
        let mut to = vec![first];
        if rng.percent(10) {
            to.push((first + 1) % urls.len());
        }
        for i in to {
            let (status, answer) = webhook(client, &urls[i], &body).await;
            assert_eq!(
                status, 200,
                "store {store}'s settings at instance {i}: {answer}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Receiver processes.

struct Instance {
    name: String,
    child: Child,
    url: String,
    /// Events it logged as forwarded (its `"forwarded"` log lines): whether it is delivering.
    forwarded: Arc<AtomicU64>,
}

/// A log line's level is a warning or an error.
fn loud(line: &str) -> bool {
    line.contains("\"level\":\"WARN\"") || line.contains("\"level\":\"ERROR\"")
}

impl Instance {
    /// Starts `sm-receiver` in Cloud Mode (no env account) on `db`, on a port of its choosing
    /// (it logs where it listens). `dir` is its own: were `SM_DATABASE_URL` ignored, each would
    /// keep a SQLite file apart and the checks below would say so.
    async fn start(name: &str, db: &Database, dir: &Path) -> Instance {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sm-receiver"));
        for var in [
            "SM_API_ENDPOINT",
            "SM_CLIENT_ID",
            "SM_API_KEY",
            "SM_API_SECRET",
            "SM_OWNER",
            "SM_SALLA_STORE_ID",
        ] {
            cmd.env_remove(var);
        }
        let mut child = cmd
            .env("SM_DATABASE_URL", &db.url)
            .env("SM_CLAIM_LEASE", LEASE_SECS.to_string())
            .env("SM_SALLA_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("SM_SECRET_KEY", SECRET_KEY)
            .env("SM_ALLOWED_ORIGINS", ORIGIN)
            .env("SM_LISTEN", "127.0.0.1:0")
            .env("SM_DATA_DIR", dir)
            .env("SM_RATE_PER_IP", "1000000000")
            .env("SM_RATE_PER_ORIGIN", "1000000000")
            .env("SM_RATE_PER_STORE", "1000000000")
            .env("SM_LOG", "info")
            .stdout(Stdio::piped())
            // Why it could not start, if it cannot.
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the receiver starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let log: J = serde_json::from_str(&line).unwrap_or(J::Null);
                if log["fields"]["message"] == "receiver listening" {
                    return log["fields"]["addr"].as_str().unwrap().to_owned();
                }
                if loud(&line) {
                    eprintln!("[{name}] {line}");
                }
            }
            panic!("receiver {name} exited before it listened");
        })
        .await
        .unwrap_or_else(|_| panic!("receiver {name} says where it listens within 30 s"));
        // Keep reading its log (a full pipe would block it): count what it forwards, show its
        // first warnings and errors.
        let (label, forwarded) = (name.to_owned(), Arc::new(AtomicU64::new(0)));
        let counted = forwarded.clone();
        tokio::spawn(async move {
            let mut shown = 0;
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("\"message\":\"forwarded\"") {
                    counted.fetch_add(1, Relaxed);
                } else if loud(&line) && shown < 40 {
                    shown += 1;
                    eprintln!("[{label}] {line}");
                }
            }
        });
        let url = format!("http://{addr}");
        wait_healthy(&url).await;
        Instance {
            name: name.to_owned(),
            child,
            url,
            forwarded,
        }
    }

    /// SIGKILL; returns once the process is gone (reaped): every call it made to SALESmanago
    /// was taken before that instant.
    async fn kill(mut self) -> Instant {
        self.child.start_kill().unwrap();
        let status = self.wait().await;
        assert!(!status.success(), "killed, not exited: {status}");
        Instant::now()
    }

    /// SIGTERM: a graceful stop finishes its calls in flight and exits 0.
    async fn terminate(mut self) {
        let pid = self.child.id().expect("still running") as libc::pid_t;
        // SAFETY: kill(2) on our own child's pid, which cannot have been reused: not reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let status = self.wait().await;
        assert!(
            status.success(),
            "{}: a graceful stop exits 0: {status}",
            self.name
        );
    }

    async fn wait(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} exits within 30 s", self.name))
            .unwrap()
    }
}

/// An empty directory of its own (not [`data_dir`], which also makes a database of the suite's
/// when it runs on PostgreSQL: these tests make theirs).
fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sm-receiver-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Fails clearly when the receivers made nothing in the database: they did not use it.
async fn receivers_use(db: &Database) {
    let tables = db.tables().await;
    assert!(
        tables > 0,
        "the receivers made no table in SM_DATABASE_URL ({}): they do not store in PostgreSQL",
        db.name
    );
}

// ---------------------------------------------------------------------------------------------
// The plan: shoppers, each of one store, with one cart, posting their events in batches.

struct Planned {
    id: String,
    kind: &'static str,
    products: String,
    external_id: Option<String>,
}

struct Shopper {
    store: usize,
    contact: J,
    anonymous_id: String,
    events: Vec<Planned>,
    /// Each batch's events: a range of `events`.
    batches: Vec<(usize, usize)>,
}

impl Shopper {
    fn email(&self) -> Option<&str> {
        self.contact["email"].as_str()
    }

    fn contact_id(&self) -> Option<&str> {
        self.contact["contactId"].as_str()
    }

    fn body(&self, from: usize, to: usize) -> String {
        let events = self.events[from..to]
            .iter()
            .map(|e| event(&e.id, e.kind, e.external_id.as_deref(), &e.products))
            .collect();
        let mut b = batch_from(Some(&self.anonymous_id), events, self.contact.clone());
        b["clientId"] = json!(account(self.store).client_id);
        b["storeId"] = json!(store_id(self.store).to_string());
        b.to_string()
    }

    fn last_cart(&self) -> &Planned {
        self.events.iter().rev().find(|e| e.kind == "CART").unwrap()
    }
}

struct Plan {
    shoppers: Vec<Shopper>,
    /// Event id → (shopper, its place in the shopper's events).
    index: HashMap<String, (usize, usize)>,
}

impl Plan {
    /// `shoppers` shoppers spread over `stores` stores, `per_shopper` events each: a VISIT, a
    /// CART, then CARTs of growing content, VISITs and OTHERs; every third shopper ends with a
    /// PURCHASE (after its last CART: a delivered PURCHASE closes the contact's cart, so a later
    /// CART would be a new cart). Half the shoppers are named by email (upserted before their
    /// first event), half by `contactId`.
    fn new(stores: usize, shoppers: usize, per_shopper: usize, rng: &mut Rng) -> Plan {
        assert!(per_shopper >= 3);
        let mut plan = Plan {
            shoppers: Vec::new(),
            index: HashMap::new(),
        };
        for n in 0..shoppers {
            let store = n % stores;
            let contact = if n % 2 == 0 {
                json!({ "email": format!("shopper-{n}@store-{store}.example") })
            } else {
                json!({ "contactId": format!("contact-{n}") })
            };
            let mut events = Vec::new();
            let mut in_cart = 0;
            for i in 0..per_shopper {
                let kind = match i {
                    0 => "VISIT",
                    1 => "CART",
                    _ if i == per_shopper - 1 && n % 3 == 0 => "PURCHASE",
                    _ => [
                        "CART", "CART", "CART", "CART", "VISIT", "VISIT", "VISIT", "OTHER",
                    ][rng.below(8)],
                };
                if kind == "CART" {
                    in_cart += 1;
                }
                let products = (1..=in_cart.max(1))
                    .map(|p| (1000 + p).to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                let external_id = match kind {
                    "CART" => Some(format!("cart-{n}")),
                    "PURCHASE" => Some(format!("order-{n}")),
                    _ => None,
                };
                let id = format!("s{n}-e{i}");
                plan.index.insert(id.clone(), (n, i));
                events.push(Planned {
                    id,
                    kind,
                    products,
                    external_id,
                });
            }
            let mut batches = Vec::new();
            let mut i = 0;
            while i < per_shopper {
                let most = if rng.percent(50) { 3 } else { 10 };
                let size = 1 + rng.below(most.min(per_shopper - i));
                batches.push((i, i + size));
                i += size;
            }
            plan.shoppers.push(Shopper {
                store,
                contact,
                anonymous_id: format!("browser-{n}"),
                events,
                batches,
            });
        }
        plan
    }

    fn events(&self) -> usize {
        self.shoppers.iter().map(|s| s.events.len()).sum()
    }

    fn batches(&self) -> usize {
        self.shoppers.iter().map(|s| s.batches.len()).sum()
    }

    /// What must reach SALESmanago: every event but the CARTs a newer CART of the same cart may
    /// replace before they go (README: "a newer CART of the same cart that arrives before an
    /// older one went out replaces it"); each cart's last CART always goes.
    fn expected(&self) -> HashSet<&str> {
        let mut out = HashSet::new();
        for s in &self.shoppers {
            out.extend(
                s.events
                    .iter()
                    .filter(|e| e.kind != "CART")
                    .map(|e| e.id.as_str()),
            );
            out.insert(s.last_cart().id.as_str());
        }
        out
    }

    fn carts_posted(&self) -> usize {
        self.shoppers
            .iter()
            .flat_map(|s| &s.events)
            .filter(|e| e.kind == "CART")
            .count()
    }
}

// ---------------------------------------------------------------------------------------------
// Posting, as trackers do: to any instance; again after a network error (the batch may or may
// not have been committed) or a 5xx / 429.

struct Posting {
    client: reqwest::Client,
    urls: Vec<String>,
    alive: Vec<AtomicBool>,
    /// Events whose batch was answered 2xx (once per batch, however often it was posted).
    posted: AtomicU64,
    requests: AtomicU64,
    accepted: AtomicU64,
    duplicates: AtomicU64,
    /// Requests that got no answer (connection refused or cut): posted again elsewhere.
    lost: AtomicU64,
    /// Answers 5xx or 429: posted again.
    not_2xx: AtomicU64,
}

impl Posting {
    fn new(urls: Vec<String>) -> Posting {
        Posting {
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(SHOPPERS_AT_ONCE)
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            alive: urls.iter().map(|_| AtomicBool::new(true)).collect(),
            urls,
            posted: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            not_2xx: AtomicU64::new(0),
        }
    }

    /// Posts `body` (`n` events) to instance `first` (another if it is down) until an instance
    /// answers 200: (accepted, duplicates, whether an attempt got no answer on the way).
    async fn send(&self, body: &str, n: u64, first: usize) -> (u64, u64, bool) {
        let mut lost = false;
        for attempt in 0..200 {
            let target = (0..self.urls.len())
                .map(|k| (first + attempt + k) % self.urls.len())
                .find(|&i| self.alive[i].load(Relaxed))
                .expect("an instance is up");
            self.requests.fetch_add(1, Relaxed);
            let answer = self
                .client
                .post(format!("{}/collect", self.urls[target]))
                .header("Content-Type", "text/plain;charset=UTF-8")
                .header("Origin", ORIGIN)
                .body(body.to_owned())
                .send()
                .await;
            let r = match answer {
                Ok(r) => r,
                Err(_) => {
                    lost = true;
                    self.lost.fetch_add(1, Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let status = r.status().as_u16();
            let answer: J = r.json().await.unwrap_or(J::Null);
            match status {
                200 => {
                    let (acc, dup) = (
                        answer["accepted"].as_u64().unwrap(),
                        answer["duplicates"].as_u64().unwrap(),
                    );
                    assert_eq!(acc + dup, n, "every event accepted or a duplicate: {answer}");
                    self.accepted.fetch_add(acc, Relaxed);
                    self.duplicates.fetch_add(dup, Relaxed);
                    return (acc, dup, lost);
                }
                429 | 500..=599 => {
                    self.not_2xx.fetch_add(1, Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => panic!(
                    "instance {target} answered {status} {answer} to\n{body}\n(a batch of a store made a tenant at either instance)"
                ),
            }
        }
        panic!("no instance took a batch in 200 attempts: {body}");
    }

    /// One shopper's batches, one after the other (each after the last one's 200: the order
    /// posted is the order the shopper acted in). Some batches go to both instances at once
    /// (a retry racing the first try, two tabs), some again after their 200 (a tracker that
    /// did not see the answer).
    async fn shopper(&self, shopper: &Shopper, mut rng: Rng) {
        let two = self.urls.len();
        for &(from, to) in &shopper.batches {
            let body = shopper.body(from, to);
            let n = (to - from) as u64;
            let first = rng.below(two);
            let answers = match rng.below(100) {
                0..15 => {
                    let (a, b) = tokio::join!(
                        self.send(&body, n, first),
                        self.send(&body, n, (first + 1) % two)
                    );
                    vec![a, b]
                }
                15..30 => {
                    let a = self.send(&body, n, first).await;
                    let again = rng.below(two);
                    let b = self.send(&body, n, again).await;
                    assert!(
                        b.2 || b.0 == 0,
                        "a batch posted again after its 200 is all duplicates: {b:?}"
                    );
                    vec![a, b]
                }
                _ => vec![self.send(&body, n, first).await],
            };
            if answers.iter().all(|a| !a.2) {
                let accepted: u64 = answers.iter().map(|a| a.0).sum();
                assert_eq!(
                    accepted, n,
                    "each event of a batch accepted once across instances: {answers:?} for {body}"
                );
            }
            self.posted.fetch_add(n, Relaxed);
            // The shopper's next action comes a moment later: time for some CARTs to go out
            // before the next one (an update, then), others to be replaced while queued.
            tokio::time::sleep(Duration::from_millis(rng.below(40) as u64)).await;
        }
    }
}

/// Every shopper's batches, `SHOPPERS_AT_ONCE` shoppers at a time; how long it took.
async fn post_all(posting: &Arc<Posting>, plan: &Arc<Plan>, rng: &mut Rng) -> Duration {
    let started = Instant::now();
    let slots = Arc::new(Semaphore::new(SHOPPERS_AT_ONCE));
    let mut tasks = JoinSet::new();
    for s in 0..plan.shoppers.len() {
        let (posting, plan, slots, rng) =
            (posting.clone(), plan.clone(), slots.clone(), rng.fork());
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            posting.shopper(&plan.shoppers[s], rng).await;
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    started.elapsed()
}

// ---------------------------------------------------------------------------------------------
// Delivery.

/// Waits until SALESmanago took every expected event at least once (failing at once on a
/// refused call), then a while longer for stragglers (a second copy would come right after);
/// returns every call, and when the last expected event arrived.
async fn delivered(sm: &Fake, plan: &Plan, since: Instant) -> (Vec<Call>, Instant) {
    let expected = plan.expected();
    let end = Instant::now() + DELIVERY_DEADLINE;
    let mut said = Instant::now();
    loop {
        let calls = sm.calls();
        let refused: Vec<&Call> = calls.iter().filter(|c| c.refused().is_some()).collect();
        assert!(
            refused.is_empty(),
            "SALESmanago refused {} calls, the first: {:#?}",
            refused.len(),
            refused[0]
        );
        let seen: HashSet<&str> = calls
            .iter()
            .filter(|c| !c.is_upsert())
            .filter_map(Call::description)
            .collect();
        let missing: Vec<&str> = expected
            .iter()
            .filter(|id| !seen.contains(**id))
            .copied()
            .collect();
        if missing.is_empty() {
            tokio::time::sleep(Duration::from_secs(2)).await;
            return (sm.calls(), Instant::now() - Duration::from_secs(2));
        }
        if said.elapsed() >= Duration::from_secs(5) {
            said = Instant::now();
            println!(
                "  {:.0} s: {} of {} events delivered ({} calls)",
                since.elapsed().as_secs_f64(),
                expected.len() - missing.len(),
                expected.len(),
                calls.len()
            );
        }
        assert!(
            Instant::now() < end,
            "{} of {} events not delivered within {DELIVERY_DEADLINE:?}, e.g. {:?}",
            missing.len(),
            expected.len(),
            &missing[..missing.len().min(20)]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What the calls add up to.
#[derive(Debug, Default)]
struct Delivery {
    /// Event calls taken.
    taken: usize,
    /// Events taken twice (only after a kill).
    twice: BTreeSet<String>,
    /// Carts added twice, and the event of the first add, which the kill cut off (only after a
    /// kill).
    carts_added_again: BTreeMap<String, String>,
    /// CARTs replaced by a newer CART of their cart before they went.
    superseded: usize,
    upserts: usize,
}

/// Checks every call SALESmanago got against the plan. `killed_at`: when an instance was
/// killed (every call it made came before); `None` when none was, and then every event goes
/// exactly once.
///
/// What a kill allows (at least once, README "What it guarantees"): an instance killed after
/// SALESmanago took a call and before it recorded the answer leaves that event claimed but not
/// delivered; after the lease another instance sends it again. Nothing else may be sent twice:
/// an event claimed and not yet sent is sent once by the next instance, and an event whose
/// delivery was recorded is never claimed again. The dead instance had at most one call in
/// flight per delivery lane (a lane records each answer before its next call), so at most
/// `PARALLEL_LANES` events go twice, each first taken before the kill.
///
/// A cart whose add (`addContactExtEvent`) was one of those calls cannot be updated: the
/// receiver never learnt the `eventId` SALESmanago gave it. Its next CART call is an add
/// again, of the same event (sent again) or of a newer CART of the cart (if the newer one
/// replaced the one in flight). So a cart may have a second add, right after its first, whose
/// first was taken before the kill; and that counts against the same in-flight bound. Every
/// update names the cart's latest add, and the cart ends in its last CART posted.
fn check(plan: &Plan, calls: &[Call], killed_at: Option<Instant>) -> Delivery {
    let mut d = Delivery::default();
    let refused: Vec<&Call> = calls.iter().filter(|c| c.refused().is_some()).collect();
    assert!(refused.is_empty(), "refused calls: {refused:#?}");

    // Contacts: an email's contact upserted in its own store's account before its events.
    let mut first_upsert: HashMap<&str, u64> = HashMap::new();
    let by_email: HashMap<&str, &Shopper> = plan
        .shoppers
        .iter()
        .filter_map(|s| Some((s.email()?, s)))
        .collect();
    for u in calls.iter().filter(|c| c.is_upsert()) {
        d.upserts += 1;
        let email = u.contact()["email"].as_str().unwrap();
        let shopper = by_email
            .get(email)
            .unwrap_or_else(|| panic!("an upsert of an email never posted: {u:#?}"));
        let a = account(shopper.store);
        assert_eq!(u.client_id(), Some(a.client_id.as_str()), "{u:#?}");
        assert_eq!(u.body["apiKey"], a.api_key, "{u:#?}");
        first_upsert.entry(email).or_insert(u.n);
    }

    let mut times: HashMap<&str, Vec<&Call>> = HashMap::new();
    // Per shopper, the places (in its events) of what was delivered, in the order delivered.
    let mut per_shopper: Vec<Vec<(usize, &Call)>> = vec![Vec::new(); plan.shoppers.len()];
    for call in calls.iter().filter(|c| !c.is_upsert()) {
        d.taken += 1;
        let id = call.description().unwrap_or("");
        let &(s, i) = plan
            .index
            .get(id)
            .unwrap_or_else(|| panic!("a call for an event never posted: {call:#?}"));
        let (shopper, planned) = (&plan.shoppers[s], &plan.shoppers[s].events[i]);
        let a = account(shopper.store);
        assert_eq!(
            (
                call.client_id(),
                call.body["apiKey"].as_str(),
                call.body["owner"].as_str()
            ),
            (
                Some(a.client_id.as_str()),
                Some(a.api_key.as_str()),
                Some(a.owner.as_str())
            ),
            "an event of store {} under another store's credentials: {call:#?}",
            shopper.store
        );
        match (shopper.email(), shopper.contact_id()) {
            (Some(email), _) => {
                assert_eq!(call.email(), Some(email), "{call:#?}");
                let upserted = first_upsert.get(email).copied();
                assert!(
                    upserted.is_some_and(|n| n < call.n),
                    "{email}'s contact upserted before its first event: {call:#?}"
                );
            }
            (None, contact_id) => assert_eq!(call.contact_id(), contact_id, "{call:#?}"),
        }
        let ce = call.contact_event();
        assert_eq!(ce["contactExtEventType"], planned.kind, "{call:#?}");
        assert_eq!(ce["products"], planned.products.as_str(), "{call:#?}");
        times.entry(&planned.id).or_default().push(call);
        per_shopper[s].push((i, call));
    }

    // Each event at most once (twice only for a call the kill cut off), every expected one.
    for (id, copies) in &times {
        match (copies.len(), killed_at) {
            (1, _) => {}
            (2, Some(killed)) => {
                assert!(
                    copies[0].at < killed && copies[1].at >= killed,
                    "{id} sent twice, but not across the kill: {copies:#?}"
                );
                d.twice.insert(id.to_string());
            }
            _ => panic!("{id} sent {} times: {copies:#?}", copies.len()),
        }
    }
    let expected = plan.expected();
    let missing: Vec<&&str> = expected
        .iter()
        .filter(|id| !times.contains_key(**id))
        .collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    let carts_delivered = times
        .keys()
        .filter(|id| {
            let (s, i) = plan.index[**id];
            plan.shoppers[s].events[i].kind == "CART"
        })
        .count();
    d.superseded = plan.carts_posted() - carts_delivered;

    for (s, got) in per_shopper.iter().enumerate() {
        let shopper = &plan.shoppers[s];
        // In the order posted, per contact (a repeat only for an event sent again).
        for w in got.windows(2) {
            let ((i, a), (j, b)) = (w[0], w[1]);
            let repeat = i == j && d.twice.contains(&shopper.events[i].id);
            assert!(
                j > i || repeat,
                "shopper {s}'s events out of the order posted: {} then {}\n{a:#?}\n{b:#?}",
                shopper.events[i].id,
                shopper.events[j].id
            );
        }
        // The cart: one add, then updates of that add's eventId; the last CART posted last.
        let cart: Vec<(usize, &Call)> = got
            .iter()
            .copied()
            .filter(|(i, _)| shopper.events[*i].kind == "CART")
            .collect();
        let (_, first) = cart
            .first()
            .unwrap_or_else(|| panic!("shopper {s}'s cart never reached SALESmanago"));
        assert_eq!(first.method(), "addContactExtEvent", "{first:#?}");
        let mut added = first.taken_id().unwrap().to_owned();
        for w in cart.windows(2) {
            let ((_, before), (_, call)) = (w[0], w[1]);
            match call.method() {
                "updateContactExtEvent" => assert_eq!(
                    call.sent_event_id(),
                    Some(added.as_str()),
                    "cart-{s}: an update of its latest add's eventId\n{call:#?}"
                ),
                _ => {
                    let cut_off = killed_at.is_some_and(|k| before.at < k)
                        && before.method() == "addContactExtEvent"
                        && d.carts_added_again
                            .insert(format!("cart-{s}"), before.description().unwrap().into())
                            .is_none();
                    assert!(
                        cut_off,
                        "cart-{s} added again: one add per cart{}\n{before:#?}\n{call:#?}",
                        if killed_at.is_some() {
                            " (or two, when the kill cut the first one's answer off)"
                        } else {
                            ""
                        }
                    );
                    added = call.taken_id().unwrap().to_owned();
                }
            }
        }
        let (_, last) = cart.last().unwrap();
        assert_eq!(
            last.description(),
            Some(shopper.last_cart().id.as_str()),
            "cart-{s} ends in its last CART posted"
        );
    }
    if killed_at.is_some() {
        // The calls the kill cut off: events sent again, and carts whose add was lost.
        let mut cut: BTreeSet<String> = d.twice.clone();
        cut.extend(d.carts_added_again.values().cloned());
        assert!(
            cut.len() <= PARALLEL_LANES,
            "{} calls cut off by the kill, more than the {PARALLEL_LANES} a receiver has in flight: {cut:?}",
            cut.len()
        );
    }
    d
}

/// Every instance's /health is 200, and its /metrics (the queue's counts are the database's)
/// show nothing queued, waiting, failed or paused.
async fn all_settled(instances: &[&Instance]) -> Vec<String> {
    let mut out = Vec::new();
    for i in instances {
        let health = health_becomes(&i.url, 200).await;
        assert!(health.starts_with("ok"), "{}: {health}", i.name);
        let m = metrics(&i.url).await;
        for (name, value) in [
            ("sm_receiver_queue_depth", 0),
            ("sm_receiver_events_waiting_for_contact", 0),
            ("sm_receiver_events_failed_total", 0),
            ("sm_receiver_delivery_paused", 0),
        ] {
            assert_eq!(metric(&m, name), value, "{}: {name}\n{m}", i.name);
        }
        out.push(m);
    }
    out
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_deliver_every_event_once_in_order() {
    const STORES: usize = 50;
    const SHOPPERS: usize = 1000;
    const PER_SHOPPER: usize = 10;
    let Some(server) = database::server_for_test() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let mut rng = Rng::from_env("two instances");
    let db = Database::create(&server, "two").await;
    let sm = Fake::start().await;
    let a = Instance::start("A", &db, &scratch_dir("inst-two-a")).await;
    let b = Instance::start("B", &db, &scratch_dir("inst-two-b")).await;
    receivers_use(&db).await;
    let posting = Arc::new(Posting::new(vec![a.url.clone(), b.url.clone()]));
    make_tenants(&posting.client, &posting.urls, STORES, &sm, &mut rng).await;

    let plan = Arc::new(Plan::new(STORES, SHOPPERS, PER_SHOPPER, &mut rng));
    let events = plan.events();
    println!(
        "posting {events} events of {SHOPPERS} shoppers (one cart each) of {STORES} stores in {} batches, to 2 instances",
        plan.batches()
    );
    let started = Instant::now();
    let took = post_all(&posting, &plan, &mut rng).await;
    println!(
        "  posted in {:.1} s: {:.0} events/s accepted; {} requests ({} duplicates answered, {} not 2xx, {} unanswered)",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64(),
        posting.requests.load(Relaxed),
        posting.duplicates.load(Relaxed),
        posting.not_2xx.load(Relaxed),
        posting.lost.load(Relaxed),
    );
    assert_eq!(posting.lost.load(Relaxed), 0, "no request left unanswered");
    assert_eq!(posting.accepted.load(Relaxed), events as u64);

    let (calls, done) = delivered(&sm, &plan, started).await;
    let all = (done - started).as_secs_f64();
    let d = check(&plan, &calls, None);
    println!(
        "  delivered in {all:.1} s from the first post: {} calls, {:.0} events/s end to end; {} CARTs superseded by a newer one; {} upserts for {} email shoppers",
        d.taken,
        d.taken as f64 / all,
        d.superseded,
        d.upserts,
        SHOPPERS / 2
    );
    let m = all_settled(&[&a, &b]).await;
    assert_eq!(
        metric(&m[0], "sm_receiver_events_superseded"),
        d.superseded as u64,
        "every CART not delivered was superseded by a newer one (the database's count)"
    );
    let accepted: u64 = m
        .iter()
        .map(|m| metric(m, "sm_receiver_events_accepted_total"))
        .sum();
    assert_eq!(
        accepted, events as u64,
        "each event accepted by one instance"
    );
    a.terminate().await;
    b.terminate().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_load_loses_nothing_and_the_other_delivers_its_claims() {
    const STORES: usize = 10;
    const SHOPPERS: usize = 200;
    const PER_SHOPPER: usize = 10;
    let Some(server) = database::server_for_test() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let mut rng = Rng::from_env("kill -9");
    let db = Database::create(&server, "kill").await;
    let sm = Fake::start().await;
    // Each call answered after 30 ms: the instance killed has calls in flight, and has claimed
    // more than it sent.
    sm.set_answer_delay(Duration::from_millis(30));
    let dir_a = scratch_dir("inst-kill-a");
    let a = Instance::start("A", &db, &dir_a).await;
    let b = Instance::start("B", &db, &scratch_dir("inst-kill-b")).await;
    receivers_use(&db).await;
    let posting = Arc::new(Posting::new(vec![a.url.clone(), b.url.clone()]));
    make_tenants(&posting.client, &posting.urls, STORES, &sm, &mut rng).await;
    let plan = Arc::new(Plan::new(STORES, SHOPPERS, PER_SHOPPER, &mut rng));
    let events = plan.events() as u64;

    // Kill A once 40 % of the events were posted, while it delivers (it logged events
    // forwarded in the last 50 ms: its lanes are busy, calls in flight). Posting goes on to B
    // (and what was on its way to A is posted again to B, as a tracker retries).
    let started = Instant::now();
    let killer = {
        let (posting, sm) = (posting.clone(), &sm);
        async move {
            let busy = Instant::now() + Duration::from_secs(30);
            loop {
                let before = a.forwarded.load(Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
                let delivering = a.forwarded.load(Relaxed) > before;
                if posting.posted.load(Relaxed) >= events * 2 / 5 && delivering {
                    break;
                }
                assert!(
                    Instant::now() < busy,
                    "A forwarded nothing in 30 s while B had {} (its \"forwarded\" log lines)",
                    sm.taken().len()
                );
            }
            posting.alive[0].store(false, Relaxed);
            let a_forwarded = a.forwarded.clone();
            let killed_at = a.kill().await;
            println!(
                "  A killed at {:.1} s while delivering: {} of {events} events posted, {} calls taken, {} of them A's",
                started.elapsed().as_secs_f64(),
                posting.posted.load(Relaxed),
                sm.taken().len(),
                a_forwarded.load(Relaxed)
            );
            killed_at
        }
    };
    let (took, killed_at) = tokio::join!(post_all(&posting, &plan, &mut rng), killer);
    println!(
        "  posted {events} events in {:.1} s ({} requests, {} unanswered and posted again, {} not 2xx)",
        took.as_secs_f64(),
        posting.requests.load(Relaxed),
        posting.lost.load(Relaxed),
        posting.not_2xx.load(Relaxed),
    );

    // B alone delivers everything, A's claims included once their lease ran out.
    let (calls, done) = delivered(&sm, &plan, started).await;
    let d = check(&plan, &calls, Some(killed_at));
    println!(
        "  B delivered everything {:.1} s after the kill: {} calls; sent twice (cut off by the kill): {} {:?}; carts added again: {:?}",
        (done - killed_at).as_secs_f64(),
        d.taken,
        d.twice.len(),
        d.twice,
        d.carts_added_again
    );
    all_settled(&[&b]).await;

    // A again, on the same database: it starts, and takes over nothing that was done. The
    // trackers' retries of earlier batches, to A, are duplicates; new batches are delivered once.
    let a = Instance::start("A again", &db, &dir_a).await;
    let retried: Vec<&Shopper> = plan.shoppers.iter().step_by(10).collect();
    for s in &retried {
        for &(from, to) in &s.batches {
            assert_eq!(
                posting_to(&a, s.body(from, to)).await,
                (0, (to - from) as u64),
                "retried after the restart"
            );
        }
    }
    let before = sm.taken().len();
    let mut late = Vec::new();
    for store in 0..STORES {
        let id = format!("late-{store}");
        let mut body = batch_from(
            Some("late-browser"),
            vec![event(&id, "VISIT", None, "1001")],
            json!({ "contactId": format!("late-contact-{store}") }),
        );
        body["clientId"] = json!(account(store).client_id);
        body["storeId"] = json!(store_id(store).to_string());
        assert_eq!(posting_to(&a, body.to_string()).await, (1, 0));
        late.push((id, store));
    }
    let taken = sm
        .wait_for_taken(before + STORES, Duration::from_secs(30))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let taken_now = sm.taken();
    assert_eq!(
        taken_now.len(),
        before + STORES,
        "after the restart only the new events go out: {:#?}",
        &taken_now[before..]
    );
    for (id, store) in late {
        let call = taken
            .iter()
            .find(|c| c.description() == Some(id.as_str()))
            .unwrap();
        assert_eq!(call.client_id(), Some(account(store).client_id.as_str()));
    }
    all_settled(&[&a, &b]).await;
    a.terminate().await;
    b.terminate().await;
    db.drop_now().await;
}

/// Posts `body` to one instance, which must answer 200.
async fn posting_to(i: &Instance, body: String) -> (u64, u64) {
    let (status, answer) = post_raw(&i.url, body, Some(ORIGIN)).await;
    assert_eq!(status, 200, "{}: {answer}", i.name);
    (
        answer["accepted"].as_u64().unwrap(),
        answer["duplicates"].as_u64().unwrap(),
    )
}
