//! Contacts over real HTTP, against the fake SALESmanago API: waiting events tied to the
//! browser's anonymous id, the contact upserted once before its events, the `contactId` answered,
//! an account refusal pausing upserts like events, phone-only shoppers counted, and a data dir
//! from before anonymous ids.

mod support;

use fake_salesmanago::contact_id_of;
use serde_json::json;
use std::time::{Duration, Instant};
use support::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn descriptions(calls: &[Call]) -> Vec<&str> {
    calls.iter().filter_map(Call::description).collect()
}

const NOURA: &str = "noura@example.sa";

#[tokio::test]
async fn anonymous_events_go_out_as_the_contact_upserted_once_when_the_browser_names_an_email() {
    let (sm, r, url) = running("contacts-upsert").await;
    let anonymous = batch_from(
        Some("aid-1"),
        vec![
            event("viewed", "VISIT", None, "1"),
            event("carted", "CART", Some("9"), "1"),
        ],
        json!({}),
    );
    assert_eq!(
        post(&url, &anonymous).await,
        (200, json!({ "accepted": 2, "duplicates": 0 })),
        "no contactId: the batch names nobody"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(sm.calls().is_empty(), "nothing goes out without a contact");
    assert_eq!(r.shared.store.counts().await.unwrap().waiting, 2);

    let signed_in = batch_from(
        Some("aid-1"),
        vec![event("signed-in", "LOGIN", None, "1")],
        json!({ "email": NOURA, "name": "Noura", "phone": "+966501234567" }),
    );
    let contact_id = contact_id_of(CLIENT_ID, NOURA);
    assert_eq!(
        post(&url, &signed_in).await,
        (
            200,
            json!({ "accepted": 1, "duplicates": 0, "contactId": contact_id })
        ),
        "the upsert answered within the request"
    );
    let taken = sm.wait_for_taken(3, secs(10)).await;
    assert_eq!(descriptions(&taken), ["viewed", "carted", "signed-in"]);
    assert!(
        taken.iter().all(|c| c.email() == Some(NOURA)),
        "as that contact"
    );
    let upserts = sm.upserts();
    assert_eq!(upserts.len(), 1, "one upsert: {upserts:#?}");
    let upsert = &upserts[0];
    assert_eq!(
        upsert.contact(),
        &json!({ "email": NOURA, "name": "Noura", "phone": "+966501234567" })
    );
    for consent in [
        "forceOptIn",
        "forceOptOut",
        "forcePhoneOptIn",
        "forcePhoneOptOut",
    ] {
        assert_eq!(
            upsert.body[consent],
            json!(false),
            "opt-in never changed: {consent}"
        );
    }
    assert!(
        upsert.n < taken[0].n,
        "the contact exists before its first event is sent"
    );

    // The same shopper again: the stored contactId, no second upsert.
    let again = batch_from(
        Some("aid-1"),
        vec![event("viewed-again", "VISIT", None, "2")],
        json!({ "email": NOURA }),
    );
    assert_eq!(post(&url, &again).await.1["contactId"], json!(contact_id));
    sm.wait_for_taken(4, secs(10)).await;
    assert_eq!(sm.upserts().len(), 1, "upserted once, not per batch");
    // A phone it did not have before: the card is upserted again (the contact stays the same).
    let new_phone = batch_from(
        Some("aid-1"),
        vec![event("new-phone", "VISIT", None, "3")],
        json!({ "email": NOURA, "phone": "+966509999999" }),
    );
    assert_eq!(
        post(&url, &new_phone).await.1["contactId"],
        json!(contact_id)
    );
    sm.wait_for_taken(5, secs(10)).await;
    let upserts = sm.upserts();
    assert_eq!(upserts.len(), 2);
    assert_eq!(
        upserts[1].contact(),
        &json!({ "email": NOURA, "name": "Noura", "phone": "+966509999999" }),
        "what the card knew is kept"
    );
    let m = metrics(&url).await;
    assert_eq!(metric(&m, "sm_receiver_contacts_upserted_total"), 2);
    assert_eq!(metric(&m, "sm_receiver_contact_ids_answered_total"), 3);
    assert!(sm.refused().is_empty(), "{:?}", sm.refused());
    r.stop().await;
}

#[tokio::test]
async fn two_browsers_behind_one_address_and_user_agent_never_get_each_others_events() {
    let (sm, r, url) = running("contacts-two-browsers").await;
    // Same IP (127.0.0.1), same User-Agent, same Origin: only the anonymous ids differ.
    for (aid, id) in [("aid-a", "a-viewed"), ("aid-b", "b-viewed")] {
        let b = batch_from(Some(aid), vec![event(id, "VISIT", None, "1")], json!({}));
        assert_eq!(post(&url, &b).await.0, 200);
    }
    let b_signs_in = batch_from(
        Some("aid-b"),
        vec![event("b-signed-in", "LOGIN", None, "1")],
        json!({ "email": "b@example.sa" }),
    );
    assert_eq!(post(&url, &b_signs_in).await.0, 200);
    let taken = sm.wait_for_taken(2, secs(10)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let taken_now = sm.taken();
    assert_eq!(
        descriptions(&taken_now),
        ["b-viewed", "b-signed-in"],
        "{taken:#?}"
    );
    assert!(taken_now.iter().all(|c| c.email() == Some("b@example.sa")));
    assert_eq!(
        r.shared.store.counts().await.unwrap().waiting,
        1,
        "a's event still waits"
    );

    let a_signs_in = batch_from(
        Some("aid-a"),
        vec![event("a-signed-in", "LOGIN", None, "1")],
        json!({ "email": "a@example.sa" }),
    );
    assert_eq!(post(&url, &a_signs_in).await.0, 200);
    let taken = sm.wait_for_taken(4, secs(10)).await;
    let as_a: Vec<&str> = taken
        .iter()
        .filter(|c| c.email() == Some("a@example.sa"))
        .filter_map(Call::description)
        .collect();
    assert_eq!(as_a, ["a-viewed", "a-signed-in"]);
    r.stop().await;
}

#[tokio::test]
async fn an_older_trackers_anonymous_events_are_taken_and_counted_never_attached() {
    let (sm, r, url) = running("contacts-unattached").await;
    let old = batch_from(None, vec![event("old", "VISIT", None, "1")], json!({}));
    assert_eq!(
        post(&url, &old).await,
        (200, json!({ "accepted": 1, "duplicates": 0 }))
    );
    assert_eq!(
        post(&url, &old).await.1,
        json!({ "accepted": 0, "duplicates": 1 }),
        "still deduplicated"
    );
    // Another old-tracker batch that names a contact goes out as ever; it claims nothing.
    let named = batch_from(
        None,
        vec![event("old-named", "VISIT", None, "1")],
        json!({ "contactId": "c-1" }),
    );
    assert_eq!(post(&url, &named).await.0, 200);
    let taken = sm.wait_for_taken(1, secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(descriptions(&sm.taken()), ["old-named"], "{taken:#?}");
    let counts = r.shared.store.counts().await.unwrap();
    assert_eq!((counts.waiting, counts.expired), (0, 1));
    assert_eq!(
        metric(&metrics(&url).await, "sm_receiver_events_unattached_total"),
        1
    );
    r.stop().await;
}

#[tokio::test]
async fn a_shopper_known_by_phone_only_waits_like_an_anonymous_one_and_is_counted() {
    let (sm, r, url) = running("contacts-phone").await;
    let phone_only = batch_from(
        Some("aid-p"),
        vec![event("phone-only", "VISIT", None, "1")],
        json!({ "phone": "+966501234567", "name": "Sara" }),
    );
    assert_eq!(
        post(&url, &phone_only).await,
        (200, json!({ "accepted": 1, "duplicates": 0 }))
    );
    let bad_phone = batch_from(
        Some("aid-p"),
        vec![event("bad-phone", "VISIT", None, "1")],
        json!({ "phone": "0501234567" }),
    );
    assert_eq!(
        post(&url, &bad_phone).await,
        (
            200,
            json!({ "accepted": 1, "duplicates": 0, "phoneDropped": true })
        )
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        sm.calls().is_empty(),
        "no card without an email, no event without a contact"
    );
    assert_eq!(r.shared.store.counts().await.unwrap().waiting, 2);
    let m = metrics(&url).await;
    assert_eq!(metric(&m, "sm_receiver_phone_only_batches_total"), 1);
    assert_eq!(metric(&m, "sm_receiver_phones_dropped_total"), 1);
    assert_eq!(metric(&m, "sm_receiver_events_waiting_for_contact"), 2);
    r.stop().await;
}

#[tokio::test]
async fn a_wrong_secret_pauses_the_upsert_like_events_and_everything_goes_after_the_fix() {
    let sm = Fake::start().await;
    sm.set_credentials_ok(false);
    let (sm_url, dir) = (sm.url.clone(), data_dir("contacts-wrong-secret"));
    let r = salla_salesmanago_receiver::start(config(&sm_url, &dir))
        .await
        .unwrap();
    let url = format!("http://{}", r.addr);
    let waiting = batch(vec![event("before", "VISIT", None, "1")], json!({}));
    assert_eq!(post(&url, &waiting).await.0, 200);
    let named = batch(
        vec![event("named", "LOGIN", None, "1")],
        json!({ "email": NOURA }),
    );
    assert_eq!(
        post(&url, &named).await,
        (200, json!({ "accepted": 1, "duplicates": 0 })),
        "taken, without a contactId"
    );
    let health = health_becomes(&url, 503).await;
    assert!(
        health.contains("contact/upsert: authentication failed (clientId, apiKey, sha)"),
        "{health}"
    );
    let also = batch(
        vec![event("paused", "VISIT", None, "1")],
        json!({ "email": NOURA }),
    );
    assert_eq!(
        post(&url, &also).await.1.get("contactId"),
        None,
        "no upsert tried while paused"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let m = metrics(&url).await;
    assert_eq!(metric(&m, "sm_receiver_delivery_paused"), 1);
    assert_eq!(metric(&m, "sm_receiver_queue_depth"), 3, "nothing lost");
    assert_eq!(metric(&m, "sm_receiver_events_failed_total"), 0);
    assert!(sm.taken().is_empty());
    assert!(sm.upserts().iter().all(|c| c.refused().is_some()));

    sm.set_credentials_ok(true);
    let taken = sm.wait_for_taken(3, secs(10)).await;
    assert_eq!(descriptions(&taken), ["before", "named", "paused"]);
    assert!(taken.iter().all(|c| c.email() == Some(NOURA)));
    let upserts: Vec<_> = sm
        .upserts()
        .into_iter()
        .filter(|c| c.refused().is_none())
        .collect();
    assert_eq!(upserts.len(), 1);
    assert!(upserts[0].n < taken[0].n);
    assert_eq!(health_becomes(&url, 200).await, "ok\n");
    // Known now: answered from the store.
    let later = batch(
        vec![event("later", "VISIT", None, "1")],
        json!({ "email": NOURA }),
    );
    assert_eq!(
        post(&url, &later).await.1["contactId"],
        json!(contact_id_of(CLIENT_ID, NOURA))
    );
    r.stop().await;
}

#[tokio::test]
async fn a_slow_upsert_answers_without_the_contact_id_and_its_events_still_wait_for_it() {
    let (sm, r, url) = running("contacts-slow").await;
    sm.set_answer_delay(Duration::from_millis(3000));
    let named = batch(
        vec![event("slow", "LOGIN", None, "1")],
        json!({ "email": NOURA }),
    );
    let start = Instant::now();
    assert_eq!(
        post(&url, &named).await,
        (200, json!({ "accepted": 1, "duplicates": 0 }))
    );
    let waited = start.elapsed();
    assert!(
        (Duration::from_millis(1900)..Duration::from_millis(2900)).contains(&waited),
        "the answer waits for the upsert at most 2 s: {waited:?}"
    );
    sm.set_answer_delay(Duration::ZERO);
    let taken = sm.wait_for_taken(1, secs(10)).await;
    let upserts = sm.upserts();
    assert_eq!(
        upserts.len(),
        1,
        "the forwarder waited for the upsert in flight: {upserts:#?}"
    );
    assert!(upserts[0].n < taken[0].n);
    assert_eq!(taken[0].email(), Some(NOURA));
    r.stop().await;
}

#[tokio::test]
async fn a_data_dir_from_before_anonymous_ids_opens_and_keeps_its_events() {
    if postgres().is_some() {
        eprintln!("an older SQLite file: the SQLite run covers it");
        return;
    }
    let sm = Fake::start().await;
    let dir = data_dir("contacts-old-schema");
    std::fs::create_dir_all(&dir).unwrap();
    {
        // The previous version's schema, as it created it, with one event of each kind.
        let db = rusqlite::Connection::open(dir.join("receiver.sqlite3")).unwrap();
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE events (
                 id TEXT PRIMARY KEY, received_at INTEGER NOT NULL, browser TEXT NOT NULL,
                 source TEXT NOT NULL, event_type TEXT NOT NULL, external_id TEXT,
                 contact_event TEXT NOT NULL, contact_id TEXT, email TEXT, state TEXT NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL DEFAULT 0,
                 sm_event_id TEXT, error TEXT);
             CREATE INDEX events_state ON events (state);
             CREATE INDEX events_browser ON events (browser, state);
             CREATE INDEX events_cart ON events (external_id, browser, state) WHERE event_type = 'CART';
             CREATE INDEX events_received ON events (received_at);
             CREATE TABLE carts (external_id TEXT PRIMARY KEY, contact TEXT,
                 sm_event_id TEXT NOT NULL, updated_at INTEGER NOT NULL);",
        )
        .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let visit = |d: &str| {
            format!(r#"{{"contactExtEventType":"VISIT","date":1763829999000,"description":"{d}"}}"#)
        };
        for (id, browser, contact_id, email, state) in [
            ("old-queued", "h1", Some("c-1"), None, "queued"),
            ("old-email", "h1", None, Some(NOURA), "queued"),
            ("old-waiting", "h2", None, None, "waiting"),
        ] {
            db.execute(
                "INSERT INTO events (id, received_at, browser, source, event_type, contact_event, contact_id, email, state)
                 VALUES (?1, ?2, ?3, 'test', 'VISIT', ?4, ?5, ?6, ?7)",
                rusqlite::params![id, now, browser, visit(id), contact_id, email, state],
            )
            .unwrap();
        }
    }
    let r = salla_salesmanago_receiver::start(config(&sm.url, &dir))
        .await
        .unwrap();
    let url = format!("http://{}", r.addr);
    // Queued events go out; an email from before contact cards is upserted first.
    let taken = sm.wait_for_taken(2, secs(10)).await;
    assert_eq!(descriptions(&taken), ["old-queued", "old-email"]);
    assert_eq!(sm.upserts().len(), 1);
    assert_eq!(sm.upserts()[0].contact(), &json!({ "email": NOURA }));
    // The waiting one keeps waiting (until it expires): no anonymous id can claim it, not even
    // one spelt like its old browser key.
    let claim = batch_from(
        Some("h2"),
        vec![event("new", "VISIT", None, "1")],
        json!({ "contactId": "c-2" }),
    );
    assert_eq!(
        post(&url, &claim).await,
        (200, json!({ "accepted": 1, "duplicates": 0 }))
    );
    let taken = sm.wait_for_taken(3, secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        descriptions(&sm.taken()),
        ["old-queued", "old-email", "new"],
        "{taken:#?}"
    );
    assert_eq!(r.shared.store.counts().await.unwrap().waiting, 1);
    // Ids from before still deduplicate.
    let again = batch(vec![event("old-waiting", "VISIT", None, "1")], json!({}));
    assert_eq!(
        post(&url, &again).await.1,
        json!({ "accepted": 0, "duplicates": 1 })
    );
    r.stop().await;
    // And it opens again, migrated.
    let r = salla_salesmanago_receiver::start(config(&sm.url, &dir))
        .await
        .unwrap();
    assert_eq!(r.shared.store.counts().await.unwrap().waiting, 1);
    r.stop().await;
}

#[tokio::test]
async fn each_anonymous_id_keeps_at_most_its_own_cap_of_waiting_events() {
    let (sm, r, url) = running("contacts-cap").await;
    // The tests' cap is 100 events per anonymous id; the oldest give way.
    for round in 0..3 {
        let events = (0..60)
            .map(|i| event(&format!("x-{round}-{i}"), "VISIT", None, "1"))
            .collect();
        assert_eq!(
            post(&url, &batch_from(Some("aid-x"), events, json!({})))
                .await
                .0,
            200
        );
    }
    let other = batch_from(
        Some("aid-y"),
        vec![event("y-0", "VISIT", None, "1")],
        json!({}),
    );
    assert_eq!(post(&url, &other).await.0, 200);
    let counts = r.shared.store.counts().await.unwrap();
    assert_eq!(
        (counts.waiting, counts.expired),
        (101, 80),
        "aid-y's one event is not aid-x's to push out"
    );
    let named = batch_from(
        Some("aid-x"),
        vec![event("x-named", "LOGIN", None, "1")],
        json!({ "contactId": "c-x" }),
    );
    assert_eq!(post(&url, &named).await.0, 200);
    let taken = sm.wait_for_taken(101, secs(20)).await;
    assert_eq!(
        taken[0].description(),
        Some("x-1-20"),
        "the newest 100 went, oldest first"
    );
    assert!(taken.iter().all(|c| c.contact_id() == Some("c-x")));
    assert_eq!(r.shared.store.counts().await.unwrap().waiting, 1);
    r.stop().await;
}

#[tokio::test]
async fn a_card_from_elsewhere_is_upserted_once_and_its_batches_get_the_contact_id() {
    use salla_salesmanago_receiver::contacts::note_and_ensure;
    use salla_salesmanago_receiver::salesmanago::ContactCard;
    let (sm, r, url) = running("contacts-elsewhere").await;
    let card = ContactCard {
        email: NOURA.into(),
        name: Some("Noura".into()),
        phone: None,
    };
    let id = contact_id_of(CLIENT_ID, NOURA);
    assert_eq!(
        note_and_ensure(&r.shared, "", card.clone()).await,
        Ok(id.clone())
    );
    assert_eq!(
        note_and_ensure(&r.shared, "", card).await,
        Ok(id.clone()),
        "known: no second upsert"
    );
    assert_eq!(sm.upserts().len(), 1);
    assert_eq!(
        sm.upserts()[0].contact(),
        &json!({ "email": NOURA, "name": "Noura" })
    );
    let b = batch(
        vec![event("v", "VISIT", None, "1")],
        json!({ "email": NOURA }),
    );
    assert_eq!(post(&url, &b).await.1["contactId"], json!(id));
    sm.wait_for_taken(1, secs(10)).await;
    assert_eq!(
        sm.upserts().len(),
        1,
        "a batch without news for the card upserts nothing"
    );
    r.stop().await;
}

#[tokio::test]
async fn a_batch_naming_an_email_goes_by_it_not_by_a_cookie_left_by_someone_before() {
    let (sm, r, url) = running("contacts-email-wins").await;
    // The smclient cookie still names the shopper who used this browser before; Sara signs in.
    let sara = "sara@example.sa";
    let b = batch_from(
        Some("aid-shared"),
        vec![event("sara-login", "LOGIN", None, "1")],
        json!({ "contactId": "c-previous-shopper", "email": sara }),
    );
    assert_eq!(
        post(&url, &b).await.1["contactId"],
        json!(contact_id_of(CLIENT_ID, sara)),
        "the answer names Sara's contact, which replaces the cookie"
    );
    let taken = sm.wait_for_taken(1, secs(10)).await;
    assert_eq!(taken[0].email(), Some(sara));
    assert_eq!(
        taken[0].contact_id(),
        None,
        "not filed under the previous shopper's contact"
    );
    r.stop().await;
}
