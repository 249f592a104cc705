//! A payload as it crossed from JavaScript: one text of tokens, and its numbers beside it.
//!
//! The shell reads what the page hands the tracker in one call (`browser::value`), into this
//! form: ASCII tokens, every text whole and ending at a NUL, and the numbers, exact, in a list of
//! their own. An event's payload stays in it until the Salla reader takes the fields it needs
//! straight out of it ([`Item`], [`List`]), borrowed: no tree of owned keys and texts is built
//! and dropped for every event (that was about a tenth of the wasm's allocations per event).
//!
//! Tokens: `n` null, `t` true, `f` false, `d` a number (the next of the numbers), `s` text up to
//! a NUL, `[` items `]`, `{` (`k` key NUL, value)… `}`. Texts never hold a NUL (the writer drops
//! them), so every slice taken at a token or a NUL is on a character boundary.

use crate::value::{same_text, Value};
use std::rc::Rc;

/// One payload: its tokens and its numbers. The events the shell reads in one call share one
/// text: each is a range of it, so queueing an event copies and allocates nothing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tape {
    all: Rc<(String, Vec<f64>)>,
    /// This value's bytes of the text.
    start: usize,
    end: usize,
    /// Its first number.
    first: usize,
}

/// A value read from a tape, borrowing its texts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Item<'a> {
    /// `null`, `undefined`, and whatever could not be read.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number; may be NaN or infinite.
    Number(f64),
    /// A text.
    Text(&'a str),
    /// An array: its items.
    Array(List<'a>),
    /// An object: its fields, in arrival order.
    Object(List<'a>),
}

/// The inside of an array or an object, read from its start: a cursor that moves as it is read.
/// Copies are cheap; each reads from where it was copied.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct List<'a> {
    rest: &'a str,
    numbers: &'a [f64],
}

impl Tape {
    /// A tape from the shell's tokens and numbers.
    pub fn new(text: String, numbers: Vec<f64>) -> Tape {
        Tape {
            end: text.len(),
            all: Rc::new((text, numbers)),
            start: 0,
            first: 0,
        }
    }

    /// The value on the tape (`null` for an empty one).
    pub fn root(&self) -> Item<'_> {
        self.cursor().next_value().unwrap_or(Item::Null)
    }

    /// A cursor over the whole tape: a sequence of values, without brackets around them.
    pub fn cursor(&self) -> List<'_> {
        let (text, numbers) = &*self.all;
        List {
            rest: text.get(self.start..self.end).unwrap_or_default(),
            numbers: numbers.get(self.first..).unwrap_or_default(),
        }
    }

    /// The value at `at` (a cursor of this tape's) as a tape of its own, sharing this one's
    /// text, and `at` moved past it: what the shell queues for one event.
    pub fn split(&self, at: &mut List<'_>) -> Option<Tape> {
        let start = self.end.saturating_sub(at.rest.len());
        let first = self.all.1.len().saturating_sub(at.numbers.len());
        at.next_value()?;
        Some(Tape {
            all: self.all.clone(),
            start,
            end: self.end.saturating_sub(at.rest.len()),
            first,
        })
    }
}

impl From<&Value> for Tape {
    /// The tape of a [`Value`]: for payloads the shell built as values (Twilight's bus, the
    /// page's user) and for tests.
    fn from(v: &Value) -> Tape {
        let mut w = Writer::default();
        w.put(v);
        Tape::new(w.text, w.numbers)
    }
}

/// Writes a [`Value`]'s tokens.
#[derive(Default)]
struct Writer {
    text: String,
    numbers: Vec<f64>,
}

impl Writer {
    fn put(&mut self, v: &Value) {
        match v {
            Value::Null => self.text.push('n'),
            Value::Bool(b) => self.text.push(if *b { 't' } else { 'f' }),
            Value::Number(n) => {
                self.text.push('d');
                self.numbers.push(*n);
            }
            Value::String(s) => self.put_text('s', s),
            Value::Array(items) => {
                self.text.push('[');
                for item in items {
                    self.put(item);
                }
                self.text.push(']');
            }
            Value::Object(fields) => {
                self.text.push('{');
                for (k, item) in fields {
                    self.put_text('k', k);
                    self.put(item);
                }
                self.text.push('}');
            }
        }
    }

    fn put_text(&mut self, token: char, s: &str) {
        self.text.push(token);
        // As the page's side does: a NUL would end the text early.
        for part in s.split('\0') {
            self.text.push_str(part);
        }
        self.text.push('\0');
    }
}

impl<'a> List<'a> {
    /// The next value, moved past; `None` at the end of the list (or of a damaged tape).
    pub fn next_value(&mut self) -> Option<Item<'a>> {
        let token = self.token()?;
        Some(match token {
            b't' => Item::Bool(true),
            b'f' => Item::Bool(false),
            b'd' => {
                let (n, rest) = self.numbers.split_first()?;
                self.numbers = rest;
                Item::Number(*n)
            }
            b's' => Item::Text(self.text()),
            b'[' | b'{' => {
                let inside = *self;
                self.skip_inside();
                if token == b'[' {
                    Item::Array(inside)
                } else {
                    Item::Object(inside)
                }
            }
            _ => Item::Null,
        })
    }

    /// The next field of an object, moved past: its key and its value.
    pub fn next_field(&mut self) -> Option<(&'a str, Item<'a>)> {
        if self.rest.as_bytes().first() != Some(&b'k') {
            return None;
        }
        self.rest = self.rest.get(1..)?;
        let key = self.text();
        Some((key, self.next_value().unwrap_or(Item::Null)))
    }

    /// The value of `key` in this object, read from its start.
    pub fn get(&self, key: &str) -> Option<Item<'a>> {
        let mut fields = *self;
        // Each lookup is against every field of the payload: most keys differ from the one
        // looked for in their last byte.
        while let Some((k, v)) = fields.next_field() {
            if same_text(k, key) {
                return Some(v);
            }
        }
        None
    }

    /// A token that opens a value; `None` at a closing bracket or the end.
    fn token(&mut self) -> Option<u8> {
        let t = *self.rest.as_bytes().first()?;
        if t == b']' || t == b'}' {
            return None;
        }
        // A token is one ASCII byte: the slice stays on a char boundary.
        self.rest = self.rest.get(1..)?;
        Some(t)
    }

    /// The text up to the next NUL, moved past.
    fn text(&mut self) -> &'a str {
        // An index loop: `bytes().position` stays a call per byte in the size-optimised wasm.
        let bytes = self.rest.as_bytes();
        let mut end = 0;
        while end < bytes.len() && bytes[end] != 0 {
            end += 1;
        }
        // NUL is ASCII: both slices are on char boundaries.
        let text = self.rest.get(..end).unwrap_or_default();
        self.rest = self.rest.get(end + 1..).unwrap_or_default();
        text
    }

    /// Moves past the rest of this array or object and its closing bracket.
    fn skip_inside(&mut self) {
        let mut depth = 1u32;
        while let Some(&b) = self.rest.as_bytes().first() {
            self.rest = self.rest.get(1..).unwrap_or_default();
            match b {
                b's' | b'k' => {
                    self.text();
                }
                b'd' => self.numbers = self.numbers.get(1..).unwrap_or_default(),
                b'[' | b'{' => depth += 1,
                b']' | b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }
}

impl Item<'_> {
    /// `true` for `null`/`undefined`.
    pub fn is_null(&self) -> bool {
        matches!(self, Item::Null)
    }

    /// What kind of value this is, in the words a merchant reading a warning would use (as
    /// [`Value::kind`]).
    pub fn kind(&self) -> &'static str {
        match self {
            Item::Null => "null",
            Item::Bool(_) => "a boolean",
            Item::Number(n) if n.is_nan() => "NaN",
            Item::Number(n) if n.is_infinite() => "an infinite number",
            Item::Number(_) => "a number",
            Item::Text(_) => "a string",
            Item::Array(_) => "an array",
            Item::Object(_) => "an object",
        }
    }

    /// The value, owned: what the shell hands the parts of the core that keep values
    /// (configuration, the page's facts, the bus's routes).
    pub fn to_value(&self) -> Value {
        match *self {
            Item::Null => Value::Null,
            Item::Bool(b) => Value::Bool(b),
            Item::Number(n) => Value::Number(n),
            Item::Text(s) => Value::String(s.to_owned()),
            Item::Array(mut items) => {
                let mut out = Vec::new();
                while let Some(item) = items.next_value() {
                    out.push(item.to_value());
                }
                Value::Array(out)
            }
            Item::Object(mut fields) => {
                let mut out = Vec::new();
                while let Some((k, v)) = fields.next_field() {
                    out.push((k.to_owned(), v.to_value()));
                }
                Value::Object(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::testing::val;

    #[test]
    fn a_value_goes_onto_a_tape_and_comes_back_the_same() {
        let v = val!({
            "a": 1.5, "s": "عطر 🌹", "n": null, "t": true, "f": false,
            "list": [1, "x", {"deep": [2, [3]], "after": 4}, [], {}],
            "last": -0.25
        });
        let tape = Tape::from(&v);
        assert_eq!(tape.root().to_value(), v);
        // Every number once, beside the text (in key order: `json!` sorts the keys).
        assert_eq!(tape.all.1, [1.5, -0.25, 1.0, 4.0, 2.0, 3.0]);
    }

    #[test]
    fn fields_are_found_past_nested_values_with_their_numbers() {
        let tape = Tape::from(&val!({
            "products": [{"price": 1, "q": [2, 3]}, {"price": 4}],
            "price": 5,
            "name": "x"
        }));
        let Item::Object(fields) = tape.root() else {
            panic!()
        };
        assert_eq!(fields.get("price"), Some(Item::Number(5.0)));
        assert_eq!(fields.get("name"), Some(Item::Text("x")));
        assert_eq!(fields.get("missing"), None);
        let Some(Item::Array(mut items)) = fields.get("products") else {
            panic!()
        };
        let Some(Item::Object(second)) = items.nth_for_test(1) else {
            panic!()
        };
        assert_eq!(second.get("price"), Some(Item::Number(4.0)));
    }

    #[test]
    fn nul_is_dropped_from_texts_and_keys() {
        let tape = Tape::from(&val!({"a\u{0}b": "c\u{0}d"}));
        assert_eq!(tape.root().to_value(), val!({"ab": "cd"}));
    }

    #[test]
    fn values_split_off_a_sequence_keep_their_own_numbers() {
        // A sequence without brackets around it, as the shell's queue of events is.
        let seq = Tape::from(&val!([1, {"x": [2, "t"]}, "s", null, 3]));
        let (text, numbers) = &*seq.all;
        let seq = Tape::new(text[1..text.len() - 1].to_owned(), numbers.clone());
        let mut cursor = seq.cursor();
        let parts: Vec<Tape> = std::iter::from_fn(|| seq.split(&mut cursor)).collect();
        let values: Vec<Value> = parts.iter().map(|t| t.root().to_value()).collect();
        let want = [
            val!(1),
            val!({"x": [2, "t"]}),
            val!("s"),
            Value::Null,
            val!(3),
        ];
        assert_eq!(values, want);
        // Each reads its own numbers, and the parts share the one text.
        assert_eq!(parts[4].root(), Item::Number(3.0));
        assert!(Rc::ptr_eq(&parts[0].all, &parts[4].all));
        // A part split again reads within its own range.
        let mut inner = parts[1].cursor();
        let again = parts[1].split(&mut inner).unwrap();
        assert_eq!(again.root().to_value(), want[1]);
        assert!(inner.next_value().is_none());
    }

    #[test]
    fn a_damaged_tape_reads_as_far_as_it_goes_without_panicking() {
        for text in ["", "d", "{k", "{kx\0", "[s", "{kx\0[d", "]", "}}", "sabc"] {
            let tape = Tape::new(text.to_owned(), Vec::new());
            let _ = tape.root().to_value();
            let mut c = tape.cursor();
            while tape.split(&mut c).is_some() {}
        }
        let tape = Tape::new("{kx\0".to_owned(), Vec::new());
        assert_eq!(tape.root().to_value(), val!({"x": null}));
    }

    impl<'a> List<'a> {
        fn nth_for_test(&mut self, n: usize) -> Option<Item<'a>> {
            for _ in 0..n {
                self.next_value()?;
            }
            self.next_value()
        }
    }
}
