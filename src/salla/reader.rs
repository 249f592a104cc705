//! Lenient reading of one payload's fields (`docs/mapping.md` §2, "Reading payloads").
//!
//! Salla's data is untyped: prices and quantities may be numeric text, ids may be numbers, any
//! field may be missing. The [`Reader`] takes what is usable, leaves out what is not with a
//! [`Warning`] that names the field, and keeps text to the longest SALESmanago field. It knows
//! no event; which fields an event takes is its payload type's business.

use super::error::Problem;
use crate::number;
use crate::salesmanago::{limits, truncate};
use crate::tape::{Item, List};
use crate::value::same_text;
use crate::words;
use std::fmt;

/// A field left out of an event because its value could not be used.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    /// The event's name.
    pub event: String,
    /// The field, e.g. `price` or `products[2].quantity`.
    pub field: String,
    /// What the field must be.
    pub expected: &'static str,
    /// What it was.
    pub got: String,
}

impl Warning {
    /// The message for the merchant. (Built without `format!`, as every message the wasm
    /// writes: Rust's formatting machinery would be a few KB of every shopper's download.)
    pub fn message(&self) -> String {
        words::cat(&[
            "`",
            &self.field,
            words::MUST_BE,
            self.expected,
            words::GOT,
            &self.got,
            " in ",
            &self.event,
            words::SENT_WITHOUT_IT,
        ])
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// Reads fields of one payload object, straight from its tape, collecting warnings for
/// unusable ones.
pub(super) struct Reader<'a> {
    event: &'a str,
    /// `products[2].` while reading a line; empty at the top level.
    prefix: String,
    /// The object's fields, found on the tape once: a lookup then compares keys only, rather
    /// than walking the tape past every field before it (an event reads ten or so).
    fields: Vec<(&'a str, Item<'a>)>,
    warnings: Vec<Warning>,
}

/// The fields of an object, in order.
fn fields_of(mut list: List<'_>) -> Vec<(&str, Item<'_>)> {
    let mut out = Vec::new();
    while let Some(field) = list.next_field() {
        out.push(field);
    }
    out
}

/// A short, safe rendering of a bad value for a warning: never the whole of a 1 MB string.
pub(super) fn describe(v: &Item<'_>) -> String {
    match *v {
        Item::Text(s) => {
            let short = truncate(s, 40);
            let more = if short.len() < s.len() { "…" } else { "" };
            let mut out = String::from("\"");
            out.push_str(short);
            out.push_str(more);
            out.push('"');
            out
        }
        Item::Bool(b) => (if b { "true" } else { "false" }).to_owned(),
        other => other.kind().to_owned(),
    }
}

/// A finite number as text: whole numbers (ids) in full, others with at most two decimals.
fn number_text(n: f64) -> Option<String> {
    if !n.is_finite() {
        return None;
    }
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        let mut s = String::new();
        if n < 0.0 {
            s.push('-');
        }
        number::push_uint(n.abs() as u64, &mut s);
        return Some(s);
    }
    let s = number::format(n);
    (!s.is_empty()).then_some(s)
}

impl<'a> Reader<'a> {
    /// A reader of the top-level `fields` of the event named `event` (the name warnings give).
    pub(super) fn new(event: &'a str, fields: List<'a>) -> Self {
        Reader {
            event,
            prefix: String::new(),
            fields: fields_of(fields),
            warnings: Vec::new(),
        }
    }

    /// What was left out, in the order it was read.
    pub(super) fn into_warnings(self) -> Vec<Warning> {
        self.warnings
    }

    fn get(&self, key: &str) -> Option<Item<'a>> {
        // Most keys differ from the one looked for in their last byte.
        for (k, v) in &self.fields {
            if same_text(k, key) {
                return Some(*v).filter(|v| !v.is_null());
            }
        }
        None
    }

    fn warn(&mut self, key: &str, expected: &'static str, got: &Item<'_>) {
        let mut field = self.prefix.clone();
        field.push_str(key);
        self.warnings.push(Warning {
            event: self.event.to_owned(),
            field,
            expected,
            got: describe(got),
        });
    }

    /// Text, or a number written as text. Empty text reads as missing.
    pub(super) fn text(&mut self, key: &str) -> Option<String> {
        let v = self.get(key)?;
        let text = match v {
            Item::Text(s) => Some(truncate(s.trim(), limits::KEEP_TEXT).to_owned()),
            Item::Number(n) => number_text(n),
            _ => None,
        };
        if text.is_none() {
            self.warn(key, "text", &v);
        }
        text.filter(|t| !t.is_empty())
    }

    /// Text the event cannot be sent without: missing, empty or unusable is a [`Problem`].
    pub(super) fn required_text(&mut self, key: &'static str) -> Result<String, Problem> {
        match self.get(key) {
            None => Err(Problem::MissingField { field: key }),
            Some(v) => {
                let before = self.warnings.len();
                match self.text(key) {
                    Some(t) => Ok(t),
                    None if self.warnings.len() > before => {
                        self.warnings.truncate(before);
                        Err(Problem::WrongType {
                            field: key,
                            expected: "text",
                            got: describe(&v),
                        })
                    }
                    None => Err(Problem::MissingField { field: key }),
                }
            }
        }
    }

    /// A finite number, or text that reads as one.
    pub(super) fn number(&mut self, key: &str) -> Option<f64> {
        let v = self.get(key)?;
        let n = match v {
            Item::Number(n) if n.is_finite() => Some(n),
            Item::Text(s) if s.trim().is_empty() => return None,
            Item::Text(s) => number::parse(s),
            _ => None,
        };
        if n.is_none() {
            self.warn(key, "a number", &v);
        }
        n
    }

    /// `quantity`: a positive number; `None` where missing or unusable.
    pub(super) fn quantity(&mut self) -> Option<f64> {
        match self.number("quantity") {
            Some(q) if q > 0.0 => Some(q),
            Some(q) => {
                self.warn("quantity", "a positive number", &Item::Number(q));
                None
            }
            None => None,
        }
    }

    /// `key` as an array of objects, each read by `read` under its own field prefix
    /// (`products[2].`). An item that is not an object, or that `read` refuses, is left out with
    /// a warning; the refused field's warning says the item must be `expected`.
    pub(super) fn objects<T>(
        &mut self,
        key: &str,
        expected: &'static str,
        mut read: impl FnMut(&mut Reader<'a>) -> Result<T, Problem>,
    ) -> Vec<T> {
        let Some(v) = self.get(key) else {
            return Vec::new();
        };
        let Item::Array(mut items) = v else {
            self.warn(key, "an array", &v);
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(item) = items.next_value() {
            let mut prefix = String::from(key);
            prefix.push('[');
            number::push_uint(i, &mut prefix);
            prefix.push_str("].");
            i += 1;
            let Item::Object(fields) = item else {
                self.warnings.push(Warning {
                    event: self.event.to_owned(),
                    field: prefix.trim_end_matches('.').to_owned(),
                    expected: "an object",
                    got: describe(&item),
                });
                continue;
            };
            let mut sub = Reader {
                event: self.event,
                prefix,
                fields: fields_of(fields),
                warnings: Vec::new(),
            };
            let read = read(&mut sub);
            if let Err(problem) = &read {
                let (field, got) = match problem {
                    Problem::WrongType { field, got, .. } => (*field, got.clone()),
                    Problem::MissingField { field } => (*field, "nothing".to_owned()),
                    _ => ("", "nothing".to_owned()),
                };
                sub.warnings.push(Warning {
                    event: self.event.to_owned(),
                    field: words::cat(&[sub.prefix.as_str(), field]),
                    expected,
                    got,
                });
            }
            self.warnings.append(&mut sub.warnings);
            if let Ok(item) = read {
                out.push(item);
            }
        }
        out
    }

    /// The first non-empty text `field` among the objects of the array `key`, read without
    /// warnings (a fallback: the array's own reading reports what is wrong with it).
    pub(super) fn first_text_in(&self, key: &str, field: &str) -> Option<String> {
        let Some(Item::Array(mut items)) = self.get(key) else {
            return None;
        };
        while let Some(item) = items.next_value() {
            if let Item::Object(fields) = item {
                if let Some(Item::Text(s)) = fields.get(field) {
                    if !s.trim().is_empty() {
                        return Some(truncate(s.trim(), limits::KEEP_TEXT).to_owned());
                    }
                }
            }
        }
        None
    }

    /// Scalar properties as text, in key order, for custom events.
    pub(super) fn scalars(&self) -> Vec<(String, String)> {
        // A loop: the filter/filter_map/collect chain was ~500 B of the wasm.
        let mut out = Vec::new();
        for &(k, v) in &self.fields {
            let text = match v {
                _ if k == "event_id" => continue,
                Item::Text(s) => truncate(s.trim(), limits::DETAIL).to_owned(),
                Item::Number(n) => match number_text(n) {
                    Some(t) => t,
                    None => continue,
                },
                Item::Bool(b) => (if b { "true" } else { "false" }).to_owned(),
                _ => continue,
            };
            out.push((truncate(k, limits::DETAIL).to_owned(), text));
        }
        out
    }
}
