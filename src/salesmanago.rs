//! SALESmanago's side: external event types, the `contactEvent` object with its API v2 field
//! names, and the field limits (docs/salesmanago.md).
//!
//! Limits are enforced when a field is set, so a [`ContactEvent`] that exists is one SALESmanago
//! accepts. This module knows nothing of Salla; `mapping` decides what goes in each field. The
//! receiver checks an event it did not build against the same limits in `received`.

use crate::number;
use crate::value::Value;

macro_rules! event_types {
    ($($variant:ident => $name:literal,)+) => {
        /// An external event type. Always written in capitals: SALESmanago rejects or misfiles
        /// lower-case types.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ExternalEventType {
            $(#[doc = $name] $variant,)+
        }

        impl ExternalEventType {
            /// Every type SALESmanago knows, in its documented order.
            pub const ALL: &'static [ExternalEventType] = &[$(ExternalEventType::$variant,)+];

            /// The name on the wire, in capitals.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ExternalEventType::$variant => $name,)+
                }
            }
        }
    };
}

event_types! {
    Purchase => "PURCHASE",
    Cart => "CART",
    Visit => "VISIT",
    PhoneCall => "PHONE_CALL",
    Other => "OTHER",
    Reservation => "RESERVATION",
    Cancelled => "CANCELLED",
    Activation => "ACTIVATION",
    Meeting => "MEETING",
    Offer => "OFFER",
    Download => "DOWNLOAD",
    Login => "LOGIN",
    Transaction => "TRANSACTION",
    Cancellation => "CANCELLATION",
    Return => "RETURN",
    Survey => "SURVEY",
    AppStatus => "APP_STATUS",
    AppTypeWeb => "APP_TYPE_WEB",
    AppTypeManual => "APP_TYPE_MANUAL",
    AppTypeRetention => "APP_TYPE_RETENTION",
    AppTypeUpsale => "APP_TYPE_UPSALE",
    LoanStatus => "LOAN_STATUS",
    LoanOrder => "LOAN_ORDER",
    FirstLoan => "FIRST_LOAN",
    RepeatedLoan => "REPEATED_LOAN",
}

impl ExternalEventType {
    /// Reads a type as a merchant may write it in configuration: `"visit"`, `"Phone_Call"` and
    /// `"PHONE-CALL"` all mean `PHONE_CALL`. `None` for a name SALESmanago does not know.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim().as_bytes();
        // Plain loops: the iterator adapters this was written with were ~260 B of the wasm.
        'types: for t in Self::ALL {
            let wire = t.as_str().as_bytes();
            if wire.len() != name.len() {
                continue;
            }
            for at in 0..wire.len() {
                let (w, n) = (wire[at], name[at]);
                if w != n.to_ascii_uppercase() && !(w == b'_' && n == b'-') {
                    continue 'types;
                }
            }
            return Some(*t);
        }
        None
    }
}

/// Field limits, in UTF-16 code units (SALESmanago is a Java service: a Java string's length is
/// its UTF-16 length, which is never less than its character count, so this is the safe reading).
pub mod limits {
    /// `description`.
    pub const DESCRIPTION: usize = 2048;
    /// `products`: comma-separated ids, whole ids only.
    pub const PRODUCTS: usize = 512;
    /// `location`.
    pub const LOCATION: usize = 36;
    /// `externalId`.
    pub const EXTERNAL_ID: usize = 255;
    /// each `detailN`.
    pub const DETAIL: usize = 255;
    /// how many `detailN` fields exist.
    pub const DETAILS: usize = 20;
    /// events in one `batchAddContactExtEvent` call.
    pub const BATCH: usize = 1000;
    /// The longest text the tracker keeps from a payload: the largest field limit. Anything longer
    /// could never be sent whole, and holding it would only fill memory and storage.
    pub const KEEP_TEXT: usize = DESCRIPTION;
}

/// Cuts `text` to at most `max` UTF-16 code units, on a character boundary: Arabic text and
/// emoji are never split into invalid halves.
pub fn truncate(text: &str, max: usize) -> &str {
    // No character takes more UTF-16 units than UTF-8 bytes: what fits in bytes fits.
    if text.len() <= max {
        return text;
    }
    let mut units = 0;
    for (at, c) in text.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &text[..at];
        }
    }
    text
}

/// Joins items with commas, keeping whole items only, into at most `max` UTF-16 units.
///
/// Items are cleaned first: white space trimmed, and commas inside an item replaced by spaces so
/// that the n-th entry of every list (ids, names, quantities, prices) still describes the same
/// cart line. Only the first item may be cut, when it alone is longer than `max`; the items that
/// do not fit after it are left out.
pub fn join_list(items: &[&str], max: usize) -> String {
    join(items, max, false)
}

/// [`join_list`], leaving out items that are empty once cleaned when `skip_empty`. Over a slice:
/// one copy in the wasm whoever calls (an iterator behind `dyn` brought each caller's iterator
/// type's whole vtable, `nth` and all).
fn join(items: &[&str], max: usize, skip_empty: bool) -> String {
    let mut out = String::new();
    let mut used = 0;
    let mut first = true;
    for item in items {
        let item = item.trim();
        let cleaned;
        let item = if item.contains(',') {
            // By hand: `str::replace` brought ~270 B of the wasm for this rare case.
            let mut spaced = String::with_capacity(item.len());
            for c in item.chars() {
                spaced.push(if c == ',' { ' ' } else { c });
            }
            cleaned = spaced;
            // What was a comma at an end is a space at an end: ",x" would go out as " x".
            cleaned.trim()
        } else {
            item
        };
        if skip_empty && item.is_empty() {
            continue;
        }
        let len: usize = item.encode_utf16().count();
        if first {
            first = false;
            let kept = truncate(item, max).trim();
            used = kept.encode_utf16().count();
            out.push_str(kept);
        } else if used + 1 + len <= max {
            out.push(',');
            out.push_str(item);
            used += 1 + len;
        } else {
            break;
        }
    }
    out
}

/// One SALESmanago external event (`contactEvent`), with every field within its limit.
///
/// Built with [`ContactEvent::new`] and the setters, which truncate; read back through
/// [`ContactEvent::fields`] in SALESmanago's field names and order.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactEvent {
    event_type: ExternalEventType,
    date: u64,
    description: Option<String>,
    products: Option<String>,
    value: Option<f64>,
    location: Option<String>,
    external_id: Option<String>,
    shop_domain: Option<String>,
    /// `detail1`…: at most [`limits::DETAILS`]; `None` keeps the numbering of the ones after it.
    details: Vec<Option<String>>,
}

/// A field value of a [`ContactEvent`], as it goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field<'a> {
    /// Text.
    Text(&'a str),
    /// A number (`value`, `date`).
    Number(f64),
}

const DETAIL_NAMES: [&str; limits::DETAILS] = [
    "detail1", "detail2", "detail3", "detail4", "detail5", "detail6", "detail7", "detail8",
    "detail9", "detail10", "detail11", "detail12", "detail13", "detail14", "detail15", "detail16",
    "detail17", "detail18", "detail19", "detail20",
];

fn kept(text: &str, max: usize) -> Option<String> {
    let t = truncate(text.trim(), max);
    (!t.is_empty()).then(|| t.to_owned())
}

impl ContactEvent {
    /// An event of `event_type` that happened at `date` (milliseconds since the epoch).
    pub fn new(event_type: ExternalEventType, date: u64) -> Self {
        ContactEvent {
            event_type,
            date,
            description: None,
            products: None,
            value: None,
            location: None,
            external_id: None,
            shop_domain: None,
            details: Vec::new(),
        }
    }

    /// The event's type.
    pub fn event_type(&self) -> ExternalEventType {
        self.event_type
    }

    /// Sets the type: the mapping fills the fields first, then the configuration has its say.
    pub fn set_event_type(&mut self, event_type: ExternalEventType) {
        self.event_type = event_type;
    }

    /// `externalId`, if set.
    pub fn external_id(&self) -> Option<&str> {
        self.external_id.as_deref()
    }

    /// Sets `description` (≤ 2048). Empty text leaves it unset.
    pub fn set_description(&mut self, text: &str) {
        self.description = kept(text, limits::DESCRIPTION);
    }

    /// Sets `products` from product ids: whole ids only, the overflow left out (≤ 512).
    pub fn set_products(&mut self, ids: &[&str]) {
        // An empty id (or one of only commas and spaces) is left out: the receiver refuses
        // "1,,2", and SALESmanago would file an empty product.
        let list = join(ids, limits::PRODUCTS, true);
        self.products = (!list.is_empty()).then_some(list);
    }

    /// Sets `value`, rounded to cents; a non-finite or absurdly large amount leaves it unset.
    pub fn set_value(&mut self, value: Option<f64>) {
        self.value = value.and_then(number::round2);
    }

    /// Sets `location` (≤ 36).
    pub fn set_location(&mut self, text: &str) {
        self.location = kept(text, limits::LOCATION);
    }

    /// Sets `externalId` (≤ 255).
    pub fn set_external_id(&mut self, text: &str) {
        self.external_id = kept(text, limits::EXTERNAL_ID);
    }

    /// Sets `shopDomain`.
    pub fn set_shop_domain(&mut self, text: &str) {
        self.shop_domain = kept(text, limits::EXTERNAL_ID);
    }

    /// Sets `detail1`… in order from `details`; `None` or empty text leaves that detail unset
    /// but keeps the numbering of the ones after it. At most 20; each ≤ 255. (A slice of
    /// borrowed texts: one copy in the wasm whatever the count, and no text cloned to pass it.)
    pub fn set_details(&mut self, details: &[Option<&str>]) {
        let details = &details[..details.len().min(limits::DETAILS)];
        self.details = Vec::with_capacity(details.len());
        for d in details {
            self.details.push(d.and_then(|d| kept(d, limits::DETAIL)));
        }
    }

    /// The fields that are set, in SALESmanago's names and a stable order.
    pub fn fields(&self) -> Vec<(&'static str, Field<'_>)> {
        let mut out = Vec::new();
        self.each_field(&mut |name, field| out.push((name, field)));
        out
    }

    /// Calls `f` with each field that is set, in [`ContactEvent::fields`]'s order: the one
    /// place that order is written, read by the JSON writer without a list in between.
    fn each_field<'a>(&'a self, f: &mut dyn FnMut(&'static str, Field<'a>)) {
        f("date", Field::Number(self.date as f64));
        f("contactExtEventType", Field::Text(self.event_type.as_str()));
        let texts = [
            ("products", &self.products),
            ("externalId", &self.external_id),
            ("description", &self.description),
            ("location", &self.location),
            ("shopDomain", &self.shop_domain),
        ];
        for (name, text) in texts {
            if let Some(t) = text {
                f(name, Field::Text(t));
            }
        }
        if let Some(v) = self.value {
            f("value", Field::Number(v));
        }
        // By index: `zip` was ~75 B gzip of the wasm. (`set_details` keeps at most DETAILS.)
        #[allow(clippy::needless_range_loop)]
        for at in 0..self.details.len().min(limits::DETAILS) {
            if let Some(d) = &self.details[at] {
                f(DETAIL_NAMES[at], Field::Text(d));
            }
        }
    }

    /// Writes the event as a JSON object with SALESmanago's field names: the same text as
    /// `to_value().to_json()`, without building the object first (this runs for every event).
    pub fn write_json(&self, out: &mut String) {
        out.push('{');
        let mut first = true;
        self.each_field(&mut |name, field| {
            if !std::mem::take(&mut first) {
                out.push(',');
            }
            crate::value::write_json_string(name, out);
            out.push(':');
            match field {
                Field::Text(t) => crate::value::write_json_string(t, out),
                Field::Number(n) => number::push_json(n, out),
            }
        });
        out.push('}');
    }

    /// The event as a JSON-like object with SALESmanago's field names.
    pub fn to_value(&self) -> Value {
        Value::object(self.fields().into_iter().map(|(name, field)| {
            let v = match field {
                Field::Text(t) => Value::from(t),
                Field::Number(n) => Value::Number(n),
            };
            (name, v)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_written_in_capitals_and_read_leniently() {
        assert_eq!(ExternalEventType::ALL.len(), 25);
        assert_eq!(ExternalEventType::Purchase.as_str(), "PURCHASE");
        assert_eq!(ExternalEventType::AppTypeUpsale.as_str(), "APP_TYPE_UPSALE");
        assert_eq!(
            ExternalEventType::parse("visit"),
            Some(ExternalEventType::Visit)
        );
        assert_eq!(
            ExternalEventType::parse(" Phone-Call "),
            Some(ExternalEventType::PhoneCall)
        );
        assert_eq!(ExternalEventType::parse("VISITS"), None);
        assert_eq!(ExternalEventType::parse(""), None);
        for t in ExternalEventType::ALL {
            assert_eq!(ExternalEventType::parse(t.as_str()), Some(*t));
            assert!(t
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_'));
        }
    }

    #[test]
    fn truncates_on_character_boundaries() {
        assert_eq!(truncate("abc", 2), "ab");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("عطر العود", 3), "عطر");
        // An emoji is two UTF-16 units: it is kept whole or not at all.
        assert_eq!(truncate("a😀b", 2), "a");
        assert_eq!(truncate("a😀b", 3), "a😀");
        assert_eq!(truncate("", 0), "");
    }

    #[test]
    fn lists_keep_whole_items() {
        assert_eq!(join_list(&["1001", "1002", "1003"], 9), "1001,1002");
        assert_eq!(join_list(&["1001", "1002", "1003"], 14), "1001,1002,1003");
        assert_eq!(
            join_list(&["Perfume, 100ml", "Musk"], 255),
            "Perfume  100ml,Musk"
        );
        assert_eq!(
            join_list(&["abcdef"], 3),
            "abc",
            "a lone item longer than the limit is cut"
        );
        assert_eq!(join_list(&[], 10), "");
        assert_eq!(
            join_list(&[",x", "y, "], 10),
            "x,y",
            "no space where a comma was"
        );
        assert_eq!(
            join_list(&["ab cd"], 3),
            "ab",
            "a cut item ends in no space"
        );
    }

    #[test]
    fn products_leave_out_ids_of_only_commas() {
        let mut e = ContactEvent::new(ExternalEventType::Cart, 1);
        e.set_products(&[",", " , ", "1", ",2"]);
        assert_eq!(e.to_value().get("products"), Some(&Value::from("1,2")));
        e.set_products(&[","]);
        assert_eq!(e.to_value().get("products"), None);
    }

    #[test]
    fn products_never_cut_an_id() {
        let ids: Vec<String> = (0..200).map(|i| format!("{:06}", 100_000 + i)).collect();
        let mut e = ContactEvent::new(ExternalEventType::Cart, 1);
        e.set_products(&ids.iter().map(String::as_str).collect::<Vec<_>>());
        let v = e.to_value();
        let products = v.get("products").and_then(Value::as_str).unwrap();
        assert!(products.len() <= limits::PRODUCTS);
        assert!(products.split(',').all(|id| id.len() == 6), "{products}");
        assert_eq!(products.split(',').count(), 73, "73*7-1 = 510 ≤ 512 < 517");
    }

    #[test]
    fn fields_are_limited_and_unset_ones_omitted() {
        let mut e = ContactEvent::new(ExternalEventType::Visit, 1_763_829_999_000);
        e.set_description(&"د".repeat(3000));
        e.set_location("store-with-a-very-long-identifier-beyond-36");
        e.set_external_id(&"x".repeat(300));
        e.set_value(Some(f64::NAN));
        e.set_details(&[Some("a"), None, Some(""), Some("d")]);
        let v = e.to_value();
        assert_eq!(
            v.get("description")
                .and_then(Value::as_str)
                .unwrap()
                .chars()
                .count(),
            2048
        );
        assert_eq!(v.get("location").and_then(Value::as_str).unwrap().len(), 36);
        assert_eq!(
            v.get("externalId").and_then(Value::as_str).unwrap().len(),
            255
        );
        assert_eq!(v.get("value"), None, "NaN is never sent");
        assert_eq!(v.get("detail1"), Some(&Value::from("a")));
        assert_eq!(v.get("detail2"), None);
        assert_eq!(v.get("detail3"), None, "empty details are omitted");
        assert_eq!(
            v.get("detail4"),
            Some(&Value::from("d")),
            "numbering is kept"
        );
        assert_eq!(v.get("date"), Some(&Value::Number(1_763_829_999_000.0)));
        assert_eq!(v.get("contactExtEventType"), Some(&Value::from("VISIT")));
    }

    #[test]
    fn json_is_written_as_the_value_would_write_it() {
        let mut e = ContactEvent::new(ExternalEventType::Cart, 1_763_829_999_000);
        e.set_products(&["1001", "10,02"]);
        e.set_value(Some(1234.5));
        e.set_external_id("cart \"1\"");
        e.set_description("line\nbreak \\ عربي");
        e.set_location("shop.example");
        e.set_shop_domain("shop.example");
        e.set_details(&[Some("a"), None, Some("\u{1}c")]);
        let mut direct = String::new();
        e.write_json(&mut direct);
        assert_eq!(direct, e.to_value().to_json());
        let bare = ContactEvent::new(ExternalEventType::Visit, 0);
        let mut direct = String::new();
        bare.write_json(&mut direct);
        assert_eq!(direct, bare.to_value().to_json());
    }

    #[test]
    fn value_is_rounded_to_cents() {
        let mut e = ContactEvent::new(ExternalEventType::Purchase, 0);
        e.set_value(Some(501.004));
        assert_eq!(e.to_value().get("value"), Some(&Value::Number(501.0)));
    }
}
