//! SALESmanago's API: `addContactExtEvent`, `updateContactExtEvent` for a CART whose cart
//! already has an event, and `contact/upsert` for the contact an email names (its events are
//! sent only once it exists).
//!
//! Authentication is `clientId`, `apiKey`, `requestTime` and `sha` = SHA-1 of apiKey + clientId +
//! apiSecret (hex). The secret itself never leaves the process.

use crate::config::Account;
use serde_json::{json, Value as Json};
use sha1::{Digest, Sha1};
use std::time::Duration;

/// `sha` for an account: SHA-1 of apiKey + clientId + apiSecret, lower-case hex.
pub fn sha(api_key: &str, client_id: &str, api_secret: &str) -> String {
    let digest = Sha1::digest([api_key, client_id, api_secret].concat().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What SALESmanago made of one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Taken; the event's id in SALESmanago.
    Taken(Option<String>),
    /// Refused as invalid: retrying will not help.
    Refused(String),
    /// Refused because of the account, not the event (a wrong key, secret, client id or owner):
    /// every event would be refused alike until the settings are right, so none is dropped.
    Account(String),
    /// Unreachable, 5xx, 429, or a timeout: try again later.
    Later(String),
}

/// What SALESmanago is told about a shopper: the card `contact/upsert` files, by email. SALESmanago
/// files no card without an email (docs/salesmanago.md §3), so a phone-only shopper has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactCard {
    /// The email the contact is filed under (checked: an address).
    pub email: String,
    /// The shopper's name, when known.
    pub name: Option<String>,
    /// The shopper's mobile number, `+` and digits, when known.
    pub phone: Option<String>,
}

/// A client for one account.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    account: Account,
    sha: String,
}

impl Client {
    /// The client id of its account.
    pub fn client_id(&self) -> &str {
        &self.account.client_id
    }

    /// A client with sane timeouts.
    pub fn new(account: Account) -> Client {
        let sha = sha(
            account.api_key.expose(),
            &account.client_id,
            account.api_secret.expose(),
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("a TLS backend is compiled in");
        Client { http, account, sha }
    }

    /// The fields every call carries: the account's credentials and owner.
    fn authenticated(&self, now_ms: u64) -> Json {
        json!({
            "clientId": self.account.client_id,
            "apiKey": self.account.api_key.expose(),
            "requestTime": now_ms,
            "sha": self.sha,
            "owner": self.account.owner,
        })
    }

    /// Adds the event, or updates `event_id` when given (a CART whose cart has an event).
    pub async fn send(
        &self,
        contact_event: &str,
        contact_id: Option<&str>,
        email: Option<&str>,
        event_id: Option<&str>,
        now_ms: u64,
    ) -> Answer {
        let Ok(mut event) = serde_json::from_str::<Json>(contact_event) else {
            return Answer::Refused("stored contactEvent is not JSON".into());
        };
        if let (Some(id), Some(obj)) = (event_id, event.as_object_mut()) {
            obj.insert("eventId".into(), json!(id));
        }
        let mut body = self.authenticated(now_ms);
        body["contactEvent"] = event;
        if let Some(id) = contact_id {
            body["contactId"] = json!(id);
        }
        if let Some(email) = email {
            body["email"] = json!(email);
        }
        let call = if event_id.is_some() {
            "updateContactExtEvent"
        } else {
            "addContactExtEvent"
        };
        match self
            .call(call, &format!("api/v2/contact/{call}"), &body)
            .await
        {
            Ok(answer) => Answer::Taken(answer["eventId"].as_str().map(str::to_owned)),
            Err(refused) => refused,
        }
    }

    /// Creates or updates the contact of `card.email`, never touching its marketing consent
    /// (`forceOptIn`/`forceOptOut` and their phone twins false: SALESmanago keeps what the contact
    /// chose). `Taken` always carries the `contactId`.
    pub async fn upsert_contact(&self, card: &ContactCard, now_ms: u64) -> Answer {
        let mut contact = json!({ "email": card.email });
        if let Some(name) = &card.name {
            contact["name"] = json!(name);
        }
        if let Some(phone) = &card.phone {
            contact["phone"] = json!(phone);
        }
        let mut body = self.authenticated(now_ms);
        body["contact"] = contact;
        for consent in [
            "forceOptIn",
            "forceOptOut",
            "forcePhoneOptIn",
            "forcePhoneOptOut",
        ] {
            body[consent] = json!(false);
        }
        let call = "contact/upsert";
        match self.call(call, "api/contact/upsert", &body).await {
            Ok(answer) => match answer["contactId"].as_str() {
                Some(id) if !id.is_empty() => Answer::Taken(Some(id.to_owned())),
                // Taken, but without the id its events need: ask again later.
                _ => Answer::Later(format!("{call}: the answer has no contactId")),
            },
            Err(refused) => refused,
        }
    }

    /// POSTs `body` to `path` under the endpoint: the answer of a success, else what the failure
    /// means (never `Taken`).
    async fn call(&self, call: &str, path: &str, body: &Json) -> Result<Json, Answer> {
        let url = format!("{}/{path}", self.account.endpoint);
        let response = match self.http.post(&url).json(body).send().await {
            Ok(r) => r,
            Err(e) => return Err(Answer::Later(format!("{call}: {}", e.without_url()))),
        };
        let status = response.status();
        if matches!(status.as_u16(), 401 | 403) {
            return Err(Answer::Account(format!("{call}: HTTP {status}")));
        }
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            return Err(Answer::Later(format!("{call}: HTTP {status}")));
        }
        let answer: Json = match response.json().await {
            Ok(j) => j,
            Err(_) if status.is_success() => {
                return Err(Answer::Later(format!("{call}: unreadable answer")))
            }
            Err(_) => return Err(Answer::Refused(format!("{call}: HTTP {status}"))),
        };
        if status.is_success() && answer["success"] == json!(true) {
            return Ok(answer);
        }
        let message = match &answer["message"] {
            Json::Array(m) => m
                .iter()
                .filter_map(Json::as_str)
                .collect::<Vec<_>>()
                .join("; "),
            Json::String(m) => m.clone(),
            _ => format!("HTTP {status}"),
        };
        if is_account_problem(&message) {
            return Err(Answer::Account(format!("{call}: {message}")));
        }
        Err(Answer::Refused(format!("{call}: {message}")))
    }
}

/// Whether a refusal's message is about the account rather than the event. SALESmanago answers
/// both with `success: false` (docs/salesmanago.md), so the words decide: authentication, the
/// API key, the client id, the owner. Quoted text is left out first: it is a value of the event
/// (`detail1 "owner's pick" …`), which must not make a bad event look like a bad account.
pub fn is_account_problem(message: &str) -> bool {
    let unquoted: String = message
        .split('"')
        .step_by(2)
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    [
        "authenticat",
        "unauthori",
        "not authori",
        "credential",
        "apikey",
        "api key",
        "api secret",
        "clientid",
        "client id",
        "owner",
        "access denied",
    ]
    .iter()
    .any(|w| unquoted.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_problems_are_told_from_bad_events() {
        for account in [
            "authentication failed (clientId, apiKey, sha)",
            "owner must be a user of this account",
            "Not authorized",
            "Invalid API key",
        ] {
            assert!(is_account_problem(account), "{account}");
        }
        for event in [
            "contactEvent.contactExtEventType \"owner\" is not a SALESmanago type",
            "a contact is required (contactId or email)",
            "email is not a valid email address",
            "updateContactExtEvent needs a known contactEvent.eventId",
            "contactEvent.detail1 \"api key holder\" is longer than 255 characters",
        ] {
            assert!(!is_account_problem(event), "{event}");
        }
    }

    #[test]
    fn sha_is_sha1_of_key_client_secret_in_that_order() {
        // SHA-1("abc"), the FIPS 180 test vector.
        assert_eq!(
            sha("a", "b", "c"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_ne!(sha("c", "b", "a"), sha("a", "b", "c"));
    }
}
