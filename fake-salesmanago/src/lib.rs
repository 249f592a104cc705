//! A fake SALESmanago API (external events and contact upserts): what the receiver's tests, the
//! end-to-end suite and the demo deliver to instead of a real account.
//!
//! It checks what SALESmanago checks (docs/salesmanago.md): the account (`clientId`, `apiKey` and
//! `sha`), `owner` and `requestTime`, a contact (`contactId` or a valid `email`), and the `contactEvent`
//! against SALESmanago's rules, using the tracker core's own check so that those rules are written
//! once. An event named by an email alone is refused unless that email's contact was upserted
//! first (`contact not found`), as the receiver must expect of SALESmanago (*unverified*;
//! [`Options::events_need_contact`] turns it off). It answers as SALESmanago does,
//! `200 {"success":true,"eventId":…}` (an upsert: `"contactId"`) or
//! `200 {"success":false,"message":[…]}`, and records every call it answered so that a test (or
//! the demo's panel) can see what arrived.
//!
//! Routes:
//! - `POST /api/v2/contact/addContactExtEvent` and `POST /api/v2/contact/updateContactExtEvent`;
//! - `POST /api/contact/upsert`: `contact{email, name?, phone?}` (an email is required), the
//!   consent flags (`forceOptIn`, `forceOptOut`, …) booleans when present; answers the contact's
//!   `contactId`, the same for the same account and email every time (also after a restart);
//! - `GET /calls?since=N`: the recorded calls numbered above `N`, oldest first, as a JSON array of
//!   [`Call::to_json`] objects `{n, path, method, body, at, status, answer}` (plus `eventId` when
//!   an event was taken, `contactId` when an upsert was (its `method` is `upsert`), `refused` when
//!   refused);
//! - `POST /reset`: forgets the recorded calls, but not the `eventId`s it gave nor the contacts
//!   it upserted (SALESmanago would
//!   still know them, and a receiver may update a cart it added before the reset); numbering
//!   goes on, so a reader polling with `since` misses nothing;
//! - `POST /down?on=1|0`: while down, API calls are answered `503` and not recorded;
//! - `POST /credentials?ok=0|1`: while `ok=0`, every API call is refused as SALESmanago refuses a
//!   wrong or rotated API secret (`200 {"success":false,"message":["authentication failed …"]}`),
//!   and recorded;
//! - `POST /delay?ms=N`: each call is taken (and recorded) at once, its answer held back `N` ms,
//!   which is how a test catches a receiver between SALESmanago taking an event and learning so.
//!
//! In a Rust test, [`Fake::start`] runs it in-process; elsewhere the `sm-fake` binary runs it.
#![deny(missing_docs)]

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use salla_salesmanago::received::{is_email, ReceivedContactEvent};
use serde_json::{json, Value as Json};
use sha1::{Digest, Sha1};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;

/// The demo account's client id (the demo storefront's tracker and the receiver's tests name it).
pub const DEMO_CLIENT_ID: &str = "demo-client";
/// The demo account's API key.
pub const DEMO_API_KEY: &str = "demo-key";
/// The demo account's API secret.
pub const DEMO_API_SECRET: &str = "demo-secret";
/// The demo account's owner (the SALESmanago user the contacts belong to).
pub const DEMO_OWNER: &str = "owner@oud-store.example";

/// The one SALESmanago account the fake knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// `clientId`.
    pub client_id: String,
    /// `apiKey`.
    pub api_key: String,
    /// The API secret: only its SHA-1 with the key and client id travels.
    pub api_secret: String,
    /// `owner`.
    pub owner: String,
}

impl Default for Account {
    /// The demo account.
    fn default() -> Self {
        Account {
            client_id: DEMO_CLIENT_ID.into(),
            api_key: DEMO_API_KEY.into(),
            api_secret: DEMO_API_SECRET.into(),
            owner: DEMO_OWNER.into(),
        }
    }
}

impl Account {
    /// The `sha` SALESmanago expects: SHA-1 of apiKey + clientId + apiSecret, lower-case hex.
    ///
    /// Computed here, not borrowed from the receiver's client, so that the fake checks the
    /// receiver instead of agreeing with it by construction.
    pub fn sha(&self) -> String {
        let digest = Sha1::digest(
            [
                self.api_key.as_str(),
                &self.client_id,
                self.api_secret.as_str(),
            ]
            .concat(),
        );
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// How to start a [`Fake`].
#[derive(Debug, Clone)]
pub struct Options {
    /// The account calls must authenticate as.
    pub account: Account,
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    /// How long each answer is held back after the call was taken.
    pub answer_delay: Duration,
    /// Refuse an event named by an email alone whose contact was never upserted (the default).
    pub events_need_contact: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            account: Account::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            answer_delay: Duration::ZERO,
            events_need_contact: true,
        }
    }
}

/// The `contactId` the fake gives `email` in the account `client_id`: a UUID-shaped hex id (as
/// SALESmanago's look) derived from both, so it is stable across calls and restarts.
pub fn contact_id_of(client_id: &str, email: &str) -> String {
    let digest = Sha1::digest([client_id, "\n", email].concat());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// What the fake made of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Taken; the `eventId` answered.
    Taken(String),
    /// Refused (`success: false`) with this message.
    Refused(String),
}

/// One call the fake answered.
#[derive(Debug, Clone)]
pub struct Call {
    /// Its number, from 1, never reused (also not after a reset).
    pub n: u64,
    /// The request path, e.g. `/api/v2/contact/addContactExtEvent`.
    pub path: String,
    /// The request body as sent (`null` if it was not JSON).
    pub body: Json,
    /// When it arrived, in milliseconds since the epoch.
    pub at_ms: u64,
    /// When it arrived, on this process's monotonic clock (for latencies measured in-process).
    pub at: Instant,
    /// The HTTP status answered.
    pub status: u16,
    /// Taken or refused.
    pub outcome: Outcome,
}

impl Call {
    /// The API method: the path's last segment.
    pub fn method(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or("")
    }

    /// Whether it is a contact upsert (`/api/contact/upsert`), not an event call.
    pub fn is_upsert(&self) -> bool {
        self.path == UPSERT
    }

    /// The `contact` card an upsert sent.
    pub fn contact(&self) -> &Json {
        &self.body["contact"]
    }

    /// The `contactEvent` sent (`eventId` included for an update).
    pub fn contact_event(&self) -> &Json {
        &self.body["contactEvent"]
    }

    /// The `contactEvent.description` sent (the tests name their events by it).
    pub fn description(&self) -> Option<&str> {
        self.contact_event()["description"].as_str()
    }

    /// The `contactEvent.eventId` sent: the event an update replaces.
    pub fn sent_event_id(&self) -> Option<&str> {
        self.contact_event()["eventId"].as_str()
    }

    /// The `contactId` sent.
    pub fn contact_id(&self) -> Option<&str> {
        self.body["contactId"].as_str()
    }

    /// The `clientId` the call authenticated as: which account it went to.
    pub fn client_id(&self) -> Option<&str> {
        self.body["clientId"].as_str()
    }

    /// The `email` sent.
    pub fn email(&self) -> Option<&str> {
        self.body["email"].as_str()
    }

    /// The `eventId` answered (an upsert's `contactId`), if the call was taken.
    pub fn taken_id(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Taken(id) => Some(id),
            Outcome::Refused(_) => None,
        }
    }

    /// The refusal's message, if the call was refused.
    pub fn refused(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Taken(_) => None,
            Outcome::Refused(m) => Some(m),
        }
    }

    /// The answer's body, as SALESmanago would write it.
    pub fn answer(&self) -> Json {
        match &self.outcome {
            Outcome::Taken(id) if self.is_upsert() => {
                json!({ "success": true, "message": [], "contactId": id })
            }
            Outcome::Taken(id) => json!({ "success": true, "eventId": id }),
            Outcome::Refused(m) => json!({ "success": false, "message": [m] }),
        }
    }

    /// The call as `GET /calls` lists it.
    pub fn to_json(&self) -> Json {
        let mut out = json!({
            "n": self.n,
            "path": self.path,
            "method": self.method(),
            "body": self.body,
            "at": self.at_ms,
            "status": self.status,
            "answer": self.answer(),
        });
        match &self.outcome {
            Outcome::Taken(id) if self.is_upsert() => out["contactId"] = json!(id),
            Outcome::Taken(id) => out["eventId"] = json!(id),
            Outcome::Refused(m) => out["refused"] = json!(m),
        }
        out
    }
}

struct Ledger {
    account: Account,
    sha: String,
    /// More accounts it takes calls for (a receiver serving several stores); each call is
    /// checked against the account its `clientId` names.
    others: Vec<(Account, String)>,
    calls: Vec<Call>,
    last_n: u64,
    last_event: u64,
    /// Every `eventId` given, for updates: outlives a reset, as SALESmanago's memory would.
    known: HashSet<String>,
    down: bool,
    /// While set, the account's credentials are refused (a rotated secret).
    credentials_refused: bool,
    delay: Duration,
    /// Emails upserted (outlives a reset, as SALESmanago's contacts would).
    contacts: HashSet<String>,
    events_need_contact: bool,
}

/// The upsert's path.
const UPSERT: &str = "/api/contact/upsert";

type Shared = Arc<Mutex<Ledger>>;

fn ledger(shared: &Shared) -> MutexGuard<'_, Ledger> {
    // A panicking test thread must not take the fake down with it for the others.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running fake SALESmanago API. Dropping it stops the server.
pub struct Fake {
    /// The base URL, e.g. `http://127.0.0.1:41234`: a receiver's `SM_API_ENDPOINT`.
    pub url: String,
    /// The address it listens on.
    pub addr: SocketAddr,
    shared: Shared,
    server: JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Fake {
    /// Starts the fake for the demo account on a free port of 127.0.0.1.
    pub async fn start() -> Fake {
        Fake::start_with(Options::default())
            .await
            .expect("the fake SALESmanago API listens on 127.0.0.1")
    }

    /// Starts the fake with `options`.
    pub async fn start_with(options: Options) -> std::io::Result<Fake> {
        let listener = tokio::net::TcpListener::bind(options.listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Ledger {
            sha: options.account.sha(),
            account: options.account,
            others: Vec::new(),
            calls: Vec::new(),
            last_n: 0,
            last_event: 0,
            known: HashSet::new(),
            down: false,
            credentials_refused: false,
            delay: options.answer_delay,
            contacts: HashSet::new(),
            events_need_contact: options.events_need_contact,
        }));
        let app = Router::new()
            .route("/api/v2/contact/{method}", post(api))
            .route(UPSERT, post(upsert))
            .route("/calls", get(list_calls))
            .route("/reset", post(reset))
            .route("/down", post(down))
            .route("/delay", post(delay))
            .route("/credentials", post(credentials))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("sm-fake: the server stopped: {e}");
            }
        });
        Ok(Fake {
            url: format!("http://{addr}"),
            addr,
            shared,
            server,
        })
    }

    /// The account it checks calls against.
    pub fn account(&self) -> Account {
        ledger(&self.shared).account.clone()
    }

    /// Takes calls for `account` too, beside the one it started with (calls name theirs by
    /// `clientId`; the recorded body says which credentials each came with).
    pub fn add_account(&self, account: Account) {
        let sha = account.sha();
        ledger(&self.shared).others.push((account, sha));
    }

    /// Every call answered since the start or the last reset, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        ledger(&self.shared).calls.clone()
    }

    /// The event calls taken (`success: true`), oldest first; upserts are [`Fake::upserts`].
    pub fn taken(&self) -> Vec<Call> {
        let l = ledger(&self.shared);
        l.calls
            .iter()
            .filter(|c| c.taken_id().is_some() && !c.is_upsert())
            .cloned()
            .collect()
    }

    /// The upsert calls, taken or refused, oldest first.
    pub fn upserts(&self) -> Vec<Call> {
        let l = ledger(&self.shared);
        l.calls.iter().filter(|c| c.is_upsert()).cloned().collect()
    }

    /// Whether an event named by an email alone is refused until its contact is upserted.
    pub fn set_events_need_contact(&self, on: bool) {
        ledger(&self.shared).events_need_contact = on;
    }

    /// The messages of the calls refused, oldest first.
    pub fn refused(&self) -> Vec<String> {
        let l = ledger(&self.shared);
        l.calls
            .iter()
            .filter_map(|c| c.refused().map(str::to_owned))
            .collect()
    }

    /// While `down`, API calls are answered 503 and not recorded.
    pub fn set_down(&self, down: bool) {
        ledger(&self.shared).down = down;
    }

    /// While `ok` is false, every API call is refused for its credentials, as after the account's
    /// API secret was changed in SALESmanago.
    pub fn set_credentials_ok(&self, ok: bool) {
        ledger(&self.shared).credentials_refused = !ok;
    }

    /// Holds each answer back `delay` after the call was taken.
    pub fn set_answer_delay(&self, delay: Duration) {
        ledger(&self.shared).delay = delay;
    }

    /// Forgets the recorded calls (see the module doc for what it keeps).
    pub fn reset(&self) {
        ledger(&self.shared).calls.clear();
    }

    /// Waits until at least `n` calls were taken and returns the taken calls; panics with what
    /// did arrive after `timeout`.
    pub async fn wait_for_taken(&self, n: usize, timeout: Duration) -> Vec<Call> {
        let end = Instant::now() + timeout;
        loop {
            let taken = self.taken();
            if taken.len() >= n {
                return taken;
            }
            assert!(
                Instant::now() < end,
                "waited {timeout:?} for {n} calls taken, got {}: {:#?}",
                taken.len(),
                self.calls()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn answer_json(status: StatusCode, body: &Json) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn api(State(shared): State<Shared>, Path(method): Path<String>, body: Bytes) -> Response {
    let path = format!("/api/v2/contact/{method}");
    answer(&shared, path, &body, |l, body| judge(l, &method, body)).await
}

async fn upsert(State(shared): State<Shared>, body: Bytes) -> Response {
    answer(&shared, UPSERT.to_owned(), &body, judge_upsert).await
}

type Judgement = Result<String, (StatusCode, String)>;

/// Judges a call, records it, and answers it (after the delay, if one is set).
async fn answer(
    shared: &Shared,
    path: String,
    body: &[u8],
    judge: impl FnOnce(&mut Ledger, &Json) -> Judgement,
) -> Response {
    let at = Instant::now();
    let (call, delay) = {
        let mut l = ledger(shared);
        if l.down {
            return (StatusCode::SERVICE_UNAVAILABLE, "down\n").into_response();
        }
        let body: Json = serde_json::from_slice(body).unwrap_or(Json::Null);
        let (status, outcome) = match judge(&mut l, &body) {
            Ok(id) => (StatusCode::OK, Outcome::Taken(id)),
            Err((status, message)) => (status, Outcome::Refused(message)),
        };
        l.last_n += 1;
        let call = Call {
            n: l.last_n,
            path,
            body,
            at_ms: now_ms(),
            at,
            status: status.as_u16(),
            outcome,
        };
        l.calls.push(call.clone());
        (call, l.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    answer_json(
        StatusCode::from_u16(call.status).unwrap_or(StatusCode::OK),
        &call.answer(),
    )
}

/// The checks of every call: a JSON object, the account, `requestTime`, `owner`.
fn authenticate(l: &Ledger, body: &Json) -> Result<(), (StatusCode, String)> {
    let refuse = |m: &str| Err((StatusCode::OK, m.to_owned()));
    if !body.is_object() {
        return refuse("the body must be a JSON object");
    }
    let (account, sha) = std::iter::once((&l.account, &l.sha))
        .chain(l.others.iter().map(|(a, s)| (a, s)))
        .find(|(a, _)| body["clientId"] == a.client_id.as_str())
        .unwrap_or((&l.account, &l.sha));
    if l.credentials_refused
        || body["clientId"] != account.client_id.as_str()
        || body["apiKey"] != account.api_key.as_str()
        || body["sha"] != sha.as_str()
    {
        return refuse("authentication failed (clientId, apiKey, sha)");
    }
    let owner = account.owner.clone();
    if !body["requestTime"].is_u64() {
        return refuse("requestTime must be milliseconds since the epoch");
    }
    if body["owner"] != owner.as_str() {
        return refuse("owner must be a user of this account");
    }
    Ok(())
}

/// What SALESmanago would answer an upsert: the contact's `contactId`, or a refusal. A card
/// needs an email (docs/salesmanago.md §3).
fn judge_upsert(l: &mut Ledger, body: &Json) -> Judgement {
    let refuse = |m: &str| Err((StatusCode::OK, m.to_owned()));
    authenticate(l, body)?;
    let contact = &body["contact"];
    if !contact.is_object() {
        return refuse("contact must be an object");
    }
    let Some(email) = contact["email"].as_str().filter(|e| is_email(e)) else {
        return refuse("contact.email is required: a valid email address");
    };
    for key in ["name", "phone"] {
        if !(contact[key].is_null() || contact[key].as_str().is_some_and(|s| !s.is_empty())) {
            return refuse(&format!("contact.{key} must be text"));
        }
    }
    for key in [
        "forceOptIn",
        "forceOptOut",
        "forcePhoneOptIn",
        "forcePhoneOptOut",
    ] {
        if !(body[key].is_null() || body[key].is_boolean()) {
            return refuse(&format!("{key} must be true or false"));
        }
    }
    l.contacts.insert(email.to_owned());
    Ok(contact_id_of(&l.account.client_id, email))
}

/// What SALESmanago would answer: the `eventId` taken, or a refusal (SALESmanago refuses with
/// `200` and `success: false`; only an unknown method is a `404`).
fn judge(l: &mut Ledger, method: &str, body: &Json) -> Judgement {
    let refuse = |m: &str| Err((StatusCode::OK, m.to_owned()));
    let update = match method {
        "addContactExtEvent" => false,
        "updateContactExtEvent" => true,
        _ => {
            return Err((
                StatusCode::NOT_FOUND,
                format!("unknown method {method} (the fake knows addContactExtEvent and updateContactExtEvent)"),
            ))
        }
    };
    authenticate(l, body)?;
    let named = |k: &str| body[k].as_str().is_some_and(|s| !s.is_empty());
    if !named("contactId") && !named("email") {
        return refuse("a contact is required (contactId or email)");
    }
    if named("email") && !body["email"].as_str().is_some_and(is_email) {
        return refuse("email is not a valid email address");
    }
    if l.events_need_contact
        && !named("contactId")
        && !body["email"]
            .as_str()
            .is_some_and(|e| l.contacts.contains(e))
    {
        return refuse("contact not found: upsert it first (contact/upsert)");
    }
    let Json::Object(mut event) = body["contactEvent"].clone() else {
        return refuse("contactEvent must be an object");
    };
    let event_id = match event.remove("eventId") {
        None => None,
        Some(Json::String(id)) => Some(id),
        Some(_) => return refuse("contactEvent.eventId must be text"),
    };
    if let Err(e) = ReceivedContactEvent::from_object(event) {
        return Err((StatusCode::OK, format!("contactEvent.{e}")));
    }
    match (update, event_id) {
        (false, None) => {
            l.last_event += 1;
            let id = format!("sm-{}", l.last_event);
            l.known.insert(id.clone());
            Ok(id)
        }
        (false, Some(_)) => {
            refuse("addContactExtEvent takes no contactEvent.eventId (updateContactExtEvent does)")
        }
        (true, Some(id)) if l.known.contains(&id) => Ok(id),
        (true, _) => refuse("updateContactExtEvent needs a known contactEvent.eventId"),
    }
}

type Params = Query<HashMap<String, String>>;

fn bad_request(message: String) -> Response {
    answer_json(StatusCode::BAD_REQUEST, &json!({ "error": message }))
}

async fn list_calls(State(shared): State<Shared>, Query(q): Params) -> Response {
    let since = match q.get("since").map(|s| s.parse::<u64>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return bad_request("since must be a call number (0 for all)".into()),
    };
    let list: Vec<Json> = ledger(&shared)
        .calls
        .iter()
        .filter(|c| c.n > since)
        .map(Call::to_json)
        .collect();
    let mut r = answer_json(StatusCode::OK, &Json::Array(list));
    // The demo's panel may read it straight from the page.
    r.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    r
}

async fn reset(State(shared): State<Shared>) -> Response {
    ledger(&shared).calls.clear();
    answer_json(StatusCode::OK, &json!({ "reset": true }))
}

async fn down(State(shared): State<Shared>, Query(q): Params) -> Response {
    let on = match q.get("on").map(String::as_str) {
        Some("1" | "true") => true,
        Some("0" | "false") => false,
        _ => return bad_request("on must be 1 or 0".into()),
    };
    ledger(&shared).down = on;
    answer_json(StatusCode::OK, &json!({ "down": on }))
}

async fn credentials(State(shared): State<Shared>, Query(q): Params) -> Response {
    let ok = match q.get("ok").map(String::as_str) {
        Some("1" | "true") => true,
        Some("0" | "false") => false,
        _ => return bad_request("ok must be 1 or 0".into()),
    };
    ledger(&shared).credentials_refused = !ok;
    answer_json(StatusCode::OK, &json!({ "credentialsOk": ok }))
}

async fn delay(State(shared): State<Shared>, Query(q): Params) -> Response {
    let Some(Ok(ms)) = q.get("ms").map(|s| s.parse::<u64>()) else {
        return bad_request("ms must be a number of milliseconds".into());
    };
    ledger(&shared).delay = Duration::from_millis(ms);
    answer_json(StatusCode::OK, &json!({ "delayMs": ms }))
}
