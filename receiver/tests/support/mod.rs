//! Test support: a fake SALESmanago API on 127.0.0.1 and helpers to run the receiver against it.
#![allow(dead_code)]

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post as route_post;
use axum::{Json, Router};
use salla_salesmanago::salesmanago::check_contact_event;
use salla_salesmanago::value::Value;
use salla_salesmanago_receiver::config::{Account, Config, Secret};
use serde_json::{json, Value as J};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const CLIENT_ID: &str = "sm-client";
pub const API_KEY: &str = "sm-key";
pub const API_SECRET: &str = "sm-secret";
pub const OWNER: &str = "owner@shop.example";
pub const ORIGIN: &str = "https://store.example";

/// One call the fake API took.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub contact_event: J,
    pub contact_id: Option<String>,
    pub email: Option<String>,
    pub event_id: Option<String>,
    pub answered: String,
    /// When the fake took the call (for the load benchmark's forward latency).
    pub at: Instant,
}

#[derive(Default)]
pub struct FakeState {
    pub calls: Vec<Call>,
    pub refused: Vec<String>,
    pub down: bool,
    next: u32,
}

/// A fake SALESmanago API: checks what SALESmanago checks, records calls, answers eventIds.
#[derive(Clone)]
pub struct FakeSalesmanago {
    pub url: String,
    pub state: Arc<Mutex<FakeState>>,
}

fn to_core(v: &J) -> Value {
    match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        J::String(s) => Value::String(s.clone()),
        J::Array(a) => Value::Array(a.iter().map(to_core).collect()),
        J::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), to_core(v))).collect()),
    }
}

fn refuse(state: &Mutex<FakeState>, message: String) -> axum::response::Response {
    state.lock().unwrap().refused.push(message.clone());
    (
        StatusCode::OK,
        Json(json!({ "success": false, "message": [message] })),
    )
        .into_response()
}

async fn call(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(method): Path<String>,
    Json(body): Json<J>,
) -> axum::response::Response {
    if state.lock().unwrap().down {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let expected_sha = salla_salesmanago_receiver::salesmanago::sha(API_KEY, CLIENT_ID, API_SECRET);
    if body["clientId"] != CLIENT_ID
        || body["apiKey"] != API_KEY
        || body["sha"] != expected_sha.as_str()
    {
        return refuse(
            &state,
            "authentication failed (clientId, apiKey, sha)".into(),
        );
    }
    if !body["requestTime"].is_u64() || body["owner"] != OWNER {
        return refuse(&state, "requestTime and owner are required".into());
    }
    let contact_id = body["contactId"].as_str().map(str::to_owned);
    let email = body["email"].as_str().map(str::to_owned);
    if contact_id.is_none() && email.is_none() {
        return refuse(&state, "a contact is required (contactId or email)".into());
    }
    let mut event = body["contactEvent"].clone();
    let event_id = event
        .as_object_mut()
        .and_then(|o| o.remove("eventId"))
        .and_then(|v| v.as_str().map(str::to_owned));
    if let Err(e) = check_contact_event(&to_core(&event)) {
        return refuse(&state, format!("contactEvent.{e}"));
    }
    let mut s = state.lock().unwrap();
    let answered = match method.as_str() {
        "addContactExtEvent" if event_id.is_none() => {
            s.next += 1;
            format!("sm-{}", s.next)
        }
        "updateContactExtEvent" => match &event_id {
            Some(id) if s.calls.iter().any(|c| c.answered == *id) => id.clone(),
            _ => {
                drop(s);
                return refuse(
                    &state,
                    "updateContactExtEvent needs a known contactEvent.eventId".into(),
                );
            }
        },
        _ => {
            drop(s);
            return refuse(&state, format!("unknown method {method}"));
        }
    };
    s.calls.push(Call {
        method,
        contact_event: event,
        contact_id,
        email,
        event_id,
        answered: answered.clone(),
        at: Instant::now(),
    });
    (
        StatusCode::OK,
        Json(json!({ "success": true, "eventId": answered })),
    )
        .into_response()
}

impl FakeSalesmanago {
    pub async fn start() -> FakeSalesmanago {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let app = Router::new()
            .route("/api/v2/contact/{method}", route_post(call))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeSalesmanago { url, state }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn refused(&self) -> Vec<String> {
        self.state.lock().unwrap().refused.clone()
    }

    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Waits until `n` calls were taken (or panics after `secs`).
    pub async fn wait_for_calls(&self, n: usize, secs: u64) -> Vec<Call> {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let calls = self.calls();
            if calls.len() >= n {
                return calls;
            }
            assert!(
                Instant::now() < end,
                "waited for {n} calls, got {}: {calls:#?}",
                calls.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn config(sm_url: &str, data_dir: &std::path::Path) -> Config {
    Config {
        account: Account {
            endpoint: sm_url.to_owned(),
            client_id: CLIENT_ID.into(),
            api_key: Secret::from(API_KEY),
            api_secret: Secret::from(API_SECRET),
            owner: OWNER.into(),
        },
        allowed_origins: vec![ORIGIN.into()],
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_owned(),
        max_body_bytes: 256 * 1024,
        rate_per_ip: 10_000,
        rate_per_origin: 100_000,
        trust_proxy: false,
        contact_wait: Duration::from_secs(3600),
        contact_wait_max: 100,
    }
}

/// A fresh directory under the target dir, removed first if present.
pub fn data_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sm-receiver-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn event(id: &str, kind: &str, external_id: Option<&str>, products: &str) -> J {
    let mut ce = json!({ "date": 1_763_829_999_000u64, "contactExtEventType": kind, "products": products, "description": id });
    if let Some(x) = external_id {
        ce["externalId"] = json!(x);
    }
    json!({ "id": id, "source": "test", "contactEvent": ce })
}

pub fn batch(events: Vec<J>, contact: J) -> J {
    json!({ "v": 1, "clientId": CLIENT_ID, "sentAt": 1_763_830_000_000u64, "contact": contact, "events": events })
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

/// A command that runs `program` (the receiver, or a wrapper such as `taskset` in front of it)
/// configured for the fake account, on 127.0.0.1:`port`, with its database in `dir`.
pub fn receiver_command(
    program: &str,
    sm_url: &str,
    dir: &std::path::Path,
    port: u16,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
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
