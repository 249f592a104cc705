//! `POST /salla/webhook`: Salla's own calls (Cloud Mode), docs/webhooks.md.
//!
//! Each call is authenticated first ([`auth`]): an unauthenticated or forged call is answered 401
//! and nothing of it is stored or acted on. Then the envelope and its `data` are read
//! ([`payload`]) and the event acted on:
//! - `order.created` → the customer's contact card (email, name, phone), then one PURCHASE for
//!   that email, built by the tracker's own mapping (the row of Order Completed), so a purchase
//!   reads the same from either source; the store keeps one PURCHASE per order whichever of the
//!   webhook and the browser comes first; the forwarder upserts the card before the PURCHASE;
//! - `customer.created`, `customer.updated`, `customer.login` → the contact card, upserted
//!   ([`crate::contacts`]);
//! - `app.settings.updated` → the store's tenant (its SALESmanago account) from the settings;
//! - `app.uninstalled` → the store's delivery stops and its events not yet sent are cancelled;
//! - every other event → taken (2xx) and counted.
//!
//! A 2xx is answered only after what the call changed is committed: Salla delivers again when
//! it gets no 2xx, and a second delivery of the same call changes nothing.

pub mod auth;
pub mod payload;

pub use auth::{Strategy, WebhookAuth};

use crate::contacts;
use crate::forwarder;
use crate::salesmanago::ContactCard;
use crate::store::{ContactState, OrderOutcome, WebhookOrder};
use crate::tenants::{self, label};
use crate::{now_ms, Shared};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use payload::{Customer, Envelope, Order, Webhook};
use salla_salesmanago::cart::Cart;
use salla_salesmanago::mapping::{self, Decision, Env};
use salla_salesmanago::received::ReceivedContactEvent;
use salla_salesmanago::salla::{self, SallaEvent};
use serde_json::{json, Value as Json};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// The route's path.
pub const PATH: &str = "/salla/webhook";

fn answer(status: StatusCode, body: Json) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Handles one webhook call: `headers` and the raw `body` as received.
pub async fn handle(shared: &Arc<Shared>, headers: &HeaderMap, body: &[u8]) -> Response {
    let m = &shared.metrics;
    let Some(auth) = &shared.config.webhook else {
        m.webhooks_refused.fetch_add(1, Relaxed);
        return answer(
            StatusCode::NOT_FOUND,
            json!({ "error": "Salla webhooks are off: set SM_SALLA_WEBHOOK_SECRET" }),
        );
    };
    if let Err(e) = auth.verify(headers, body) {
        m.webhooks_refused.fetch_add(1, Relaxed);
        tracing::warn!(reason = %e, strategy = ?auth.strategy, "webhook refused: not authenticated as Salla");
        return answer(StatusCode::UNAUTHORIZED, json!({ "error": e.to_string() }));
    }
    let read = serde_json::from_slice::<Envelope>(body)
        .map_err(|e| format!("not a Salla webhook: {e}"))
        .and_then(|envelope| Webhook::read(&envelope).map(|w| (envelope, w)));
    let (envelope, webhook) = match read {
        Ok(r) => r,
        Err(e) => {
            m.webhooks_refused.fetch_add(1, Relaxed);
            tracing::warn!(error = %e, "webhook refused: unreadable");
            return answer(StatusCode::BAD_REQUEST, json!({ "error": e }));
        }
    };
    let store_id = envelope.merchant.0.clone();
    let event = envelope.event.clone();
    let response = match webhook {
        Webhook::OrderCreated(order) => order_created(shared, &store_id, &order).await,
        Webhook::SettingsUpdated(s) => settings_updated(shared, &store_id, &s.settings).await,
        Webhook::Uninstalled => uninstalled(shared, &store_id).await,
        Webhook::Customer(c) => customer(shared, &store_id, &event, &c).await,
        Webhook::Other => Ok(ignored(shared, &event)),
    };
    match response {
        Ok(r) => {
            m.webhooks_taken.fetch_add(1, Relaxed);
            r
        }
        Err(e) => {
            tracing::error!(%event, store = %store_id, error = %e, "webhook not stored; Salla will deliver it again");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "storage unavailable; deliver again" }),
            )
        }
    }
}

/// The customer's contact card, when Salla has an email SALESmanago can file it under.
fn card(customer: &Customer) -> Option<ContactCard> {
    Some(ContactCard {
        email: customer.email()?.to_owned(),
        name: customer.name(),
        phone: customer.phone(),
    })
}

/// The store's tenant and the client id its contact cards belong to.
fn tenant_of(shared: &Shared, store_id: &str) -> Option<(String, String)> {
    let tenants = shared.tenants();
    let tenant = tenants.for_store(store_id)?;
    let client_id = match tenants.account(&tenant) {
        Ok(a) => a.client_id.clone(),
        Err(_) => tenants.stores.get(&tenant)?.client_id.clone(),
    };
    Some((tenant, client_id))
}

/// Notes `card` for the tenant's account (durably: the forwarder upserts it before any event of
/// the email goes out).
async fn note(
    shared: &Arc<Shared>,
    client_id: &str,
    card: &ContactCard,
) -> Result<ContactState, String> {
    shared
        .store
        .note_contact(client_id, card, now_ms())
        .await
        .map_err(|e| e.to_string())
}

/// `customer.created`, `customer.updated`, `customer.login`: the card is noted, then upserted
/// while Salla waits (at most [`contacts::INLINE_WAIT`]); a card that could not be upserted yet
/// stays noted, and is upserted before the first event of its email goes out.
async fn customer(
    shared: &Arc<Shared>,
    store_id: &str,
    event: &str,
    customer: &Customer,
) -> Result<Response, String> {
    let Some((tenant, client_id)) = tenant_of(shared, store_id) else {
        shared.metrics.webhooks_ignored.fetch_add(1, Relaxed);
        return Ok(answer(
            StatusCode::OK,
            json!({ "ignored": event, "reason": "no SALESmanago account for this store" }),
        ));
    };
    let Some(card) = card(customer) else {
        // SALESmanago files no contact card without an email (a shopper known by mobile only).
        shared.metrics.webhooks_ignored.fetch_add(1, Relaxed);
        return Ok(answer(
            StatusCode::OK,
            json!({ "ignored": event, "reason": "the customer has no email address" }),
        ));
    };
    let state = note(shared, &client_id, &card).await?;
    let upserted = contacts::within_wait(shared, &tenant, card.email.clone(), state)
        .await
        .is_some();
    tracing::info!(tenant = label(&tenant), %event, upserted, "contact card from a webhook");
    Ok(answer(
        StatusCode::OK,
        json!({ "contact": if upserted { "upserted" } else { "noted" } }),
    ))
}

fn ignored(shared: &Shared, event: &str) -> Response {
    shared.metrics.webhooks_ignored.fetch_add(1, Relaxed);
    tracing::debug!(%event, "webhook taken, nothing to do");
    answer(StatusCode::OK, json!({ "ignored": event }))
}

/// The PURCHASE of `order`, by the tracker's own Order Completed row: the same fields, limits and
/// `description` as the browser's, `externalId` = the order id. `None` when it has no product.
pub fn purchase(
    order: &Order,
    client_id: &str,
    location: Option<&str>,
    store_id: &str,
    now_ms: u64,
) -> Option<ReceivedContactEvent> {
    let lines: Vec<salla::Line> = order
        .items
        .iter()
        .filter_map(|item| {
            Some(salla::Line {
                product_id: item.product_id()?.to_owned(),
                name: item.name.clone(),
                quantity: item.quantity.0.filter(|q| *q > 0.0).unwrap_or(1.0),
                price: item.unit_price(),
            })
        })
        .collect();
    let completed = SallaEvent::OrderCompleted(salla::Order {
        order_id: Some(order.id.0.clone()),
        lines,
        total: order.amounts.total.amount.0,
        currency: order
            .currency
            .clone()
            .or_else(|| order.amounts.total.currency.clone()),
        shipping: order.amounts.shipping_cost.amount.0,
        ..salla::Order::default()
    });
    // The mapping's configuration: only `location` matters to an order's row.
    let mut config = salla_salesmanago::config::Config::new(client_id, PATH);
    config.location = location.map(str::to_owned);
    let env = Env {
        now_ms,
        shop_domain: None,
        store_id: Some(store_id),
    };
    let Decision::Send(event) = mapping::map(&completed, &Cart::default(), &config, &env) else {
        return None;
    };
    let Ok(Json::Object(fields)) = serde_json::from_str(&event.to_value().to_json()) else {
        return None;
    };
    ReceivedContactEvent::from_object(fields).ok()
}

async fn order_created(
    shared: &Arc<Shared>,
    store_id: &str,
    order: &Order,
) -> Result<Response, String> {
    let m = &shared.metrics;
    let Some((tenant, client_id)) = tenant_of(shared, store_id) else {
        m.webhooks_ignored.fetch_add(1, Relaxed);
        tracing::warn!(store = %store_id, order = %order.id.0, "order.created for a store without SALESmanago settings: not delivered");
        return Ok(answer(
            StatusCode::OK,
            json!({ "ignored": "order.created", "reason": "no SALESmanago account for this store" }),
        ));
    };
    let location = shared.tenants().location(&tenant).map(str::to_owned);
    let Some(card) = order.customer.as_ref().and_then(card) else {
        // No contact SALESmanago can file the order under; the browser's PURCHASE, which may
        // name the shopper by the smclient cookie, stays the order's.
        m.webhook_orders_without_email.fetch_add(1, Relaxed);
        tracing::info!(store = %store_id, order = %order.id.0, "order.created without a customer email: left to the browser's PURCHASE");
        return Ok(answer(
            StatusCode::OK,
            json!({ "ignored": "order.created", "reason": "the customer has no email address" }),
        ));
    };
    let email = card.email.clone();
    let Some(event) = purchase(order, &client_id, location.as_deref(), store_id, now_ms()) else {
        m.webhooks_ignored.fetch_add(1, Relaxed);
        return Ok(answer(
            StatusCode::OK,
            json!({ "ignored": "order.created", "reason": "the order could not be made a PURCHASE" }),
        ));
    };
    let mut order_keys = vec![order.id.0.clone()];
    order_keys.extend(
        order
            .reference_id
            .as_ref()
            .map(|r| r.0.clone())
            .filter(|r| *r != order.id.0),
    );
    let stored = WebhookOrder {
        tenant: tenant.clone(),
        id: format!("salla:order:{store_id}:{}", order.id.0),
        contact_event: event.to_json(),
        email: email.clone(),
        order_keys,
    };
    // The card first: the forwarder upserts it (with the name and phone the order knows) before
    // the PURCHASE goes.
    note(shared, &client_id, &card).await?;
    let outcome = shared
        .store
        .accept_order(&stored, now_ms())
        .await
        .map_err(|e| e.to_string())?;
    let body = match outcome {
        OrderOutcome::Queued { carts_closed } => {
            m.accepted.fetch_add(1, Relaxed);
            shared.wake.notify_one();
            tracing::info!(tenant = label(&tenant), order = %order.id.0, carts_closed, "PURCHASE from order.created queued");
            json!({ "accepted": 1, "duplicates": 0, "cartsClosed": carts_closed })
        }
        OrderOutcome::Duplicate => {
            m.duplicates.fetch_add(1, Relaxed);
            tracing::info!(tenant = label(&tenant), order = %order.id.0, "order.created: the order has a PURCHASE already");
            json!({ "accepted": 0, "duplicates": 1 })
        }
    };
    Ok(answer(StatusCode::OK, body))
}

async fn settings_updated(
    shared: &Arc<Shared>,
    store_id: &str,
    settings: &serde_json::Map<String, Json>,
) -> Result<Response, String> {
    let tenant = match tenants::from_settings(store_id, settings) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(store = %store_id, "app.settings.updated: {e}; the store has no SALESmanago account yet");
            shared.metrics.webhooks_ignored.fetch_add(1, Relaxed);
            return Ok(answer(
                StatusCode::OK,
                json!({ "ignored": "app.settings.updated", "reason": e.to_string() }),
            ));
        }
    };
    shared
        .store
        .save_tenant(&tenant, now_ms())
        .await
        .map_err(|e| e.to_string())?;
    let key = tenant.key();
    let problem = tenant.problem.clone();
    shared
        .tenants
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .set(tenant);
    // New settings may be the fix: try at once rather than at the next probe.
    forwarder::resume(shared, &key);
    match &problem {
        None => tracing::info!(tenant = %key, "the store's SALESmanago settings were saved"),
        Some(p) => {
            tracing::warn!(tenant = %key, problem = %p, "the store's SALESmanago settings are incomplete: its events are kept until they are complete")
        }
    }
    Ok(answer(
        StatusCode::OK,
        json!({ "tenant": key, "complete": problem.is_none() }),
    ))
}

async fn uninstalled(shared: &Arc<Shared>, store_id: &str) -> Result<Response, String> {
    let cancelled = shared
        .store
        .uninstall(store_id, now_ms())
        .await
        .map_err(|e| e.to_string())?;
    let keys = shared
        .tenants
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .uninstall(store_id);
    for k in &keys {
        // Nothing of it is delivered any more: it is no longer paused either.
        shared
            .account_problems
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(k);
    }
    tracing::info!(store = %store_id, cancelled, "the store uninstalled the app: delivery stopped, its events not yet sent cancelled");
    Ok(answer(
        StatusCode::OK,
        json!({ "uninstalled": store_id, "cancelled": cancelled }),
    ))
}
