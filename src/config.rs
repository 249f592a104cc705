//! The tracker's configuration, typed and validated (`docs/configuration.md`).
//!
//! The same keys arrive from four places: an `init()` object (`clientId`), a global config object,
//! the script tag's `data-*` attributes (`data-client-id`, or `clientId` through `dataset`), and
//! the query string of the script's `src` (`client_id`). [`Config::from_value`] reads all of those
//! spellings, and values as the browser gives them (booleans as `"true"`, `"1"` or an empty
//! attribute). Each bad value is reported in words a merchant can act on, all at once.

use crate::number;
use crate::salesmanago::{limits, ExternalEventType};
use crate::salla::Kind;
use crate::value::Value;
use crate::words;
use std::fmt;

/// Validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// SALESmanago client id (public).
    pub client_id: String,
    /// Receiver URL for protocol v1.
    pub endpoint: String,
    /// Shop identifier sent as `location`; the Salla store id when unset.
    pub location: Option<String>,
    /// Send the shopper's email when consent allows.
    pub send_email: bool,
    /// Map event names outside the catalog to OTHER.
    pub custom_events: bool,
    /// Log every decision to the console.
    pub debug: bool,
    /// Where SALESmanago's monitoring script comes from (`https://app3.salesmanago.com`), when the
    /// merchant switched `monitoring` on: the tracker loads `<origin>/static/sm.js`.
    pub monitoring: Option<String>,
    overrides: Vec<(EventKey, Override)>,
}

/// What a per-event override names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKey {
    /// A catalog event (either wishlist spelling names the same one).
    Catalog(Kind),
    /// A custom event name, compared exactly.
    Custom(String),
}

/// A per-event override from `events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Override {
    /// `false`: never send this event.
    Off,
    /// `true`: send it, with its default type (OTHER for events that are off by default).
    On,
    /// A type name: send it as this type.
    As(ExternalEventType),
}

/// A configuration key, with the spellings each source uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `clientId`.
    ClientId,
    /// `endpoint`.
    Endpoint,
    /// `location`.
    Location,
    /// `sendEmail`.
    SendEmail,
    /// `customEvents`.
    CustomEvents,
    /// `events`.
    Events,
    /// `debug`.
    Debug,
    /// `monitoring`.
    Monitoring,
    /// `smHost`.
    SmHost,
}

impl Key {
    const ALL: [Key; 9] = [
        Key::ClientId,
        Key::Endpoint,
        Key::Location,
        Key::SendEmail,
        Key::CustomEvents,
        Key::Events,
        Key::Debug,
        Key::Monitoring,
        Key::SmHost,
    ];

    /// The name in `init()` and the global object.
    pub fn name(self) -> &'static str {
        match self {
            Key::ClientId => "clientId",
            Key::Endpoint => "endpoint",
            Key::Location => "location",
            Key::SendEmail => "sendEmail",
            Key::CustomEvents => "customEvents",
            Key::Events => "events",
            Key::Debug => "debug",
            Key::Monitoring => "monitoring",
            Key::SmHost => "smHost",
        }
    }

    /// The attribute on the script tag.
    pub fn attribute(self) -> &'static str {
        match self {
            Key::ClientId => "data-client-id",
            Key::Endpoint => "data-endpoint",
            Key::Location => "data-location",
            Key::SendEmail => "data-send-email",
            Key::CustomEvents => "data-custom-events",
            Key::Events => "data-events",
            Key::Debug => "data-debug",
            Key::Monitoring => "data-monitoring",
            Key::SmHost => "data-sm-host",
        }
    }

    /// Which key `raw` spells: `clientId`, `client_id`, `client-id`, `data-client-id` and
    /// `CLIENTID` all name [`Key::ClientId`].
    fn from_raw(raw: &str) -> Option<Key> {
        let bare = raw.strip_prefix("data-").unwrap_or(raw);
        Key::ALL
            .into_iter()
            .find(|k| same_folded(bare.as_bytes(), k.name().as_bytes()))
    }
}

/// Whether `raw` spells `name` (written without separators) once `_` and `-` are dropped and
/// case is ignored, compared byte by byte (no folded copies: this runs for every key of every
/// source at start-up).
fn same_folded(raw: &[u8], name: &[u8]) -> bool {
    let mut at = 0;
    for &c in raw {
        if c == b'_' || c == b'-' {
            continue;
        }
        match name.get(at) {
            Some(n) if n.eq_ignore_ascii_case(&c) => at += 1,
            _ => return false,
        }
    }
    at == name.len()
}

impl Key {
    /// How a message names the key: "`clientId` (data-client-id on the script tag)".
    fn label(self) -> String {
        words::cat(&["`", self.name(), "` (", self.attribute(), words::ON_THE_TAG])
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// A configuration value that stops the tracker from starting.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// The configuration was not an object.
    NotAnObject,
    /// A required key is missing or empty.
    Missing(Key),
    /// A key's value cannot be used.
    Invalid {
        /// The key.
        key: Key,
        /// Why, in the merchant's terms.
        why: String,
    },
    /// The configuration holds something that must never reach a browser.
    Secret(String),
}

impl ConfigError {
    /// The message for the merchant. (Built without `format!`, as every message the wasm
    /// writes: Rust's formatting machinery would be a few KB of every shopper's download.)
    pub fn message(&self) -> String {
        match self {
            ConfigError::NotAnObject => words::CONFIG_NOT_OBJECT.to_owned(),
            ConfigError::Missing(key) => {
                words::cat(&[&key.label(), " ", words::MISSING, words::TRACKER_OFF])
            }
            ConfigError::Invalid { key, why } => {
                words::cat(&[&key.label(), " ", why, words::TRACKER_OFF])
            }
            ConfigError::Secret(name) => words::cat(&["`", name, words::SECRET]),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ConfigError {}

/// A configuration value that was ignored; the tracker still starts.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigWarning {
    /// A key the tracker does not know (a typo?).
    UnknownKey(String),
    /// An override for a name outside the catalog: it applies to a custom event of that name.
    CustomOverride(String),
    /// `monitoring` is on without a usable `smHost` (`None`: missing; else why not): the
    /// script is not loaded, and the tracker runs — the script is an extra, the events are not.
    NoMonitoring(Option<String>),
}

impl ConfigWarning {
    /// The message for the merchant.
    pub fn message(&self) -> String {
        match self {
            ConfigWarning::UnknownKey(k) => words::cat(&[words::UNKNOWN_KEY, k, words::IGNORED]),
            ConfigWarning::CustomOverride(name) => words::cat(&["`", name, words::CUSTOM_OVERRIDE]),
            ConfigWarning::NoMonitoring(why) => {
                let why = why.as_deref().unwrap_or(words::MISSING);
                words::cat(&[&Key::SmHost.label(), " ", why, words::NO_MONITORING])
            }
        }
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// Keys whose presence means a secret was put in the page.
const SECRET_KEYS: [&str; 5] = ["apikey", "apisecret", "secret", "sha", "password"];

/// Whether `raw`, with everything but ASCII letters and digits dropped and case ignored, ends
/// with `tail` (lowercase): `API_KEY`, `x-api-key` and `smApiKey` all end with `apikey`.
fn ends_with_folded(raw: &str, tail: &str) -> bool {
    let mut at = tail.len();
    for c in raw.bytes().rev() {
        if at == 0 {
            break;
        }
        if c.is_ascii_alphanumeric() {
            if c.to_ascii_lowercase() != tail.as_bytes()[at - 1] {
                return false;
            }
            at -= 1;
        }
    }
    at == 0
}

impl Config {
    /// A configuration with only the required keys; everything else at its default.
    pub fn new(client_id: &str, endpoint: &str) -> Config {
        Config {
            client_id: client_id.to_owned(),
            endpoint: endpoint.to_owned(),
            location: None,
            send_email: false,
            custom_events: false,
            debug: false,
            monitoring: None,
            overrides: Vec::new(),
        }
    }

    /// Reads and validates a configuration object. On success, also returns what was ignored.
    pub fn from_value(v: &Value) -> Result<(Config, Vec<ConfigWarning>), Vec<ConfigError>> {
        let Value::Object(fields) = v else {
            return Err(vec![ConfigError::NotAnObject]);
        };
        let fields: Vec<(&str, &Value)> = fields.iter().map(|(k, v)| (k.as_str(), v)).collect();
        Config::from_fields(&fields)
    }

    /// [`Config::from_value`] over borrowed fields: the sources are merged without copying them.
    fn from_fields(
        fields: &[(&str, &Value)],
    ) -> Result<(Config, Vec<ConfigWarning>), Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut config = Config::new("", "");
        let (mut monitoring, mut sm_host, mut sm_host_problem) = (false, None, None);
        for &(raw, value) in fields {
            let Some(key) = Key::from_raw(raw) else {
                if SECRET_KEYS.iter().any(|s| ends_with_folded(raw, s)) {
                    errors.push(ConfigError::Secret(raw.to_owned()));
                } else {
                    warnings.push(ConfigWarning::UnknownKey(raw.to_owned()));
                }
                continue;
            };
            if value.is_null() {
                continue;
            }
            let result = match key {
                Key::ClientId => text(value)
                    .and_then(client_id)
                    .map(|t| config.client_id = t),
                Key::Endpoint => text(value).and_then(endpoint).map(|t| config.endpoint = t),
                Key::Location => text(value).and_then(location).map(|t| config.location = t),
                Key::SendEmail => flag(value).map(|b| config.send_email = b),
                Key::CustomEvents => flag(value).map(|b| config.custom_events = b),
                Key::Debug => flag(value).map(|b| config.debug = b),
                Key::Monitoring => flag(value).map(|b| monitoring = b),
                Key::SmHost => {
                    match text(value).and_then(origin) {
                        Ok(o) => sm_host = o,
                        Err(why) => sm_host_problem = Some(why),
                    }
                    Ok(())
                }
                Key::Events => overrides(value, &mut warnings).map(|o| config.overrides = o),
            };
            if let Err(why) = result {
                errors.push(ConfigError::Invalid { key, why });
            }
        }
        if config.client_id.is_empty() && !has_error_for(&errors, Key::ClientId) {
            errors.push(ConfigError::Missing(Key::ClientId));
        }
        if config.endpoint.is_empty() && !has_error_for(&errors, Key::Endpoint) {
            errors.push(ConfigError::Missing(Key::Endpoint));
        }
        if monitoring {
            match sm_host {
                Some(o) => config.monitoring = Some(o),
                None => warnings.push(ConfigWarning::NoMonitoring(sm_host_problem)),
            }
        }
        if errors.is_empty() {
            Ok((config, warnings))
        } else {
            Err(errors)
        }
    }

    /// Reads configuration from several sources, most important first (`init()`, the global
    /// object, `data-*` attributes, the script's query string): for each key, the first source
    /// that sets it wins, whichever spelling it uses.
    pub fn from_sources(
        sources: &[Value],
    ) -> Result<(Config, Vec<ConfigWarning>), Vec<ConfigError>> {
        let mut merged: Vec<(&str, &Value)> = Vec::new();
        let mut taken: Vec<Key> = Vec::new();
        for source in sources {
            let Value::Object(fields) = source else {
                continue;
            };
            for (raw, value) in fields {
                if value.is_null() {
                    continue;
                }
                match Key::from_raw(raw) {
                    Some(key) if taken.contains(&key) => {}
                    Some(key) => {
                        taken.push(key);
                        merged.push((raw, value));
                    }
                    None if merged.iter().any(|(k, _)| k == raw) => {}
                    None => merged.push((raw, value)),
                }
            }
        }
        Config::from_fields(&merged)
    }

    /// The override configured for a catalog event, or for a custom event's exact name.
    pub fn override_for(&self, kind: Option<Kind>, name: &str) -> Option<Override> {
        self.overrides.iter().find_map(|(k, o)| {
            let hit = match (k, kind) {
                (EventKey::Catalog(want), Some(have)) => *want == have,
                (EventKey::Custom(want), None) => want == name,
                _ => false,
            };
            hit.then_some(*o)
        })
    }
}

/// Whether the page's query string (`location.search`) asks for debug logging: `sm_debug=1`
/// (or `true`).
pub fn debug_requested(query: &str) -> bool {
    query
        .trim_start_matches('?')
        .split('&')
        .any(|pair| matches!(pair, "sm_debug=1" | "sm_debug=true" | "sm_debug"))
}

fn has_error_for(errors: &[ConfigError], key: Key) -> bool {
    errors
        .iter()
        .any(|e| matches!(e, ConfigError::Invalid { key: k, .. } if *k == key))
}

fn text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.trim().to_owned()),
        other => Err(words::cat(&[words::MUST_BE_TEXT, other.kind()])),
    }
}

fn client_id(t: String) -> Result<String, String> {
    if t.chars().any(char::is_whitespace) || t.chars().nth(64).is_some() {
        return Err(words::cat(&[
            words::BAD_CLIENT_ID,
            crate::salesmanago::truncate(&t, 64),
            "\"",
        ]));
    }
    Ok(t)
}

fn endpoint(t: String) -> Result<String, String> {
    let after_scheme = t
        .strip_prefix("https://")
        .or_else(|| t.strip_prefix("http://"));
    let ok = match after_scheme {
        Some(rest) => !rest.is_empty() && !rest.starts_with('/'),
        // A path on the shop's own domain, such as "/sm/collect".
        None => t.starts_with('/') && !t.starts_with("//"),
    };
    if t.is_empty() {
        return Ok(t);
    }
    if !ok || t.chars().any(char::is_whitespace) {
        return Err(words::cat(&[
            words::BAD_ENDPOINT,
            crate::salesmanago::truncate(&t, 120),
            "\"",
        ]));
    }
    Ok(t)
}

/// `smHost`: the SALESmanago account's host (`app3.salesmanago.com`, as in the account's API
/// endpoint), optionally with `https://` (or `http://`, for a test server) and a port; written
/// as the origin the monitoring script is loaded from.
fn origin(t: String) -> Result<Option<String>, String> {
    let (scheme, host) = match (t.strip_prefix("https://"), t.strip_prefix("http://")) {
        (Some(h), _) => ("https://", h),
        (_, Some(h)) => ("http://", h),
        _ => ("https://", t.as_str()),
    };
    let host = host.trim_end_matches('/');
    if host.is_empty() {
        return Ok(None);
    }
    let ok = host.as_bytes()[0].is_ascii_alphanumeric()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    if !ok {
        return Err(words::cat(&[
            words::BAD_SM_HOST,
            crate::salesmanago::truncate(&t, 120),
            "\"",
        ]));
    }
    Ok(Some(words::cat(&[scheme, host])))
}

fn location(t: String) -> Result<Option<String>, String> {
    let len = t.encode_utf16().count();
    if len > limits::LOCATION {
        return Err(words::cat(&[
            words::MUST_BE_AT_MOST,
            &number::uint(limits::LOCATION as u64),
            words::LOCATION_TOO_LONG,
            &number::uint(len as u64),
        ]));
    }
    Ok((!t.is_empty()).then_some(t))
}

/// A boolean as the browser gives it: `true`, `"true"`, `"1"`, `"yes"`, `"on"`, or an attribute
/// present with no value (`data-debug`).
fn flag(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if *n == 0.0 || *n == 1.0 => Ok(*n == 1.0),
        Value::String(s) => match ["", "true", "1", "yes", "on", "false", "0", "no", "off"]
            .iter()
            .position(|w| s.trim().eq_ignore_ascii_case(w))
        {
            // Compared without a lowered copy: `eq_ignore_ascii_case` is in the wasm anyway.
            Some(at) => Ok(at < 5),
            None => Err(words::cat(&[
                words::MUST_BE_FLAG,
                "\"",
                crate::salesmanago::truncate(s, 40),
                "\"",
            ])),
        },
        other => Err(words::cat(&[words::MUST_BE_FLAG, other.kind()])),
    }
}

fn overrides(
    v: &Value,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Vec<(EventKey, Override)>, String> {
    let Value::Object(fields) = v else {
        return Err(words::cat(&[words::BAD_OVERRIDES, v.kind()]));
    };
    let mut out: Vec<(EventKey, Override)> = Vec::new();
    let mut bad = Vec::new();
    for (name, value) in fields {
        let o = match value {
            Value::Bool(false) => Override::Off,
            Value::Bool(true) => Override::On,
            Value::String(s) => match ExternalEventType::parse(s) {
                Some(t) => Override::As(t),
                None => {
                    bad.push(words::cat(&[
                        "\"",
                        name,
                        "\": \"",
                        crate::salesmanago::truncate(s, 40),
                        words::NOT_A_TYPE,
                    ]));
                    continue;
                }
            },
            other => {
                bad.push(words::cat(&[
                    "\"",
                    name,
                    words::MUST_BE_A_TYPE,
                    other.kind(),
                ]));
                continue;
            }
        };
        let key = match Kind::from_name(name) {
            Some(kind) => EventKey::Catalog(kind),
            None => {
                warnings.push(ConfigWarning::CustomOverride(name.clone()));
                EventKey::Custom(name.trim().to_owned())
            }
        };
        // A later entry for the same event wins. (Replaced in place: `retain` was ~200 B of the
        // wasm for this one use.)
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = o,
            None => out.push((key, o)),
        }
    }
    if bad.is_empty() {
        Ok(out)
    } else {
        // Joined by hand: `[String]::join` would be the only one in the wasm (size).
        let mut message = String::from(words::UNUSABLE_ENTRIES);
        for (i, b) in bad.iter().enumerate() {
            if i > 0 {
                message.push_str("; ");
            }
            message.push_str(b);
        }
        Err(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::testing::val;

    fn ok(v: Value) -> (Config, Vec<ConfigWarning>) {
        Config::from_value(&v).unwrap()
    }

    fn errors(v: Value) -> Vec<String> {
        Config::from_value(&v)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn reads_every_spelling_of_every_key() {
        for (cid, ep) in [
            ("clientId", "endpoint"),
            ("client_id", "endpoint"),
            ("data-client-id", "data-endpoint"),
        ] {
            let (c, w) = ok(Value::object([
                (cid, Value::from("abc123")),
                (ep, Value::from("https://r.example/collect")),
            ]));
            assert!(w.is_empty());
            assert_eq!(c, Config::new("abc123", "https://r.example/collect"));
        }
        let (c, _) = ok(val!({
            "clientId": " abc ", "endpoint": "/sm/collect", "location": "store-1",
            "send_email": "true", "data-custom-events": "", "debug": 1,
            "events": {"Product Viewed": "other", "Wishlist Product Added": false, "Product List Viewed": true}
        }));
        assert_eq!(c.client_id, "abc");
        assert_eq!(c.endpoint, "/sm/collect");
        assert_eq!(c.location.as_deref(), Some("store-1"));
        assert!(c.send_email && c.custom_events && c.debug);
        assert_eq!(
            c.override_for(Some(Kind::ProductViewed), "Product Viewed"),
            Some(Override::As(ExternalEventType::Other))
        );
        assert_eq!(
            c.override_for(
                Some(Kind::ProductAddedToWishlist),
                "Product Added to Wishlist"
            ),
            Some(Override::Off),
            "either wishlist spelling configures the same event"
        );
        assert_eq!(
            c.override_for(Some(Kind::ProductListViewed), "x"),
            Some(Override::On)
        );
        assert_eq!(
            c.override_for(Some(Kind::OrderCompleted), "Order Completed"),
            None
        );
    }

    #[test]
    fn missing_required_keys_are_named_with_their_attribute() {
        assert_eq!(
            errors(val!({})),
            [
                "`clientId` (data-client-id on the script tag) is missing; the tracker is off",
                "`endpoint` (data-endpoint on the script tag) is missing; the tracker is off",
            ]
        );
        assert_eq!(
            errors(val!("x")),
            ["the tracker configuration must be an object"]
        );
    }

    #[test]
    fn every_bad_value_is_explained() {
        let errs = errors(val!({
            "clientId": "has space", "endpoint": "ftp://x", "location": "x".repeat(37),
            "debug": "maybe", "events": {"Product Viewed": "VISITS", "Order Completed": 3}
        }));
        assert_eq!(errs.len(), 5, "{errs:#?}");
        let has = |needle: &str| errs.iter().any(|e| e.contains(needle));
        assert!(has(
            "`clientId` (data-client-id on the script tag) must be the SALESmanago client id"
        ));
        assert!(has("must be the receiver's URL, such as https://collect.example.com/collect, got \"ftp://x\""));
        assert!(has(
            "`location` (data-location on the script tag) must be at most 36 characters"
        ));
        assert!(has("got 37"));
        assert!(has(
            "`debug` (data-debug on the script tag) must be true or false, got \"maybe\""
        ));
        assert!(has("\"VISITS\" is not a SALESmanago event type"));
        assert!(has(
            "\"Order Completed\" must be a type name, true or false, got a number"
        ));
    }

    #[test]
    fn sources_merge_per_key_first_wins() {
        let (c, _) = Config::from_sources(&[
            val!({"endpoint": "https://init.example/c"}),
            val!({"clientId": "global", "debug": false}),
            val!({"clientId": "data", "location": "from-data", "debug": ""}),
            val!({"client_id": "query", "endpoint": "https://query.example/c", "send_email": "1"}),
            Value::Null,
        ])
        .unwrap();
        assert_eq!(c.endpoint, "https://init.example/c");
        assert_eq!(c.client_id, "global");
        assert_eq!(c.location.as_deref(), Some("from-data"));
        assert!(!c.debug, "the global object's false beats the attribute");
        assert!(c.send_email);
    }

    #[test]
    fn monitoring_needs_the_salesmanago_host() {
        let base = |extra: Value| {
            let mut fields = vec![
                ("clientId".to_owned(), Value::from("a")),
                ("endpoint".to_owned(), Value::from("/c")),
            ];
            if let Value::Object(more) = extra {
                fields.extend(more);
            }
            Config::from_value(&Value::Object(fields))
        };
        let host = |v: Value| base(v).unwrap().0.monitoring;
        assert_eq!(host(val!({})), None, "off by default");
        assert_eq!(
            host(val!({"smHost": "app3.salesmanago.com"})),
            None,
            "a host alone loads nothing"
        );
        assert_eq!(
            host(val!({"monitoring": "true", "sm_host": "app3.salesmanago.com"})).as_deref(),
            Some("https://app3.salesmanago.com")
        );
        assert_eq!(
            host(val!({"data-monitoring": "", "data-sm-host": "https://app2.salesmanago.pl/"}))
                .as_deref(),
            Some("https://app2.salesmanago.pl")
        );
        assert_eq!(
            host(val!({"monitoring": true, "smHost": "http://127.0.0.1:8081"})).as_deref(),
            Some("http://127.0.0.1:8081")
        );
        // Monitoring is an extra: without a usable host the script stays away, the tracker runs.
        let warned = |v: Value| -> (Option<String>, Vec<String>) {
            let (config, warnings) = base(v).expect("the tracker still starts");
            let w = warnings.iter().map(ToString::to_string).collect();
            (config.monitoring, w)
        };
        assert_eq!(
            warned(val!({"monitoring": true})),
            (
                None,
                vec!["`smHost` (data-sm-host on the script tag) is missing; SALESmanago's monitoring script is not loaded".to_owned()]
            )
        );
        for bad in [
            "app3.salesmanago.com/static/sm.js",
            "evil.example\"><script>",
            "a b",
        ] {
            let (host, w) = warned(val!({"monitoring": true, "smHost": bad}));
            assert_eq!(host, None, "{bad}");
            assert_eq!(w.len(), 1, "{bad}: {w:?}");
            assert!(
                w[0].contains("must be your SALESmanago host, such as app3.salesmanago.com"),
                "{w:?}"
            );
        }
        assert_eq!(
            warned(val!({"smHost": "a b"})),
            (None, vec![]),
            "a bad host with monitoring off harms nothing"
        );
    }

    #[test]
    fn debug_from_the_page_url() {
        assert!(debug_requested("?a=1&sm_debug=1"));
        assert!(debug_requested("sm_debug=true"));
        assert!(!debug_requested("?sm_debug=0"));
        assert!(!debug_requested("?xsm_debug=1"));
        assert!(!debug_requested(""));
    }

    #[test]
    fn endpoints() {
        for good in [
            "https://a.example",
            "http://127.0.0.1:8080/collect",
            "/collect",
        ] {
            assert!(endpoint(good.into()).is_ok(), "{good}");
        }
        for bad in [
            "a.example/collect",
            "https://",
            "//a.example",
            "https:///x",
            "https://a b",
        ] {
            assert!(endpoint(bad.into()).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_refused() {
        let errs =
            errors(val!({"clientId": "a", "endpoint": "/c", "apiSecret": "s", "api_key": "k"}));
        assert_eq!(errs.len(), 2);
        assert!(errs
            .iter()
            .any(|e| e.starts_with("`apiSecret` must never be in a web page")));
        assert!(errs
            .iter()
            .any(|e| e.starts_with("`api_key` must never be in a web page")));
    }

    #[test]
    fn key_spellings_fold_byte_by_byte() {
        for raw in [
            "clientId",
            "client_id",
            "client-id",
            "data-client-id",
            "CLIENTID",
            "Client__Id",
        ] {
            assert_eq!(Key::from_raw(raw), Some(Key::ClientId), "{raw}");
        }
        for raw in [
            "clientIds",
            "client",
            "",
            "data-",
            "cliëntId",
            "data-data-client-id",
        ] {
            assert_eq!(Key::from_raw(raw), None, "{raw}");
        }
        assert_eq!(Key::from_raw("SM_HOST"), Some(Key::SmHost));
        for raw in [
            "API_KEY",
            "x-api-key",
            "smApiKey",
            "db.Password",
            "SHA",
            "ünsecret",
        ] {
            assert!(
                SECRET_KEYS.iter().any(|s| ends_with_folded(raw, s)),
                "{raw}"
            );
        }
        for raw in ["key", "apikeys", "shadow", "ecret", "a"] {
            assert!(
                !SECRET_KEYS.iter().any(|s| ends_with_folded(raw, s)),
                "{raw}"
            );
        }
    }

    #[test]
    fn unknown_keys_and_custom_overrides_warn() {
        let (c, w) = ok(val!({"clientId": "a", "endpoint": "/c", "clientID2": 1,
                              "events": {"Loyalty Redeemed": "OTHER"}}));
        assert_eq!(
            w.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "unknown configuration key `clientID2` ignored",
                "`Loyalty Redeemed` in `events` is not a Salla catalog event; the override applies to a custom event of exactly that name",
            ]
        );
        assert_eq!(
            c.override_for(None, "Loyalty Redeemed"),
            Some(Override::As(ExternalEventType::Other))
        );
        assert_eq!(c.override_for(None, "Other"), None);
    }
}
