//! Load benchmark (not a test): the release `sm-receiver` pinned to one core, durability on
//! (SQLite WAL, `synchronous = FULL`), forwarding to the tests' fake SALESmanago API on 127.0.0.1.
//! The load generator and the fake run on the other core.
//!
//! `cargo bench -p salla-salesmanago-receiver --bench load` (or `npm run bench:receiver`). Prints
//! a table and writes `target/bench/receiver.json`. Every phase is bounded in time.
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

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::{json, Value as J};
use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

const CONNECTIONS: usize = 32;
const THROUGHPUT_SECS: u64 = 8;
const LATENCY_RATE: u64 = 100;
const LATENCY_SECS: u64 = 5;

fn main() {
    // The receiver gets core 0 to itself; this process (load and fake API) takes core 1.
    if std::env::var_os("SM_BENCH_PINNED").is_some() {
        return block_on(run(true));
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
    block_on(run(false));
}

fn block_on(f: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}

struct Receiver {
    child: Child,
    url: String,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    async fn start(sm_url: &str, pin: bool) -> Receiver {
        let dir = data_dir("bench");
        let port = free_port();
        let bin = env!("CARGO_BIN_EXE_sm-receiver");
        let mut cmd = if pin {
            let mut c = receiver_command("taskset", sm_url, &dir, port);
            c.args(["-c", "0", bin]);
            c
        } else {
            receiver_command(bin, sm_url, &dir, port)
        };
        let child = cmd
            .env("SM_RATE_PER_IP", "1000000000")
            .env("SM_RATE_PER_ORIGIN", "1000000000")
            .env("SM_RATE_PER_STORE", "1000000000")
            .env("SM_LOG", "warn")
            .spawn()
            .expect("the receiver starts");
        let url = format!("http://127.0.0.1:{port}");
        wait_healthy(&url).await;
        Receiver { child, url }
    }

    /// (resident, peak resident) in KiB, from /proc.
    fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
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

async fn latency(sm: &Fake, r: &Receiver, client: &reqwest::Client) -> (f64, f64, f64) {
    let posted_at = Arc::new(Mutex::new(HashMap::new()));
    let total = LATENCY_RATE * LATENCY_SECS;
    let before = sm.taken().len();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / LATENCY_RATE));
    let mut sends = Vec::new();
    for n in 0..total {
        tick.tick().await;
        let (client, url, at) = (client.clone(), r.url.clone(), posted_at.clone());
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
    peak_rss_kib: u64,
}

async fn throughput(
    sm: &Fake,
    r: &Receiver,
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
    let end = start + Duration::from_secs(THROUGHPUT_SECS);
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, url, prefix) = (client.clone(), r.url.clone(), prefix.clone());
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
    let mut peak = 0;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(r.memory_kib().0);
    }
    for w in workers {
        w.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let forwarded = sm.taken().len() - forwarded_before;
    Throughput {
        batch: size,
        shoppers: who,
        upserts: sm.upserts().len() - upserts_before,
        unanswered: unanswered.load(Relaxed),
        events_per_sec: accepted.load(Relaxed) as f64 / secs,
        requests_per_sec: requests.load(Relaxed) as f64 / secs,
        forwarded_per_sec: forwarded as f64 / secs,
        peak_rss_kib: peak.max(r.memory_kib().1),
    }
}

async fn run(pinned: bool) {
    let sm = Fake::start().await;
    let r = Receiver::start(&sm.url, pinned).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rest_kib, _) = r.memory_kib();
    let (p50, p99, timed) = latency(&sm, &r, &client).await;
    let runs = [
        throughput(&sm, &r, &client, 1, Shoppers::ContactIds).await,
        throughput(&sm, &r, &client, 10, Shoppers::ContactIds).await,
        throughput(&sm, &r, &client, 1, Shoppers::Emails).await,
        throughput(&sm, &r, &client, 1, Shoppers::NewEmails).await,
    ];
    let (after_kib, peak_kib) = r.memory_kib();

    println!(
        "receiver on {} (durability on: SQLite WAL, synchronous=FULL), {CONNECTIONS} connections, {THROUGHPUT_SECS} s a run",
        if pinned { "one core (taskset -c 0)" } else { "all cores (taskset missing)" }
    );
    println!(
        "| batch | shoppers named by | events/s accepted | requests/s | not 200 | upserts | events/s forwarded meanwhile | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for t in &runs {
        println!(
            "| {} | {} | {:.0} | {:.0} | {} | {} | {:.0} | {:.1} MiB |",
            t.batch,
            t.shoppers.label(),
            t.events_per_sec,
            t.requests_per_sec,
            t.unanswered,
            t.upserts,
            t.forwarded_per_sec,
            t.peak_rss_kib as f64 / 1024.0
        );
    }
    println!(
        "forward latency (POST /collect → fake API took the call), {LATENCY_RATE} events/s for {LATENCY_SECS} s, {timed} timed: p50 {p50:.1} ms, p99 {p99:.1} ms"
    );
    println!(
        "memory: at rest {:.1} MiB; after load {:.1} MiB; peak {:.1} MiB",
        rest_kib as f64 / 1024.0,
        after_kib as f64 / 1024.0,
        peak_kib as f64 / 1024.0
    );
    let report = json!({
        "pinned_one_core": pinned,
        "connections": CONNECTIONS,
        "throughput": runs.iter().map(|t| json!({
            "batch": t.batch, "shoppers": t.shoppers.label(), "upserts": t.upserts,
            "unanswered": t.unanswered,
            "events_per_sec": t.events_per_sec.round(),
            "requests_per_sec": t.requests_per_sec.round(),
            "forwarded_per_sec": t.forwarded_per_sec.round(), "peak_rss_kib": t.peak_rss_kib,
        })).collect::<Vec<_>>(),
        "forward_latency_ms": { "p50": p50, "p99": p99, "events": timed, "rate_per_sec": LATENCY_RATE },
        "memory_kib": { "at_rest": rest_kib, "after_load": after_kib, "peak": peak_kib },
    });
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("receiver.json"), format!("{report:#}\n")).unwrap();
}
