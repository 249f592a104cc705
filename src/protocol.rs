//! Protocol v1: the body the tracker POSTs to the receiver (docs/protocol.md §1). The receiver's
//! side, reading and checking a body, is `received` (behind the `receiver` feature).
//!
//! Sent as `text/plain;charset=UTF-8` so that it is a CORS simple request (no preflight) and the
//! same body works for `navigator.sendBeacon`. Each event's `id` is its idempotency key: the same
//! on every retry, so a receiver can take a batch twice and forward each event once.

use crate::number;
use crate::salesmanago::ContactEvent;
use crate::value::Value;

/// The protocol version this crate speaks.
pub const VERSION: u32 = 1;

/// Who the events are about. Either may be absent; a receiver holds events that name neither
/// until a later batch from the same browser does.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Contact {
    /// SALESmanago's contact id, from the `smclient` cookie.
    pub contact_id: Option<String>,
    /// The shopper's email, only where configuration and consent allow it.
    pub email: Option<String>,
    /// The shopper's name, under the same rule as the email.
    pub name: Option<String>,
    /// The shopper's mobile number (`+` and digits), under the same rule as the email.
    pub phone: Option<String>,
}

impl Contact {
    /// The keys of the `contact` object that are known, in the order they are written.
    /// (An array its callers skip the unknown ones of: a `filter_map` iterator was ~150 B of the
    /// wasm.)
    fn fields(&self) -> [(&'static str, Option<&str>); 4] {
        [
            ("contactId", self.contact_id.as_deref()),
            ("email", self.email.as_deref()),
            ("name", self.name.as_deref()),
            ("phone", self.phone.as_deref()),
        ]
    }

    /// The `contact` object: only the keys that are known.
    pub fn to_value(&self) -> Value {
        Value::object(
            self.fields()
                .into_iter()
                .filter_map(|(k, v)| Some((k, Value::from(v?)))),
        )
    }
}

/// Who sends a batch: the account, this browser, and the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head<'a> {
    /// The SALESmanago client id.
    pub client_id: &'a str,
    /// This browser's anonymous id (`docs/mapping.md` §4).
    pub anonymous_id: Option<&'a str>,
    /// The Salla store id of the page.
    pub store_id: Option<&'a str>,
}

/// The longest `storeId` and `anonymousId` (`docs/protocol.md` §1).
pub const HEAD_ID_MAX: usize = 64;

impl Head<'_> {
    /// The optional top-level keys after `clientId`, in the order they are written. One outside
    /// the protocol's rule is left out rather than sent: a receiver would refuse the whole batch
    /// for it (a page's store id of 65 characters must not cost the shopper's events).
    fn fields(&self) -> [(&'static str, Option<&str>); 2] {
        let anonymous_id = self
            .anonymous_id
            .filter(|id| crate::contact::is_token(id, HEAD_ID_MAX));
        let store_id = self
            .store_id
            .filter(|id| !id.is_empty() && id.encode_utf16().count() <= HEAD_ID_MAX);
        [("anonymousId", anonymous_id), ("storeId", store_id)]
    }
}

/// One event of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Stable event id: Salla's `event_id`, or one the tracker assigned.
    pub id: String,
    /// The Salla event it came from (canonical name).
    pub source: String,
    /// The SALESmanago event, with SALESmanago's field names.
    pub event: ContactEvent,
}

impl Envelope {
    /// `{ id, source, contactEvent }` as JSON: the text of `to_value().to_json()`, written
    /// directly.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(512);
        out.push_str("{\"id\":");
        crate::value::write_json_string(&self.id, &mut out);
        out.push_str(",\"source\":");
        crate::value::write_json_string(&self.source, &mut out);
        out.push_str(",\"contactEvent\":");
        self.event.write_json(&mut out);
        out.push('}');
        out
    }

    /// `{ id, source, contactEvent }`.
    pub fn to_value(&self) -> Value {
        Value::object([
            ("id", Value::from(self.id.as_str())),
            ("source", Value::from(self.source.as_str())),
            ("contactEvent", self.event.to_value()),
        ])
    }
}

/// A whole request body, from `client_id` alone (no anonymous id, no store id).
pub fn batch(client_id: &str, sent_at: u64, contact: &Contact, events: &[Envelope]) -> Value {
    let head = Head {
        client_id,
        ..Head::default()
    };
    batch_from(&head, sent_at, contact, events)
}

/// A whole request body.
pub fn batch_from(head: &Head<'_>, sent_at: u64, contact: &Contact, events: &[Envelope]) -> Value {
    let mut fields = vec![
        ("v", Value::Number(f64::from(VERSION))),
        ("clientId", Value::from(head.client_id)),
    ];
    fields.extend(
        head.fields()
            .into_iter()
            .filter_map(|(k, v)| Some((k, Value::from(v?)))),
    );
    fields.extend([
        ("sentAt", Value::Number(sent_at as f64)),
        ("contact", contact.to_value()),
        (
            "events",
            Value::Array(events.iter().map(Envelope::to_value).collect()),
        ),
    ]);
    Value::object(fields)
}

/// A whole request body from events already serialised as JSON (by the browser's
/// `JSON.stringify`, or [`Envelope::to_value`] natively). Only strings and integers are written
/// here, so no float formatting is needed to build a request.
pub fn body(head: &Head<'_>, sent_at: u64, contact: &Contact, events: &[String]) -> String {
    let mut out = start(head, sent_at);
    out.push_str(",\"contact\":{");
    let mut first = true;
    for (k, v) in contact.fields() {
        let Some(v) = v else { continue };
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        write_pair(k, v, &mut out);
    }
    out.push_str("},\"events\":[");
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(event);
    }
    out.push_str("]}");
    out
}

/// A request that only asks which of `ids` (events an earlier page sent without seeing the
/// answer) the receiver holds (`docs/protocol.md` §2.1).
pub fn confirm_body(head: &Head<'_>, sent_at: u64, ids: &[String]) -> String {
    let mut out = start(head, sent_at);
    out.push_str(",\"confirm\":[");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        crate::value::write_json_string(id, &mut out);
    }
    out.push_str("]}");
    out
}

/// `{"v":1,"clientId":…,` the head's ids, `"sentAt":…` (the object left open).
fn start(head: &Head<'_>, sent_at: u64) -> String {
    let mut out = String::from("{\"v\":");
    number::push_uint(u64::from(VERSION), &mut out);
    out.push_str(",\"clientId\":");
    crate::value::write_json_string(head.client_id, &mut out);
    for (k, v) in head.fields() {
        if let Some(v) = v {
            out.push(',');
            write_pair(k, v, &mut out);
        }
    }
    out.push_str(",\"sentAt\":");
    number::push_uint(sent_at, &mut out);
    out
}

/// `"key":"text"`.
fn write_pair(k: &str, v: &str, out: &mut String) {
    crate::value::write_json_string(k, out);
    out.push(':');
    crate::value::write_json_string(v, out);
}

/// Bytes as lower-case hex digits, two per byte.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        crate::value::push_hex(byte, &mut out);
    }
    out
}

/// A 32-bit hash of an event id (FNV-1a of its bytes): compared before the ids themselves where
/// an id is looked for among many (the outbox's queue, the pipeline's ids seen), so that a
/// thousand queued ids cost a thousand integer comparisons, not a thousand string ones.
pub fn id_tag(id: &str) -> u32 {
    // An index loop: `bytes().fold` stays a call per byte at the wasm's size-first optimisation.
    let mut h: u32 = 0x811c_9dc5;
    let bytes = id.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        h = (h ^ u32::from(bytes[at])).wrapping_mul(0x0100_0193);
        at += 1;
    }
    h
}

/// Ids' tags ([`id_tag`]) put in, as a filter of 8,192 bits: [`TagFilter::may_hold`] is never
/// false for a tag put in, and true for another only by a collision (about one in eight with a
/// thousand in). A search among many ids asks it first and walks the ids only on a yes.
#[derive(Debug, Clone)]
pub struct TagFilter {
    bits: [u64; 128],
}

impl Default for TagFilter {
    fn default() -> Self {
        TagFilter { bits: [0; 128] }
    }
}

impl TagFilter {
    /// The tag's word and bit: its top 13 bits once mixed (FNV-1a's low bits vary little
    /// between ids that differ only at the end).
    fn at(tag: u32) -> (usize, u64) {
        let bit = tag.wrapping_mul(0x9e37_79b9) >> 19;
        ((bit / 64) as usize, 1 << (bit % 64))
    }

    /// Puts `tag` in.
    pub fn insert(&mut self, tag: u32) {
        let (word, bit) = Self::at(tag);
        self.bits[word] |= bit;
    }

    /// `false` when `tag` was surely never put in since the last clear.
    pub fn may_hold(&self, tag: u32) -> bool {
        let (word, bit) = Self::at(tag);
        self.bits[word] & bit != 0
    }

    /// Takes every tag out.
    pub fn clear(&mut self) {
        self.bits = [0; 128];
    }
}

/// A fresh event id from 128 random bits (the caller's randomness: the core has none of its
/// own), written as a UUID v4 so it looks like the `event_id`s Salla assigns.
pub fn event_id(random: [u8; 16]) -> String {
    let mut b = random;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    // Written in one pass into one string (an id for every event that comes without one).
    let mut out = String::with_capacity(36);
    for (at, &byte) in b.iter().enumerate() {
        if matches!(at, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        crate::value::push_hex(byte, &mut out);
    }
    out
}

/// Milliseconds as the integer text protocol fields use (no float formatting in the wasm).
pub fn millis_text(ms: u64) -> String {
    let mut s = String::new();
    number::push_uint(ms, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesmanago::ExternalEventType;

    #[test]
    fn a_tag_filter_holds_what_was_put_in_and_little_else() {
        let mut f = TagFilter::default();
        let ids: Vec<String> = (0..1_000).map(|i| format!("6f1c2a3b-{i:012}")).collect();
        assert!(ids.iter().all(|id| !f.may_hold(id_tag(id))), "empty");
        for id in &ids {
            f.insert(id_tag(id));
        }
        assert!(
            ids.iter().all(|id| f.may_hold(id_tag(id))),
            "never a false no"
        );
        // Others: a yes only by collision, about one in eight with a thousand in.
        let others = (1_000..11_000)
            .filter(|i| f.may_hold(id_tag(&format!("6f1c2a3b-{i:012}"))))
            .count();
        assert!(others < 1_500, "{others} of 10,000 other ids said maybe");
        f.clear();
        assert!(ids.iter().all(|id| !f.may_hold(id_tag(id))), "cleared");
    }

    #[test]
    fn body_matches_the_spec_example() {
        let mut e = ContactEvent::new(ExternalEventType::Cart, 1_763_829_999_000);
        e.set_products(&["1001", "1002"]);
        e.set_value(Some(501.0));
        e.set_external_id("9");
        e.set_description("Product Added");
        e.set_location("123");
        e.set_shop_domain("store.example");
        e.set_details(&[Some("Oud Perfume,Musk"), Some("2,1"), Some("250.5,0")]);
        let body = batch(
            "client-1",
            1_763_830_000_000,
            &Contact {
                contact_id: Some("c-1".into()),
                ..Contact::default()
            },
            &[Envelope {
                id: "e-1".into(),
                source: "Product Added".into(),
                event: e,
            }],
        );
        let got: serde_json::Value = serde_json::from_str(&body.to_json()).unwrap();
        assert_eq!(
            got,
            serde_json::json!({
                "v": 1, "clientId": "client-1", "sentAt": 1_763_830_000_000u64,
                "contact": {"contactId": "c-1"},
                "events": [{"id": "e-1", "source": "Product Added", "contactEvent": {
                    "date": 1_763_829_999_000u64, "contactExtEventType": "CART",
                    "products": "1001,1002", "value": 501, "externalId": "9",
                    "description": "Product Added", "location": "123", "shopDomain": "store.example",
                    "detail1": "Oud Perfume,Musk", "detail2": "2,1", "detail3": "250.5,0"
                }}]
            })
        );
    }

    #[test]
    fn body_from_serialised_events_equals_the_value_body() {
        let mut e = ContactEvent::new(ExternalEventType::Purchase, 5);
        e.set_value(Some(12.5));
        e.set_description("Order Completed \"quoted\" عربي");
        let envelope = Envelope {
            id: "e".into(),
            source: "Order Completed".into(),
            event: e,
        };
        let contact = Contact {
            contact_id: Some("c\\1".into()),
            email: Some("a@b.sa".into()),
            name: Some("نورة \"N\"".into()),
            phone: Some("+966501234567".into()),
        };
        let head = Head {
            client_id: "cl",
            anonymous_id: Some("0123abcd"),
            store_id: Some("1305"),
        };
        // The event's JSON as the tracker writes it, directly, and as the value would.
        assert_eq!(envelope.to_json(), envelope.to_value().to_json());
        let from_strings = body(&head, 9, &contact, &[envelope.to_json()]);
        let from_value = batch_from(&head, 9, &contact, &[envelope]).to_json();
        assert_eq!(from_strings, from_value);
        let parsed: serde_json::Value = serde_json::from_str(&from_strings).unwrap();
        assert_eq!(parsed["anonymousId"], "0123abcd");
        assert_eq!(parsed["storeId"], "1305");
        assert_eq!(
            parsed["contact"],
            serde_json::json!({"contactId": "c\\1", "email": "a@b.sa",
                               "name": "نورة \"N\"", "phone": "+966501234567"})
        );
        let bare = Head {
            client_id: "cl",
            ..Head::default()
        };
        let empty = body(&bare, 9, &Contact::default(), &[]);
        let outside = Head {
            client_id: "cl",
            anonymous_id: Some("has space"),
            store_id: Some(&"٣".repeat(65)),
        };
        assert_eq!(
            body(&outside, 9, &Contact::default(), &[]),
            empty,
            "ids outside the rule are left out"
        );
        assert_eq!(
            empty,
            r#"{"v":1,"clientId":"cl","sentAt":9,"contact":{},"events":[]}"#
        );
    }

    #[test]
    fn event_ids_are_uuid_v4() {
        let id = event_id([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(event_id([0; 16]), "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn millis_are_integers() {
        assert_eq!(millis_text(1_763_830_000_000), "1763830000000");
    }
}
