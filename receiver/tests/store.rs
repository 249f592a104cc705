//! The store on its own, on the database the suite runs against (SQLite, or PostgreSQL with
//! `SM_TEST_BACKEND=postgres`): its schema from an empty database and from the previous version's,
//! claims (taken once, in each contact's and cart's order, fairly between tenants, again after
//! their lease), and the retention of finished events.

mod support;

use salla_salesmanago::received::ReceivedBatch;
use salla_salesmanago_receiver::store::{Arriving, ClaimRequest, Outbound, Store};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use support::*;

/// Far in the future of every `received_at` below (the tests pass their own clock).
const NOW: u64 = 1_800_000_000_000;
const LEASE: Duration = Duration::from_secs(60);

async fn open(name: &str) -> (Store, std::path::PathBuf) {
    let dir = data_dir(name);
    let store = Store::open(database_url(&dir).as_deref(), &dir)
        .await
        .unwrap();
    (store, dir)
}

/// One batch of `events` (`(id, type, cart)`) from the contact `contact`, for `tenant`.
async fn accept(store: &Store, tenant: &str, contact: &str, events: &[(&str, &str, Option<&str>)]) {
    let events = events
        .iter()
        .map(|(id, kind, cart)| event(id, kind, *cart, "1"))
        .collect();
    // Each contact its own browser (one browser's newer CART supersedes its older one).
    let browser = format!("browser-{contact}");
    let body = batch_from(Some(&browser), events, json!({ "contactId": contact }));
    let batch = ReceivedBatch::parse(&serde_json::to_vec(&body).unwrap()).unwrap();
    store
        .accept(
            &[Arriving {
                batch: &batch,
                tenant,
            }],
            NOW,
            100,
        )
        .await
        .unwrap();
}

fn request(limit: usize) -> ClaimRequest<'static> {
    ClaimRequest {
        limit,
        per_tenant: limit,
        only: None,
        except: &[],
        held: &[],
        lease: LEASE,
    }
}

fn ids(events: &[Outbound]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

#[tokio::test]
async fn an_empty_database_gets_the_whole_schema_and_works() {
    let (store, _) = open("store-empty").await;
    accept(&store, "", "c-1", &[("e1", "VISIT", None)]).await;
    assert_eq!(store.counts().await.unwrap().queued, 1);
    let claimed = store.claim(NOW, &request(10)).await.unwrap();
    assert_eq!(ids(&claimed), ["e1"]);
    store.delivered(&claimed[0], None, NOW).await.unwrap();
    assert_eq!(store.counts().await.unwrap().sent, 1);
    // Opening again finds every migration applied.
    store.close().await;
    let dir = data_dir_again("store-empty");
    let store = Store::open(database_url(&dir).as_deref(), &dir)
        .await
        .unwrap();
    assert_eq!(store.counts().await.unwrap().sent, 1);
}

/// The data directory of `name` as [`data_dir`] made it, without emptying it.
fn data_dir_again(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("sm-receiver-test-{name}-{}", std::process::id()))
}

#[tokio::test]
async fn a_database_of_the_previous_version_is_migrated_with_its_queue_in_order() {
    if postgres().is_some() {
        eprintln!("the previous version had SQLite only: the SQLite run covers it");
        return;
    }
    let dir = data_dir("store-previous");
    std::fs::create_dir_all(&dir).unwrap();
    {
        // The previous version's schema, as its SqliteStore::open left it (CREATE TABLE IF NOT
        // EXISTS, the tenant column added last), with its rows: a queue in rowid order, a cart's
        // eventId, a contact card, a tenant whose secrets it kept in clear text.
        let db = rusqlite::Connection::open(dir.join("receiver.sqlite3")).unwrap();
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE events (id TEXT PRIMARY KEY, received_at INTEGER NOT NULL,
                 anonymous_id TEXT, source TEXT NOT NULL, event_type TEXT NOT NULL, external_id TEXT,
                 contact_event TEXT NOT NULL, contact_id TEXT, email TEXT, state TEXT NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL DEFAULT 0,
                 sm_event_id TEXT, error TEXT, tenant TEXT NOT NULL DEFAULT '');
             CREATE INDEX events_state ON events (state);
             CREATE INDEX events_anonymous ON events (anonymous_id, state);
             CREATE INDEX events_cart_of ON events (external_id, anonymous_id, state)
                 WHERE event_type = 'CART';
             CREATE INDEX events_received ON events (received_at);
             CREATE INDEX events_tenant ON events (tenant, state);
             CREATE TABLE carts (tenant TEXT NOT NULL, external_id TEXT NOT NULL, contact TEXT,
                 sm_event_id TEXT NOT NULL, updated_at INTEGER NOT NULL,
                 PRIMARY KEY (tenant, external_id));
             CREATE TABLE contacts (client_id TEXT NOT NULL, email TEXT NOT NULL, name TEXT,
                 phone TEXT, contact_id TEXT, pending INTEGER NOT NULL, noted_at INTEGER NOT NULL,
                 upserted_at INTEGER, PRIMARY KEY (client_id, email));
             CREATE TABLE orders (tenant TEXT NOT NULL, order_key TEXT NOT NULL,
                 event_id TEXT NOT NULL, PRIMARY KEY (tenant, order_key));
             CREATE TABLE tenants (store_id TEXT NOT NULL, client_id TEXT NOT NULL, endpoint TEXT,
                 api_key TEXT, api_secret TEXT, owner TEXT, location TEXT, problem TEXT,
                 status TEXT NOT NULL, updated_at INTEGER NOT NULL,
                 PRIMARY KEY (store_id, client_id));
             INSERT INTO events (id, received_at, source, event_type, external_id, contact_event,
                 contact_id, state) VALUES
                 ('z-first', 1, 't', 'CART', '9', '{}', 'c-1', 'queued'),
                 ('a-second', 2, 't', 'CART', '9', '{}', 'c-1', 'queued'),
                 ('m-other', 3, 't', 'VISIT', NULL, '{}', 'c-2', 'queued'),
                 ('old-sent', 4, 't', 'VISIT', NULL, '{}', 'c-2', 'sent');
             INSERT INTO carts VALUES ('', '9', 'c-1', 'sm-7', 1);
             INSERT INTO contacts VALUES ('client', 'a@b.example', 'A', NULL, 'cid-1', 0, 1, 1);
             INSERT INTO tenants VALUES ('1', 'client-a', 'https://x.example', 'k', 's', 'o@x.example',
                 NULL, NULL, 'active', 1);",
        )
        .unwrap();
    }
    let store = Store::open(None, &dir).await.unwrap();
    let c = store.counts().await.unwrap();
    assert_eq!((c.queued, c.sent), (3, 1));
    // Arrival (rowid) order survives the rebuild: the cart's first CART, then the other contact;
    // the cart's second waits for its first.
    let claimed = store.claim(NOW, &request(10)).await.unwrap();
    assert_eq!(ids(&claimed), ["z-first", "m-other"]);
    assert_eq!(
        store.cart_event("", "9").await.unwrap().as_deref(),
        Some("sm-7")
    );
    let card = store
        .contact("client", "a@b.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(card.state.contact_id.as_deref(), Some("cid-1"));
    let tenants = store.tenants().await.unwrap();
    assert_eq!(
        (tenants.len(), tenants[0].client_id.as_str()),
        (1, "client-a")
    );
    store
        .delivered(&claimed[0], Some("sm-7"), NOW)
        .await
        .unwrap();
    assert_eq!(
        ids(&store.claim(NOW, &request(10)).await.unwrap()),
        ["a-second"]
    );
}

#[tokio::test]
async fn a_contacts_events_and_a_carts_go_one_at_a_time_in_order() {
    let (store, _) = open("store-order").await;
    accept(
        &store,
        "",
        "c-1",
        &[("v1", "VISIT", None), ("cart-a1", "CART", Some("a"))],
    )
    .await;
    // Another contact on the same cart (a shopper who named herself differently later).
    accept(
        &store,
        "",
        "c-2",
        &[("cart-a2", "CART", Some("a")), ("v2", "VISIT", None)],
    )
    .await;
    accept(&store, "", "c-1", &[("v3", "VISIT", None)]).await;
    let mut order = Vec::new();
    loop {
        let claimed = store.claim(NOW, &request(10)).await.unwrap();
        if claimed.is_empty() {
            break;
        }
        // Never two of one contact, nor two CARTs of one cart, in one claim.
        let contacts: BTreeSet<_> = claimed.iter().map(|e| e.contact_key().unwrap()).collect();
        assert_eq!(contacts.len(), claimed.len(), "{:?}", ids(&claimed));
        let carts = claimed.iter().filter(|e| e.event_type == "CART").count();
        assert!(carts <= 1, "{:?}", ids(&claimed));
        for e in &claimed {
            order.push(e.id.clone());
            store.delivered(e, Some("sm-a"), NOW).await.unwrap();
        }
    }
    let at = |id: &str| order.iter().position(|o| o == id).unwrap();
    assert!(
        at("v1") < at("cart-a1") && at("cart-a1") < at("v3"),
        "{order:?}"
    );
    assert!(
        at("cart-a1") < at("cart-a2"),
        "the cart's add before its update: {order:?}"
    );
    assert!(at("cart-a2") < at("v2"), "{order:?}");
    assert_eq!(order.len(), 5);
}

#[tokio::test]
async fn two_instances_claiming_at_once_never_take_the_same_event() {
    if postgres().is_none() {
        eprintln!(
            "one process per SQLite file (its one connection serializes claims): PostgreSQL's"
        );
        return;
    }
    let (store, dir) = open("store-two").await;
    // A second instance: its own connections to the same database.
    let other = Store::open(database_url(&dir).as_deref(), &dir)
        .await
        .unwrap();
    for i in 0..100 {
        let (id, contact) = (format!("e{i}"), format!("c-{i}"));
        accept(&store, "", &contact, &[(&id, "VISIT", None)]).await;
    }
    let mut taken: Vec<String> = Vec::new();
    loop {
        let req = request(25);
        let (a, b) = tokio::join!(store.claim(NOW, &req), other.claim(NOW, &req));
        let (a, b) = (a.unwrap(), b.unwrap());
        if a.is_empty() && b.is_empty() {
            break;
        }
        for e in a.iter().chain(&b) {
            taken.push(e.id.clone());
            store.delivered(e, None, NOW).await.unwrap();
        }
    }
    let unique: BTreeSet<_> = taken.iter().collect();
    assert_eq!((taken.len(), unique.len()), (100, 100), "each event once");
}

#[tokio::test]
async fn a_claim_is_taken_again_only_when_its_lease_passed_or_it_was_released() {
    let (store, _) = open("store-lease").await;
    accept(&store, "", "c-1", &[("e1", "VISIT", None)]).await;
    let claimed = store.claim(NOW, &request(10)).await.unwrap();
    assert_eq!(ids(&claimed), ["e1"]);
    assert!(store
        .claim(NOW + 59_000, &request(10))
        .await
        .unwrap()
        .is_empty());
    // Its instance died: past the lease, another takes it.
    assert_eq!(
        ids(&store.claim(NOW + 61_000, &request(10)).await.unwrap()),
        ["e1"]
    );
    store.release(&["e1".to_owned()]).await.unwrap();
    assert_eq!(
        ids(&store.claim(NOW + 62_000, &request(10)).await.unwrap()),
        ["e1"]
    );
    // A retry puts it back at once, for any instance, when it is due.
    store.retry("e1", NOW + 70_000, "503").await.unwrap();
    assert!(store
        .claim(NOW + 63_000, &request(10))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(&store.claim(NOW + 70_000, &request(10)).await.unwrap()),
        ["e1"]
    );
}

#[tokio::test]
async fn a_round_is_shared_fairly_between_tenants() {
    let (store, _) = open("store-fair").await;
    // Store A has a backlog of 100 shoppers' events, arrived first; store B a few.
    for i in 0..100 {
        accept(
            &store,
            "1:a",
            &format!("a-{i}"),
            &[(&format!("a{i}"), "VISIT", None)],
        )
        .await;
    }
    for i in 0..3 {
        accept(
            &store,
            "2:b",
            &format!("b-{i}"),
            &[(&format!("b{i}"), "VISIT", None)],
        )
        .await;
    }
    let req = ClaimRequest {
        per_tenant: 5,
        ..request(10)
    };
    let claimed = store.claim(NOW, &req).await.unwrap();
    let of = |t: &str| claimed.iter().filter(|e| e.tenant == t).count();
    assert_eq!((of("1:a"), of("2:b")), (5, 3), "{:?}", ids(&claimed));
    // A claimer that holds 3 of store A's already takes 2 more, not 5.
    let held = [("1:a".to_owned(), 3)];
    let req = ClaimRequest {
        per_tenant: 5,
        held: &held,
        ..request(10)
    };
    let claimed = store.claim(NOW, &req).await.unwrap();
    assert_eq!(ids(&claimed), ["a5", "a6"]);
    // A paused tenant's events are left for later; the others go.
    let except = ["1:a".to_owned()];
    let req = ClaimRequest {
        except: &except,
        ..request(10)
    };
    assert!(store
        .claim(NOW + LEASE.as_millis() as u64 + 1, &req)
        .await
        .unwrap()
        .iter()
        .all(|e| e.tenant == "2:b"));
}

#[tokio::test]
async fn finished_events_are_forgotten_after_their_retention_and_waiting_ones_expire() {
    let (store, _) = open("store-retention").await;
    accept(
        &store,
        "",
        "c-1",
        &[("sent-old", "VISIT", None), ("queued", "VISIT", None)],
    )
    .await;
    let claimed = store.claim(NOW, &request(1)).await.unwrap();
    store.delivered(&claimed[0], None, NOW).await.unwrap();
    // A browser's events waiting for a contact that never comes.
    let body = batch(vec![event("waits", "VISIT", None, "1")], json!({}));
    let waiting = ReceivedBatch::parse(&serde_json::to_vec(&body).unwrap()).unwrap();
    store
        .accept(
            &[Arriving {
                batch: &waiting,
                tenant: "",
            }],
            NOW,
            100,
        )
        .await
        .unwrap();
    assert_eq!(store.expire_waiting(NOW).await.unwrap(), 0, "not yet");
    assert_eq!(store.expire_waiting(NOW + 1).await.unwrap(), 1);
    // Retention: finished events received before the cut-off go; queued ones never do.
    assert_eq!(store.prune(NOW).await.unwrap(), 0, "received at NOW: kept");
    assert_eq!(
        store.prune(NOW + 1).await.unwrap(),
        2,
        "the sent and the expired"
    );
    let c = store.counts().await.unwrap();
    assert_eq!((c.queued, c.sent, c.expired), (1, 0, 0));
    // Its id no longer deduplicates (the retention is longer than any tracker retries).
    accept(&store, "", "c-1", &[("sent-old", "VISIT", None)]).await;
    assert_eq!(store.counts().await.unwrap().queued, 2);
}

#[tokio::test]
async fn two_carts_of_one_cart_in_one_batch_leave_the_later() {
    let (store, _) = open("store-two-carts").await;
    accept(
        &store,
        "",
        "c-1",
        &[
            ("cart-old", "CART", Some("a")),
            ("cart-new", "CART", Some("a")),
        ],
    )
    .await;
    let c = store.counts().await.unwrap();
    assert_eq!((c.queued, c.superseded), (1, 1));
    assert_eq!(
        ids(&store.claim(NOW, &request(10)).await.unwrap()),
        ["cart-new"]
    );
}
