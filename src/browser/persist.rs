//! Where the outbox and the held cart are kept between pages. The outbox's events are kept
//! behind [`Persist`]: the page's `localStorage`, shared by the store's tabs, or, once it
//! refuses a write, this page's memory. The cart is one small record, always tried in
//! `localStorage`.
//!
//! Events are kept many to a record: what a slice of work queued is written as one record at
//! its end (and before anything is sent or read back), not one record per event. Each
//! `setItem` is a trip to the browser's storage whatever its size, and per event it was the
//! largest single cost of a burst (`bench/compare.mjs`). A record's key is never reused (this
//! tab's id and a counter), so its content never changes: another tab that read it can trust
//! its own copy while the key exists. When some of a record's events leave the queue, the rest
//! are written into the next record and the old one is removed after that write.
//!
//! Every storage call may throw (storage disabled, quota exceeded, a sandboxed iframe): each
//! failure reads as "nothing stored" and writes as `false`.

use super::value::from_js;
use crate::number;
use crate::outbox::{Entry, Outbox};
use crate::value::Value;
use js_sys::JSON;
use web_sys::Storage;

/// Where the held cart is kept between pages.
const CART_KEY: &str = "sm_salla_cart";
/// Where this browser's anonymous id is kept, as plain text (`docs/mapping.md` §4).
const ANONYMOUS_ID_KEY: &str = "sm_aid";
/// Earlier versions kept each event under this prefix and its id; still read.
const OUTBOX_PREFIX: &str = "sm:o:";
/// Records of several events, under this prefix, the writing tab's id and its counter. A prefix
/// of its own: an earlier version still running in another tab ignores these rather than
/// removing them as damaged.
const RECORD_PREFIX: &str = "sm:g:";
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
    /// This tab's id: the first part of its records' keys.
    tab: String,
    /// The records this tab knows (wrote, or read from other tabs), by number, ascending.
    records: Vec<Record>,
    /// The last record number handed out (0 means "kept nowhere" on an [`Entry`]).
    last: u32,
    /// Events left the queue since the last [`Persist::keep`].
    removed: bool,
}

/// One stored record as this tab knows it.
struct Record {
    number: u32,
    key: String,
    /// How many events it holds.
    events: u32,
    /// Scratch, for the pass under way: how many of its events are still queued, and whether
    /// this tab goes on knowing it.
    live: u32,
    keep: bool,
}

impl Local {
    /// Storage for the tab named `tab`.
    pub fn new(tab: &str) -> Self {
        Local {
            tab: tab.to_owned(),
            records: Vec::new(),
            last: 0,
            removed: false,
        }
    }

    fn known(&self, number: u32) -> bool {
        self.records.iter().any(|r| r.number == number)
    }

    fn add(&mut self, key: String, events: u32) -> u32 {
        self.last += 1;
        self.records.push(Record {
            number: self.last,
            key,
            events,
            live: 0,
            keep: true,
        });
        self.last
    }

    /// Forgets the records not marked to keep.
    fn prune(&mut self) {
        self.records.retain(|r| r.keep);
    }
}

/// This page's memory: nothing outlives the page, and the outbox itself is the only copy.
pub struct Memory;

fn local() -> Option<Storage> {
    super::page::window()?.local_storage().ok().flatten()
}

/// The value stored under `key`; `None` if absent, unreadable or not JSON.
pub fn load(key: &str) -> Option<Value> {
    let text = local()?.get_item(key).ok()??;
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
        if !self.removed && outbox.entries().iter().all(|e| e.record != 0) {
            return true;
        }
        let Some(storage) = local() else {
            return false;
        };
        // How many of each record's events are still queued.
        for r in &mut self.records {
            r.live = 0;
        }
        for e in outbox.entries() {
            if let Some(r) = self.records.iter_mut().find(|r| r.number == e.record) {
                r.live += 1;
            }
        }
        // Records none of whose events are left go; records that lost only some are written
        // anew with the new events when tidying (else they wait: a drop to make room in a
        // burst would rewrite a record per slice).
        let (mut replaced, mut partial, mut waiting) = (Vec::new(), Vec::new(), false);
        for r in &mut self.records {
            let whole = r.live == r.events;
            r.keep = whole || !tidy && r.live > 0;
            waiting |= !whole && r.keep;
            if r.keep {
                continue;
            }
            // Unless another tab already took the record (and sent what is in it): its events
            // are not written back.
            if r.live > 0 && storage.get_item(&r.key).ok().flatten().is_some() {
                partial.push(r.number);
            }
            replaced.push(std::mem::take(&mut r.key));
        }
        self.prune();
        self.removed = waiting;
        let mut text = String::from("[");
        let mut n = 0;
        for e in outbox.entries_mut() {
            if partial.contains(&e.record) {
                e.record = 0;
            }
            if e.record == 0 {
                if n > 0 {
                    text.push(',');
                }
                text.push_str(&e.to_record());
                n += 1;
            }
        }
        if n > 0 {
            text.push(']');
            let key = [
                RECORD_PREFIX,
                &self.tab,
                ".",
                &number::uint(u64::from(self.last + 1)),
            ]
            .concat();
            if storage.set_item(&key, &text).is_err() {
                // What it would have replaced stays: resent at worst, never lost.
                return false;
            }
            let record = self.add(key, n);
            for e in outbox.entries_mut() {
                if e.record == 0 {
                    e.record = record;
                }
            }
        }
        for key in replaced {
            let _ = storage.remove_item(&key);
        }
        true
    }

    fn remove(&mut self, ids: &[String]) {
        self.removed |= !ids.is_empty();
    }

    fn events(&mut self, held: &[Entry]) -> Option<(Vec<Entry>, usize)> {
        let Some(storage) = local() else {
            return Some((Vec::new(), 0));
        };
        // The keys first: removing a damaged record while walking the keys would shift them.
        let mut keys = Vec::new();
        for i in 0..storage.length().unwrap_or(0) {
            if let Some(key) = storage.key(i).ok().flatten() {
                if key.starts_with(RECORD_PREFIX) || key.starts_with(OUTBOX_PREFIX) {
                    keys.push(key);
                }
            }
        }
        for r in &mut self.records {
            r.keep = false;
        }
        let (mut read, mut damaged) = (Vec::new(), 0);
        for key in keys {
            // Ours, or one read before: the copy this tab holds is as good as storage's, and
            // far cheaper than reading and parsing it again on every send.
            if let Some(r) = self.records.iter_mut().find(|r| r.key == key) {
                r.keep = true;
                continue;
            }
            let id = key.strip_prefix(OUTBOX_PREFIX).unwrap_or("");
            let items = match load(&key) {
                Some(Value::Array(items)) if id.is_empty() => items,
                Some(item @ Value::Object(_)) if !id.is_empty() => vec![item],
                _ => Vec::new(),
            };
            // A record is read whole or not at all: one damaged item and it is removed.
            let mut entries = Vec::new();
            for item in &items {
                match Entry::from_record(id, item) {
                    Some(e) => entries.push(e),
                    None => break,
                }
            }
            if entries.is_empty() || entries.len() < items.len() {
                remove(&key);
                damaged += 1;
                continue;
            }
            let record = self.add(key, entries.len() as u32);
            for mut e in entries {
                e.record = record;
                read.push(e);
            }
        }
        // Records gone from storage were sent or dropped by another tab.
        self.prune();
        let mut events = Vec::new();
        for e in held {
            if self.known(e.record) {
                events.push(e.clone());
            }
        }
        events.append(&mut read);
        Some((events, damaged))
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
