//! The receiver killed between accepting and forwarding: nothing lost, nothing doubled.

mod support;

use serde_json::json;
use std::process::Child;
use std::time::Duration;
use support::*;

fn spawn(sm_url: &str, dir: &std::path::Path, port: u16) -> Child {
    receiver_command(env!("CARGO_BIN_EXE_sm-receiver"), sm_url, dir, port)
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn killed_after_accepting_and_restarted_forwards_each_event_once() {
    let sm = Fake::start().await;
    let dir = data_dir("restart");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");

    sm.set_down(true);
    let mut child = spawn(&sm.url, &dir, port);
    wait_healthy(&url).await;
    let events: Vec<_> = (0..20)
        .map(|i| event(&format!("k{i}"), "OTHER", None, "1"))
        .collect();
    assert_eq!(
        post(&url, &batch(events, json!({ "contactId": "c" }))).await,
        (200, json!({ "accepted": 20, "duplicates": 0 }))
    );
    child.kill().unwrap(); // SIGKILL: no graceful anything
    child.wait().unwrap();

    sm.set_down(false);
    let mut child = spawn(&sm.url, &dir, port);
    wait_healthy(&url).await;
    // The tracker retries what it never saw answered: the receiver must not forward it twice.
    let again: Vec<_> = (0..20)
        .map(|i| event(&format!("k{i}"), "OTHER", None, "1"))
        .collect();
    assert_eq!(
        post(&url, &batch(again, json!({ "contactId": "c" }))).await,
        (200, json!({ "accepted": 0, "duplicates": 20 }))
    );
    let calls = sm.wait_for_taken(20, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut ids: Vec<String> = sm
        .calls()
        .iter()
        .map(|c| c.description().unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!((calls.len(), ids.len(), sm.taken().len()), (20, 20, 20));
    child.kill().unwrap();
    child.wait().unwrap();
}
