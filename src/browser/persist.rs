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
use web_sys::Storage;

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
    /// one new record, then removes the records none of whose events are left. With `tidy`,
    /// also the records that lost only some (their other events go into the new record): before
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

/// [`Store`] over the page's `localStorage`, when the page has one.
struct Page(Storage);

impl Store for Page {
    fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        for i in 0..self.0.length().unwrap_or(0) {
            if let Some(key) = self.0.key(i).ok().flatten() {
                keys.push(key);
            }
        }
        keys
    }

    fn has(&self, key: &str) -> bool {
        self.0.get_item(key).ok().flatten().is_some()
    }

    fn load(&self, key: &str) -> Option<Value> {
        load_from(&self.0, key)
    }

    fn set(&mut self, key: &str, text: &str) -> bool {
        self.0.set_item(key, text).is_ok()
    }

    fn remove(&mut self, key: &str) {
        let _ = self.0.remove_item(key);
    }
}

/// This page's memory: nothing outlives the page, and the outbox itself is the only copy.
pub struct Memory;

fn local() -> Option<Storage> {
    super::page::window()?.local_storage().ok().flatten()
}

/// The value stored under `key`; `None` if absent, unreadable or not JSON.
pub fn load(key: &str) -> Option<Value> {
    load_from(&local()?, key)
}

fn load_from(storage: &Storage, key: &str) -> Option<Value> {
    let text = storage.get_item(key).ok()??;
    JSON::parse(&text).ok().map(|v| from_js(&v))
}

/// Stores `value` under `key` as JSON. `false` if the page's storage refused it.
pub fn save(key: &str, value: &Value) -> bool {
    local().is_some_and(|storage| storage.set_item(key, &value.to_json()).is_ok())
}

/// Removes `key`; failures are ignored (there is nothing left to do about them).
pub fn remove(key: &str) {
    if let Some(storage) = local() {
        let _ = storage.remove_item(key);
    }
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
    local()?.get_item(ANONYMOUS_ID_KEY).ok()?
}

/// Keeps the anonymous id; `false` if refused (it then lives as long as the page).
pub fn save_anonymous_id(id: &str) -> bool {
    local().is_some_and(|storage| storage.set_item(ANONYMOUS_ID_KEY, id).is_ok())
}

impl Persist for Local {
    fn shared(&self) -> bool {
        true
    }

    fn keep(&mut self, outbox: &mut Outbox, tidy: bool) -> bool {
        match local() {
            Some(storage) => self.records().keep(&mut Page(storage), outbox, tidy),
            None => false,
        }
    }

    fn remove(&mut self, ids: &[String]) {
        if !ids.is_empty() {
            self.records().removed();
        }
    }

    fn events(&mut self, held: &[Entry]) -> Option<(Vec<Entry>, usize)> {
        Some(match local() {
            Some(storage) => self.records().events(&mut Page(storage), held),
            None => (Vec::new(), 0),
        })
    }

    fn take_unanswered(&self) -> Option<(u64, Vec<String>)> {
        let text = take_unanswered_text()?;
        let mut lines = text.split('\n');
        let sent = lines.next().and_then(number::parse).unwrap_or(0.0);
        Some((sent as u64, lines.map(str::to_owned).collect()))
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
        if let Some(storage) = local() {
            let _ = storage.set_item(UNANSWERED_KEY, &text);
        }
    }
}

/// The unanswered record as stored, removed as it is read.
fn take_unanswered_text() -> Option<String> {
    let text = local()?.get_item(UNANSWERED_KEY).ok()??;
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
