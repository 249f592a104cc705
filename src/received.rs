//! The receiver's side of protocol v1: reading a received batch (docs/protocol.md §1) and checking
//! each `contactEvent` against SALESmanago's rules (docs/salesmanago.md §2) before anything is
//! stored. The tracker only writes batches ([`crate::protocol`]); this module is behind the
//! `receiver` feature, so the wasm never carries it.
//!
//! Reading happens in two steps. Serde's derive reads the body into wire types that mirror the
//! JSON, where each field a sender fills is a [`Wire`]: the type the protocol wants, or whatever
//! came instead. Then the wire types are checked into [`ReceivedBatch`], whose events are ones
//! SALESmanago takes. So every mistake, a wrong type included, is reported by the check, in words
//! a developer can act on and naming the field by its path in the body
//! (`events[1].contactEvent.value must be a number, got a string`); serde itself only refuses what
//! is not shaped like a batch at all (an event that is not an object).

use crate::salesmanago::{limits, ExternalEventType};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value as Json};
use std::collections::BTreeMap;

/// A received protocol v1 batch, checked: each of its events is one SALESmanago takes.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedBatch {
    /// The SALESmanago client id the tracker was configured with.
    pub client_id: String,
    /// When the tracker sent it, in milliseconds since the epoch.
    pub sent_at: u64,
    /// The browser's first-party anonymous id, sent in every batch by a current tracker (an older
    /// one sends none): events that name no contact wait for one under it.
    pub anonymous_id: Option<AnonymousId>,
    /// The Salla store id of the page, when it has one (with `client_id` it keys the tenant).
    pub store_id: Option<String>,
    /// Who the events are about.
    pub contact: ReceivedContact,
    /// The batch named a `contact.email` that is not an email address, and it was dropped (its
    /// events are kept): SALESmanago would refuse every event sent with it, and refusing the batch
    /// would make the tracker drop the events, which are good. See docs/protocol.md §1.
    pub email_dropped: bool,
    /// The batch named a `contact.phone` that is not `+` and digits, and it was dropped (its
    /// events are kept), as a bad email is.
    pub phone_dropped: bool,
    /// The events, 1 to [`limits::BATCH`] (none in a request that only confirms).
    pub events: Vec<ReceivedEvent>,
    /// Ids of events an earlier page sent without seeing the answer (`docs/protocol.md` §2.1):
    /// the answer says which of them the receiver holds. A request may carry only these.
    pub confirm: Vec<String>,
}

/// Who a received batch names: each field checked, an email that is an address, a phone that is
/// `+` and digits (docs/protocol.md §1). Name and phone are for the contact card only: SALESmanago
/// files events under `contactId` or `email`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceivedContact {
    /// SALESmanago's contact id (the `smclient` cookie).
    pub contact_id: Option<String>,
    /// The shopper's email.
    pub email: Option<String>,
    /// The shopper's name.
    pub name: Option<String>,
    /// The shopper's mobile number, `+` and digits.
    pub phone: Option<String>,
}

impl ReceivedContact {
    /// Whether it names a contact SALESmanago can file events under (a `contactId` or an email).
    /// A name or a phone alone does not.
    pub fn names_a_contact(&self) -> bool {
        self.contact_id.is_some() || self.email.is_some()
    }
}

/// A browser's anonymous id: 1 to [`AnonymousId::MAX`] characters of `A-Z a-z 0-9 . _ : -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AnonymousId(String);

impl AnonymousId {
    /// The longest anonymous id.
    pub const MAX: usize = 64;

    /// `Some` when `id` follows the rule.
    pub fn parse(id: &str) -> Option<AnonymousId> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
        (!id.is_empty() && id.len() <= Self::MAX && id.chars().all(allowed))
            .then(|| AnonymousId(id.to_owned()))
    }

    /// The id as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One event of a received batch.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent {
    /// The idempotency key (1 to 255 characters).
    pub id: String,
    /// The Salla event it came from.
    pub source: String,
    /// The SALESmanago event.
    pub contact_event: ReceivedContactEvent,
}

/// A `contactEvent` within SALESmanago's rules, as received: nothing is cut or rounded, an event
/// that breaks a rule is refused instead. Serialises back to SALESmanago's field names.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedContactEvent {
    /// `contactExtEventType`.
    #[serde(rename = "contactExtEventType", serialize_with = "wire_name")]
    pub event_type: ExternalEventType,
    /// `date`, in milliseconds since the epoch.
    pub date: u64,
    /// `products`: ids joined by single commas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub products: Option<String>,
    /// `externalId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// `description`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `location`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// `shopDomain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shop_domain: Option<String>,
    /// `value`, exactly as written (SALESmanago reads the number; we do not reformat it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Number>,
    /// `detail1` … `detail20` that are set.
    #[serde(flatten)]
    pub details: Details,
}

/// The `detailN` fields of a [`ReceivedContactEvent`], by number (1 to [`limits::DETAILS`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Details(pub BTreeMap<u8, String>);

impl Serialize for Details {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(n, text)| (format!("detail{n}"), text)))
    }
}

fn wire_name<S: Serializer>(t: &ExternalEventType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.as_str())
}

/// Why a batch was refused. Each message names the field by its path in the body.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The body is not JSON at all.
    #[error("the body is not JSON: {0}")]
    NotJson(serde_json::Error),
    /// The body is JSON but not shaped like a batch (serde's words, with the path).
    #[error("{0}")]
    Shape(String),
    /// `v` is not 1.
    #[error("v must be 1 (protocol version)")]
    Version,
    /// Too few or too many events.
    #[error("events must hold 1 to {max} events, got {got}", max = limits::BATCH)]
    EventCount {
        /// How many came.
        got: usize,
    },
    /// Too many ids to confirm.
    #[error("confirm must hold at most {max} ids, got {got}", max = limits::BATCH)]
    ConfirmCount {
        /// How many came.
        got: usize,
    },
    /// A field of the batch, outside the `contactEvent`s.
    #[error("{field} {problem}")]
    Field {
        /// Its path, e.g. `contact.email` or `events[3].id`.
        field: String,
        /// What is wrong with it.
        problem: Problem,
    },
    /// A `contactEvent` SALESmanago would refuse.
    #[error("events[{index}].contactEvent.{error}")]
    ContactEvent {
        /// Which event.
        index: usize,
        /// What is wrong with it.
        #[source]
        error: ContactEventError,
    },
}

/// A `contactEvent` field SALESmanago would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct ContactEventError {
    /// The field's name, e.g. `detail21`.
    pub field: String,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with one field; the message follows the field's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Required, and absent (or `null`).
    #[error("is missing")]
    Missing,
    /// Not a string.
    #[error("must be text, got {got}")]
    NotText {
        /// What came instead, e.g. `a number`.
        got: &'static str,
    },
    /// A string of the wrong length (UTF-16 code units, as SALESmanago counts).
    #[error("is {len} characters; it must be 1 to {max}")]
    Length {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An id or contact that is not text of 1 to `max` characters.
    #[error("must be text of 1 to {max} characters")]
    Identifier {
        /// The limit.
        max: usize,
    },
    /// An `anonymousId` outside its rule.
    #[error(
        "must be text of 1 to {} characters of A-Z, a-z, 0-9 and . _ : -",
        AnonymousId::MAX
    )]
    AnonymousId,
    /// Not whole milliseconds since the epoch (or, for `date`, before 2001: seconds by mistake).
    #[error("must be milliseconds since the epoch")]
    Millis,
    /// Not a number.
    #[error("must be a number, got {got}")]
    NotANumber {
        /// What came instead.
        got: &'static str,
    },
    /// A number SALESmanago cannot hold.
    #[error("must be a number of at most 19 integer digits")]
    TooLarge,
    /// More than cents.
    #[error("must have at most 2 decimals")]
    Decimals,
    /// An event type in the wrong case.
    #[error("\"{got}\" must be in capitals: {}", .wire.as_str())]
    NotInCapitals {
        /// What came.
        got: String,
        /// The type it names.
        wire: ExternalEventType,
    },
    /// An event type SALESmanago does not have.
    #[error("\"{got}\" is not a SALESmanago type")]
    UnknownType {
        /// What came.
        got: String,
    },
    /// A field SALESmanago's `contactEvent` does not have.
    #[error("is not a SALESmanago contactEvent field")]
    NotAField,
    /// `products` with empty ids or spaces around them.
    #[error("must be ids separated by single commas")]
    Products,
}

/// A field as received: the type the protocol wants, or whatever came instead (kept to say what
/// it was).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Wire<T> {
    Expected(T),
    Unexpected(Json),
}

impl<T> Wire<T> {
    /// The value, or what came instead in a reader's words (`a string`).
    fn expected(self) -> Result<T, &'static str> {
        match self {
            Wire::Expected(t) => Ok(t),
            Wire::Unexpected(other) => Err(kind(&other)),
        }
    }
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// `null` is a value, not an absent field: a `contactEvent` field present as `null` is refused,
/// as SALESmanago would.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Wire<T>>, D::Error> {
    Wire::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    expecting = "a protocol v1 batch (a JSON object)"
)]
struct BatchWire {
    #[serde(default)]
    v: Option<Wire<Number>>,
    #[serde(default)]
    client_id: Option<Wire<String>>,
    #[serde(default)]
    sent_at: Option<Wire<Number>>,
    #[serde(default)]
    anonymous_id: Option<Wire<String>>,
    #[serde(default)]
    store_id: Option<Wire<String>>,
    #[serde(default)]
    contact: Option<ContactWire>,
    #[serde(default)]
    events: Option<Vec<EventWire>>,
    #[serde(default)]
    confirm: Option<Vec<Wire<String>>>,
}

#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    expecting = "a contact (a JSON object with contactId and/or email)"
)]
struct ContactWire {
    #[serde(default)]
    contact_id: Option<Wire<String>>,
    #[serde(default)]
    email: Option<Wire<String>>,
    #[serde(default)]
    name: Option<Wire<String>>,
    #[serde(default)]
    phone: Option<Wire<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an event (a JSON object)")]
struct EventWire {
    #[serde(default)]
    id: Option<Wire<String>>,
    #[serde(default)]
    source: Option<Wire<String>>,
    #[serde(default)]
    contact_event: Option<ContactEventWire>,
}

#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    expecting = "a SALESmanago contactEvent (a JSON object)"
)]
struct ContactEventWire {
    #[serde(default, deserialize_with = "present")]
    contact_ext_event_type: Option<Wire<String>>,
    #[serde(default, deserialize_with = "present")]
    date: Option<Wire<Number>>,
    #[serde(default, deserialize_with = "present")]
    value: Option<Wire<Number>>,
    #[serde(default, deserialize_with = "present")]
    products: Option<Wire<String>>,
    #[serde(default, deserialize_with = "present")]
    external_id: Option<Wire<String>>,
    #[serde(default, deserialize_with = "present")]
    description: Option<Wire<String>>,
    #[serde(default, deserialize_with = "present")]
    location: Option<Wire<String>>,
    #[serde(default, deserialize_with = "present")]
    shop_domain: Option<Wire<String>>,
    /// `detailN`, and any field SALESmanago does not have.
    #[serde(flatten)]
    others: BTreeMap<String, Wire<String>>,
}

/// Earliest plausible `date`: below it, a timestamp is in seconds, not milliseconds.
const EARLIEST_MS: u64 = 978_307_200_000; // 2001-01-01

/// Whole non-negative milliseconds, also when written as `1.7e12` (JavaScript may).
fn millis(n: &Number) -> Option<u64> {
    n.as_u64().or_else(|| {
        let f = n.as_f64()?;
        (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64).then_some(f as u64)
    })
}

impl ReceivedBatch {
    /// Reads and checks a protocol v1 body. The error names the first field that is wrong.
    pub fn parse(body: &[u8]) -> Result<ReceivedBatch, BatchError> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let wire: BatchWire = match serde_path_to_error::deserialize(&mut de) {
            Ok(w) => w,
            Err(e) => {
                let path = e.path().to_string();
                let e = e.into_inner();
                if !e.is_data() {
                    return Err(BatchError::NotJson(e));
                }
                return Err(BatchError::Shape(shape_message(&path, &e)));
            }
        };
        de.end().map_err(BatchError::NotJson)?;
        wire.check()
    }
}

/// Whether `email` is an address SALESmanago can file a contact under: an RFC 5322 address
/// (`email_address`), bare (no display name), under a domain name with a top-level domain (no
/// `[IP]` literal, no single-label host such as `localhost`).
pub fn is_email(email: &str) -> bool {
    let strict = email_address::Options::default()
        .with_required_tld()
        .without_domain_literal()
        .without_display_text();
    email_address::EmailAddress::parse_with_options(email, strict).is_ok()
}

/// Whether `phone` is a mobile number as the protocol carries it: `+` then the country code and
/// number, 7 to 15 digits in all (E.164 allows 15; none is shorter than 7), no spaces.
pub fn is_phone(phone: &str) -> bool {
    phone.strip_prefix('+').is_some_and(|digits| {
        (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// serde's message for a data error, with the path and without serde_json's position (the path
/// says where).
fn shape_message(path: &str, e: &serde_json::Error) -> String {
    let message = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let message = message.strip_suffix(&position).unwrap_or(&message);
    if path == "." {
        message.to_owned()
    } else {
        format!("{path}: {message}")
    }
}

fn field(field: impl Into<String>, problem: Problem) -> BatchError {
    BatchError::Field {
        field: field.into(),
        problem,
    }
}

/// Text of 1 to 255 characters (ids, contacts), or the error naming `name`.
fn identifier(
    value: Option<Wire<String>>,
    name: impl Fn() -> String,
) -> Result<String, BatchError> {
    const MAX: usize = 255;
    match value.map(Wire::expected) {
        Some(Ok(s)) if !s.is_empty() && s.len() <= MAX => Ok(s),
        _ => Err(field(name(), Problem::Identifier { max: MAX })),
    }
}

/// Text of 1 to `max` characters as SALESmanago counts them (UTF-16 units: names may be Arabic),
/// or the error naming `name`.
fn identifier_within(value: Wire<String>, max: usize, name: &str) -> Result<String, BatchError> {
    match value.expected() {
        Ok(s) if (1..=max).contains(&s.encode_utf16().count()) => Ok(s),
        Ok(_) => Err(field(name, Problem::Identifier { max })),
        Err(got) => Err(field(name, Problem::NotText { got })),
    }
}

impl BatchWire {
    fn check(self) -> Result<ReceivedBatch, BatchError> {
        match self.v.map(Wire::expected) {
            Some(Ok(v)) if v.as_f64() == Some(f64::from(crate::protocol::VERSION)) => {}
            _ => return Err(BatchError::Version),
        }
        let client_id = match self.client_id.map(Wire::expected) {
            Some(Ok(id)) if !id.is_empty() => id,
            Some(Err(got)) => return Err(field("clientId", Problem::NotText { got })),
            _ => return Err(field("clientId", Problem::Missing)),
        };
        let sent_at = match self.sent_at.map(Wire::expected) {
            Some(Ok(n)) => millis(&n).ok_or_else(|| field("sentAt", Problem::Millis))?,
            _ => return Err(field("sentAt", Problem::Millis)),
        };
        let anonymous_id = match self.anonymous_id.map(Wire::expected) {
            None => None,
            Some(Ok(id)) => Some(
                AnonymousId::parse(&id)
                    .ok_or_else(|| field("anonymousId", Problem::AnonymousId))?,
            ),
            Some(Err(_)) => return Err(field("anonymousId", Problem::AnonymousId)),
        };
        let store_id = self
            .store_id
            .map(|v| identifier_within(v, 64, "storeId"))
            .transpose()?;
        let contact = match self.contact {
            None => ReceivedContact::default(),
            Some(c) => {
                let optional = |value: Option<Wire<String>>, name: &'static str| {
                    value
                        .map(|v| identifier(Some(v), || format!("contact.{name}")))
                        .transpose()
                };
                let card = |value: Option<Wire<String>>, name: &'static str| {
                    value.map(|v| identifier_within(v, 255, name)).transpose()
                };
                ReceivedContact {
                    contact_id: optional(c.contact_id, "contactId")?,
                    email: optional(c.email, "email")?,
                    name: card(c.name, "contact.name")?,
                    phone: card(c.phone, "contact.phone")?,
                }
            }
        };
        let email_dropped = contact.email.as_deref().is_some_and(|e| !is_email(e));
        let phone_dropped = contact.phone.as_deref().is_some_and(|p| !is_phone(p));
        let contact = ReceivedContact {
            email: contact.email.filter(|_| !email_dropped),
            phone: contact.phone.filter(|_| !phone_dropped),
            ..contact
        };
        let confirm = self
            .confirm
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, id)| identifier(Some(id), || format!("confirm[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        if confirm.len() > limits::BATCH {
            return Err(BatchError::ConfirmCount { got: confirm.len() });
        }
        // A request that only asks which earlier events the receiver holds carries no events.
        let wires = match self.events {
            None if !confirm.is_empty() => Vec::new(),
            None => return Err(field("events", Problem::Missing)),
            Some(w) if w.is_empty() && !confirm.is_empty() => w,
            Some(w) if w.is_empty() || w.len() > limits::BATCH => {
                return Err(BatchError::EventCount { got: w.len() })
            }
            Some(w) => w,
        };
        let mut events = Vec::with_capacity(wires.len());
        for (index, e) in wires.into_iter().enumerate() {
            let at = |what: &str| format!("events[{index}].{what}");
            let id = identifier(e.id, || at("id"))?;
            let source = match e.source.map(Wire::expected) {
                Some(Ok(s)) => s,
                Some(Err(got)) => return Err(field(at("source"), Problem::NotText { got })),
                None => return Err(field(at("source"), Problem::Missing)),
            };
            let wire = e
                .contact_event
                .ok_or_else(|| field(at("contactEvent"), Problem::Missing))?;
            let contact_event = wire
                .check()
                .map_err(|error| BatchError::ContactEvent { index, error })?;
            events.push(ReceivedEvent {
                id,
                source,
                contact_event,
            });
        }
        Ok(ReceivedBatch {
            client_id,
            sent_at,
            anonymous_id,
            store_id,
            contact,
            email_dropped,
            phone_dropped,
            events,
            confirm,
        })
    }
}

impl ReceivedContactEvent {
    /// Checks a `contactEvent` object against SALESmanago's rules (what the fake SALESmanago API
    /// does with each call; a batch's events are checked by [`ReceivedBatch::parse`]).
    pub fn from_object(fields: Map<String, Json>) -> Result<Self, ContactEventError> {
        // Every field of the wire type takes any JSON value, so an object always reads.
        let wire = ContactEventWire::deserialize(Json::Object(fields))
            .expect("a JSON object reads as a contactEvent wire");
        wire.check()
    }

    /// The event as JSON text with SALESmanago's field names (what the receiver stores and sends).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("strings, integers and JSON numbers always serialise")
    }
}

/// `Some(text)` within `max` UTF-16 units, `None` when absent; the error names `name`.
fn text(
    value: Option<Wire<String>>,
    name: &str,
    max: usize,
) -> Result<Option<String>, ContactEventError> {
    let error = |problem| ContactEventError {
        field: name.to_owned(),
        problem,
    };
    let Some(value) = value else {
        return Ok(None);
    };
    let text = value
        .expected()
        .map_err(|got| error(Problem::NotText { got }))?;
    let len = text.encode_utf16().count();
    if len == 0 || len > max {
        return Err(error(Problem::Length { len, max }));
    }
    Ok(Some(text))
}

/// `detailN` → N, for N in 1 to 20.
fn detail_number(name: &str) -> Option<u8> {
    let n: u8 = name.strip_prefix("detail")?.parse().ok()?;
    // "detail01" parses as 1 but is not SALESmanago's name for it.
    (format!("detail{n}") == name && (1..=limits::DETAILS as u8).contains(&n)).then_some(n)
}

impl ContactEventWire {
    fn check(self) -> Result<ReceivedContactEvent, ContactEventError> {
        let error = |field: &str, problem| ContactEventError {
            field: field.to_owned(),
            problem,
        };
        let event_type = match self.contact_ext_event_type.map(Wire::expected) {
            None => return Err(error("contactExtEventType", Problem::Missing)),
            Some(Err(got)) => return Err(error("contactExtEventType", Problem::NotText { got })),
            Some(Ok(name)) => match ExternalEventType::parse(&name) {
                Some(t) if t.as_str() == name => t,
                Some(wire) => {
                    let problem = Problem::NotInCapitals { got: name, wire };
                    return Err(error("contactExtEventType", problem));
                }
                None => {
                    let problem = Problem::UnknownType { got: name };
                    return Err(error("contactExtEventType", problem));
                }
            },
        };
        let date = match self.date.map(Wire::expected) {
            Some(Ok(n)) => millis(&n).filter(|d| *d >= EARLIEST_MS),
            _ => None,
        }
        .ok_or_else(|| error("date", Problem::Millis))?;
        let value = match self.value.map(Wire::expected) {
            None => None,
            Some(Err(got)) => return Err(error("value", Problem::NotANumber { got })),
            Some(Ok(n)) => {
                let v = n.as_f64().unwrap_or(f64::INFINITY);
                if !(v.is_finite() && v.abs() < 1e19) {
                    return Err(error("value", Problem::TooLarge));
                }
                let cents = v * 100.0;
                if (cents.round() - cents).abs() > 1e-6 * v.abs().max(1.0) {
                    return Err(error("value", Problem::Decimals));
                }
                Some(n)
            }
        };
        let products = text(self.products, "products", limits::PRODUCTS)?;
        if products
            .as_deref()
            .is_some_and(|p| p.split(',').any(|id| id.is_empty() || id.trim() != id))
        {
            return Err(error("products", Problem::Products));
        }
        let mut details = BTreeMap::new();
        for (name, value) in self.others {
            let Some(n) = detail_number(&name) else {
                return Err(error(&name, Problem::NotAField));
            };
            if let Some(t) = text(Some(value), &name, limits::DETAIL)? {
                details.insert(n, t);
            }
        }
        Ok(ReceivedContactEvent {
            event_type,
            date,
            products,
            external_id: text(self.external_id, "externalId", limits::EXTERNAL_ID)?,
            description: text(self.description, "description", limits::DESCRIPTION)?,
            location: text(self.location, "location", limits::LOCATION)?,
            shop_domain: text(self.shop_domain, "shopDomain", limits::EXTERNAL_ID)?,
            value,
            details: Details(details),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{batch, Contact, Envelope};
    use crate::salesmanago::ContactEvent;
    use serde_json::json;

    fn parse(body: &Json) -> Result<ReceivedBatch, BatchError> {
        ReceivedBatch::parse(body.to_string().as_bytes())
    }

    fn body(events: Json) -> Json {
        json!({ "v": 1, "clientId": "c", "sentAt": 1, "events": events })
    }

    fn with_event(contact_event: Json) -> Json {
        body(json!([{ "id": "e", "source": "x", "contactEvent": contact_event }]))
    }

    fn visit() -> Json {
        json!({ "contactExtEventType": "VISIT", "date": 1_763_829_999_000u64 })
    }

    fn check(contact_event: Json) -> Result<ReceivedContactEvent, ContactEventError> {
        let Json::Object(fields) = contact_event else {
            panic!("an object")
        };
        ReceivedContactEvent::from_object(fields)
    }

    #[test]
    fn a_batch_the_tracker_sends_parses_back_unchanged() {
        let mut e = ContactEvent::new(ExternalEventType::Cart, 1_763_829_999_000);
        e.set_products(&["1001", "1002"]);
        e.set_value(Some(501.5));
        e.set_external_id("9");
        e.set_description(&"ع".repeat(5000));
        e.set_details(&[Some("Oud, Musk"), None, Some("x".repeat(300).as_str())]);
        let contact = Contact {
            contact_id: Some("c-1".into()),
            ..Contact::default()
        };
        let envelope = Envelope {
            id: "e-1".into(),
            source: "Product Added".into(),
            event: e.clone(),
        };
        let sent = batch("client", 1_763_830_000_000, &contact, &[envelope]).to_json();
        let got = ReceivedBatch::parse(sent.as_bytes()).unwrap();
        assert_eq!(got.client_id, "client");
        assert_eq!(got.sent_at, 1_763_830_000_000);
        assert_eq!(got.contact.contact_id, contact.contact_id);
        assert_eq!(got.contact.email, None);
        assert_eq!(
            (got.events[0].id.as_str(), got.events[0].source.as_str()),
            ("e-1", "Product Added")
        );
        let received = &got.events[0].contact_event;
        assert_eq!(received.event_type, ExternalEventType::Cart);
        assert_eq!(
            received.details.0.keys().collect::<Vec<_>>(),
            [&1, &3],
            "numbering is kept"
        );
        let as_json = |text: &str| serde_json::from_str::<Json>(text).unwrap();
        assert_eq!(
            as_json(&received.to_json()),
            as_json(&e.to_value().to_json()),
            "what is stored and sent is what the tracker wrote"
        );
    }

    #[test]
    fn the_browsers_body_with_anonymous_id_store_id_name_and_phone_parses_to_the_same_values() {
        // The body the browser sends is written by `protocol::body` (events already serialised);
        // `batch_from` is its twin for native callers. Both must read back field for field,
        // with text that needs escaping (Arabic, quotes) in the personal fields.
        let head = crate::protocol::Head {
            client_id: "client-ع",
            anonymous_id: Some("aid_1.2:3-XYZ"),
            store_id: Some("1305"),
        };
        let contact = Contact {
            contact_id: Some("c-\"1\"".into()),
            email: Some("noura@example.sa".into()),
            name: Some("نورة \"العتيبي\"".into()),
            phone: Some("+966501234567".into()),
        };
        let envelope = Envelope {
            id: "e-1".into(),
            source: "Signed In".into(),
            event: ContactEvent::new(ExternalEventType::Login, 1_763_829_999_000),
        };
        let written = [
            crate::protocol::body(
                &head,
                1_763_830_000_000,
                &contact,
                &[envelope.to_value().to_json()],
            ),
            crate::protocol::batch_from(&head, 1_763_830_000_000, &contact, &[envelope]).to_json(),
        ];
        for sent in written {
            let got = ReceivedBatch::parse(sent.as_bytes()).unwrap();
            assert_eq!(got.client_id, "client-ع");
            assert_eq!(got.sent_at, 1_763_830_000_000);
            assert_eq!(
                got.anonymous_id.as_ref().map(AnonymousId::as_str),
                Some("aid_1.2:3-XYZ")
            );
            assert_eq!(got.store_id.as_deref(), Some("1305"));
            assert_eq!(
                got.contact,
                ReceivedContact {
                    contact_id: contact.contact_id.clone(),
                    email: contact.email.clone(),
                    name: contact.name.clone(),
                    phone: contact.phone.clone(),
                },
                "{sent}"
            );
            assert!(!got.email_dropped && !got.phone_dropped);
            assert_eq!(got.events[0].id, "e-1");
            assert_eq!(
                got.events[0].contact_event.event_type,
                ExternalEventType::Login
            );
        }
    }

    #[test]
    fn null_or_absent_contact_names_nobody() {
        for contact in [
            json!(null),
            json!({}),
            json!({ "contactId": null, "email": null }),
        ] {
            let mut b = with_event(visit());
            b["contact"] = contact;
            assert_eq!(parse(&b).unwrap().contact, ReceivedContact::default());
        }
        let mut b = with_event(visit());
        b.as_object_mut().unwrap().remove("contact");
        assert_eq!(parse(&b).unwrap().contact, ReceivedContact::default());
    }

    #[test]
    fn an_email_that_is_not_an_address_is_dropped_and_the_events_kept() {
        for good in [
            "shopper@store.example",
            "first.last+tag@mail.store.sa",
            "o'brien@x.co",
        ] {
            let mut b = with_event(visit());
            b["contact"] = json!({ "email": good });
            let got = parse(&b).unwrap();
            assert_eq!(got.contact.email.as_deref(), Some(good));
            assert!(!got.email_dropped);
        }
        for bad in [
            "shopper",
            "shopper@",
            "@store.example",
            "shopper@localhost",
            "shopper@[10.0.0.1]",
            "Shopper <shopper@store.example>",
            "two@@store.example",
            "with space@store.example",
            "shopper@store..example",
        ] {
            let mut b = with_event(visit());
            b["contact"] = json!({ "contactId": "c-1", "email": bad });
            let got = parse(&b).unwrap();
            assert!(got.email_dropped, "{bad}");
            assert_eq!(
                got.contact,
                ReceivedContact {
                    contact_id: Some("c-1".into()),
                    ..ReceivedContact::default()
                },
                "{bad}"
            );
            assert_eq!(got.events.len(), 1);
        }
    }

    #[test]
    fn anonymous_id_store_id_name_and_phone_are_read() {
        let mut b = with_event(visit());
        b["anonymousId"] = json!("3f2a:9B_c.d-e");
        b["storeId"] = json!("1305146709");
        b["contact"] = json!({ "email": "noura@example.sa", "name": "نورة العتيبي", "phone": "+966501234567" });
        let got = parse(&b).unwrap();
        assert_eq!(
            got.anonymous_id.as_ref().map(AnonymousId::as_str),
            Some("3f2a:9B_c.d-e")
        );
        assert_eq!(got.store_id.as_deref(), Some("1305146709"));
        assert_eq!(got.contact.name.as_deref(), Some("نورة العتيبي"));
        assert_eq!(got.contact.phone.as_deref(), Some("+966501234567"));
        assert!(!got.phone_dropped && !got.email_dropped);
        assert!(got.contact.names_a_contact());
        // An old tracker's body: none of them, and still a batch.
        let old = parse(&with_event(visit())).unwrap();
        assert_eq!((old.anonymous_id, old.store_id), (None, None));
        let mut nulls = with_event(visit());
        nulls["anonymousId"] = json!(null);
        nulls["storeId"] = json!(null);
        let nulls = parse(&nulls).unwrap();
        assert_eq!(
            (nulls.anonymous_id, nulls.store_id),
            (None, None),
            "null is absent"
        );
    }

    #[test]
    fn a_phone_that_is_not_plus_and_digits_is_dropped_and_the_events_kept() {
        for good in ["+966501234567", "+4915123456789", "+1234567"] {
            let mut b = with_event(visit());
            b["contact"] = json!({ "phone": good });
            let got = parse(&b).unwrap();
            assert_eq!(got.contact.phone.as_deref(), Some(good));
            assert!(!got.phone_dropped);
            assert!(
                !got.contact.names_a_contact(),
                "a phone alone names no SALESmanago contact"
            );
        }
        for bad in [
            "966501234567",
            "+966 50 123 4567",
            "+96650-1234567",
            "+",
            "+123456",
            "+1234567890123456",
            "0501234567",
            "+٩٦٦٥٠١٢٣٤٥٦٧",
        ] {
            let mut b = with_event(visit());
            b["contact"] = json!({ "email": "noura@example.sa", "phone": bad });
            let got = parse(&b).unwrap();
            assert!(got.phone_dropped, "{bad}");
            assert_eq!(got.contact.phone, None, "{bad}");
            assert_eq!(
                got.contact.email.as_deref(),
                Some("noura@example.sa"),
                "{bad}"
            );
            assert_eq!(got.events.len(), 1);
        }
    }

    #[test]
    fn a_bad_batch_is_refused_by_the_fields_path() {
        let mut events_of_1001 = Vec::new();
        events_of_1001.resize(
            1001,
            json!({ "id": "e", "source": "x", "contactEvent": visit() }),
        );
        let with = |key: &str, value: Json| {
            let mut b = with_event(visit());
            b[key] = value;
            b
        };
        let cases = [
            (json!(null), "invalid type: null, expected a protocol v1 batch (a JSON object)"),
            (with("v", json!(2)), "v must be 1 (protocol version)"),
            (with("clientId", json!("")), "clientId is missing"),
            (with("clientId", json!(7)), "clientId must be text, got a number"),
            (with("sentAt", json!(1.5)), "sentAt must be milliseconds since the epoch"),
            (with("contact", json!({ "email": "" })), "contact.email must be text of 1 to 255 characters"),
            (with("contact", json!("c-1")), "contact: invalid type: string \"c-1\", expected a contact (a JSON object with contactId and/or email)"),
            (with("anonymousId", json!("")), "anonymousId must be text of 1 to 64 characters of A-Z, a-z, 0-9 and . _ : -"),
            (with("anonymousId", json!("a b")), "anonymousId must be text of 1 to 64 characters of A-Z, a-z, 0-9 and . _ : -"),
            (with("anonymousId", json!("a".repeat(65))), "anonymousId must be text of 1 to 64 characters of A-Z, a-z, 0-9 and . _ : -"),
            (with("anonymousId", json!(42)), "anonymousId must be text of 1 to 64 characters of A-Z, a-z, 0-9 and . _ : -"),
            (with("storeId", json!(1305146709)), "storeId must be text, got a number"),
            (with("storeId", json!("")), "storeId must be text of 1 to 64 characters"),
            (with("contact", json!({ "name": "" })), "contact.name must be text of 1 to 255 characters"),
            (with("contact", json!({ "name": "ن".repeat(256) })), "contact.name must be text of 1 to 255 characters"),
            (with("contact", json!({ "phone": 966 })), "contact.phone must be text, got a number"),
            (body(json!([])), "events must hold 1 to 1000 events, got 0"),
            (body(Json::Array(events_of_1001)), "events must hold 1 to 1000 events, got 1001"),
            (with("events", json!({})), "events: invalid type: map, expected a sequence"),
            (body(json!([{ "id": "e", "source": "x", "contactEvent": visit() }, "x"])), "events[1]: invalid type: string \"x\", expected an event (a JSON object)"),
            (body(json!([{ "id": "", "source": "x", "contactEvent": visit() }])), "events[0].id must be text of 1 to 255 characters"),
            (body(json!([{ "id": "e", "source": 1, "contactEvent": visit() }])), "events[0].source must be text, got a number"),
            (body(json!([{ "id": "e", "source": "x" }])), "events[0].contactEvent is missing"),
            (body(json!([{ "id": "e", "source": "x", "contactEvent": [] }])), "events[0].contactEvent: invalid type: sequence, expected a SALESmanago contactEvent (a JSON object)"),
            (with_event(json!({ "contactExtEventType": "visit", "date": 1_763_829_999_000u64 })), "events[0].contactEvent.contactExtEventType \"visit\" must be in capitals: VISIT"),
        ];
        for (body, message) in cases {
            assert_eq!(parse(&body).unwrap_err().to_string(), message, "{body}");
        }
    }

    #[test]
    fn what_is_not_json_says_so() {
        for text in ["{not json", "{\"v\":1} trailing", ""] {
            let e = ReceivedBatch::parse(text.as_bytes()).unwrap_err();
            assert!(matches!(e, BatchError::NotJson(_)), "{text}: {e}");
            assert!(e.to_string().starts_with("the body is not JSON: "), "{e}");
        }
    }

    #[test]
    fn every_event_the_tracker_builds_passes_the_check() {
        let mut e = ContactEvent::new(ExternalEventType::Cart, 1_763_829_999_000);
        e.set_products(&["1", "2"]);
        e.set_value(Some(12.345));
        e.set_description(&"ع".repeat(5000));
        e.set_location("😀".repeat(40).as_str());
        e.set_details(&[Some("x".repeat(300).as_str())]);
        let value: Json = serde_json::from_str(&e.to_value().to_json()).unwrap();
        assert!(check(value).is_ok());
    }

    #[test]
    fn the_check_names_what_is_wrong() {
        let with = |k: &str, v: Json| {
            let mut e = visit();
            e[k] = v;
            e
        };
        let without = |k: &str| {
            let mut e = visit();
            e.as_object_mut().unwrap().remove(k);
            e
        };
        let cases = [
            (
                with("contactExtEventType", json!("cart")),
                "contactExtEventType \"cart\" must be in capitals: CART",
            ),
            (
                with("contactExtEventType", json!("Phone-Call")),
                "contactExtEventType \"Phone-Call\" must be in capitals: PHONE_CALL",
            ),
            (
                with("contactExtEventType", json!("NOPE")),
                "contactExtEventType \"NOPE\" is not a SALESmanago type",
            ),
            (
                with("contactExtEventType", json!(1)),
                "contactExtEventType must be text, got a number",
            ),
            (
                without("contactExtEventType"),
                "contactExtEventType is missing",
            ),
            (
                with("date", json!(1_763_829_999u64)),
                "date must be milliseconds since the epoch",
            ),
            (
                with("date", json!("2025-11-22")),
                "date must be milliseconds since the epoch",
            ),
            (without("date"), "date must be milliseconds since the epoch"),
            (
                with("value", json!("12")),
                "value must be a number, got a string",
            ),
            (
                with("value", json!(null)),
                "value must be a number, got null",
            ),
            (
                with("value", json!(1.234)),
                "value must have at most 2 decimals",
            ),
            (
                with("value", json!(1e20)),
                "value must be a number of at most 19 integer digits",
            ),
            (
                with("detail21", json!("x")),
                "detail21 is not a SALESmanago contactEvent field",
            ),
            (
                with("detail01", json!("x")),
                "detail01 is not a SALESmanago contactEvent field",
            ),
            (
                with("eventId", json!("sm-1")),
                "eventId is not a SALESmanago contactEvent field",
            ),
            (
                with("detail1", json!("x".repeat(256))),
                "detail1 is 256 characters; it must be 1 to 255",
            ),
            (
                with("detail2", json!(5)),
                "detail2 must be text, got a number",
            ),
            (
                with("description", json!(null)),
                "description must be text, got null",
            ),
            (
                with("location", json!("")),
                "location is 0 characters; it must be 1 to 36",
            ),
            (
                with("location", json!("😀".repeat(19))),
                "location is 38 characters; it must be 1 to 36",
            ),
            (
                with("products", json!("1, 2")),
                "products must be ids separated by single commas",
            ),
            (
                with("products", json!("1,,2")),
                "products must be ids separated by single commas",
            ),
        ];
        for (event, message) in cases {
            let err = check(event.clone()).unwrap_err();
            assert_eq!(err.to_string(), message, "{event}");
        }
    }

    #[test]
    fn an_accepted_event_is_kept_as_sent() {
        let sent = json!({
            "contactExtEventType": "PURCHASE", "date": 1_763_829_999_000u64, "value": 501,
            "products": "1,2", "externalId": "o-1", "description": "Order Completed",
            "location": "shop", "shopDomain": "store.example", "detail2": "b", "detail10": "j",
        });
        let stored: Json = serde_json::from_str(&check(sent.clone()).unwrap().to_json()).unwrap();
        assert_eq!(stored, sent, "an integer value stays an integer");
        let float = check(with_value(json!(12.5))).unwrap();
        assert_eq!(float.value, Some(Number::from_f64(12.5).unwrap()));
        let seconds_as_float =
            check(json!({ "contactExtEventType": "VISIT", "date": 1.763829999e12 }));
        assert_eq!(seconds_as_float.unwrap().date, 1_763_829_999_000);

        fn with_value(v: Json) -> Json {
            json!({ "contactExtEventType": "VISIT", "date": 1_763_829_999_000u64, "value": v })
        }
    }
}
