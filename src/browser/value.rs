//! `JsValue` ⇄ [`Value`], in one place.
//!
//! What the page hands the tracker is untrusted: it may be cyclic, hold getters that throw, be a
//! Proxy, or carry a megabyte string. [`from_js`] reads it within fixed bounds (depth, total
//! nodes, string length) and never throws; what is out of bounds reads as `null`, which the
//! parser then reports as a missing field.

use crate::salesmanago::limits;
use crate::value::Value;
use wasm_bindgen::prelude::*;

/// Nesting read from a payload: `products[i].field` is depth 3; more is never needed.
const MAX_DEPTH: u32 = 6;
/// Values read from one payload in all: bounds the work a cyclic or huge object can cause.
const MAX_NODES: u32 = 5_000;

/// Reads a JavaScript value into a [`Value`], within bounds, without throwing.
///
/// The walk is JavaScript's (`tape` below), in one call: reading field by field from Rust cost a
/// dozen calls across the boundary per field (type checks, `Reflect.get`, each key's string),
/// about an eighth of the tracker's time per event. What comes back is one string of tokens and
/// the numbers, exact, beside it.
pub fn from_js(v: &JsValue) -> Value {
    let text = tape(v, MAX_DEPTH, MAX_NODES, KEEP);
    reader(&text).value().unwrap_or(Value::Null)
}

/// Takes up to `max` events out of the npm entry's queue `list` (a JavaScript array of name,
/// payload, name, payload …; nothing when it is no array) and hands each to `each`, read within
/// the bounds of [`from_js`], all in one call (see [`super::inbox`]).
pub fn take(list: &JsValue, max: u32, each: &mut dyn FnMut(String, Value)) {
    let text = tape_taken(list, max.saturating_mul(2), MAX_DEPTH, MAX_NODES, KEEP);
    if text.is_empty() {
        return;
    }
    let mut reader = reader(&text);
    // Names are texts (the entry makes them so), each followed by its payload.
    while reader.token() == Some(b's') {
        let name = reader.text();
        each(name, reader.value().unwrap_or(Value::Null));
    }
}

const KEEP: u32 = (limits::KEEP_TEXT + 1) as u32;

/// A reader of the last tape.
fn reader(text: &str) -> Tape<'_> {
    Tape {
        rest: text,
        numbers: tape_numbers(true).to_vec().into_iter(),
    }
}

#[wasm_bindgen(inline_js = "let nums = [];
let out = '';
// The value as tokens: n null, t true, f false, d a number (the next of tape_numbers()),
// s text up to a NUL (NULs in the text are dropped), [ items ], { k key NUL value … }.
// Bounds: `depth` levels, `nodes` values in all, text cut to `keep` UTF-16 units; functions,
// symbols, bigints, what is too deep or beyond the budget read as null; a getter or Proxy that
// throws reads as null.
// The bounds of the value being put: module variables, so that `walk` and `text` are made once,
// not as new closures for every payload.
let left = 0;
let deepest = 0;
let longest = 0;
// A regular expression only for the rare text that holds a NUL: `replace` costs even when
// nothing matches, on every key and text of every event.
function text(s) {
  if (s.length > longest) s = s.slice(0, longest);
  return (s.indexOf('\\0') < 0 ? s : s.replace(/\\0/g, '')) + '\\0';
}
function walk(v, d) {
  if (left <= 0) return (out += 'n');
  left--;
  const t = typeof v;
  if (t === 'boolean') return (out += v ? 't' : 'f');
  if (t === 'number') return (nums.push(v), (out += 'd'));
  if (t === 'string') return (out += 's' + text(v));
  if (d >= deepest || v === null || t !== 'object') return (out += 'n');
  if (Array.isArray(v)) {
    out += '[';
    for (let i = 0; i < v.length && left > 0; i++) {
      let item = null;
      try { item = v[i]; } catch (e) {}
      walk(item, d + 1);
    }
    return (out += ']');
  }
  let keys;
  try { keys = Object.keys(v); } catch (e) { return (out += 'n'); }
  out += '{';
  for (const k of keys) {
    if (left <= 0) break;
    let item = null;
    try { item = v[k]; } catch (e) {}
    out += 'k' + text(k);
    walk(item, d + 1);
  }
  out += '}';
}
function put(v, depth, nodes, keep) {
  const start = out.length;
  const counted = nums.length;
  left = nodes;
  deepest = depth;
  longest = keep;
  try { walk(v, 0); } catch (e) { out = out.slice(0, start) + 'n'; nums.length = counted; }
}
export function tape(v, depth, nodes, keep) {
  nums = [];
  out = '';
  put(v, depth, nodes, keep);
  return out;
}
// The first `max` values of `list` (taken out of it), each within the bounds on its own.
export function tape_taken(list, max, depth, nodes, keep) {
  nums = [];
  out = '';
  if (Array.isArray(list)) for (const v of list.splice(0, max)) put(v, depth, nodes, keep);
  return out;
}
export function tape_numbers() { return new Float64Array(nums); }")]
extern "C" {
    fn tape(v: &JsValue, depth: u32, nodes: u32, keep: u32) -> String;
    fn tape_taken(list: &JsValue, max: u32, depth: u32, nodes: u32, keep: u32) -> String;
    /// The numbers of the last tape. (The flag routes the call through wasm-bindgen's glue,
    /// like every other import: the build expects one import module.)
    fn tape_numbers(last: bool) -> js_sys::Float64Array;
}

/// Reads what `tape` wrote. Tokens are ASCII and every text ends at a NUL, so the reader moves
/// over bytes and slices each text out whole (no decoding and re-encoding char by char).
struct Tape<'a> {
    rest: &'a str,
    numbers: std::vec::IntoIter<f64>,
}

impl Tape<'_> {
    fn token(&mut self) -> Option<u8> {
        let t = *self.rest.as_bytes().first()?;
        // A token is one ASCII byte: the slice stays on a char boundary.
        self.rest = self.rest.get(1..)?;
        Some(t)
    }

    fn value(&mut self) -> Option<Value> {
        Some(match self.token()? {
            b't' => Value::Bool(true),
            b'f' => Value::Bool(false),
            b'd' => Value::Number(self.numbers.next()?),
            b's' => Value::String(self.text()),
            b'[' => {
                let mut items = Vec::new();
                while self.rest.as_bytes().first() != Some(&b']') {
                    items.push(self.value()?);
                }
                self.token();
                Value::Array(items)
            }
            b'{' => {
                let mut fields = Vec::new();
                while self.rest.as_bytes().first() == Some(&b'k') {
                    self.token();
                    let key = self.text();
                    fields.push((key, self.value()?));
                }
                self.token(); // }
                Value::Object(fields)
            }
            _ => Value::Null,
        })
    }

    fn text(&mut self) -> String {
        // An index loop: `bytes().position` stays a call per byte in the size-optimised wasm.
        let bytes = self.rest.as_bytes();
        let mut end = 0;
        while end < bytes.len() && bytes[end] != 0 {
            end += 1;
        }
        // NUL is ASCII: both slices are on char boundaries.
        let text = self.rest.get(..end).unwrap_or_default().to_owned();
        self.rest = self.rest.get(end + 1..).unwrap_or_default();
        text
    }
}
