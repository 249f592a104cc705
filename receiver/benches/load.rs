//! Load benchmark (not a test): the release `sm-receiver` pinned to one core, durability on
//! (SQLite WAL, `synchronous = FULL`), forwarding to the tests' fake SALESmanago API on 127.0.0.1.
//! The load generator and the fake run on the other core.
//!
//! `cargo bench -p salla-salesmanago-receiver --bench load` (or `npm run bench:receiver`, which
//! also starts a throw-away PostgreSQL server for the PostgreSQL mode below). Prints tables and
//! writes `target/bench/receiver.json`. Every phase is bounded in time.
//!
//! Phases:
//! 1. at rest: resident memory of the started, idle receiver;
//! 2. forward latency: a steady 100 single-event batches a second for 5 s, each timed from the
//!    tracker's POST to the fake API taking the call (the durable commit included; same clock:
//!    both ends are in this process);
//! 3. throughput: 32 connections posting as fast as they are answered for 8 s, batches of 1 event
//!    (one shopper's action) and of 10 (a burst), while the forwarder delivers; peak memory;
//! 4. the same with contact upserts in the path: batches of 1 event naming shoppers by email
//!    instead of `contactId` — 1,000 distinct shoppers, each upserted once (in its first request)
//!    and answered from the store after; then every batch a new shopper (each request waits for
//!    its upsert: the worst case).
//!
//! PostgreSQL mode: with `SM_BENCH_DATABASE_URL` (or `SM_TEST_DATABASE_URL`) naming a server's
//! database (`-- --postgres` insists on one), phases 1–3 run again with the receivers on
//! PostgreSQL (`SM_DATABASE_URL`, a fresh database each), with 1 and then 2 instances on the same
//! database, the 32 connections spread over the instances; memory is per instance. Every
//! receiver instance gets the receiver's core (see [`pinning`]). `SM_BENCH_QUICK=1` shortens
//! every phase (a smoke run; its figures are not the README's).

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::{json, Value as J};
use sqlx::Connection;
use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::database::{self, Database};
use support::*;

const CONNECTIONS: usize = 32;
const LATENCY_RATE: u64 = 100;

/// `SM_BENCH_QUICK=1`: every phase short (a smoke run).
fn quick() -> bool {
    std::env::var("SM_BENCH_QUICK").is_ok_and(|v| v.trim() == "1")
}

fn throughput_secs() -> u64 {
    if quick() {
        2
    } else {
        8
    }
}

fn latency_secs() -> u64 {
    if quick() {
        1
    } else {
        5
    }
}

fn main() {
    let postgres = postgres_server();
    // The receiver gets core 0 to itself; this process (load and fake API) takes core 1.
    if std::env::var_os("SM_BENCH_PINNED").is_some() {
        return block_on(run(true, postgres));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = cores >= 2 && Command::new("taskset").arg("-V").output().is_ok();
    if pin {
        let status = Command::new("taskset")
            .args(["-c", "1"])
            .args(std::env::args_os())
            .env("SM_BENCH_PINNED", "1")
            .status()
            .expect("taskset runs");
        std::process::exit(status.code().unwrap_or(1));
    }
    block_on(run(false, postgres));
}

/// The PostgreSQL server to measure on too: `SM_BENCH_DATABASE_URL`, else `SM_TEST_DATABASE_URL`
/// (a URL of one of its databases; each run makes its own database there and drops it after).
/// `--postgres` without either stops the benchmark.
fn postgres_server() -> Option<String> {
    let url = ["SM_BENCH_DATABASE_URL", "SM_TEST_DATABASE_URL"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.trim().is_empty()));
    if url.is_none() && std::env::args().any(|a| a == "--postgres") {
        eprintln!(
            "--postgres needs SM_BENCH_DATABASE_URL (a PostgreSQL server's URL; npm run bench:receiver starts one)"
        );
        std::process::exit(2);
    }
    url.map(|u| u.trim().to_owned())
}

fn block_on(f: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}

/// Where the receivers keep their state.
#[derive(Clone)]
enum Backend {
    /// A SQLite file in each receiver's data dir (one receiver).
    Sqlite,
    /// A fresh database on this PostgreSQL server, shared by every instance.
    Postgres { server: String },
}

/// How the receiver instances and this process share the cores, as one line for the output.
fn pinning(pinned: bool, backend: &Backend, instances: usize) -> String {
    match (pinned, backend) {
        (false, _) => "all cores (taskset missing)".into(),
        (true, Backend::Sqlite) => "one core (taskset -c 0)".into(),
        (true, Backend::Postgres { .. }) if instances == 1 => {
            "one core (taskset -c 0), as the SQLite run; the PostgreSQL server, started outside the benchmark, on any core".into()
        }
        (true, Backend::Postgres { .. }) => format!(
            "one core for all {instances} instances (taskset -c 0), as the SQLite run's one: core 1 runs the load and the fake, so a 2-core machine has no core of its own for a second instance; these rows show what sharing one database costs on the same CPU, not scale-out. The PostgreSQL server, started outside the benchmark, runs on any core"
        ),
    }
}

/// The receiver instances of one measurement (all on one database with PostgreSQL).
struct Receivers {
    children: Vec<Child>,
    urls: Vec<String>,
    /// Dropped after the children are gone (see `Drop`).
    db: Option<Database>,
}

impl Drop for Receivers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Receivers {
    async fn start(sm_url: &str, pin: bool, backend: &Backend, instances: usize) -> Receivers {
        let db = match backend {
            Backend::Sqlite => None,
            Backend::Postgres { server } => {
                Some(Database::create(server, &format!("bench{instances}")).await)
            }
        };
        let bin = env!("CARGO_BIN_EXE_sm-receiver");
        let mut children = Vec::new();
        let mut urls = Vec::new();
        for k in 0..instances {
            // Not `data_dir`: under SM_TEST_BACKEND=postgres it makes a database of the suite's.
            let dir =
                std::env::temp_dir().join(format!("sm-receiver-bench-{k}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let port = free_port();
            let mut cmd = if pin {
                let mut c = receiver_command("taskset", sm_url, &dir, port);
                c.args(["-c", "0", bin]);
                c
            } else {
                receiver_command(bin, sm_url, &dir, port)
            };
            match &db {
                Some(db) => cmd.env("SM_DATABASE_URL", &db.url),
                // SQLite in `dir`, whatever the environment says.
                None => cmd
                    .env_remove("SM_DATABASE_URL")
                    .env_remove("SM_CLAIM_LEASE"),
            };
            let child = cmd
                .env("SM_RATE_PER_IP", "1000000000")
                .env("SM_RATE_PER_ORIGIN", "1000000000")
                .env("SM_RATE_PER_STORE", "1000000000")
                .env("SM_LOG", "warn")
                .spawn()
                .expect("the receiver starts");
            children.push(child);
            urls.push(format!("http://127.0.0.1:{port}"));
        }
        // Made before anything can fail: a panic from here on kills the children (`Drop`).
        let receivers = Receivers { children, urls, db };
        for url in &receivers.urls {
            wait_healthy(url).await;
        }
        if let Some(db) = &receivers.db {
            // Figures of receivers that kept to their own SQLite files would be no PostgreSQL's.
            assert!(
                db.tables().await > 0,
                "the receivers made no table in SM_DATABASE_URL: they do not store in PostgreSQL"
            );
        }
        receivers
    }

    /// The instance the `k`-th connection (or request) goes to.
    fn url(&self, k: usize) -> &str {
        &self.urls[k % self.urls.len()]
    }

    /// (resident, peak resident) in KiB of each instance, from /proc.
    fn memory_kib(&self) -> Vec<(u64, u64)> {
        self.children
            .iter()
            .map(|child| {
                let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
                    .unwrap_or_default();
                let field = |name: &str| {
                    status
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .and_then(|v| v.split_whitespace().next()?.parse().ok())
                        .unwrap_or(0)
                };
                (field("VmRSS:"), field("VmHWM:"))
            })
            .collect()
    }
}

/// A realistic mix: views, cart changes (one cart per shopper), other events.
fn bench_event(id: &str, n: u64) -> J {
    match n % 5 {
        1 | 3 => event(id, "CART", Some(&format!("cart-{}", n % 1000)), "1001,1002"),
        4 => event(id, "OTHER", None, "1001"),
        _ => event(id, "VISIT", None, "1001"),
    }
}

/// Who a run's batches name.
#[derive(Clone, Copy, PartialEq)]
enum Shoppers {
    /// A `contactId` (the `smclient` cookie) of 1,000: no upsert.
    ContactIds,
    /// An email of 1,000: each upserted once.
    Emails,
    /// An email never seen before in every batch: each batch upserts.
    NewEmails,
}

impl Shoppers {
    fn label(self) -> &'static str {
        match self {
            Shoppers::ContactIds => "contactId (no upsert)",
            Shoppers::Emails => "email, 1,000 shoppers (upserted once each)",
            Shoppers::NewEmails => "email, a new shopper every batch (upsert each)",
        }
    }
}

fn body(prefix: &str, first: u64, size: u64, who: Shoppers) -> String {
    let events = (first..first + size)
        .map(|n| bench_event(&format!("{prefix}-{n}"), n))
        .collect();
    let contact = match who {
        Shoppers::ContactIds => json!({ "contactId": format!("contact-{}", first % 1000) }),
        Shoppers::Emails => json!({ "email": format!("shopper-{}@bench.example", first % 1000) }),
        Shoppers::NewEmails => json!({ "email": format!("{prefix}-{first}@bench.example") }),
    };
    batch(events, contact).to_string()
}

async fn send(client: &reqwest::Client, url: &str, body: String) -> bool {
    client
        .post(format!("{url}/collect"))
        .header("Content-Type", "text/plain;charset=UTF-8")
        .header("Origin", ORIGIN)
        .body(body)
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The requests take turns over the instances.
async fn latency(sm: &Fake, r: &Receivers, client: &reqwest::Client) -> (f64, f64, f64) {
    let posted_at = Arc::new(Mutex::new(HashMap::new()));
    let total = LATENCY_RATE * latency_secs();
    let before = sm.taken().len();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / LATENCY_RATE));
    let mut sends = Vec::new();
    for n in 0..total {
        tick.tick().await;
        let (client, url, at) = (
            client.clone(),
            r.url(n as usize).to_owned(),
            posted_at.clone(),
        );
        sends.push(tokio::spawn(async move {
            let id = format!("lat-{n}");
            let posted = Instant::now();
            if send(&client, &url, body("lat", n, 1, Shoppers::ContactIds)).await {
                at.lock().unwrap().insert(id, posted);
            }
        }));
    }
    for s in sends {
        s.await.unwrap();
    }
    let calls = sm
        .wait_for_taken(before + total as usize, Duration::from_secs(60))
        .await;
    let at = posted_at.lock().unwrap();
    let mut ms: Vec<f64> = calls[before..]
        .iter()
        .filter_map(|c| {
            let id = c.description()?;
            // A CART update can name an earlier id's event; time each call by its own id.
            let posted = at.get(id)?;
            Some(c.at.saturating_duration_since(*posted).as_secs_f64() * 1000.0)
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.99), ms.len() as f64)
}

struct Throughput {
    batch: u64,
    shoppers: Shoppers,
    upserts: usize,
    /// Requests not answered 200 (none expected).
    unanswered: u64,
    events_per_sec: f64,
    requests_per_sec: f64,
    forwarded_per_sec: f64,
    /// Per instance.
    peak_rss_kib: Vec<u64>,
}

/// The connections are spread over the instances (connection `k` posts to instance `k mod n`).
async fn throughput(
    sm: &Fake,
    r: &Receivers,
    client: &reqwest::Client,
    size: u64,
    who: Shoppers,
) -> Throughput {
    let prefix = format!("tp{size}-{}", who as u8);
    let upserts_before = sm.upserts().len();
    let next = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let unanswered = Arc::new(AtomicU64::new(0));
    let forwarded_before = sm.taken().len();
    let start = Instant::now();
    let end = start + Duration::from_secs(throughput_secs());
    let mut workers = Vec::new();
    for k in 0..CONNECTIONS {
        let (client, url, prefix) = (client.clone(), r.url(k).to_owned(), prefix.clone());
        let (next, accepted, requests, unanswered) = (
            next.clone(),
            accepted.clone(),
            requests.clone(),
            unanswered.clone(),
        );
        workers.push(tokio::spawn(async move {
            while Instant::now() < end {
                let first = next.fetch_add(size, Relaxed);
                if send(&client, &url, body(&prefix, first, size, who)).await {
                    accepted.fetch_add(size, Relaxed);
                    requests.fetch_add(1, Relaxed);
                } else {
                    unanswered.fetch_add(1, Relaxed);
                }
            }
        }));
    }
    let mut peak = vec![0; r.urls.len()];
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (p, (rss, _)) in peak.iter_mut().zip(r.memory_kib()) {
            *p = (*p).max(rss);
        }
    }
    for w in workers {
        w.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let forwarded = sm.taken().len() - forwarded_before;
    for (p, (_, hwm)) in peak.iter_mut().zip(r.memory_kib()) {
        *p = (*p).max(hwm);
    }
    Throughput {
        batch: size,
        shoppers: who,
        upserts: sm.upserts().len() - upserts_before,
        unanswered: unanswered.load(Relaxed),
        events_per_sec: accepted.load(Relaxed) as f64 / secs,
        requests_per_sec: requests.load(Relaxed) as f64 / secs,
        forwarded_per_sec: forwarded as f64 / secs,
        peak_rss_kib: peak,
    }
}

/// One measurement: phases 1–3 (and 4, as `runs` says) on `instances` receivers of `backend`,
/// with a fake SALESmanago API of its own.
struct Measured {
    instances: usize,
    pinning: String,
    /// Per instance.
    rest_kib: Vec<u64>,
    /// p50, p99 (ms), events timed.
    latency: (f64, f64, f64),
    runs: Vec<Throughput>,
    /// Per instance.
    after_kib: Vec<u64>,
    /// Per instance.
    peak_kib: Vec<u64>,
}

async fn measure(
    backend: &Backend,
    instances: usize,
    pinned: bool,
    runs: &[(u64, Shoppers)],
) -> Measured {
    let sm = Fake::start().await;
    let r = Receivers::start(&sm.url, pinned, backend, instances).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rest_kib = r.memory_kib().iter().map(|m| m.0).collect();
    let latency = latency(&sm, &r, &client).await;
    let mut measured = Vec::new();
    for &(size, who) in runs {
        measured.push(throughput(&sm, &r, &client, size, who).await);
    }
    let memory = r.memory_kib();
    Measured {
        instances,
        pinning: pinning(pinned, backend, instances),
        rest_kib,
        latency,
        runs: measured,
        after_kib: memory.iter().map(|m| m.0).collect(),
        peak_kib: memory.iter().map(|m| m.1).collect(),
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Per instance, `a / b`.
fn mibs(kib: &[u64]) -> String {
    kib.iter().map(|k| mib(*k)).collect::<Vec<_>>().join(" / ")
}

fn runs_json(runs: &[Throughput]) -> Vec<J> {
    runs.iter()
        .map(|t| {
            json!({
                "batch": t.batch, "shoppers": t.shoppers.label(), "upserts": t.upserts,
                "unanswered": t.unanswered,
                "events_per_sec": t.events_per_sec.round(),
                "requests_per_sec": t.requests_per_sec.round(),
                "forwarded_per_sec": t.forwarded_per_sec.round(),
                "peak_rss_kib": t.peak_rss_kib.iter().max().copied().unwrap_or(0),
                "peak_rss_kib_per_instance": t.peak_rss_kib,
            })
        })
        .collect()
}

/// What the server does about durability, in its own words, and whether that is durable (every
/// commit flushed to disk before it returns).
async fn server_durability(server: &str) -> (String, bool) {
    let mut c = sqlx::PgConnection::connect(&database::normalized(server))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the PostgreSQL server {server}: {e}"));
    let mut said = Vec::new();
    for what in ["fsync", "synchronous_commit", "full_page_writes"] {
        let v: String = sqlx::query_scalar(&format!("SHOW {what}"))
            .fetch_one(&mut c)
            .await
            .unwrap();
        said.push((what, v));
    }
    let _ = c.close().await;
    let durable = said.iter().all(|(what, v)| match *what {
        "synchronous_commit" => v != "off",
        _ => v == "on",
    });
    let text = said
        .iter()
        .map(|(w, v)| format!("{w}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    (text, durable)
}

async fn run(pinned: bool, postgres: Option<String>) {
    let sqlite_runs = [
        (1, Shoppers::ContactIds),
        (10, Shoppers::ContactIds),
        (1, Shoppers::Emails),
        (1, Shoppers::NewEmails),
    ];
    let m = measure(&Backend::Sqlite, 1, pinned, &sqlite_runs).await;
    let (p50, p99, timed) = m.latency;
    let secs = throughput_secs();
    println!(
        "receiver on {} (durability on: SQLite WAL, synchronous=FULL), {CONNECTIONS} connections, {secs} s a run",
        m.pinning
    );
    print_table(&m, false);
    println!(
        "forward latency (POST /collect → fake API took the call), {LATENCY_RATE} events/s for {} s, {timed} timed: p50 {p50:.1} ms, p99 {p99:.1} ms",
        latency_secs()
    );
    println!(
        "memory: at rest {}; after load {}; peak {}",
        mib(m.rest_kib[0]),
        mib(m.after_kib[0]),
        mib(m.peak_kib[0])
    );
    let mut report = json!({
        "pinned_one_core": pinned,
        "connections": CONNECTIONS,
        "quick": quick(),
        "throughput": runs_json(&m.runs),
        "forward_latency_ms": { "p50": p50, "p99": p99, "events": timed, "rate_per_sec": LATENCY_RATE },
        "memory_kib": { "at_rest": m.rest_kib[0], "after_load": m.after_kib[0], "peak": m.peak_kib[0] },
    });

    if let Some(server) = postgres {
        let (durability, durable) = server_durability(&server).await;
        let backend = Backend::Postgres { server };
        let pg_runs = [(1, Shoppers::ContactIds), (10, Shoppers::ContactIds)];
        let mut measured = Vec::new();
        for instances in [1, 2] {
            measured.push(measure(&backend, instances, pinned, &pg_runs).await);
        }
        println!();
        println!(
            "receivers on one PostgreSQL database (server: {durability}{}), {CONNECTIONS} connections spread over the instances, {secs} s a run",
            if durable {
                ": durability on"
            } else {
                ": DURABILITY OFF on this server, not comparable with the SQLite figures"
            }
        );
        for m in &measured {
            println!("{} instance(s): {}", m.instances, m.pinning);
        }
        println!(
            "| instances | batch | shoppers named by | events/s accepted | requests/s | not 200 | upserts | events/s forwarded meanwhile | peak RSS per instance |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        for m in &measured {
            print_rows(m, true);
        }
        for m in &measured {
            let (p50, p99, timed) = m.latency;
            println!(
                "{} instance(s): forward latency, {LATENCY_RATE} events/s for {} s taking turns over the instances, {timed} timed: p50 {p50:.1} ms, p99 {p99:.1} ms; memory per instance: at rest {}; after load {}; peak {}",
                m.instances,
                latency_secs(),
                mibs(&m.rest_kib),
                mibs(&m.after_kib),
                mibs(&m.peak_kib)
            );
        }
        report["postgres"] = json!({
            "server": durability,
            "durable": durable,
            "measured": measured.iter().map(|m| json!({
                "instances": m.instances,
                "pinning": m.pinning,
                "throughput": runs_json(&m.runs),
                "forward_latency_ms": { "p50": m.latency.0, "p99": m.latency.1, "events": m.latency.2, "rate_per_sec": LATENCY_RATE },
                "memory_kib_per_instance": { "at_rest": m.rest_kib, "after_load": m.after_kib, "peak": m.peak_kib },
            })).collect::<Vec<_>>(),
        });
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("receiver.json"), format!("{report:#}\n")).unwrap();
}

/// The SQLite table: its header and rows.
fn print_table(m: &Measured, with_instances: bool) {
    println!(
        "| batch | shoppers named by | events/s accepted | requests/s | not 200 | upserts | events/s forwarded meanwhile | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    print_rows(m, with_instances);
}

fn print_rows(m: &Measured, with_instances: bool) {
    for t in &m.runs {
        let instances = if with_instances {
            format!("| {} ", m.instances)
        } else {
            String::new()
        };
        println!(
            "{instances}| {} | {} | {:.0} | {:.0} | {} | {} | {:.0} | {} |",
            t.batch,
            t.shoppers.label(),
            t.events_per_sec,
            t.requests_per_sec,
            t.unanswered,
            t.upserts,
            t.forwarded_per_sec,
            mibs(&t.peak_rss_kib)
        );
    }
}
