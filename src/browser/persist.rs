//! Where the outbox and the held cart are kept between pages. The outbox's events are kept
//! behind [`Persist`]: the page's `localStorage`, shared by the store's tabs, as records of many
//! events ([`crate::kept`] says how), or, once it refuses a write, this page's memory. The cart is
//! one small record, always tried in `localStorage`.
//!
//! Every storage call may throw (storage disabled, quota exceeded, a sandboxed iframe): each
//! failure reads as "nothing stored" and writes as `false`.

use super::value::from_js;
use crate::kept::{Records, Store};
use crate::number;
use crate::outbox::{Entry, Outbox};
use crate::value::Value;
use js_sys::JSON;
use wasm_bindgen::prelude::*;

// The page's `localStorage` through one function rather than web-sys's six (the storage object,
// getItem, setItem, removeItem, key, length): every import is glue in every shopper's download.
// Whatever throws (storage disabled, quota exceeded, a sandboxed iframe) reads as `undefined`.
#[wasm_bindgen(inline_js = "export function store(op, key, text) {
  try {
    const s = localStorage;
    if (op === 0) return s.getItem(key) ?? undefined;
    if (op === 1) return s.setItem(key, text), '';
    if (op === 2) return s.removeItem(key), '';
    const keys = [];
    for (let i = 0; i < s.length; i++) keys.push(s.key(i));
    return keys.join('\\n');
  } catch (e) {}
}")]
extern "C" {
    /// `op` 0: the text under `key`; 1: sets it to `text` (`Some("")` once stored); 2: removes
    /// it; 3: every key, one per line. `None` when the page's storage is missing or refused.
    fn store(op: u8, key: &str, text: &str) -> Option<String>;
}

/// The text stored under `key`.
fn get(key: &str) -> Option<String> {
    store(0, key, "")
}

/// Stores `text` under `key`; `false` if refused.
fn set(key: &str, text: &str) -> bool {
    store(1, key, text).is_some()
}

/// Where the held cart is kept between pages.
const CART_KEY: &str = "sm_salla_cart";
/// Where this browser's anonymous id is kept, as plain text (`docs/mapping.md` §4).
const ANONYMOUS_ID_KEY: &str = "sm_aid";
/// The ids a page left without seeing their answer, and when (`docs/protocol.md` §2.1).
const UNANSWERED_KEY: &str = "sm:u";

/// A place for the outbox's events.
pub trait Persist {
    /// Other tabs of the store read and write the same events: one tab sends at a time (under
    /// the lease), and takes the others' events too.
    fn shared(&self) -> bool;
    /// Writes what changed in the outbox since the last call: the events kept nowhere yet as
    /// new records, then removes the records none of whose events are left. With `tidy`,
    /// also the records that lost only some (their other events go into the new records): before
    /// anything is sent or read back, so that no tab takes an event that already left.
    /// `false` if storage refused the write (the events stay in memory).
    fn keep(&mut self, outbox: &mut Outbox, tidy: bool) -> bool;
    /// These events left the queue: their records are tidied at the next [`Persist::keep`].
    fn remove(&mut self, ids: &[String]);
    /// Every event kept, by this tab or another (this tab's own taken from `held`: a record
    /// never changes), and how many damaged records were removed; `None` when nothing is kept
    /// beyond this tab's own queue. Call [`Persist::keep`] first.
    fn events(&mut self, held: &[Entry]) -> Option<(Vec<Entry>, usize)>;
    /// What earlier pages left unanswered: when they left (ms), and the ids; forgotten as it
    /// is read.
    fn take_unanswered(&self) -> Option<(u64, Vec<String>)> {
        None
    }
    /// Keeps, for the next page, the ids this one leaves unanswered at `now_ms` (`\nid\nid…`).
    fn keep_unanswered(&self, _now_ms: u64, _ids: &str) {}
}

/// The page's `localStorage`.
pub struct Local {
    records: Option<Records>,
}

impl Local {
    /// Storage for this tab; its records are named when it first writes one.
    pub fn new() -> Self {
        Local { records: None }
    }

    fn records(&mut self) -> &mut Records {
        self.records
            .get_or_insert_with(|| Records::new(&super::page::random_id()))
    }
}

/// [`Store`] over the page's `localStorage`.
struct Page;

impl Store for Page {
    fn keys(&self) -> Vec<String> {
        // A key with a line break in it (none of the tracker's has one) comes back in pieces
        // that name no record.
        store(3, "", "")
            .map(|keys| super::owned_lines(&keys))
            .unwrap_or_default()
    }

    fn has(&self, key: &str) -> bool {
        get(key).is_some()
    }

    fn load(&self, key: &str) -> Option<Value> {
        load(key)
    }

    fn set(&mut self, key: &str, text: &str) -> bool {
        set(key, text)
    }

    fn remove(&mut self, key: &str) {
        remove(key);
    }
}

/// This page's memory: nothing outlives the page, and the outbox itself is the only copy.
pub struct Memory;

/// The value stored under `key`; `None` if absent, unreadable or not JSON.
pub fn load(key: &str) -> Option<Value> {
    JSON::parse(&get(key)?).ok().map(|v| from_js(&v))
}

/// Stores `value` under `key` as JSON. `false` if the page's storage refused it.
pub fn save(key: &str, value: &Value) -> bool {
    set(key, &value.to_json())
}

/// Removes `key`; failures are ignored (there is nothing left to do about them).
pub fn remove(key: &str) {
    store(2, key, "");
}

/// The held cart an earlier page kept.
pub fn cart() -> Option<Value> {
    load(CART_KEY)
}

/// Keeps the held cart; `false` if refused.
pub fn save_cart(cart: &Value) -> bool {
    save(CART_KEY, cart)
}

/// The anonymous id an earlier page kept.
pub fn anonymous_id() -> Option<String> {
    get(ANONYMOUS_ID_KEY)
}

/// Keeps the anonymous id; `false` if refused (it then lives as long as the page).
pub fn save_anonymous_id(id: &str) -> bool {
    set(ANONYMOUS_ID_KEY, id)
}

impl Persist for Local {
    fn shared(&self) -> bool {
        true
    }

    fn keep(&mut self, outbox: &mut Outbox, tidy: bool) -> bool {
        self.records().keep(&mut Page, outbox, tidy)
    }

    fn remove(&mut self, ids: &[String]) {
        if !ids.is_empty() {
            self.records().removed();
        }
    }

    fn events(&mut self, held: &[Entry]) -> Option<(Vec<Entry>, usize)> {
        Some(self.records().events(&mut Page, held))
    }

    fn take_unanswered(&self) -> Option<(u64, Vec<String>)> {
        let text = take_unanswered_text()?;
        let (sent, ids) = match text.split_once('\n') {
            Some((sent, rest)) => (sent, super::owned_lines(rest)),
            None => (text.as_str(), Vec::new()),
        };
        Some((number::parse(sent).unwrap_or(0.0) as u64, ids))
    }

    fn keep_unanswered(&self, now_ms: u64, ids: &str) {
        if ids.is_empty() {
            return;
        }
        // The time, then one id per line.
        let mut text = number::uint(now_ms);
        text.push_str(ids);
        // Another tab may have left some too: theirs are kept after these.
        if let Some(earlier) = take_unanswered_text() {
            text.push_str(earlier.find('\n').map_or("", |at| &earlier[at..]));
        }
        set(UNANSWERED_KEY, &text);
    }
}

/// The unanswered record as stored, removed as it is read.
fn take_unanswered_text() -> Option<String> {
    let text = get(UNANSWERED_KEY)?;
    remove(UNANSWERED_KEY);
    Some(text)
}

impl Persist for Memory {
    fn shared(&self) -> bool {
        false
    }

    fn keep(&mut self, _: &mut Outbox, _: bool) -> bool {
        true
    }

    fn remove(&mut self, _: &[String]) {}

    fn events(&mut self, _: &[Entry]) -> Option<(Vec<Entry>, usize)> {
        None
    }
}
