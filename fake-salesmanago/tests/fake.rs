//! The fake over real HTTP: what it takes, what it refuses and why, and its test switches; and
//! the `sm-fake` binary's start-up line.

use fake_salesmanago::{Account, Fake};
use serde_json::{json, Value as J};
use std::time::{Duration, Instant};

fn call_body(contact_event: J) -> J {
    let account = Account::default();
    json!({
        "clientId": account.client_id,
        "apiKey": account.api_key,
        "sha": account.sha(),
        "requestTime": 1_763_830_000_000u64,
        "owner": account.owner,
        "contactId": "c-1",
        "contactEvent": contact_event,
    })
}

fn cart(products: &str) -> J {
    json!({ "date": 1_763_829_999_000u64, "contactExtEventType": "CART", "products": products, "externalId": "9" })
}

async fn api(fake_url: &str, method: &str, body: &J) -> (u16, J) {
    let r = reqwest::Client::new()
        .post(format!("{fake_url}/api/v2/contact/{method}"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(J::Null))
}

async fn get_json(url: String) -> J {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

async fn post_empty(url: String) -> u16 {
    let r = reqwest::Client::new().post(url).send().await.unwrap();
    r.status().as_u16()
}

#[tokio::test]
async fn adds_an_event_then_updates_it_by_its_event_id() {
    let sm = Fake::start().await;
    let added = api(&sm.url, "addContactExtEvent", &call_body(cart("1"))).await;
    assert_eq!(added, (200, json!({ "success": true, "eventId": "sm-1" })));
    let mut update = cart("1,2");
    update["eventId"] = json!("sm-1");
    let updated = api(&sm.url, "updateContactExtEvent", &call_body(update.clone())).await;
    assert_eq!(
        updated,
        (200, json!({ "success": true, "eventId": "sm-1" }))
    );
    update["eventId"] = json!("sm-7");
    let (status, unknown) = api(&sm.url, "updateContactExtEvent", &call_body(update)).await;
    assert_eq!(
        status, 200,
        "SALESmanago refuses with 200 and success: false"
    );
    assert_eq!(
        unknown,
        json!({ "success": false, "message": ["updateContactExtEvent needs a known contactEvent.eventId"] })
    );
    let calls = sm.calls();
    let summary: Vec<_> = calls
        .iter()
        .map(|c| (c.n, c.method(), c.sent_event_id(), c.taken_id()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "addContactExtEvent", None, Some("sm-1")),
            (2, "updateContactExtEvent", Some("sm-1"), Some("sm-1")),
            (3, "updateContactExtEvent", Some("sm-7"), None),
        ]
    );
    assert_eq!(sm.taken().len(), 2);
    assert_eq!(calls[1].contact_event()["products"], "1,2");
    assert_eq!(calls[0].contact_id(), Some("c-1"));
}

#[tokio::test]
async fn refuses_what_salesmanago_refuses_and_names_it() {
    let sm = Fake::start().await;
    let ok = call_body(cart("1"));
    let with = |key: &str, value: J| {
        let mut b = ok.clone();
        b[key] = value;
        b
    };
    let mut no_contact = ok.clone();
    no_contact.as_object_mut().unwrap().remove("contactId");
    let mut lower_case = cart("1");
    lower_case["contactExtEventType"] = json!("cart");
    let mut spaced = cart("1");
    spaced["products"] = json!("1 2,3, 4");
    let cases = [
        (
            with("sha", json!("0000")),
            "authentication failed (clientId, apiKey, sha)",
        ),
        (
            with("clientId", json!("someone-else")),
            "authentication failed (clientId, apiKey, sha)",
        ),
        (
            with("requestTime", json!("now")),
            "requestTime must be milliseconds since the epoch",
        ),
        (
            with("owner", json!("nobody@example.com")),
            "owner must be a user of this account",
        ),
        (no_contact, "a contact is required (contactId or email)"),
        (
            with("email", json!("shopper@localhost")),
            "email is not a valid email address",
        ),
        (
            with("contactEvent", lower_case),
            "contactEvent.contactExtEventType \"cart\" must be in capitals: CART",
        ),
        (
            with("contactEvent", spaced),
            "contactEvent.products must be ids separated by single commas",
        ),
        (
            with("contactEvent", {
                let mut e = cart("1");
                e["eventId"] = json!("sm-1");
                e
            }),
            "addContactExtEvent takes no contactEvent.eventId (updateContactExtEvent does)",
        ),
    ];
    for (body, message) in &cases {
        let answer = api(&sm.url, "addContactExtEvent", body).await;
        assert_eq!(
            answer,
            (200, json!({ "success": false, "message": [message] }))
        );
    }
    let (status, _) = api(&sm.url, "batchAddContactExtEvent", &ok).await;
    assert_eq!(status, 404, "a method the fake does not know");
    let refused = sm.refused();
    assert_eq!(refused.len(), cases.len() + 1);
    assert!(sm.taken().is_empty());
}

#[tokio::test]
async fn routes_for_tests_down_calls_since_reset_delay_and_credentials() {
    let sm = Fake::start().await;
    let body = call_body(cart("1"));

    assert_eq!(post_empty(format!("{}/down?on=1", sm.url)).await, 200);
    assert_eq!(api(&sm.url, "addContactExtEvent", &body).await.0, 503);
    assert!(sm.calls().is_empty(), "a call answered 503 is not recorded");
    assert_eq!(post_empty(format!("{}/down?on=0", sm.url)).await, 200);
    assert_eq!(post_empty(format!("{}/down?on=maybe", sm.url)).await, 400);

    api(&sm.url, "addContactExtEvent", &body).await;
    api(&sm.url, "addContactExtEvent", &body).await;
    let all = get_json(format!("{}/calls", sm.url)).await;
    let listed = all.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    let first = &listed[0];
    assert_eq!(first["n"], 1);
    assert_eq!(first["path"], "/api/v2/contact/addContactExtEvent");
    assert_eq!(first["method"], "addContactExtEvent");
    assert_eq!(first["body"], body);
    assert_eq!(first["status"], 200);
    assert_eq!(first["eventId"], "sm-1");
    assert_eq!(
        first["answer"],
        json!({ "success": true, "eventId": "sm-1" })
    );
    assert!(first["at"].as_u64().unwrap() > 1_700_000_000_000);
    let since = get_json(format!("{}/calls?since=1", sm.url)).await;
    assert_eq!(since.as_array().unwrap().len(), 1);
    assert_eq!(since[0]["n"], 2);

    // A reset forgets the record, not the eventIds SALESmanago gave: a cart added before it can
    // still be updated, and numbering goes on.
    assert_eq!(post_empty(format!("{}/reset", sm.url)).await, 200);
    assert_eq!(get_json(format!("{}/calls", sm.url)).await, json!([]));
    let mut update = cart("1,2");
    update["eventId"] = json!("sm-2");
    let answer = api(&sm.url, "updateContactExtEvent", &call_body(update)).await;
    assert_eq!(answer.1["success"], true);
    assert_eq!(sm.calls()[0].n, 3);

    // The call is taken at once; only the answer waits.
    assert_eq!(post_empty(format!("{}/delay?ms=600", sm.url)).await, 200);
    let started = Instant::now();
    let url = sm.url.clone();
    let pending = tokio::spawn(async move { api(&url, "addContactExtEvent", &body).await });
    sm.wait_for_taken(2, Duration::from_secs(5)).await;
    assert!(!pending.is_finished(), "taken before it is answered");
    assert_eq!(pending.await.unwrap().1["eventId"], "sm-3");
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(post_empty(format!("{}/delay?ms=0", sm.url)).await, 200);
    // A rotated secret: the right credentials refused, and the call recorded.
    assert_eq!(
        post_empty(format!("{}/credentials?ok=0", sm.url)).await,
        200
    );
    assert_eq!(
        api(&sm.url, "addContactExtEvent", &call_body(cart("1"))).await,
        (
            200,
            json!({ "success": false, "message": ["authentication failed (clientId, apiKey, sha)"] })
        )
    );
    assert_eq!(
        post_empty(format!("{}/credentials?ok=1", sm.url)).await,
        200
    );
    assert_eq!(
        post_empty(format!("{}/credentials?ok=x", sm.url)).await,
        400
    );
    assert_eq!(sm.refused().len(), 1);
}

async fn upsert(fake_url: &str, body: &J) -> (u16, J) {
    let r = reqwest::Client::new()
        .post(format!("{fake_url}/api/contact/upsert"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(J::Null))
}

fn upsert_body(contact: J) -> J {
    let mut b = call_body(J::Null);
    let o = b.as_object_mut().unwrap();
    o.remove("contactEvent");
    o.remove("contactId");
    o.insert("contact".into(), contact);
    o.insert("forceOptIn".into(), json!(false));
    b
}

#[tokio::test]
async fn upserts_a_contact_by_email_with_a_stable_id_and_only_then_takes_its_events() {
    let sm = Fake::start().await;
    let email = "noura@example.sa";
    let mut by_email = call_body(cart("1"));
    by_email.as_object_mut().unwrap().remove("contactId");
    by_email["email"] = json!(email);
    assert_eq!(
        api(&sm.url, "addContactExtEvent", &by_email).await,
        (
            200,
            json!({ "success": false, "message": ["contact not found: upsert it first (contact/upsert)"] })
        ),
        "an email that is no contact"
    );

    let card = upsert_body(json!({ "email": email, "name": "Noura", "phone": "+966501234567" }));
    let id = fake_salesmanago::contact_id_of(&Account::default().client_id, email);
    assert_eq!(id.len(), 36, "UUID-shaped: {id}");
    let taken = (
        200,
        json!({ "success": true, "message": [], "contactId": id }),
    );
    assert_eq!(upsert(&sm.url, &card).await, taken);
    assert_eq!(
        upsert(&sm.url, &card).await,
        taken,
        "the same contact again"
    );
    assert_ne!(
        fake_salesmanago::contact_id_of(&Account::default().client_id, "other@example.sa"),
        id
    );
    assert_eq!(
        api(&sm.url, "addContactExtEvent", &by_email).await.1["success"],
        true
    );

    let with = |key: &str, value: J| {
        let mut b = card.clone();
        b[key] = value;
        b
    };
    for (body, message) in [
        (
            with("sha", json!("0000")),
            "authentication failed (clientId, apiKey, sha)",
        ),
        (
            with("owner", json!("x@example.com")),
            "owner must be a user of this account",
        ),
        (
            with("contact", json!({ "phone": "+966501234567" })),
            "contact.email is required: a valid email address",
        ),
        (
            with("contact", json!({ "email": "noura@localhost" })),
            "contact.email is required: a valid email address",
        ),
        (
            with("contact", json!({ "email": email, "name": 5 })),
            "contact.name must be text",
        ),
        (
            with("forceOptOut", json!("no")),
            "forceOptOut must be true or false",
        ),
    ] {
        assert_eq!(
            upsert(&sm.url, &body).await,
            (200, json!({ "success": false, "message": [message] })),
            "{body}"
        );
    }
    let listed = get_json(format!("{}/calls", sm.url)).await;
    let first_upsert = &listed[1];
    assert_eq!(
        (
            &first_upsert["method"],
            &first_upsert["path"],
            &first_upsert["contactId"]
        ),
        (&json!("upsert"), &json!("/api/contact/upsert"), &json!(id))
    );
    assert_eq!(sm.upserts().len(), 8);
    assert_eq!(sm.taken().len(), 1, "taken() lists event calls only");

    // Switched off, an email that is no contact is taken as it is.
    sm.set_events_need_contact(false);
    by_email["email"] = json!("stranger@example.sa");
    assert_eq!(
        api(&sm.url, "addContactExtEvent", &by_email).await.1["success"],
        true
    );
}

#[tokio::test]
async fn the_binary_prints_one_line_when_it_listens() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sm-fake"))
        .args(["--listen", "127.0.0.1:0"])
        .env("SM_FAKE_CLIENT_ID", "other-client")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), stdout.read_line(&mut line))
        .await
        .expect("sm-fake says where it listens")
        .unwrap();
    let url = line
        .strip_prefix("sm-fake listening on ")
        .and_then(|l| l.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(get_json(format!("{url}/calls")).await, json!([]));
    // The account comes from the environment: the demo account's sha no longer authenticates.
    let answer = api(url, "addContactExtEvent", &call_body(cart("1"))).await;
    assert_eq!(answer.1["success"], false);
    child.kill().await.unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "", "nothing else on stdout");
}
