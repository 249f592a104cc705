//! HTTP: `POST /collect` (protocol v1, CORS only for allowed origins), `POST /salla/webhook`
//! (Salla's calls, [`crate::webhook`]), `GET /health`, `GET /metrics`. A batch is answered 2xx
//! only after the store committed it, for the tenant its `clientId` and `storeId` name; the answer
//! carries the `contactId` of the shopper it names by email when the receiver has it or gets it by
//! an upsert within [`contacts::INLINE_WAIT`].
//!
//! `/collect`'s plumbing is tower-http's and governor's; what is ours is the policy:
//! - `origin_policy`: a request from an origin not in `SM_ALLOWED_ORIGINS`, or without an
//!   `Origin` (unless `SM_ALLOW_NO_ORIGIN`), is refused with a 403 before anything else runs;
//! - [`CorsLayer`] writes the CORS headers (on every answer to an allowed origin, 4xx and 5xx
//!   included, so the tracker can read them) and answers preflights;
//! - [`RequestBodyLimitLayer`] refuses a body over `max_body_bytes` (by its `Content-Length`,
//!   before it is read; a chunked one once it grows past it), and `too_large` words that 413 as
//!   every other refusal: `{"error": "…"}`;
//! - `Limits`: governor's keyed GCRA limiters per client address, per origin and per store,
//!   checked in the handler (the store's key comes from the batch).

use crate::contacts;
use crate::writer::Writer;
use crate::Shared;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn_with_state, map_response_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use salla_salesmanago::received::ReceivedBatch;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::{RequestBodyLimitLayer, ResponseBody};

/// How often the rate limiters forget the keys that have been quiet for their whole minute.
const FORGET_QUIET_KEYS: Duration = Duration::from_secs(60);

/// Serves until `stopped` turns true; requests in progress finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let limits = Arc::new(Limits::new(&shared.config));
    // A keyed limiter keeps a state per key it has seen (every shopper's address): forget those
    // whose state is back to a fresh one's, or memory grows with every address ever seen.
    let sweeper = tokio::spawn({
        let limits = limits.clone();
        async move {
            let mut every = tokio::time::interval(FORGET_QUIET_KEYS);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                limits.retain_recent();
            }
        }
    });
    let writer = Writer::start(shared.clone());
    let app = Router::new()
        .route("/collect", collect_route(&shared))
        .route(crate::webhook::PATH, post(webhook))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state((shared, limits, writer));
    let shutdown = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    {
        tracing::error!(error = %e, "server stopped");
    }
    sweeper.abort();
}

type AppState = (Arc<Shared>, Arc<Limits>, Writer);

/// `POST /collect` with its layers, the outermost first: the origin policy in front of all, the
/// CORS headers, the 413 as JSON, the body limit. `layer` on the method router covers the
/// methods it does not route too, so a preflight (`OPTIONS`) reaches [`CorsLayer`].
fn collect_route(shared: &Arc<Shared>) -> MethodRouter<AppState> {
    post(collect).layer(
        ServiceBuilder::new()
            .layer(from_fn_with_state(shared.clone(), origin_policy))
            .layer(cors_layer(shared))
            .layer(map_response_with_state(shared.clone(), too_large))
            .layer(RequestBodyLimitLayer::new(shared.config.max_body_bytes)),
    )
}

/// The 503 of a storage failure, logged as `what`: the tracker retries.
fn storage_unavailable(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "could not {what}");
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage unavailable; retry",
    )
}

fn json_ok(body: serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Whether `origin` may post: listed in `SM_ALLOWED_ORIGINS` exactly, or the list is `*`.
fn allowed(allowed_origins: &[String], origin: &[u8]) -> bool {
    allowed_origins
        .iter()
        .any(|a| a.as_bytes() == origin || a == "*")
}

/// The CORS headers of `/collect`, for the allowed origins only: the origin itself (never `*`,
/// so one origin's answer is not another's) and `Vary`; on a preflight the method and the one
/// header the tracker's POST sends, for 10 minutes; on the other answers `Retry-After` readable.
fn cors_layer(shared: &Shared) -> CorsLayer {
    let origins = shared.config.allowed_origins.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            allowed(&origins, origin.as_bytes())
        }))
        .allow_methods([Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600))
        .expose_headers([header::RETRY_AFTER])
}

/// The part of CORS that is the receiver's, not the browser's: [`CorsLayer`] only leaves its
/// headers off an answer to an origin it does not allow, and a browser still delivers the
/// request (a `text/plain` POST needs no preflight) and so would a script. Refused here, with a
/// 403 that says why, before the body is read: an origin not in `SM_ALLOWED_ORIGINS`, and a
/// request without `Origin` (every browser POST carries one, `sendBeacon`'s too, so only a
/// script or a server leaves it out, and no origin check would apply to it) unless
/// `SM_ALLOW_NO_ORIGIN=true`.
///
/// A preflight keeps the answer it always had, which the relay in front of the receiver in the
/// tests and the demo (`www/collector.mjs`) reads to learn a POST's CORS headers for an origin:
/// `204 No Content` (CorsLayer answers `200` with no body) and `Access-Control-Expose-Headers`
/// (CorsLayer gives it to the other answers only; a browser ignores it on a preflight).
async fn origin_policy(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let preflight = request.method() == Method::OPTIONS;
    match request.headers().get(header::ORIGIN) {
        Some(origin) if !allowed(&shared.config.allowed_origins, origin.as_bytes()) => {
            shared.metrics.refused_requests.fetch_add(1, Relaxed);
            let o = String::from_utf8_lossy(origin.as_bytes());
            return json_error(
                StatusCode::FORBIDDEN,
                format!("origin {o} is not allowed (SM_ALLOWED_ORIGINS)"),
            );
        }
        None if !preflight && !shared.config.allow_no_origin => {
            shared.metrics.refused_requests.fetch_add(1, Relaxed);
            return json_error(
                StatusCode::FORBIDDEN,
                "a request without an Origin header is refused: /collect takes batches from the store's pages (SM_ALLOWED_ORIGINS); set SM_ALLOW_NO_ORIGIN=true to take them from elsewhere",
            );
        }
        _ => {}
    }
    let mut response = next.run(request).await;
    if preflight && response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::NO_CONTENT;
        if response
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        {
            response.headers_mut().insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("retry-after"),
            );
        }
    }
    response
}

/// Every 413 of `/collect` as the receiver's other refusals: `{"error": "…"}` naming the limit.
/// [`RequestBodyLimitLayer`] answers one itself for a `Content-Length` over the limit, and the
/// handler passes on the one axum gives when a chunked body grows past it; both are plain text.
async fn too_large(
    State(shared): State<Arc<Shared>>,
    response: Response<ResponseBody<Body>>,
) -> Response {
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return response.into_response();
    }
    shared.metrics.refused_requests.fetch_add(1, Relaxed);
    json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the body is larger than {} bytes",
            shared.config.max_body_bytes
        ),
    )
}

/// The shopper's address: the peer's, or behind a trusted reverse proxy the last
/// `X-Forwarded-For` hop (the one the proxy appended; earlier hops are the client's word).
fn client_ip(addr: &SocketAddr, headers: &HeaderMap, trust_proxy: bool) -> String {
    let forwarded = trust_proxy
        .then(|| headers.get_all("x-forwarded-for").iter().next_back())
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(str::trim)
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok());
    forwarded.map_or_else(|| addr.ip().to_string(), str::to_owned)
}

/// The key of the batch's store for [`Limits::per_store`]: `store:<storeId>` when the batch
/// routed to that store's tenant (a store that installed the app); else, the env file's account
/// or an older tracker's batch without a `storeId`, `client:<clientId>`, the SALESmanago account
/// it routed to. A `storeId` that no tenant has (any text a sender makes up) is the account's:
/// it buys no budget of its own, and the keys stay as many as the tenants.
fn store_key(batch: &ReceivedBatch, tenant: &str) -> String {
    match batch.store_id.as_deref() {
        Some(store) if tenant != crate::tenants::ENV => format!("store:{store}"),
        _ => format!("client:{}", batch.client_id),
    }
}

async fn collect(
    State((shared, limits, writer)): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response {
    let refuse = |status, message: String| {
        shared.metrics.refused_requests.fetch_add(1, Relaxed);
        json_error(status, message)
    };
    let cfg = &shared.config;
    // The origin was checked by `origin_policy`: here it only names the sender.
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let ip = client_ip(&addr, request.headers(), cfg.trust_proxy);
    // Before the body is read: a flood costs as little as it can.
    for (limit, key) in [(&limits.per_ip, ip), (&limits.per_origin, origin.clone())] {
        if let Err(wait) = limit.hit(key) {
            return rate_limited(&shared, limit, wait);
        }
    }
    let body = match Bytes::from_request(request, &()).await {
        Ok(b) => b,
        // A chunked body over the limit: `too_large` words the 413.
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return e.into_response(),
        Err(e) => return refuse(e.status(), e.body_text()),
    };
    let batch = match ReceivedBatch::parse(&body) {
        Ok(b) => b,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
    };
    // The batch's tenant: a tracker set up with another account's client id (or another
    // store's) must not file its shoppers under an account that is not theirs.
    let route = |shared: &Shared| {
        shared
            .tenants()
            .route(&batch.client_id, batch.store_id.as_deref())
    };
    let mut routed = route(&shared);
    if routed.is_err() {
        // Another instance may have taken the store's settings a moment ago.
        if let Err(e) = shared.refresh_tenants().await {
            tracing::error!(error = %e, "could not read the tenants");
        }
        routed = route(&shared);
    }
    let tenant = match routed {
        Ok(t) => t,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if let Err(wait) = limits.per_store.hit(store_key(&batch, &tenant)) {
        return rate_limited(&shared, &limits.per_store, wait);
    }
    // Ids an earlier page sent without seeing the answer: which the receiver holds, so that the
    // tracker resends only the others (docs/protocol.md §2.1).
    let held = match shared.store.held(&tenant, &batch.confirm).await {
        Ok(held) => held,
        Err(e) => return storage_unavailable("read which events are held", e),
    };
    if batch.events.is_empty() {
        shared
            .metrics
            .confirmed
            .fetch_add(held.len() as u64, Relaxed);
        return json_ok(serde_json::json!({ "accepted": 0, "duplicates": 0, "held": held }));
    }
    let email_dropped = batch.email_dropped;
    let phone_dropped = batch.phone_dropped;
    // The addresses themselves stay out of the log: personal data, and the counts say enough.
    if email_dropped {
        shared.metrics.emails_dropped.fetch_add(1, Relaxed);
        tracing::warn!(
            %origin,
            events = batch.events.len(),
            "contact.email is not an email address: dropped, the events kept"
        );
    }
    if phone_dropped {
        shared.metrics.phones_dropped.fetch_add(1, Relaxed);
        tracing::warn!(
            %origin,
            events = batch.events.len(),
            "contact.phone is not + and digits: dropped, the events kept"
        );
    }
    if batch.contact.phone.is_some() && !batch.contact.names_a_contact() {
        // SALESmanago files no contact card without an email: the events wait like anonymous ones.
        shared.metrics.phone_only_batches.fetch_add(1, Relaxed);
    }
    let email = batch.contact.email.clone();
    let accepted = match writer.accept(batch, tenant.clone()).await {
        Ok(accepted) => accepted,
        Err(e) => return storage_unavailable("store a batch", e),
    };
    let m = &shared.metrics;
    m.accepted.fetch_add(accepted.new as u64, Relaxed);
    m.duplicates.fetch_add(accepted.duplicates as u64, Relaxed);
    m.unattached.fetch_add(accepted.unattached as u64, Relaxed);
    // The contact first, then the forwarder: woken earlier, it would only wait for this upsert.
    let contact_id = match (email, accepted.contact) {
        (Some(email), Some(state)) => contacts::within_wait(&shared, &tenant, email, state).await,
        _ => None,
    };
    shared.wake.notify_one();
    let mut body =
        serde_json::json!({ "accepted": accepted.new, "duplicates": accepted.duplicates });
    if email_dropped {
        body["emailDropped"] = serde_json::json!(true);
    }
    if phone_dropped {
        body["phoneDropped"] = serde_json::json!(true);
    }
    if let Some(id) = contact_id {
        m.contact_ids_answered.fetch_add(1, Relaxed);
        body["contactId"] = serde_json::json!(id);
    }
    if !held.is_empty() {
        m.confirmed.fetch_add(held.len() as u64, Relaxed);
        body["held"] = serde_json::json!(held);
    }
    json_ok(body)
}

async fn webhook(
    State((shared, ..)): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    crate::webhook::handle(&shared, &headers, &body).await
}

async fn health(State((shared, ..)): State<AppState>) -> Response {
    let ok = shared.store.ping().await.is_ok();
    if !ok {
        return (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable\n").into_response();
    }
    // Batches are still taken and kept, but nothing of that tenant reaches SALESmanago. The env
    // file's account is the service's own (self-hosted): not healthy. A store's is one merchant's
    // settings: named, but the receiver serves the other stores, so it stays healthy.
    let mut problems = shared.account_problems();
    let stores: String = problems
        .iter()
        .filter(|(t, _)| *t != crate::tenants::ENV)
        .map(|(t, reason)| {
            if crate::sealed::is_sealing_problem(reason) {
                // Not SALESmanago's answer: SM_SECRET_KEY cannot open what the store saved.
                return format!("delivery paused for store {t}: {reason}\n");
            }
            format!(
                "delivery paused for store {t}: SALESmanago refused the account ({reason}); check {}\n",
                crate::forwarder::account_settings(t)
            )
        })
        .collect();
    match problems.remove(crate::tenants::ENV) {
        None => (StatusCode::OK, format!("ok\n{stores}")).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "delivery paused: SALESmanago refused the account ({reason}); check {}\n{stores}",
                crate::forwarder::account_settings(crate::tenants::ENV)
            ),
        )
            .into_response(),
    }
}

async fn metrics(State((shared, ..)): State<AppState>) -> Response {
    let counts = shared.store.counts().await.unwrap_or_default();
    let m = &shared.metrics;
    let problems = shared.account_problems();
    let rows: [(&str, &str, &str, u64); 25] = [
        (
            "sm_receiver_events_accepted_total",
            "counter",
            "events stored for the first time since start",
            m.accepted.load(Relaxed),
        ),
        (
            "sm_receiver_events_duplicate_total",
            "counter",
            "events whose id was already stored, since start",
            m.duplicates.load(Relaxed),
        ),
        (
            "sm_receiver_requests_refused_total",
            "counter",
            "requests answered 4xx since start",
            m.refused_requests.load(Relaxed),
        ),
        (
            "sm_receiver_requests_rate_limited_total",
            "counter",
            "requests refused by a rate limit since start",
            m.rate_limited.load(Relaxed),
        ),
        (
            "sm_receiver_emails_dropped_total",
            "counter",
            "batches whose contact.email was not an email address (dropped, events kept), since start",
            m.emails_dropped.load(Relaxed),
        ),
        (
            "sm_receiver_phones_dropped_total",
            "counter",
            "batches whose contact.phone was not + and digits (dropped, events kept), since start",
            m.phones_dropped.load(Relaxed),
        ),
        (
            "sm_receiver_phone_only_batches_total",
            "counter",
            "batches naming the shopper by phone only: no contact card without an email, so their events wait for one like anonymous events, since start",
            m.phone_only_batches.load(Relaxed),
        ),
        (
            "sm_receiver_events_unattached_total",
            "counter",
            "events naming no contact and carrying no anonymousId (an older tracker), stored as expired at once, since start",
            m.unattached.load(Relaxed),
        ),
        (
            "sm_receiver_contacts_upserted_total",
            "counter",
            "contact cards SALESmanago took (contact/upsert), since start",
            m.contacts_upserted.load(Relaxed),
        ),
        (
            "sm_receiver_contact_upserts_refused_total",
            "counter",
            "contact cards SALESmanago refused for themselves (their events dropped), since start",
            m.contact_upserts_refused.load(Relaxed),
        ),
        (
            "sm_receiver_contact_upserts_retried_total",
            "counter",
            "contact upserts to be tried again (network, 5xx, 429), since start",
            m.contact_upserts_retried.load(Relaxed),
        ),
        (
            "sm_receiver_contact_ids_answered_total",
            "counter",
            "/collect answers that carried the shopper's contactId, since start",
            m.contact_ids_answered.load(Relaxed),
        ),
        (
            "sm_receiver_events_confirmed_total",
            "counter",
            "events a later page asked about that the receiver held (not sent again), since start",
            m.confirmed.load(Relaxed),
        ),
        (
            "sm_receiver_events_forwarded_total",
            "counter",
            "events SALESmanago took, since start",
            m.forwarded.load(Relaxed),
        ),
        (
            "sm_receiver_events_failed_total",
            "counter",
            "events SALESmanago refused as invalid (not retried), since start",
            m.failed.load(Relaxed),
        ),
        (
            "sm_receiver_calls_retried_total",
            "counter",
            "SALESmanago calls to be tried again (network, 5xx, 429), since start",
            m.retried.load(Relaxed),
        ),
        (
            "sm_receiver_account_refusals_total",
            "counter",
            "SALESmanago calls refused for the account (credentials, owner), probes included, since start",
            m.account_refusals.load(Relaxed),
        ),
        (
            "sm_receiver_delivery_paused",
            "gauge",
            "tenants whose delivery is paused because SALESmanago refuses the account (see /health and sm_receiver_tenant_paused)",
            problems.len() as u64,
        ),
        (
            "sm_receiver_webhooks_taken_total",
            "counter",
            "Salla webhooks taken (stored or acted on, second deliveries included), since start",
            m.webhooks_taken.load(Relaxed),
        ),
        (
            "sm_receiver_webhooks_refused_total",
            "counter",
            "Salla webhook calls refused: not authenticated (401), unreadable (400) or webhooks off, since start",
            m.webhooks_refused.load(Relaxed),
        ),
        (
            "sm_receiver_webhooks_ignored_total",
            "counter",
            "Salla webhooks taken with nothing to do (events not acted on, stores without settings), since start",
            m.webhooks_ignored.load(Relaxed),
        ),
        (
            "sm_receiver_webhook_orders_without_email_total",
            "counter",
            "order.created without a customer email: no PURCHASE from the webhook, since start",
            m.webhook_orders_without_email.load(Relaxed),
        ),
        (
            "sm_receiver_queue_depth",
            "gauge",
            "events waiting for delivery",
            counts.queued,
        ),
        (
            "sm_receiver_events_waiting_for_contact",
            "gauge",
            "events waiting for a contact",
            counts.waiting,
        ),
        (
            "sm_receiver_events_superseded",
            "gauge",
            "CART events replaced by a newer CART of the same cart",
            counts.superseded,
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, value) in rows {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    }
    out.push_str(
        "# HELP sm_receiver_tenant_paused 1 for each tenant (store and SALESmanago client id) whose delivery is paused\n# TYPE sm_receiver_tenant_paused gauge\n",
    );
    for tenant in problems.keys() {
        let (store, client) = match tenant.split_once(':') {
            Some((s, c)) => (s.to_owned(), c.to_owned()),
            None => (
                String::new(),
                shared
                    .tenants()
                    .env
                    .as_ref()
                    .map(|a| a.client_id.clone())
                    .unwrap_or_default(),
            ),
        };
        let escape = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
        out.push_str(&format!(
            "sm_receiver_tenant_paused{{store=\"{}\",client_id=\"{}\"}} 1\n",
            escape(&store),
            escape(&client)
        ));
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        out,
    )
        .into_response()
}

/// `/collect`'s rate limits: governor's GCRA, one limiter per kind of key, one state per key.
/// Each key may send its `limit` at once, then one more every minute / `limit` (the same number
/// a minute as a fixed window, without a window's edge letting twice as many through).
struct Limits {
    /// `SM_RATE_PER_IP`, by [`client_ip`].
    per_ip: Limit,
    /// `SM_RATE_PER_ORIGIN`, by the `Origin` header (`-` for none).
    per_origin: Limit,
    /// `SM_RATE_PER_STORE`, by [`store_key`].
    per_store: Limit,
}

impl Limits {
    fn new(config: &crate::config::Config) -> Limits {
        Limits {
            per_ip: Limit::new("client address", config.rate_per_ip),
            per_origin: Limit::new("origin", config.rate_per_origin),
            per_store: Limit::new("store", config.rate_per_store),
        }
    }

    /// Forgets the keys whose state is a fresh key's again (quiet for their whole minute).
    fn retain_recent(&self) {
        for limit in [&self.per_ip, &self.per_origin, &self.per_store] {
            limit.keyed.retain_recent();
            limit.keyed.shrink_to_fit();
        }
    }
}

/// One of [`Limits`].
struct Limit {
    /// What a key is, for the 429's message.
    per: &'static str,
    /// Requests a minute.
    per_minute: u32,
    keyed: DefaultKeyedRateLimiter<String>,
}

impl Limit {
    fn new(per: &'static str, per_minute: u32) -> Limit {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Limit {
            per,
            per_minute: n.get(),
            keyed: DefaultKeyedRateLimiter::keyed(Quota::per_minute(n)),
        }
    }

    /// Counts a request of `key`; `Err(wait)` when over the limit: how long until one more is taken.
    fn hit(&self, key: String) -> Result<(), Duration> {
        self.keyed
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.keyed.clock().now()))
    }
}

/// The 429 of a request over `limit`, with `Retry-After` (whole seconds, rounded up).
fn rate_limited(shared: &Shared, limit: &Limit, wait: Duration) -> Response {
    shared.metrics.rate_limited.fetch_add(1, Relaxed);
    shared.metrics.refused_requests.fetch_add(1, Relaxed);
    let mut r = json_error(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "rate limit: at most {} requests a minute per {}",
            limit.per_minute, limit.per
        ),
    );
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shoppers_address_behind_a_trusted_proxy_only() {
        let peer: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(client_ip(&peer, &h, true), "10.0.0.5");
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 203.0.113.9"),
        );
        assert_eq!(client_ip(&peer, &h, false), "10.0.0.5", "not trusted");
        assert_eq!(client_ip(&peer, &h, true), "203.0.113.9", "the proxy's hop");
        h.insert("x-forwarded-for", HeaderValue::from_static("not-an-ip"));
        assert_eq!(client_ip(&peer, &h, true), "10.0.0.5");
    }
}
