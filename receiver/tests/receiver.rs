//! The receiver over real HTTP, against the fake SALESmanago API on 127.0.0.1.

mod support;

use serde_json::json;
use std::time::Duration;
use support::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn descriptions(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .map(|c| c.description().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_same_id_twice_is_accepted_and_forwarded_once() {
    let (sm, r, url) = running("dedupe").await;
    let contact = json!({ "contactId": "c-1" });
    let first = batch(
        vec![
            event("a", "VISIT", None, "1"),
            event("b", "OTHER", None, "2"),
        ],
        contact.clone(),
    );
    assert_eq!(
        post(&url, &first).await,
        (200, json!({ "accepted": 2, "duplicates": 0 }))
    );
    let again = batch(
        vec![
            event("b", "OTHER", None, "2"),
            event("c", "VISIT", None, "3"),
        ],
        contact,
    );
    assert_eq!(
        post(&url, &again).await,
        (200, json!({ "accepted": 1, "duplicates": 1 }))
    );
    let calls = sm.wait_for_taken(3, secs(10)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(descriptions(&sm.calls()), ["a", "b", "c"]);
    assert!(calls
        .iter()
        .all(|c| c.method() == "addContactExtEvent" && c.contact_id() == Some("c-1")));
    assert!(sm.refused().is_empty(), "{:?}", sm.refused());
    r.stop().await;
}

#[tokio::test]
async fn a_later_page_asks_which_events_are_held_and_gets_only_those() {
    let (sm, r, url) = running("confirm").await;
    let sent = batch(
        vec![
            event("a", "VISIT", None, "1"),
            event("b", "OTHER", None, "2"),
        ],
        json!({ "contactId": "c-1" }),
    );
    assert_eq!(post(&url, &sent).await.0, 200);
    // The next page never saw that answer: it asks about a, b and c (c never arrived).
    let mut ask = batch(vec![], json!({}));
    ask.as_object_mut().unwrap().remove("events");
    ask["confirm"] = json!(["a", "b", "c"]);
    let (status, answer) = post(&url, &ask).await;
    assert_eq!(status, 200, "{answer}");
    let mut held: Vec<String> = serde_json::from_value(answer["held"].clone()).unwrap();
    held.sort();
    assert_eq!(held, ["a", "b"], "{answer}");
    assert_eq!(answer["accepted"], 0);
    // Events and a question in one body: both answered.
    let mut both = batch(
        vec![event("c", "VISIT", None, "3")],
        json!({ "contactId": "c-1" }),
    );
    both["confirm"] = json!(["b"]);
    assert_eq!(
        post(&url, &both).await,
        (
            200,
            json!({ "accepted": 1, "duplicates": 0, "held": ["b"] })
        )
    );
    // Another store's receiver holds none of them: the question is scoped to the tenant.
    let mut other = ask.clone();
    other["clientId"] = json!("another-client");
    assert_eq!(
        post(&url, &other).await.0,
        400,
        "an account this receiver does not serve"
    );
    // Asking nothing is not a request.
    let mut empty = ask.clone();
    empty["confirm"] = json!([]);
    let (status, answer) = post(&url, &empty).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("events is missing"))
    );
    sm.wait_for_taken(3, secs(10)).await;
    assert_eq!(
        descriptions(&sm.calls()),
        ["a", "b", "c"],
        "asking sends nothing again"
    );
    let text = metrics(&url).await;
    assert_eq!(metric(&text, "sm_receiver_events_confirmed_total"), 3);
    r.stop().await;
}

#[tokio::test]
async fn a_cart_is_added_once_then_updated_in_place_until_the_purchase() {
    let (sm, r, url) = running("cart").await;
    let contact = json!({ "email": "noura@example.sa" });
    for (i, products) in ["1", "1,2", "1,2,3"].iter().enumerate() {
        post(
            &url,
            &batch(
                vec![event(&format!("cart-{i}"), "CART", Some("9"), products)],
                contact.clone(),
            ),
        )
        .await;
        sm.wait_for_taken(i + 1, secs(10)).await;
    }
    post(
        &url,
        &batch(
            vec![event("order", "PURCHASE", Some("o-1"), "1,2,3")],
            contact.clone(),
        ),
    )
    .await;
    sm.wait_for_taken(4, secs(10)).await;
    post(
        &url,
        &batch(
            vec![event("next-cart", "CART", Some("10"), "4")],
            contact.clone(),
        ),
    )
    .await;
    let calls = sm.wait_for_taken(5, secs(10)).await;
    let summary: Vec<(&str, Option<&str>, &str)> = calls
        .iter()
        .map(|c| (c.method(), c.sent_event_id(), c.taken_id().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("addContactExtEvent", None, "sm-1"),
            ("updateContactExtEvent", Some("sm-1"), "sm-1"),
            ("updateContactExtEvent", Some("sm-1"), "sm-1"),
            ("addContactExtEvent", None, "sm-2"),
            ("addContactExtEvent", None, "sm-3"),
        ]
    );
    assert_eq!(calls[2].contact_event()["products"], "1,2,3");
    assert!(sm.refused().is_empty(), "{:?}", sm.refused());
    r.stop().await;
}

#[tokio::test]
async fn carts_waiting_together_end_in_the_latest_one() {
    let (sm, r, url) = running("superseded").await;
    sm.set_down(true);
    let contact = json!({ "contactId": "c-1" });
    for (i, products) in ["1", "1,2", "1,2,3"].iter().enumerate() {
        post(
            &url,
            &batch(
                vec![event(&format!("cart-{i}"), "CART", Some("9"), products)],
                contact.clone(),
            ),
        )
        .await;
    }
    sm.set_down(false);
    sm.wait_for_taken(1, secs(15)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    // The older CARTs that waited were superseded: the cart goes as its latest. One call may
    // precede it: a CART whose call was already on its way when the newer one arrived (and
    // reached SALESmanago just as it came back) is not recalled; the latest then updates it.
    let calls = sm.calls();
    let last = calls.last().unwrap();
    assert_eq!(last.contact_event()["products"], "1,2,3");
    assert!(calls.len() <= 2, "{calls:?}");
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.path.ends_with("addContactExtEvent"))
            .count(),
        1,
        "one event for the cart"
    );
    r.stop().await;
}

#[tokio::test]
async fn salesmanago_down_for_a_while_then_everything_arrives() {
    let (sm, r, url) = running("down").await;
    sm.set_down(true);
    let events: Vec<_> = (0..5)
        .map(|i| event(&format!("e{i}"), "OTHER", None, "1"))
        .collect();
    assert_eq!(
        post(&url, &batch(events, json!({ "contactId": "c" })))
            .await
            .0,
        200
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(sm.calls().is_empty());
    sm.set_down(false);
    let calls = sm.wait_for_taken(5, secs(20)).await;
    assert_eq!(descriptions(&calls), ["e0", "e1", "e2", "e3", "e4"]);
    r.stop().await;
}

#[tokio::test]
async fn a_wrong_secret_pauses_delivery_keeps_every_event_and_delivers_after_the_fix() {
    let sm = Fake::start().await;
    let dir = data_dir("wrong-secret");
    let mut wrong = config(&sm.url, &dir);
    wrong.account.as_mut().unwrap().api_secret =
        salla_salesmanago_receiver::config::Secret::from("a typo");
    let r = salla_salesmanago_receiver::start(wrong).await.unwrap();
    let url = format!("http://{}", r.addr);
    let events: Vec<_> = (0..3)
        .map(|i| event(&format!("w{i}"), "OTHER", None, "1"))
        .collect();
    let contact = json!({ "contactId": "c-1" });
    assert_eq!(post(&url, &batch(events, contact.clone())).await.0, 200);
    let health = health_becomes(&url, 503).await;
    assert!(
        health.starts_with("delivery paused: SALESmanago refused the account (addContactExtEvent: authentication failed (clientId, apiKey, sha)); check SM_API_SECRET"),
        "{health}"
    );
    // Still taking batches while paused: they are kept too.
    let late = batch(vec![event("w3", "OTHER", None, "1")], contact);
    assert_eq!(post(&url, &late).await.0, 200);
    // Probes go on (every 300 ms here) and are refused; nothing is dropped meanwhile.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (_, metrics) = get_text(format!("{url}/metrics")).await;
    for line in [
        "sm_receiver_delivery_paused 1",
        "sm_receiver_events_failed_total 0",
        "sm_receiver_events_forwarded_total 0",
        "sm_receiver_queue_depth 4",
    ] {
        assert!(metrics.contains(line), "{metrics}\n∌ {line}");
    }
    let refusals = sm.refused().len();
    assert!(
        (2..=12).contains(&refusals),
        "one first call and a few probes, not a storm: {refusals}"
    );
    assert!(sm.taken().is_empty());
    assert_eq!(r.shared.store.counts().await.unwrap().failed, 0);
    r.stop().await;

    // The fix: the right secret, on the same database.
    let r = salla_salesmanago_receiver::start(config(&sm.url, &dir))
        .await
        .unwrap();
    let url = format!("http://{}", r.addr);
    let calls = sm.wait_for_taken(4, secs(10)).await;
    assert_eq!(descriptions(&calls), ["w0", "w1", "w2", "w3"]);
    assert_eq!(health_becomes(&url, 200).await, "ok\n");
    r.stop().await;
}

#[tokio::test]
async fn an_event_refused_on_its_own_merits_is_dropped_and_counted_and_nothing_pauses() {
    // A cart added to one account's SALESmanago, then the receiver pointed at another that never
    // saw that cart's eventId: the update is refused for itself, not for the account.
    let first = Fake::start().await;
    let dir = data_dir("refused-event");
    let r = salla_salesmanago_receiver::start(config(&first.url, &dir))
        .await
        .unwrap();
    let url = format!("http://{}", r.addr);
    let contact = json!({ "contactId": "c-3" });
    let cart = batch(
        vec![event("cart-1", "CART", Some("7"), "1")],
        contact.clone(),
    );
    post(&url, &cart).await;
    first.wait_for_taken(1, secs(10)).await;
    r.stop().await;

    let sm = Fake::start().await;
    let r = salla_salesmanago_receiver::start(config(&sm.url, &dir))
        .await
        .unwrap();
    let url = format!("http://{}", r.addr);
    let update = batch(
        vec![event("cart-2", "CART", Some("7"), "1,2")],
        contact.clone(),
    );
    post(&url, &update).await;
    let visit = batch(vec![event("visit", "VISIT", None, "1")], contact);
    post(&url, &visit).await;
    let taken = sm.wait_for_taken(1, secs(10)).await;
    assert_eq!(descriptions(&taken), ["visit"]);
    assert_eq!(
        sm.refused(),
        ["updateContactExtEvent needs a known contactEvent.eventId"]
    );
    assert_eq!(r.shared.store.counts().await.unwrap().failed, 1);
    assert_eq!(health_becomes(&url, 200).await, "ok\n");
    let (_, metrics) = get_text(format!("{url}/metrics")).await;
    for line in [
        "sm_receiver_events_failed_total 1",
        "sm_receiver_delivery_paused 0",
        "sm_receiver_account_refusals_total 0",
    ] {
        assert!(metrics.contains(line), "{metrics}\n∌ {line}");
    }
    r.stop().await;
}

#[tokio::test]
async fn a_secret_rotated_in_salesmanago_pauses_then_resumes_by_itself() {
    let (sm, r, url) = running("rotated").await;
    sm.set_credentials_ok(false);
    let events: Vec<_> = (0..3)
        .map(|i| event(&format!("r{i}"), "OTHER", None, "1"))
        .collect();
    assert_eq!(
        post(&url, &batch(events, json!({ "contactId": "c-2" })))
            .await
            .0,
        200
    );
    health_becomes(&url, 503).await;
    let (_, metrics) = get_text(format!("{url}/metrics")).await;
    assert!(
        metrics.contains("sm_receiver_delivery_paused 1"),
        "{metrics}"
    );
    // Set right again in SALESmanago (or the receiver's settings): the next probe goes through.
    sm.set_credentials_ok(true);
    let calls = sm.wait_for_taken(3, secs(10)).await;
    assert_eq!(descriptions(&calls), ["r0", "r1", "r2"]);
    health_becomes(&url, 200).await;
    // SALESmanago took the calls; the receiver records the last a moment later.
    let metrics = metrics_once_recorded(&url).await;
    for line in [
        "sm_receiver_delivery_paused 0",
        "sm_receiver_events_failed_total 0",
        "sm_receiver_events_forwarded_total 3",
        "sm_receiver_queue_depth 0",
    ] {
        assert!(metrics.contains(line), "{metrics}\n∌ {line}");
    }
    r.stop().await;
}

#[tokio::test]
async fn events_without_a_contact_wait_for_the_same_browser_to_name_one() {
    let (sm, r, url) = running("waiting").await;
    post(
        &url,
        &batch(vec![event("anon", "VISIT", None, "1")], json!({})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(sm.calls().is_empty(), "nothing goes out without a contact");
    post(
        &url,
        &batch(
            vec![event("named", "LOGIN", None, "1")],
            json!({ "contactId": "c-9" }),
        ),
    )
    .await;
    let calls = sm.wait_for_taken(2, secs(10)).await;
    assert_eq!(descriptions(&calls), ["anon", "named"]);
    assert!(calls.iter().all(|c| c.contact_id() == Some("c-9")));
    r.stop().await;
}

#[tokio::test]
async fn an_email_that_is_not_an_address_is_dropped_before_it_is_stored() {
    let (sm, r, url) = running("bad-email").await;
    let (status, body) = post(
        &url,
        &batch(
            vec![event("with-id", "VISIT", None, "1")],
            json!({ "contactId": "c-1", "email": "shopper@localhost" }),
        ),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({ "accepted": 1, "duplicates": 0, "emailDropped": true })
        )
    );
    let taken = sm.wait_for_taken(1, secs(10)).await;
    assert_eq!(taken[0].contact_id(), Some("c-1"));
    assert_eq!(
        taken[0].email(),
        None,
        "the bad email never reaches SALESmanago"
    );
    // Named by nothing else, the events wait for a contact like any anonymous ones.
    let (status, _) = post(
        &url,
        &batch(
            vec![event("email-only", "VISIT", None, "1")],
            json!({ "email": "Shopper <shopper@store.example>" }),
        ),
    )
    .await;
    assert_eq!(status, 200);
    let stored = r.shared.store.counts().await.unwrap();
    assert_eq!(stored.waiting, 1, "the dropped email named no contact");
    let metrics = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sm_receiver_emails_dropped_total 2"),
        "{metrics}"
    );
    assert!(sm.refused().is_empty(), "{:?}", sm.refused());
    r.stop().await;
}

#[tokio::test]
async fn bad_requests_get_a_clear_4xx_and_nothing_is_stored() {
    let (sm, r, url) = running("bad").await;
    let good = batch(
        vec![event("x", "VISIT", None, "1")],
        json!({ "contactId": "c" }),
    );
    let (status, body) = post_raw(&url, good.to_string(), Some("https://evil.example")).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"],
        "origin https://evil.example is not allowed (SM_ALLOWED_ORIGINS)"
    );
    let (status, body) = post_raw(&url, good.to_string(), None).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"],
        "a request without an Origin header is refused: /collect takes batches from the store's pages (SM_ALLOWED_ORIGINS); set SM_ALLOW_NO_ORIGIN=true to take them from elsewhere"
    );
    let huge = batch(
        vec![event(
            &"x".repeat(200),
            "VISIT",
            None,
            &"1,".repeat(150_000),
        )],
        json!({}),
    );
    let (status, body) = post(&url, &huge).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"], "the body is larger than 262144 bytes");
    let (status, body) = post_raw(&url, "{not json".into(), Some(ORIGIN)).await;
    assert_eq!(status, 400);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .starts_with("the body is not JSON"));
    let (status, body) = post(
        &url,
        &batch(vec![event("y", "VISITED", None, "1")], json!({})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "events[0].contactEvent.contactExtEventType \"VISITED\" is not a SALESmanago type"
    );
    let mut other_account = batch(vec![event("z", "VISIT", None, "1")], json!({}));
    other_account["clientId"] = json!("someone-else");
    let (status, body) = post(&url, &other_account).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "clientId \"someone-else\" is not this receiver's SALESmanago account (SM_CLIENT_ID, or a store's app settings); check the tracker's clientId"
    );
    let counts = r.shared.store.counts().await.unwrap();
    assert_eq!(counts, Default::default(), "nothing stored");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(sm.calls().is_empty());
    r.stop().await;
}

#[tokio::test]
async fn without_an_origin_only_when_configured() {
    let sm = Fake::start().await;
    let mut cfg = config(&sm.url, &data_dir("no-origin"));
    cfg.allow_no_origin = true;
    let r = salla_salesmanago_receiver::start(cfg).await.unwrap();
    let url = format!("http://{}", r.addr);
    let b = batch(
        vec![event("server-side", "VISIT", None, "1")],
        json!({ "contactId": "c" }),
    );
    let (status, body) = post_raw(&url, b.to_string(), None).await;
    assert_eq!(
        (status, body),
        (200, json!({ "accepted": 1, "duplicates": 0 }))
    );
    // The setting lets requests without an Origin in, not other origins.
    let (status, _) = post_raw(&url, b.to_string(), Some("https://evil.example")).await;
    assert_eq!(status, 403);
    assert_eq!(
        descriptions(&sm.wait_for_taken(1, secs(10)).await),
        ["server-side"]
    );
    r.stop().await;
}

#[tokio::test]
async fn cors_health_and_metrics() {
    let (sm, r, url) = running("http").await;
    let client = reqwest::Client::new();
    let pre = client
        .request(reqwest::Method::OPTIONS, format!("{url}/collect"))
        .header("Origin", ORIGIN)
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(pre.headers()["access-control-allow-origin"], ORIGIN);
    assert_eq!(
        client
            .get(format!("{url}/health"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok\n"
    );
    post(
        &url,
        &batch(
            vec![
                event("m1", "VISIT", None, "1"),
                event("m1", "VISIT", None, "1"),
            ],
            json!({ "contactId": "c" }),
        ),
    )
    .await;
    sm.wait_for_taken(1, secs(10)).await;
    // SALESmanago took the call; the receiver records it a moment later.
    let metrics = metrics_once_recorded(&url).await;
    for line in [
        "sm_receiver_events_accepted_total 1",
        "sm_receiver_events_duplicate_total 1",
        "sm_receiver_events_forwarded_total 1",
        "sm_receiver_queue_depth 0",
    ] {
        assert!(metrics.contains(line), "{metrics}\n∌ {line}");
    }
    r.stop().await;
}

/// `/metrics` once the queue is empty (every call SALESmanago took is recorded), or after 5 s.
async fn metrics_once_recorded(url: &str) -> String {
    let deadline = std::time::Instant::now() + secs(5);
    loop {
        let (_, text) = get_text(format!("{url}/metrics")).await;
        if text.contains("sm_receiver_queue_depth 0") || std::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const OTHER_ORIGIN: &str = "https://other-store.example";

/// Seconds in a 429's `Retry-After`.
fn retry_after(headers: &reqwest::header::HeaderMap) -> u64 {
    header(headers, "retry-after")
        .parse()
        .unwrap_or_else(|_| panic!("no Retry-After in {headers:?}"))
}

#[tokio::test]
async fn rate_limits_per_shopper_address_and_per_origin_answer_429_with_retry_after() {
    let sm = Fake::start().await;
    let mut cfg = config(&sm.url, &data_dir("rate"));
    cfg.rate_per_ip = 2;
    cfg.rate_per_origin = 4;
    cfg.trust_proxy = true;
    cfg.allowed_origins.push(OTHER_ORIGIN.into());
    let r = salla_salesmanago_receiver::start(cfg).await.unwrap();
    let url = format!("http://{}", r.addr);
    let mut n = 0;
    let mut send = |origin: &'static str, ip: &'static str| {
        n += 1;
        let b = batch(
            vec![event(&format!("r{n}"), "VISIT", None, "1")],
            json!({ "contactId": "c" }),
        );
        let url = url.clone();
        async move { post_with(&url, &b, Some(origin), &[("X-Forwarded-For", ip)]).await }
    };
    for _ in 0..2 {
        assert_eq!(send(ORIGIN, "203.0.113.1").await.0, 200);
    }
    let (status, headers, body) = send(ORIGIN, "203.0.113.1").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        body["error"],
        "rate limit: at most 2 requests a minute per client address"
    );
    // 2 a minute: one more every 30 s.
    assert!((1..=30).contains(&retry_after(&headers)), "{headers:?}");
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        ORIGIN,
        "the tracker can read the refusal"
    );
    assert_eq!(
        header(&headers, "access-control-expose-headers").to_ascii_lowercase(),
        "retry-after",
        "and its Retry-After"
    );
    // Another shopper (behind the trusted proxy) is still taken, until the origin's 4 are used.
    for _ in 0..2 {
        assert_eq!(send(ORIGIN, "203.0.113.2").await.0, 200);
    }
    let (status, headers, body) = send(ORIGIN, "203.0.113.3").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        body["error"],
        "rate limit: at most 4 requests a minute per origin"
    );
    assert!((1..=15).contains(&retry_after(&headers)), "{headers:?}");
    // Another origin is another limit.
    assert_eq!(send(OTHER_ORIGIN, "203.0.113.3").await.0, 200);
    let m = metrics(&url).await;
    assert_eq!(metric(&m, "sm_receiver_requests_rate_limited_total"), 2);
    assert_eq!(metric(&m, "sm_receiver_requests_refused_total"), 2);
    // One snapshot of the store: an event on its way is still queued, a delivered one sent.
    let counts = r.shared.store.counts().await.unwrap();
    assert_eq!(
        counts.queued + counts.sent,
        5,
        "the refused ones are not stored"
    );
    r.stop().await;
}

#[tokio::test]
async fn preflights_and_answers_carry_cors_headers_for_allowed_origins_only() {
    let (_sm, r, url) = running("preflight").await;
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{url}/collect"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .send()
    };
    let pre = preflight(ORIGIN).await.unwrap();
    assert_eq!(pre.status(), 204);
    let h = pre.headers();
    assert_eq!(header(h, "access-control-allow-origin"), ORIGIN);
    assert!(header(h, "access-control-allow-methods").contains("POST"));
    assert_eq!(
        header(h, "access-control-allow-headers").to_ascii_lowercase(),
        "content-type"
    );
    assert_eq!(header(h, "access-control-max-age"), "600");
    assert!(header(h, "vary").to_ascii_lowercase().contains("origin"));
    // The relay in front of the receiver (www/collector.mjs) copies these from a preflight onto
    // its own answers (a 429 with Retry-After the tracker must read).
    assert_eq!(
        header(h, "access-control-expose-headers").to_ascii_lowercase(),
        "retry-after"
    );
    // Another origin: refused, and no CORS header to let a page read anything.
    let pre = preflight("https://evil.example").await.unwrap();
    assert_eq!(pre.status(), 403);
    assert_eq!(header(pre.headers(), "access-control-allow-origin"), "");
    assert_eq!(
        pre.json::<serde_json::Value>().await.unwrap()["error"],
        "origin https://evil.example is not allowed (SM_ALLOWED_ORIGINS)"
    );
    // A POST's answers carry them too, refusals included.
    let good = batch(
        vec![event("p1", "VISIT", None, "1")],
        json!({ "contactId": "c" }),
    );
    let (status, h, _) = post_with(&url, &good, Some(ORIGIN), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "access-control-allow-origin"), ORIGIN);
    assert_eq!(
        header(&h, "access-control-expose-headers").to_ascii_lowercase(),
        "retry-after"
    );
    assert!(header(&h, "vary").to_ascii_lowercase().contains("origin"));
    let bad = batch(vec![event("p2", "VISITED", None, "1")], json!({}));
    let (status, h, _) = post_with(&url, &bad, Some(ORIGIN), &[]).await;
    assert_eq!(status, 400);
    assert_eq!(header(&h, "access-control-allow-origin"), ORIGIN);
    // Only /collect is for browsers.
    for path in ["/health", "/metrics"] {
        let answer = client
            .get(format!("{url}{path}"))
            .header("Origin", ORIGIN)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(header(answer.headers(), "access-control-allow-origin"), "");
    }
    r.stop().await;
}

/// A POST of `size` bytes to `/collect` from [`ORIGIN`] in chunks (no Content-Length), over a
/// bare connection: the status and the JSON body of the answer. Without its last chunk unless
/// `end`: over the limit, the receiver answers without reading the rest.
async fn post_chunked(
    addr: std::net::SocketAddr,
    size: usize,
    end: bool,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /collect HTTP/1.1\r\nHost: {addr}\r\nOrigin: {ORIGIN}\r\nContent-Type: text/plain;charset=UTF-8\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let chunk = [b' '; 8192];
    for _ in 0..size.div_ceil(chunk.len()) {
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if tcp.write_all(&frame).await.is_err() {
            break;
        }
    }
    if end {
        tcp.write_all(b"0\r\n\r\n").await.unwrap();
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(secs(10), async {
        let mut buf = [0; 4096];
        // Until the whole answer is in (it is short, with a Content-Length).
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head.lines().find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                });
                if length.is_some_and(|n| body.len() >= n) {
                    break;
                }
            }
        }
    });
    read.await.expect("an answer");
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or_default())
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_with_the_json_error_also_when_chunked() {
    let (sm, r, url) = running("too-large").await;
    let huge = batch(
        vec![event("big", "VISIT", None, &"1,".repeat(150_000))],
        json!({ "contactId": "c" }),
    );
    // Refused by its Content-Length, before it is read.
    let (status, h, body) = post_with(&url, &huge, Some(ORIGIN), &[]).await;
    assert_eq!(
        (status, body),
        (
            413,
            json!({ "error": "the body is larger than 262144 bytes" })
        )
    );
    assert_eq!(header(&h, "content-type"), "application/json");
    assert_eq!(
        header(&h, "access-control-allow-origin"),
        ORIGIN,
        "the tracker can read it"
    );
    // Without a Content-Length, once it grows past the limit.
    assert_eq!(
        post_chunked(r.addr, 300 * 1024, false).await,
        (
            413,
            json!({ "error": "the body is larger than 262144 bytes" })
        )
    );
    // A chunked body within the limit is read as usual (spaces: not JSON).
    let (status, body) = post_chunked(r.addr, 16 * 1024, true).await;
    assert_eq!(status, 400, "{body}");
    let m = metrics(&url).await;
    assert_eq!(metric(&m, "sm_receiver_requests_refused_total"), 3);
    assert_eq!(r.shared.store.counts().await.unwrap(), Default::default());
    assert!(sm.calls().is_empty());
    r.stop().await;
}
