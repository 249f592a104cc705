//! The receiver killed between accepting and forwarding: nothing lost, nothing doubled.

mod support;

use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

fn spawn(sm_url: &str, dir: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sm-receiver"))
        .env("SM_API_ENDPOINT", sm_url)
        .env("SM_CLIENT_ID", CLIENT_ID)
        .env("SM_API_KEY", API_KEY)
        .env("SM_API_SECRET", API_SECRET)
        .env("SM_OWNER", OWNER)
        .env("SM_ALLOWED_ORIGINS", ORIGIN)
        .env("SM_LISTEN", format!("127.0.0.1:{port}"))
        .env("SM_DATA_DIR", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_healthy(url: &str) {
    let end = Instant::now() + Duration::from_secs(10);
    while reqwest::get(format!("{url}/health"))
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < end, "the receiver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn killed_after_accepting_and_restarted_forwards_each_event_once() {
    let sm = FakeSalesmanago::start().await;
    let dir = data_dir("restart");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
    let calls = sm.wait_for_calls(20, 20).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut ids: Vec<String> = sm
        .calls()
        .iter()
        .map(|c| c.contact_event["description"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!((calls.len(), ids.len(), sm.calls().len()), (20, 20, 20));
    child.kill().unwrap();
    child.wait().unwrap();
}
