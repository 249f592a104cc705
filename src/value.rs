//! A JSON-like value: what a Salla payload or a tracker configuration is, once it has left
//! JavaScript.
//!
//! The core parses these instead of `serde_json::Value` or `JsValue` so that it stays free of the
//! browser and of serde: the browser shell converts a `JsValue` into a [`Value`] in one place
//! (`browser::value`), and native tests build them from JSON text. Objects keep their keys in the
//! order they arrived, because custom events send their properties "in key order".

use crate::number;

/// A JSON-like value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, and also JavaScript's `undefined`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number; may be NaN or infinite when it came from JavaScript.
    Number(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object, keys in arrival order.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The value of `key` when `self` is an object holding it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// `true` for `null`/`undefined`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// What kind of value this is, in the words a merchant reading a warning would use.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(n) if n.is_nan() => "NaN",
            Value::Number(n) if n.is_infinite() => "an infinite number",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    /// An object from `(key, value)` pairs; a convenience for building protocol bodies.
    pub fn object<K: Into<String>>(fields: impl IntoIterator<Item = (K, Value)>) -> Value {
        // A loop per caller's array length: smaller than one loop behind `dyn Iterator`, whose
        // vtables bring `advance_by` and the rest (and `map().collect()` was ~500 B more).
        let mut out = Vec::new();
        for (k, v) in fields {
            out.push((k.into(), v));
        }
        Value::Object(out)
    }

    /// Compact JSON text, as `JSON.stringify` writes it. Numbers as [`number::push_json`] writes
    /// them: exact to six decimal places, non-finite ones as `null`.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => number::push_json(*n, out),
            Value::String(s) => write_json_string(s, out),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            Value::Object(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string(k, out);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }
}

/// `a == b`, the last byte compared first: texts looked for among many (ids, which are random;
/// a payload's keys) mostly differ there, and this rules them out without a whole comparison.
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    a.as_bytes().last() == b.as_bytes().last() && a == b
}

/// Appends `byte` as two lower-case hex digits (JSON's `\u00XX` escapes, ids).
pub(crate) fn push_hex(byte: u8, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0xf)]));
}

/// Appends `s` as a JSON string literal.
pub(crate) fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    // Runs that need no escape are copied whole. Only ASCII bytes are escaped, so every cut
    // falls between characters. An index loop with the common case tested first: at the
    // wasm's size-first optimisation, `bytes().enumerate()` stays a call per byte, and a
    // burst's first events run in the browser's baseline tier, where that is what costs.
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        at += 1;
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            _ => "\\u00",
        };
        out.push_str(&s[run..at - 1]);
        out.push_str(escape);
        if escape == "\\u00" {
            push_hex(b, out);
        }
        run = at;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

/// serde_json's values, for tests that write payloads as `json!` (the workspace's one such
/// conversion; the `serde_json` feature, or the crate's own tests). Keys come in serde_json's
/// order, which is sorted (its `preserve_order` is off): tests that care about order build
/// objects by hand.
#[cfg(any(test, feature = "serde_json"))]
impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        use serde_json::Value as Json;
        match v {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(b),
            Json::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            Json::String(s) => Value::String(s),
            Json::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            Json::Object(o) => {
                Value::Object(o.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Building values from JSON text in tests.

    /// `json!(...)` as a core [`Value`](super::Value).
    macro_rules! val {
        ($($json:tt)+) => {
            $crate::value::Value::from(serde_json::json!($($json)+))
        };
    }
    pub(crate) use val;
}

#[cfg(test)]
mod tests {
    use super::testing::val;
    use super::*;

    #[test]
    fn json_text_escapes_and_keeps_order() {
        let v = Value::object([
            ("z", Value::from("a\"b\\c\n\u{1}")),
            ("a", Value::Number(1.5)),
            ("n", Value::Number(f64::NAN)),
            ("ar", Value::from("عطر")),
        ]);
        assert_eq!(
            v.to_json(),
            r#"{"z":"a\"b\\c\n\u0001","a":1.5,"n":null,"ar":"عطر"}"#
        );
    }

    #[test]
    fn json_strings_escape_as_json_stringify_does() {
        // Every ASCII control, quotes, backslashes, and text in other scripts around them.
        let text: String = (0u8..0x20)
            .map(char::from)
            .chain("\"\\/ عطر العود — 香水 😀 \u{7f}".chars())
            .collect();
        let mut ours = String::new();
        write_json_string(&text, &mut ours);
        assert_eq!(ours, serde_json::to_string(&text).unwrap());
    }

    #[test]
    fn json_text_round_trips_through_serde() {
        let v = val!({"a": [1, 2.25, null, true, {"b": "x"}], "c": -3});
        let back: serde_json::Value = serde_json::from_str(&v.to_json()).unwrap();
        assert_eq!(
            back,
            serde_json::json!({"a": [1, 2.25, null, true, {"b": "x"}], "c": -3})
        );
    }

    #[test]
    fn get_reads_objects_only() {
        let v = val!({"a": 1});
        assert_eq!(v.get("a"), Some(&Value::Number(1.0)));
        assert_eq!(v.get("b"), None);
        assert_eq!(Value::from("a").get("a"), None);
    }
}
