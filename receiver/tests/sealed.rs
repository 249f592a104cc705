//! A store's secrets sealed at rest, through the service as it runs (`sm-receiver`, its JSON log
//! read line by line): nothing of a store's API key or secret, nor of `SM_SECRET_KEY`, is ever
//! logged; a restart with a key that cannot open a store's secrets is one log line naming
//! `SM_SECRET_KEY`, not a crash; and the receiver refuses to start with webhooks on and no key.

mod support;

use fake_salesmanago::Account;
use salla_salesmanago_receiver::webhook::auth::sign;
use serde_json::{json, Value as J};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

const WEBHOOK_SECRET: &str = "whsec-sealed";
const STORE: &str = "1305";
/// As `openssl rand -base64 32` prints them.
const KEY_A: &str = "e/YCdXTijB3G/e0/jg46CSysUq2CMCPmGaL3BNgXQjs=";
const KEY_B: &str = "q8Jd0Wc2s7X1mZ4yBv9tLr6eKpN3uHaGfS5iOwQzRkE=";

fn store_account() -> Account {
    Account {
        client_id: "client-sealed".into(),
        api_key: "apikey-4f1c9e07".into(),
        api_secret: "apisecret-8d27b3aa".into(),
        owner: "owner@sealed.example".into(),
    }
}

/// A receiver with webhooks on and no account of its own; its log lines, as they come.
struct Receiver {
    child: Child,
    url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn command(dir: &Path, key: Option<&str>) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sm-receiver"));
        for (name, _) in salla_salesmanago_receiver::config::VARIABLES {
            cmd.env_remove(name);
        }
        cmd.env("SM_SALLA_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("SM_ALLOWED_ORIGINS", "*")
            .env("SM_LISTEN", "127.0.0.1:0")
            .env("SM_DATA_DIR", dir)
            // Every line the receiver can write, debug included.
            .env("SM_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(key) = key {
            cmd.env("SM_SECRET_KEY", key);
        }
        cmd
    }

    async fn start(dir: &Path, key: &str) -> Receiver {
        let mut child = Receiver::command(dir, Some(key)).spawn().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let kept = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                kept.lock().unwrap().push(line);
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let kept = log.clone();
        let addr = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                kept.lock().unwrap().push(line.clone());
                let entry: J = serde_json::from_str(&line).unwrap_or(J::Null);
                if entry["fields"]["message"] == "receiver listening" {
                    return entry["fields"]["addr"].as_str().unwrap().to_owned();
                }
            }
            panic!("the receiver exited before it listened: {:?}", kept.lock());
        })
        .await
        .expect("the receiver listens within 20 s");
        let kept = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                kept.lock().unwrap().push(line);
            }
        });
        let url = format!("http://{addr}");
        wait_healthy(&url).await;
        Receiver { child, url, log }
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    async fn stop(mut self) -> Vec<String> {
        // SIGTERM: it stops gracefully and flushes its log.
        let pid = self.child.id().unwrap() as i32;
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.log()
    }

    async fn webhook(&self, body: &J) -> (u16, J) {
        let raw = body.to_string();
        let r = reqwest::Client::new()
            .post(format!("{}/salla/webhook", self.url))
            .header("Content-Type", "application/json")
            .header("X-Salla-Signature", sign(WEBHOOK_SECRET, raw.as_bytes()))
            .body(raw)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(J::Null))
    }
}

fn settings(account: &Account, sm_url: &str) -> J {
    json!({
        "event": "app.settings.updated", "merchant": STORE.parse::<u64>().unwrap(), "created_at": "…",
        "data": { "settings": {
            "client_id": account.client_id, "api_key": account.api_key,
            "api_secret": account.api_secret, "owner": account.owner,
            "api_endpoint": sm_url, "endpoint": "https://collect.example/collect"
        } }
    })
}

fn store_batch(id: &str) -> J {
    let mut b = batch(
        vec![event(id, "VISIT", None, "1")],
        json!({ "contactId": format!("c-{id}") }),
    );
    b["clientId"] = json!(store_account().client_id);
    b["storeId"] = json!(STORE);
    b
}

/// No line names a secret or a key.
fn nothing_secret(log: &[String]) {
    let account = store_account();
    for line in log {
        for secret in [
            account.api_key.as_str(),
            account.api_secret.as_str(),
            KEY_A,
            KEY_B,
            WEBHOOK_SECRET,
        ] {
            assert!(!line.contains(secret), "a secret in the log: {line}");
        }
    }
}

#[tokio::test]
async fn secrets_never_reach_the_log_and_another_key_is_one_line_naming_sm_secret_key() {
    let sm = Fake::start().await;
    sm.add_account(store_account());
    let dir = data_dir("sealed-log");

    let r = Receiver::start(&dir, KEY_A).await;
    let (status, answer) = r.webhook(&settings(&store_account(), &sm.url)).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = post_raw(
        &r.url,
        store_batch("s-1").to_string(),
        Some("https://any-store.example"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let taken = sm.wait_for_taken(1, Duration::from_secs(10)).await;
    assert_eq!(taken[0].body["apiKey"], store_account().api_key);
    let log = r.stop().await;
    assert!(
        log.iter().any(|l| l.contains("settings were saved")),
        "the test reads the log: {log:#?}"
    );
    nothing_secret(&log);

    // Another key: it starts and serves; the store's problem is one error line naming
    // SM_SECRET_KEY, and its batches are kept.
    let r = Receiver::start(&dir, KEY_B).await;
    let (status, health) = get_text(format!("{}/health", r.url)).await;
    assert_eq!(status, 200, "{health}");
    assert!(
        health.contains(&format!(
            "delivery paused for store {STORE}:client-sealed: the API key and secret stored for this store cannot be opened: SM_SECRET_KEY is not the key"
        )),
        "{health}"
    );
    let (status, _) = post_raw(
        &r.url,
        store_batch("s-2").to_string(),
        Some("https://any-store.example"),
    )
    .await;
    assert_eq!(
        status, 200,
        "kept for when the key or the settings are fixed"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sm.taken().len(),
        1,
        "nothing goes out without its credentials"
    );
    let log = r.stop().await;
    nothing_secret(&log);
    let named: Vec<&String> = log.iter().filter(|l| l.contains("SM_SECRET_KEY")).collect();
    assert_eq!(named.len(), 1, "{named:#?}");
    let line: J = serde_json::from_str(named[0]).unwrap();
    assert_eq!(line["level"], "ERROR", "{line}");
    assert_eq!(line["fields"]["tenant"], "1305:client-sealed", "{line}");
    assert!(
        line["fields"]["error"]
            .as_str()
            .unwrap()
            .starts_with("SM_SECRET_KEY is not the key the secrets were sealed with"),
        "{line}"
    );
}

#[tokio::test]
async fn webhooks_on_and_no_key_is_refused_with_how_to_make_one() {
    let dir = data_dir("sealed-no-key");
    let out = Receiver::command(&dir, None)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("configuration: SM_SECRET_KEY is missing")
            && stderr.contains("openssl rand -base64 32"),
        "{stderr}"
    );
    let out = Receiver::command(&dir, Some("not-a-key"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("configuration: SM_SECRET_KEY must be 32 bytes")
            && !stderr.contains("not-a-key"),
        "{stderr}"
    );
}
