//! HTTP: `POST /collect` (protocol v1, CORS only for allowed origins), `POST /salla/webhook`
//! (Salla's calls, [`crate::webhook`]), `GET /health`, `GET /metrics`. A batch is answered 2xx
//! only after the store committed it, for the tenant its `clientId` and `storeId` name; the answer
//! carries the `contactId` of the shopper it names by email when the receiver has it or gets it by
//! an upsert within [`contacts::INLINE_WAIT`].

use crate::contacts;
use crate::writer::Writer;
use crate::Shared;
use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use salla_salesmanago::received::ReceivedBatch;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Serves until `stopped` turns true; requests in progress finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let limiter = Arc::new(Limiter::default());
    let writer = Writer::start(shared.clone());
    let app = Router::new()
        .route("/collect", post(collect).options(preflight))
        .route(crate::webhook::PATH, post(webhook))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state((shared, limiter, writer));
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
}

type AppState = (Arc<Shared>, Arc<Limiter>, Writer);

fn json_error(
    status: StatusCode,
    message: impl Into<String>,
    cors: &[(header::HeaderName, HeaderValue)],
) -> Response {
    let body = serde_json::json!({ "error": message.into() }).to_string();
    let mut r = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    for (k, v) in cors {
        r.headers_mut().insert(k.clone(), v.clone());
    }
    r
}

/// CORS headers for an allowed origin; `Err` with a 403 for a disallowed one. A request with no
/// Origin (not from a browser) gets no CORS headers; `/collect` refuses it unless configured.
fn cors(
    shared: &Shared,
    headers: &HeaderMap,
) -> Result<Vec<(header::HeaderName, HeaderValue)>, Box<Response>> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(Vec::new());
    };
    let o = origin.to_str().unwrap_or("");
    if !shared
        .config
        .allowed_origins
        .iter()
        .any(|a| a == o || a == "*")
    {
        shared.metrics.refused_requests.fetch_add(1, Relaxed);
        return Err(Box::new(json_error(
            StatusCode::FORBIDDEN,
            format!("origin {o} is not allowed (SM_ALLOWED_ORIGINS)"),
            &[],
        )));
    }
    Ok(vec![
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()),
        (header::VARY, HeaderValue::from_static("Origin")),
        (
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Retry-After"),
        ),
    ])
}

async fn preflight(State((shared, ..)): State<AppState>, headers: HeaderMap) -> Response {
    match cors(&shared, &headers) {
        Err(r) => *r,
        Ok(mut h) => {
            h.push((
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("POST, OPTIONS"),
            ));
            h.push((
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Content-Type"),
            ));
            h.push((
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            ));
            let mut r = StatusCode::NO_CONTENT.into_response();
            for (k, v) in h {
                r.headers_mut().insert(k, v);
            }
            r
        }
    }
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

async fn collect(
    State((shared, limiter, writer)): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response {
    let headers = request.headers().clone();
    let cors_headers = match cors(&shared, &headers) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let refuse = |status, message: String| {
        shared.metrics.refused_requests.fetch_add(1, Relaxed);
        json_error(status, message, &cors_headers)
    };
    // Every browser POST carries Origin (sendBeacon's too), so only a script or a server leaves
    // it out, and it would skip the origin check: refused unless the operator wants such senders.
    if !headers.contains_key(header::ORIGIN) && !shared.config.allow_no_origin {
        return refuse(
            StatusCode::FORBIDDEN,
            "a request without an Origin header is refused: /collect takes batches from the store's pages (SM_ALLOWED_ORIGINS); set SM_ALLOW_NO_ORIGIN=true to take them from elsewhere".into(),
        );
    }
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let cfg = &shared.config;
    let ip = client_ip(&addr, &headers, cfg.trust_proxy);
    for (key, limit) in [
        (format!("ip:{ip}"), cfg.rate_per_ip),
        (format!("origin:{origin}"), cfg.rate_per_origin),
    ] {
        if let Some(wait) = limiter.hit(&key, limit) {
            shared.metrics.rate_limited.fetch_add(1, Relaxed);
            let mut r = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "rate limit: at most {limit} requests a minute per {}",
                    key.split(':').next().unwrap_or("")
                ),
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(wait.as_secs().max(1)),
            );
            return r;
        }
    }
    let body = match to_bytes(request.into_body(), cfg.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {} bytes", cfg.max_body_bytes),
            )
        }
    };
    let batch = match ReceivedBatch::parse(&body) {
        Ok(b) => b,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
    };
    // The batch's tenant: a tracker set up with another account's client id (or another
    // store's) must not file its shoppers under an account that is not theirs.
    let tenant = match shared
        .tenants()
        .route(&batch.client_id, batch.store_id.as_deref())
    {
        Ok(t) => t,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
    };
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
        Err(e) => {
            tracing::error!(error = %e, "could not store a batch");
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage unavailable; retry",
                &cors_headers,
            );
        }
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
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    for (k, v) in cors_headers {
        r.headers_mut().insert(k, v);
    }
    r
}

async fn webhook(
    State((shared, ..)): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    crate::webhook::handle(&shared, &headers, &body).await
}

async fn health(State((shared, ..)): State<AppState>) -> Response {
    let ok = shared
        .with_store(|s| s.counts().is_ok())
        .await
        .unwrap_or(false);
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
    let counts = shared
        .with_store(|s| s.counts().unwrap_or_default())
        .await
        .unwrap_or_default();
    let m = &shared.metrics;
    let problems = shared.account_problems();
    let rows: [(&str, &str, &str, u64); 24] = [
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

/// Fixed one-minute windows per key.
#[derive(Default)]
struct Limiter {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Limiter {
    /// Counts a request; `Some(wait)` when over the limit.
    fn hit(&self, key: &str, limit: u32) -> Option<Duration> {
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if w.len() > 100_000 {
            w.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let entry = w.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        (entry.1 > limit)
            .then(|| Duration::from_secs(60).saturating_sub(now.duration_since(entry.0)))
    }
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
