//! Salla's webhooks over real HTTP: the receiver against the fake SALESmanago API on 127.0.0.1.
//! Authentication (Signature and Token), one PURCHASE per order whichever source comes first,
//! and stores as tenants (settings, uninstall, credentials never crossing, a pause per store).

mod support;

use fake_salesmanago::Account as FakeAccount;
use salla_salesmanago_receiver::config::Secret;
use salla_salesmanago_receiver::sealed::SealingKey;
use salla_salesmanago_receiver::webhook::{auth::sign, Strategy, WebhookAuth};
use serde_json::{json, Value as J};
use std::time::Duration;
use support::*;

const WEBHOOK_SECRET: &str = "whsec-9f2c";
/// The tests' SM_SECRET_KEY.
const SECRET_KEY: [u8; 32] = [0x5e; 32];

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// How a test call proves itself.
enum By<'a> {
    /// `X-Salla-Signature` with this secret.
    Signature(&'a str),
    /// `Authorization` with this token.
    Token(&'a str),
    /// Nothing.
    Nothing,
}

async fn webhook(url: &str, body: &J, by: By<'_>) -> (u16, J) {
    let raw = body.to_string();
    let mut req = reqwest::Client::new()
        .post(format!("{url}/salla/webhook"))
        .header("Content-Type", "application/json");
    req = match by {
        By::Signature(secret) => req
            .header("X-Salla-Signature", sign(secret, raw.as_bytes()))
            .header("X-Salla-Security-Strategy", "Signature"),
        By::Token(token) => req.header("Authorization", token),
        By::Nothing => req,
    };
    let r = req.body(raw).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(J::Null))
}

fn signed(body: &J) -> By<'static> {
    let _ = body;
    By::Signature(WEBHOOK_SECRET)
}

fn order(merchant: u64, id: u64, reference: &str, email: Option<&str>) -> J {
    json!({
        "event": "order.created", "merchant": merchant, "created_at": "Tue Dec 01 2026 10:00:00 GMT+0300",
        "data": {
            "id": id, "reference_id": reference, "currency": "SAR",
            "amounts": { "total": { "amount": "530.50", "currency": "SAR" } },
            "items": [
                { "id": 11, "name": "عطر العود", "quantity": 2, "product": { "id": 1001 },
                  "amounts": { "price_without_tax": { "amount": 250.25 } } }
            ],
            "customer": { "id": 7, "first_name": "Noura", "last_name": "Saleh", "mobile": 501234567,
                          "mobile_code": "+966", "email": email },
            "status": { "slug": "under_review" }
        }
    })
}

fn settings(merchant: u64, account: &FakeAccount, sm_url: &str) -> J {
    json!({
        "event": "app.settings.updated", "merchant": merchant, "created_at": "…",
        "data": { "id": 1, "app_name": "SALESmanago", "settings": {
            "client_id": account.client_id, "api_key": account.api_key,
            "api_secret": account.api_secret, "owner": account.owner,
            "api_endpoint": sm_url, "endpoint": "https://collect.example/collect",
            "send_email": "true"
        } }
    })
}

fn uninstalled(merchant: u64) -> J {
    json!({ "event": "app.uninstalled", "merchant": merchant, "created_at": "…", "data": {} })
}

fn with_webhooks(
    mut c: salla_salesmanago_receiver::config::Config,
    strategy: Strategy,
) -> salla_salesmanago_receiver::config::Config {
    c.webhook = Some(WebhookAuth {
        strategy,
        secret: Secret::from(WEBHOOK_SECRET),
    });
    // Webhooks bring the stores' secrets: sealed with SM_SECRET_KEY (the same at every start).
    c.secret_key = Some(SealingKey::from_bytes(&SECRET_KEY));
    // The env file's account is store 42's (the self-hosted tests' store).
    c.salla_store_id = Some("42".into());
    c
}

/// The receiver with the env file's (demo) account and webhooks by `strategy`.
async fn self_hosted(
    name: &str,
    strategy: Strategy,
) -> (Fake, salla_salesmanago_receiver::Running, String) {
    let sm = Fake::start().await;
    let c = with_webhooks(config(&sm.url, &data_dir(name)), strategy);
    let r = salla_salesmanago_receiver::start(c).await.unwrap();
    let url = format!("http://{}", r.addr);
    (sm, r, url)
}

fn purchases(calls: &[Call]) -> Vec<&Call> {
    calls
        .iter()
        .filter(|c| c.contact_event()["contactExtEventType"] == "PURCHASE")
        .collect()
}

/// Waits for `n` calls taken, then a while longer to see that no more come.
async fn exactly(sm: &Fake, n: usize) -> Vec<Call> {
    sm.wait_for_taken(n, secs(10)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let taken = sm.taken();
    assert_eq!(taken.len(), n, "{taken:#?}");
    taken
}

#[tokio::test]
async fn a_signed_order_becomes_one_purchase_and_forged_calls_store_nothing() {
    let (sm, r, url) = self_hosted("wh-signature", Strategy::Signature).await;
    let body = order(42, 1904101399, "60157523", Some("noura@example.sa"));
    for (by, why) in [
        (By::Nothing, "no signature"),
        (
            By::Signature("another-secret"),
            "signed with another secret",
        ),
        (
            By::Token(WEBHOOK_SECRET),
            "a token where a signature is required",
        ),
    ] {
        let (status, answer) = webhook(&url, &body, by).await;
        assert_eq!(status, 401, "{why}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    // A body changed after signing: the signature of the original does not cover it.
    let tampered = reqwest::Client::new()
        .post(format!("{url}/salla/webhook"))
        .header(
            "X-Salla-Signature",
            sign(WEBHOOK_SECRET, body.to_string().as_bytes()),
        )
        .body(body.to_string().replace("530.50", "1.00"))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 401);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(sm.calls().is_empty(), "nothing stored, nothing sent");
    assert_eq!(r.shared.store.counts().await.unwrap().queued, 0);

    let (status, answer) = webhook(&url, &body, signed(&body)).await;
    assert_eq!(
        (status, answer["accepted"].clone()),
        (200, json!(1)),
        "{answer}"
    );
    let taken = exactly(&sm, 1).await;
    let call = &taken[0];
    assert_eq!(call.method(), "addContactExtEvent");
    assert_eq!(call.email(), Some("noura@example.sa"));
    assert_eq!(call.client_id(), Some(CLIENT_ID));
    let ce = call.contact_event();
    assert_eq!(ce["contactExtEventType"], "PURCHASE");
    assert_eq!(ce["externalId"], "1904101399");
    assert_eq!(
        ce["description"], "Order Completed",
        "the browser's row, the same words"
    );
    assert_eq!(ce["products"], "1001");
    assert_eq!(ce["value"], 530.5);
    assert_eq!(ce["location"], "42", "the store id, as the browser's");
    assert_eq!(ce["detail1"], "عطر العود");
    assert_eq!(ce["detail2"], "2");
    assert_eq!(ce["detail3"], "250.25");
    assert_eq!(ce["detail4"], "SAR");
    // The customer's card went first, with what the order knows of her.
    let upserts = sm.upserts();
    assert_eq!(upserts.len(), 1, "{upserts:#?}");
    assert_eq!(
        upserts[0].contact(),
        &json!({ "email": "noura@example.sa", "name": "Noura Saleh", "phone": "+966501234567" })
    );
    assert!(upserts[0].n < call.n, "upsert, then the PURCHASE");
    assert_eq!(call.contact_id(), None, "filed under the email");

    let (_, metrics) = get_text(format!("{url}/metrics")).await;
    for line in [
        "sm_receiver_webhooks_refused_total 4",
        "sm_receiver_webhooks_taken_total 1",
    ] {
        assert!(metrics.contains(line), "{metrics}\n∌ {line}");
    }
    r.stop().await;
}

#[tokio::test]
async fn the_token_strategy_takes_the_secret_and_nothing_else() {
    let (sm, r, url) = self_hosted("wh-token", Strategy::Token).await;
    let body = order(42, 77, "1077", Some("noura@example.sa"));
    for by in [
        By::Nothing,
        By::Token("whsec-9f2"),
        By::Token("Bearer nope"),
        By::Signature(WEBHOOK_SECRET),
    ] {
        assert_eq!(webhook(&url, &body, by).await.0, 401);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sm.calls().is_empty());
    assert_eq!(webhook(&url, &body, By::Token(WEBHOOK_SECRET)).await.0, 200);
    let taken = exactly(&sm, 1).await;
    assert_eq!(taken[0].contact_event()["externalId"], "77");
    // Events the receiver does not act on are taken and counted.
    let other = json!({ "event": "review.added", "merchant": 42, "data": { "id": 1 } });
    assert_eq!(
        webhook(&url, &other, By::Token(WEBHOOK_SECRET)).await,
        (200, json!({ "ignored": "review.added" }))
    );
    r.stop().await;
}

#[tokio::test]
async fn webhook_first_then_the_browsers_purchase_and_duplicate_deliveries_make_one() {
    let (sm, r, url) = self_hosted("wh-first", Strategy::Signature).await;
    let body = order(42, 5001, "9001", Some("noura@example.sa"));
    assert_eq!(webhook(&url, &body, signed(&body)).await.0, 200);
    // Salla delivers the same call again.
    let (status, again) = webhook(&url, &body, signed(&body)).await;
    assert_eq!(
        (status, again),
        (200, json!({ "accepted": 0, "duplicates": 1 }))
    );
    sm.wait_for_taken(1, secs(10)).await;
    // The storefront's Order Completed names the order by the number the shopper sees.
    let browser = batch(
        vec![event("browser-purchase", "PURCHASE", Some("9001"), "1001")],
        json!({ "contactId": "c-noura" }),
    );
    assert_eq!(
        post(&url, &browser).await,
        (200, json!({ "accepted": 0, "duplicates": 1 }))
    );
    let taken = exactly(&sm, 1).await;
    assert_eq!(purchases(&taken).len(), 1);
    assert_eq!(taken[0].contact_event()["externalId"], "5001");
    r.stop().await;
}

#[tokio::test]
async fn the_browsers_purchase_first_then_the_webhook_make_one() {
    let (sm, r, url) = self_hosted("wh-second", Strategy::Signature).await;
    let browser = batch(
        vec![event("browser-purchase", "PURCHASE", Some("6001"), "1001")],
        json!({ "contactId": "c-noura" }),
    );
    assert_eq!(post(&url, &browser).await.0, 200);
    sm.wait_for_taken(1, secs(10)).await;
    let body = order(42, 6001, "9601", Some("noura@example.sa"));
    assert_eq!(
        webhook(&url, &body, signed(&body)).await,
        (200, json!({ "accepted": 0, "duplicates": 1 }))
    );
    let taken = exactly(&sm, 1).await;
    assert_eq!(taken[0].description(), Some("browser-purchase"));
    assert_eq!(taken[0].contact_id(), Some("c-noura"));
    r.stop().await;
}

#[tokio::test]
async fn an_anonymous_browser_purchase_gives_way_to_the_webhooks_which_has_the_email() {
    let (sm, r, url) = self_hosted("wh-anonymous", Strategy::Signature).await;
    // No contact yet: the browser's PURCHASE waits for one that may never come.
    let browser = batch(
        vec![event(
            "anonymous-purchase",
            "PURCHASE",
            Some("7001"),
            "1001",
        )],
        json!({}),
    );
    assert_eq!(post(&url, &browser).await.0, 200);
    let body = order(42, 7001, "9701", Some("noura@example.sa"));
    let (status, answer) = webhook(&url, &body, signed(&body)).await;
    assert_eq!((status, answer["accepted"].clone()), (200, json!(1)));
    // The shopper names herself later: her waiting events go out, but not a second PURCHASE.
    let named = batch(
        vec![event("later-visit", "VISIT", None, "1")],
        json!({ "contactId": "c-noura" }),
    );
    assert_eq!(post(&url, &named).await.0, 200);
    let taken = exactly(&sm, 2).await;
    let bought = purchases(&taken);
    assert_eq!(bought.len(), 1, "{taken:#?}");
    assert_eq!(bought[0].email(), Some("noura@example.sa"));
    r.stop().await;
}

#[tokio::test]
async fn the_webhooks_purchase_closes_the_customers_cart_still_queued() {
    let (sm, r, url) = self_hosted("wh-cart", Strategy::Signature).await;
    sm.set_down(true);
    let cart = batch(
        vec![event("cart-1", "CART", Some("cart-9"), "1001")],
        json!({ "email": "noura@example.sa" }),
    );
    assert_eq!(post(&url, &cart).await.0, 200);
    let body = order(42, 8001, "9801", Some("noura@example.sa"));
    let (_, answer) = webhook(&url, &body, signed(&body)).await;
    assert_eq!(answer["cartsClosed"], 1, "{answer}");
    sm.set_down(false);
    let taken = exactly(&sm, 1).await;
    assert_eq!(taken[0].contact_event()["contactExtEventType"], "PURCHASE");
    r.stop().await;
}

#[tokio::test]
async fn an_order_without_email_is_left_to_the_browser_and_bad_bodies_are_named() {
    let (sm, r, url) = self_hosted("wh-no-email", Strategy::Signature).await;
    let body = order(42, 9001, "9901", None);
    let (status, answer) = webhook(&url, &body, signed(&body)).await;
    assert_eq!(status, 200);
    assert_eq!(answer["reason"], "the customer has no email address");
    let browser = batch(
        vec![event("browser-purchase", "PURCHASE", Some("9901"), "1001")],
        json!({ "contactId": "c-x" }),
    );
    assert_eq!(
        post(&url, &browser).await,
        (200, json!({ "accepted": 1, "duplicates": 0 }))
    );
    exactly(&sm, 1).await;
    let bad = json!({ "event": "order.created", "merchant": 42, "data": { "items": [] } });
    let (status, answer) = webhook(&url, &bad, signed(&bad)).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "order.created: data: missing field `id`");
    let (_, metrics) = get_text(format!("{url}/metrics")).await;
    assert!(metrics.contains("sm_receiver_webhook_orders_without_email_total 1"));
    r.stop().await;
}

async fn get_text(url: String) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn account(client: &str) -> FakeAccount {
    FakeAccount {
        client_id: client.into(),
        api_key: format!("{client}-key"),
        api_secret: format!("{client}-secret"),
        owner: format!("owner@{client}.example"),
    }
}

/// A receiver with no env account (every store's account from its settings), and a fake that
/// knows two accounts, A and B.
async fn cloud(
    name: &str,
) -> (
    Fake,
    salla_salesmanago_receiver::Running,
    String,
    std::path::PathBuf,
) {
    let sm = Fake::start().await;
    sm.add_account(account("client-a"));
    sm.add_account(account("client-b"));
    let dir = data_dir(name);
    let mut c = with_webhooks(config(&sm.url, &dir), Strategy::Signature);
    c.account = None;
    let r = salla_salesmanago_receiver::start(c).await.unwrap();
    let url = format!("http://{}", r.addr);
    (sm, r, url, dir)
}

fn store_batch(client: &str, store: &str, id: &str) -> J {
    let mut b = batch(
        vec![event(id, "VISIT", None, "1")],
        json!({ "contactId": format!("c-{id}") }),
    );
    b["clientId"] = json!(client);
    b["storeId"] = json!(store);
    b
}

async fn send_settings(url: &str, merchant: u64, account: &FakeAccount, sm_url: &str) {
    let body = settings(merchant, account, sm_url);
    let (status, answer) = webhook(url, &body, signed(&body)).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn stores_become_tenants_and_their_events_never_cross() {
    let (sm, r, url, dir) = cloud("wh-tenants").await;
    // Before its settings, a store's batches have no account to go to.
    let (status, answer) = post(&url, &store_batch("client-a", "1", "a-early")).await;
    assert_eq!(status, 400, "{answer}");
    send_settings(&url, 1, &account("client-a"), &sm.url).await;
    send_settings(&url, 2, &account("client-b"), &sm.url).await;
    for (client, store, id) in [
        ("client-a", "1", "a-1"),
        ("client-b", "2", "b-1"),
        ("client-a", "1", "a-2"),
        ("client-b", "2", "b-2"),
    ] {
        assert_eq!(post(&url, &store_batch(client, store, id)).await.0, 200);
    }
    // Another store's client id is not this store's account.
    let (status, _) = post(&url, &store_batch("client-b", "1", "crossed")).await;
    assert_eq!(status, 400);
    let a_order = order(1, 100, "1100", Some("noura@example.sa"));
    assert_eq!(webhook(&url, &a_order, signed(&a_order)).await.0, 200);
    let b_order = order(2, 200, "1200", Some("huda@example.sa"));
    assert_eq!(webhook(&url, &b_order, signed(&b_order)).await.0, 200);
    let taken = exactly(&sm, 6).await;
    for call in &taken {
        let expected = match call.description() {
            Some(d) if d.starts_with("a-") => "client-a",
            Some(d) if d.starts_with("b-") => "client-b",
            _ if call.email() == Some("noura@example.sa") => "client-a",
            _ => "client-b",
        };
        assert_eq!(call.client_id(), Some(expected), "{call:#?}");
        assert_eq!(call.body["apiKey"], format!("{expected}-key"));
        assert_eq!(call.body["owner"], format!("owner@{expected}.example"));
    }
    assert!(sm.refused().is_empty(), "{:?}", sm.refused());
    r.stop().await;

    // The tenants outlive a restart: no settings needed again.
    let mut c = with_webhooks(config(&sm.url, &dir), Strategy::Signature);
    c.account = None;
    let r = salla_salesmanago_receiver::start(c).await.unwrap();
    let url = format!("http://{}", r.addr);
    assert_eq!(
        post(&url, &store_batch("client-b", "2", "b-3")).await.0,
        200
    );
    let taken = exactly(&sm, 7).await;
    assert_eq!(taken[6].client_id(), Some("client-b"));
    r.stop().await;
}

#[tokio::test]
async fn new_settings_change_the_account_and_uninstall_stops_the_store() {
    let (sm, r, url, _) = cloud("wh-uninstall").await;
    send_settings(&url, 1, &account("client-a"), &sm.url).await;
    send_settings(&url, 2, &account("client-b"), &sm.url).await;
    sm.set_down(true);
    assert_eq!(
        post(&url, &store_batch("client-a", "1", "a-kept")).await.0,
        200
    );
    assert_eq!(
        post(&url, &store_batch("client-b", "2", "b-kept")).await.0,
        200
    );
    // Store 1 uninstalls while its event waits: it is cancelled, never sent.
    let body = uninstalled(1);
    let (status, answer) = webhook(&url, &body, signed(&body)).await;
    assert_eq!(
        (status, answer),
        (200, json!({ "uninstalled": "1", "cancelled": 1 }))
    );
    let (status, answer) = post(&url, &store_batch("client-a", "1", "a-after")).await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["error"],
        "store 1 uninstalled the app: nothing is taken for it"
    );
    sm.set_down(false);
    let taken = exactly(&sm, 1).await;
    assert_eq!(taken[0].description(), Some("b-kept"));
    // Store 2 moves to another SALESmanago account (client-a's, say): new batches go there,
    // what it took before went to the account it was taken for.
    send_settings(&url, 2, &account("client-a"), &sm.url).await;
    assert_eq!(
        post(&url, &store_batch("client-a", "2", "b-moved")).await.0,
        200
    );
    let (status, _) = post(&url, &store_batch("client-b", "2", "b-old")).await;
    assert_eq!(status, 400, "the old client id is no longer the store's");
    let taken = exactly(&sm, 2).await;
    assert_eq!(
        (taken[1].description(), taken[1].client_id()),
        (Some("b-moved"), Some("client-a"))
    );
    r.stop().await;
}

#[tokio::test]
async fn a_wrong_secret_in_one_stores_settings_pauses_only_that_store_until_fixed() {
    let (sm, r, url, _) = cloud("wh-pause").await;
    let mut typo = account("client-a");
    typo.api_secret = "a typo".into();
    send_settings(&url, 1, &typo, &sm.url).await;
    send_settings(&url, 2, &account("client-b"), &sm.url).await;
    for (client, store, id) in [
        ("client-a", "1", "a-1"),
        ("client-b", "2", "b-1"),
        ("client-a", "1", "a-2"),
        ("client-b", "2", "b-2"),
    ] {
        assert_eq!(post(&url, &store_batch(client, store, id)).await.0, 200);
    }
    let taken = exactly(&sm, 2).await;
    assert!(taken.iter().all(|c| c.client_id() == Some("client-b")));
    let refused = sm.refused().len();
    assert!(
        (1..=8).contains(&refused),
        "a first call and a few probes: {refused}"
    );
    let (status, health) = get_text(format!("{url}/health")).await;
    assert_eq!(status, 200, "the other stores are served: {health}");
    assert!(
        health.contains("delivery paused for store 1:client-a: SALESmanago refused the account")
            && health.contains("check the store's app settings api_secret"),
        "{health}"
    );
    let (_, metrics) = get_text(format!("{url}/metrics")).await;
    for line in [
        "sm_receiver_delivery_paused 1",
        "sm_receiver_tenant_paused{store=\"1\",client_id=\"client-a\"} 1",
        "sm_receiver_events_failed_total 0",
    ] {
        assert!(metrics.contains(line), "{metrics}\n∌ {line}");
    }
    // The merchant fixes the secret: delivery resumes at once, nothing was lost.
    send_settings(&url, 1, &account("client-a"), &sm.url).await;
    let taken = exactly(&sm, 4).await;
    // Two shoppers' events: both go, in whichever order their calls end.
    let mut a: Vec<_> = taken
        .iter()
        .filter(|c| c.client_id() == Some("client-a"))
        .map(|c| c.description().unwrap())
        .collect();
    a.sort_unstable();
    assert_eq!(a, ["a-1", "a-2"]);
    let (status, health) = get_text(format!("{url}/health")).await;
    assert_eq!((status, health.as_str()), (200, "ok\n"));
    r.stop().await;
}

#[tokio::test]
async fn webhooks_are_off_without_a_secret() {
    let sm = Fake::start().await;
    let r = salla_salesmanago_receiver::start(config(&sm.url, &data_dir("wh-off")))
        .await
        .unwrap();
    let url = format!("http://{}", r.addr);
    let body = order(42, 1, "1", Some("noura@example.sa"));
    assert_eq!(webhook(&url, &body, signed(&body)).await.0, 404);
    r.stop().await;
}

fn customer(event: &str, merchant: u64, last_name: &str, email: Option<&str>) -> J {
    json!({
        "event": event, "merchant": merchant, "created_at": "…",
        "data": { "id": 7, "first_name": "Noura", "last_name": last_name, "mobile": "501234567",
                  "mobile_code": "966", "email": email, "city": "Riyadh" }
    })
}

#[tokio::test]
async fn customer_webhooks_upsert_the_contact_once_and_again_when_it_changes() {
    let (sm, r, url) = self_hosted("wh-customer", Strategy::Signature).await;
    let created = customer("customer.created", 42, "Saleh", Some("noura@example.sa"));
    assert_eq!(
        webhook(&url, &created, signed(&created)).await,
        (200, json!({ "contact": "upserted" }))
    );
    // Salla delivers it again, and the shopper signs in: nothing new for SALESmanago.
    assert_eq!(webhook(&url, &created, signed(&created)).await.0, 200);
    let login = customer("customer.login", 42, "Saleh", Some("noura@example.sa"));
    assert_eq!(
        webhook(&url, &login, signed(&login)).await,
        (200, json!({ "contact": "upserted" }))
    );
    let upserts = sm.upserts();
    assert_eq!(upserts.len(), 1, "{upserts:#?}");
    assert_eq!(upserts[0].client_id(), Some(CLIENT_ID));
    assert_eq!(
        upserts[0].contact(),
        &json!({ "email": "noura@example.sa", "name": "Noura Saleh", "phone": "+966501234567" })
    );
    assert_eq!(
        upserts[0].body["forceOptIn"], false,
        "consent is never changed"
    );
    // A new name is news: upserted again.
    let updated = customer("customer.updated", 42, "Al-Saleh", Some("noura@example.sa"));
    assert_eq!(webhook(&url, &updated, signed(&updated)).await.0, 200);
    let upserts = sm.upserts();
    assert_eq!(upserts.len(), 2);
    assert_eq!(upserts[1].contact()["name"], "Noura Al-Saleh");
    // A shopper known by mobile only has no card SALESmanago can file.
    let mobile_only = customer("customer.created", 42, "Saleh", None);
    let (status, answer) = webhook(&url, &mobile_only, signed(&mobile_only)).await;
    assert_eq!(status, 200);
    assert_eq!(answer["reason"], "the customer has no email address");
    assert_eq!(sm.upserts().len(), 2);
    // Her events from the browser now go out under the contact that exists.
    let later = batch(
        vec![event("visit", "VISIT", None, "1")],
        json!({ "email": "noura@example.sa" }),
    );
    assert_eq!(post(&url, &later).await.0, 200);
    exactly(&sm, 1).await;
    assert_eq!(sm.upserts().len(), 2, "no upsert per batch");
    r.stop().await;
}

#[tokio::test]
async fn a_customer_of_each_store_goes_to_its_own_account() {
    let (sm, r, url, _) = cloud("wh-customer-tenants").await;
    send_settings(&url, 1, &account("client-a"), &sm.url).await;
    send_settings(&url, 2, &account("client-b"), &sm.url).await;
    let a = customer("customer.created", 1, "A", Some("same@example.sa"));
    let b = customer("customer.created", 2, "B", Some("same@example.sa"));
    assert_eq!(webhook(&url, &a, signed(&a)).await.0, 200);
    assert_eq!(webhook(&url, &b, signed(&b)).await.0, 200);
    let upserts = sm.upserts();
    let clients: Vec<_> = upserts.iter().map(|c| c.client_id().unwrap()).collect();
    assert_eq!(clients, ["client-a", "client-b"], "one card per account");
    assert_eq!(upserts[1].contact()["name"], "Noura B");
    r.stop().await;
}

#[tokio::test]
async fn incomplete_settings_keep_the_stores_events_until_they_are_complete() {
    let (sm, r, url, _) = cloud("wh-incomplete").await;
    let mut body = settings(1, &account("client-a"), &sm.url);
    body["data"]["settings"]
        .as_object_mut()
        .unwrap()
        .remove("api_secret");
    let (status, answer) = webhook(&url, &body, signed(&body)).await;
    assert_eq!(
        (status, answer),
        (200, json!({ "tenant": "1:client-a", "complete": false }))
    );
    // The store's batches are taken and kept, nothing goes out.
    assert_eq!(
        post(&url, &store_batch("client-a", "1", "a-kept")).await.0,
        200
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(sm.calls().is_empty(), "{:#?}", sm.calls());
    let (_, health) = get_text(format!("{url}/health")).await;
    assert!(
        health.contains("store 1:client-a") && health.contains("api_secret is missing"),
        "{health}"
    );
    // Settings without a client id make no tenant at all.
    let mut none = settings(3, &account("client-a"), &sm.url);
    none["data"]["settings"]
        .as_object_mut()
        .unwrap()
        .remove("client_id");
    let (_, answer) = webhook(&url, &none, signed(&none)).await;
    assert_eq!(answer["reason"], "the settings have no client_id");
    send_settings(&url, 1, &account("client-a"), &sm.url).await;
    let taken = exactly(&sm, 1).await;
    assert_eq!(
        (taken[0].description(), taken[0].client_id()),
        (Some("a-kept"), Some("client-a"))
    );
    r.stop().await;
}

#[tokio::test]
async fn a_batch_committed_after_its_store_uninstalled_is_cancelled_not_a_paused_account() {
    use salla_salesmanago::received::ReceivedBatch;
    use salla_salesmanago_receiver::store::Arriving;
    let (sm, r, url, _) = cloud("wh-uninstall-race").await;
    send_settings(&url, 1, &account("client-a"), &sm.url).await;
    let tenant = r.shared.tenants().route("client-a", Some("1")).unwrap();
    let body = uninstalled(1);
    assert_eq!(webhook(&url, &body, signed(&body)).await.0, 200);
    // The race: /collect routed this batch while the store was still installed, and its commit
    // lands after the uninstall's cancel.
    let late = serde_json::to_vec(&store_batch("client-a", "1", "a-late")).unwrap();
    let late = ReceivedBatch::parse(&late).unwrap();
    r.shared
        .store
        .accept(
            &[Arriving {
                batch: &late,
                tenant: &tenant,
            }],
            1,
            100,
        )
        .await
        .unwrap();
    r.shared.wake.notify_one();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while r.shared.store.counts().await.unwrap().queued > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the late event was never cancelled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        sm.calls().is_empty(),
        "nothing of the uninstalled store is sent"
    );
    assert!(
        !r.shared.account_problems().contains_key(&tenant),
        "an uninstalled store is not a paused account"
    );
    r.stop().await;
}

#[tokio::test]
async fn a_store_over_its_rate_gets_429_while_other_stores_from_the_same_page_are_taken() {
    let sm = Fake::start().await;
    sm.add_account(account("client-a"));
    sm.add_account(account("client-b"));
    let mut c = with_webhooks(
        config(&sm.url, &data_dir("wh-store-rate")),
        Strategy::Signature,
    );
    c.rate_per_store = 3;
    let r = salla_salesmanago_receiver::start(c).await.unwrap();
    let url = format!("http://{}", r.addr);
    send_settings(&url, 1, &account("client-a"), &sm.url).await;
    send_settings(&url, 2, &account("client-b"), &sm.url).await;
    // One address, one origin: only the store differs.
    for i in 0..3 {
        let b = store_batch("client-a", "1", &format!("a-{i}"));
        assert_eq!(post(&url, &b).await.0, 200);
    }
    let (status, headers, body) = post_with(
        &url,
        &store_batch("client-a", "1", "a-over"),
        Some(ORIGIN),
        &[],
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        body["error"],
        "rate limit: at most 3 requests a minute per store"
    );
    // 3 a minute: one more every 20 s.
    let wait: u64 = header(&headers, "retry-after").parse().unwrap();
    assert!((1..=20).contains(&wait), "{headers:?}");
    assert_eq!(header(&headers, "access-control-allow-origin"), ORIGIN);
    for i in 0..3 {
        let b = store_batch("client-b", "2", &format!("b-{i}"));
        assert_eq!(post(&url, &b).await.0, 200, "store 2 has its own");
    }
    // The env file's account (store 42's): a storeId no tenant has is the account's, not a store
    // with a budget of its own.
    for (i, store) in ["42", "made-up-1", "made-up-2"].iter().enumerate() {
        let b = store_batch(CLIENT_ID, store, &format!("env-{i}"));
        assert_eq!(post(&url, &b).await.0, 200);
    }
    let (status, _, body) = post_with(
        &url,
        &store_batch(CLIENT_ID, "made-up-3", "env-over"),
        Some(ORIGIN),
        &[],
    )
    .await;
    assert_eq!(status, 429, "{body}");
    let taken = exactly(&sm, 9).await;
    assert!(
        taken
            .iter()
            .all(|c| !c.description().unwrap().ends_with("-over")),
        "the refused batches are not stored"
    );
    let m = metrics(&url).await;
    assert_eq!(metric(&m, "sm_receiver_requests_rate_limited_total"), 2);
    r.stop().await;
}

/// Every byte of the receiver's database files in `dir` (the WAL holds the latest commits); on
/// PostgreSQL, the whole database as `pg_dump` writes it.
fn database_bytes(dir: &std::path::Path) -> Vec<u8> {
    if let Some(url) = database_url(dir) {
        let out = std::process::Command::new("pg_dump")
            .args(["--data-only", &url])
            .output()
            .expect("pg_dump runs (Debian's postgresql-client)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return out.stdout;
    }
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("receiver.sqlite3") {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(!all.is_empty(), "no database in {}", dir.display());
    all
}

fn holds(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

#[tokio::test]
async fn a_stores_secrets_are_sealed_at_rest_and_another_key_pauses_only_that_store() {
    let sm = Fake::start().await;
    sm.add_account(account("client-a"));
    sm.add_account(account("client-b"));
    let dir = data_dir("wh-sealed");
    let start = |key: [u8; 32]| {
        let mut c = with_webhooks(config(&sm.url, &dir), Strategy::Signature);
        c.account = None;
        c.secret_key = Some(SealingKey::from_bytes(&key));
        salla_salesmanago_receiver::start(c)
    };
    let r = start(SECRET_KEY).await.unwrap();
    let url = format!("http://{}", r.addr);
    send_settings(&url, 1, &account("client-a"), &sm.url).await;
    // On disk, while it runs and after it stopped: the row, but not the key or the secret.
    let sealed_at_rest = |moment: &str| {
        let bytes = database_bytes(&dir);
        assert!(
            holds(&bytes, "owner@client-a.example"),
            "the test reads the tenant's row ({moment})"
        );
        for clear in ["client-a-key", "client-a-secret"] {
            assert!(!holds(&bytes, clear), "{clear} in clear text ({moment})");
        }
    };
    sealed_at_rest("running");
    r.stop().await;
    sealed_at_rest("stopped");

    // Restarted with the same key: the store's events go out with its own credentials.
    let r = start(SECRET_KEY).await.unwrap();
    let url = format!("http://{}", r.addr);
    assert_eq!(
        post(&url, &store_batch("client-a", "1", "a-1")).await.0,
        200
    );
    let taken = exactly(&sm, 1).await;
    assert_eq!(taken[0].client_id(), Some("client-a"));
    assert_eq!(taken[0].body["apiKey"], "client-a-key");
    assert!(
        sm.refused().is_empty(),
        "the secret too: {:?}",
        sm.refused()
    );
    r.stop().await;

    // Restarted with another key: it starts, the store is paused with its problem named, its
    // batches are kept, and another store is served.
    let r = start([0x11; 32]).await.unwrap();
    let url = format!("http://{}", r.addr);
    let (status, health) = get_text(format!("{url}/health")).await;
    assert_eq!(status, 200, "the other stores are served: {health}");
    assert!(
        health.contains("delivery paused for store 1:client-a: the API key and secret stored for this store cannot be opened: SM_SECRET_KEY is not the key the secrets were sealed with"),
        "{health}"
    );
    assert!(!health.contains("SALESmanago refused"), "{health}");
    let (_, metrics) = get_text(format!("{url}/metrics")).await;
    assert!(
        metrics.contains("sm_receiver_tenant_paused{store=\"1\",client_id=\"client-a\"} 1"),
        "{metrics}"
    );
    assert_eq!(
        post(&url, &store_batch("client-a", "1", "a-2")).await.0,
        200
    );
    send_settings(&url, 2, &account("client-b"), &sm.url).await;
    assert_eq!(
        post(&url, &store_batch("client-b", "2", "b-1")).await.0,
        200
    );
    let taken = exactly(&sm, 2).await;
    assert_eq!(taken[1].client_id(), Some("client-b"));
    assert!(sm.refused().is_empty(), "{:?}", sm.refused());
    // The store saves its settings again: sealed with this key, its kept event goes out.
    send_settings(&url, 1, &account("client-a"), &sm.url).await;
    let taken = exactly(&sm, 3).await;
    assert_eq!(
        (taken[2].description(), taken[2].client_id()),
        (Some("a-2"), Some("client-a"))
    );
    let (status, health) = get_text(format!("{url}/health")).await;
    assert_eq!((status, health.as_str()), (200, "ok\n"));
    r.stop().await;
}

#[tokio::test]
async fn a_store_whose_salesmanago_hangs_or_fails_slows_no_other_store() {
    let (fast, r, url, _) = cloud("wh-isolation").await;
    // Store 1's account answers each call after 4 s; store 2's at once.
    let slow = Fake::start().await;
    slow.add_account(account("client-a"));
    slow.set_answer_delay(Duration::from_secs(4));
    send_settings(&url, 1, &account("client-a"), &slow.url).await;
    send_settings(&url, 2, &account("client-b"), &fast.url).await;
    // Store 1 has a backlog (20 shoppers) when store 2's shoppers arrive.
    for i in 0..20 {
        assert_eq!(
            post(&url, &store_batch("client-a", "1", &format!("a-{i}")))
                .await
                .0,
            200
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let posted = std::time::Instant::now();
    for i in 0..10 {
        assert_eq!(
            post(&url, &store_batch("client-b", "2", &format!("b-{i}")))
                .await
                .0,
            200
        );
    }
    fast.wait_for_taken(10, secs(3)).await;
    let took = posted.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "store 2 waited {took:?} behind store 1"
    );
    assert!(
        slow.taken().len() <= salla_salesmanago_receiver::forwarder::PER_TENANT,
        "store 1 has at most its share of the calls in flight"
    );
    // Now store 1's SALESmanago is down (503): it backs off; store 2 goes on at once.
    slow.set_answer_delay(Duration::ZERO);
    slow.set_down(true);
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let posted = std::time::Instant::now();
    for i in 10..15 {
        assert_eq!(
            post(&url, &store_batch("client-b", "2", &format!("b-{i}")))
                .await
                .0,
            200
        );
    }
    fast.wait_for_taken(15, secs(3)).await;
    assert!(
        posted.elapsed() < Duration::from_secs(2),
        "{:?}",
        posted.elapsed()
    );
    // And when it is back, store 1's events all arrive.
    slow.set_down(false);
    slow.wait_for_taken(20, secs(30)).await;
    r.stop().await;
}
