//! `JsValue` → [`Tape`] and [`Value`], in one place.
//!
//! What the page hands the tracker is untrusted: it may be cyclic, hold getters that throw, be a
//! Proxy, or carry a megabyte string. [`tape_of`] reads it within fixed bounds (depth, total
//! nodes, string length) and never throws; what is out of bounds reads as `null`, which the
//! parser then reports as a missing field.

use crate::salesmanago::limits;
use crate::tape::{Item, Tape};
use crate::value::Value;
use wasm_bindgen::prelude::*;

/// Nesting read from a payload: `products[i].field` is depth 3; more is never needed.
const MAX_DEPTH: u32 = 6;
/// Values read from one payload in all: bounds the work a cyclic or huge object can cause.
const MAX_NODES: u32 = 5_000;

/// Reads a JavaScript value into a [`Tape`], within bounds, without throwing: how an event's
/// payload is kept until the core reads its fields.
///
/// The walk is JavaScript's (`tape` below), in one call: reading field by field from Rust cost a
/// dozen calls across the boundary per field (type checks, `Reflect.get`, each key's string),
/// about an eighth of the tracker's time per event. What comes back is one string of tokens and
/// the numbers, exact, beside it.
pub fn tape_of(v: &JsValue) -> Tape {
    let text = tape(v, MAX_DEPTH, MAX_NODES, KEEP);
    Tape::new(text, numbers())
}

/// Reads a JavaScript value into a [`Value`], within bounds, without throwing (configuration,
/// the page's facts, the bus's inputs: what the core keeps or looks through as a whole).
pub fn from_js(v: &JsValue) -> Value {
    tape_of(v).root().to_value()
}

/// Takes up to `max` events out of the npm entry's queue `list` (a JavaScript array of name,
/// payload, name, payload …; nothing when it is no array) and hands each to `each`, read within
/// the bounds of [`tape_of`], all in one call (see [`super::inbox`]).
pub fn take(list: &JsValue, max: u32, each: &mut dyn FnMut(String, Tape)) {
    let text = tape_taken(list, max.saturating_mul(2), MAX_DEPTH, MAX_NODES, KEEP);
    if text.is_empty() {
        return;
    }
    let all = Tape::new(text, numbers());
    let mut events = all.cursor();
    // Names are texts (the entry makes them so), each followed by its payload.
    while let Some(Item::Text(name)) = events.next_value() {
        let name = name.to_owned();
        each(name, all.split(&mut events).unwrap_or_default());
    }
}

const KEEP: u32 = (limits::KEEP_TEXT + 1) as u32;

/// The numbers of the last tape.
fn numbers() -> Vec<f64> {
    tape_numbers(true).to_vec()
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
