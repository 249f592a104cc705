//! The receiver stopped while it forwards, then started again on the same database: what it
//! promises (README, "What it guarantees").
//!
//! - Killed (SIGKILL) in the middle of calls to SALESmanago: at least once. Every event arrives;
//!   the only ones sent twice are those SALESmanago took while the receiver had not yet recorded
//!   the answer, at most one per delivery lane.
//! - Stopped gracefully (SIGTERM): exactly once. The calls in flight finish and are recorded.
//!
//! In both, the tracker retrying a batch after the restart is answered as duplicates and
//! forwards nothing again.

mod support;

use salla_salesmanago_receiver::forwarder::PARALLEL_LANES;
use serde_json::{json, Value as J};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

const CONTACTS: usize = 4;
const PER_CONTACT: usize = 5;

/// A receiver process on a port of its choosing: it logs where it listens, so no port is
/// picked by the test and raced for.
struct Receiver {
    child: Child,
    url: String,
}

impl Receiver {
    async fn start(sm_url: &str, dir: &Path) -> Receiver {
        let mut cmd: tokio::process::Command =
            receiver_command(env!("CARGO_BIN_EXE_sm-receiver"), sm_url, dir, 0).into();
        let mut child = cmd
            .env("SM_LOG", "info")
            .stdout(Stdio::piped())
            // Why it could not start, if it cannot.
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the receiver starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let log: J = serde_json::from_str(&line).unwrap_or(J::Null);
                if log["fields"]["message"] == "receiver listening" {
                    return log["fields"]["addr"].as_str().unwrap().to_owned();
                }
            }
            panic!("the receiver exited before it listened");
        })
        .await
        .expect("the receiver says where it listens within 20 s");
        // Keep reading its log, so that a full pipe never blocks it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let url = format!("http://{addr}");
        wait_healthy(&url).await;
        Receiver { child, url }
    }

    async fn kill(mut self) {
        self.child.start_kill().unwrap();
        let status = self.wait().await;
        assert!(!status.success(), "killed, not exited: {status}");
    }

    async fn terminate(mut self) {
        let pid = self.child.id().expect("still running") as libc::pid_t;
        // SAFETY: kill(2) on our own child's pid, which cannot have been reused: it is not reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let status = self.wait().await;
        assert!(status.success(), "a graceful stop exits 0: {status}");
    }

    async fn wait(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the receiver exits within 30 s")
            .unwrap()
    }
}

/// Four shoppers' events: four lanes the forwarder delivers side by side.
fn batches() -> Vec<J> {
    (0..CONTACTS)
        .map(|c| {
            let events = (0..PER_CONTACT)
                .map(|i| event(&format!("c{c}-e{i}"), "OTHER", None, "1"))
                .collect();
            batch(events, json!({ "contactId": format!("c{c}") }))
        })
        .collect()
}

fn all_ids() -> BTreeSet<String> {
    (0..CONTACTS)
        .flat_map(|c| (0..PER_CONTACT).map(move |i| format!("c{c}-e{i}")))
        .collect()
}

/// How many times SALESmanago took each event (events are named by their description).
fn taken_per_event(sm: &Fake) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for call in sm.taken() {
        *n.entry(call.description().unwrap().to_owned()).or_default() += 1;
    }
    n
}

/// Starts a receiver while SALESmanago is down and hands it every batch: when SALESmanago comes
/// back, the forwarder finds all four lanes due at once.
async fn receiver_holding_every_batch(sm: &Fake, dir: &Path) -> Receiver {
    sm.set_down(true);
    let r = Receiver::start(&sm.url, dir).await;
    for b in batches() {
        let accepted = json!({ "accepted": PER_CONTACT, "duplicates": 0 });
        assert_eq!(post(&r.url, &b).await, (200, accepted));
    }
    r
}

/// Waits until SALESmanago took every event at least once, then a little longer for stragglers
/// (a second copy would come right after).
async fn every_event_arrives(sm: &Fake) -> BTreeMap<String, usize> {
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    while taken_per_event(sm).len() < CONTACTS * PER_CONTACT {
        assert!(
            tokio::time::Instant::now() < end,
            "not every event arrived in 30 s: {:?}",
            taken_per_event(sm)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let taken = taken_per_event(sm);
    assert_eq!(taken.keys().cloned().collect::<BTreeSet<_>>(), all_ids());
    assert!(sm.refused().is_empty(), "{:?}", sm.refused());
    taken
}

/// The tracker, never having seen the answers, sends everything again: nothing goes out twice
/// because of it.
async fn retries_are_duplicates(sm: &Fake, r: &Receiver) {
    let before = sm.taken().len();
    for b in batches() {
        let duplicates = json!({ "accepted": 0, "duplicates": PER_CONTACT });
        assert_eq!(post(&r.url, &b).await, (200, duplicates));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(sm.taken().len(), before, "a retried batch forwards nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_forwarding_every_event_arrives_at_least_once() {
    let sm = Fake::start().await;
    let dir = data_dir("restart-kill");
    let r = receiver_holding_every_batch(&sm, &dir).await;

    // SALESmanago takes each call and never answers while the receiver lives: every call it
    // makes is in flight when it is killed.
    sm.set_answer_delay(Duration::from_secs(600));
    sm.set_down(false);
    sm.wait_for_taken(CONTACTS, Duration::from_secs(20)).await;
    r.kill().await;
    let in_flight: BTreeSet<String> = taken_per_event(&sm).into_keys().collect();
    assert_eq!(in_flight.len(), CONTACTS, "one call in flight per lane");

    sm.set_answer_delay(Duration::ZERO);
    let r = Receiver::start(&sm.url, &dir).await;
    let taken = every_event_arrives(&sm).await;
    let twice: BTreeSet<String> = taken
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(taken.values().all(|n| *n <= 2), "{taken:?}");
    assert_eq!(
        twice, in_flight,
        "sent again: exactly the calls the kill cut off, no other"
    );
    assert!(twice.len() <= PARALLEL_LANES);
    retries_are_duplicates(&sm, &r).await;
    r.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_gracefully_mid_forwarding_every_event_arrives_once() {
    let sm = Fake::start().await;
    let dir = data_dir("restart-term");
    let r = receiver_holding_every_batch(&sm, &dir).await;

    // Slow answers: a call is in flight on every lane when SIGTERM comes, and the lanes are far
    // from done (5 calls of 2 s each).
    sm.set_answer_delay(Duration::from_secs(2));
    sm.set_down(false);
    sm.wait_for_taken(CONTACTS, Duration::from_secs(20)).await;
    r.terminate().await;
    let before_restart = sm.taken().len();
    assert!(
        (CONTACTS..CONTACTS * PER_CONTACT).contains(&before_restart),
        "stopped mid-forwarding: {before_restart} of {} taken",
        CONTACTS * PER_CONTACT
    );

    sm.set_answer_delay(Duration::ZERO);
    let r = Receiver::start(&sm.url, &dir).await;
    let taken = every_event_arrives(&sm).await;
    assert!(taken.values().all(|n| *n == 1), "exactly once: {taken:?}");
    retries_are_duplicates(&sm, &r).await;
    r.terminate().await;
}
