//! Where the outbox and the held cart are kept between pages. The outbox's events are kept
//! behind [`Persist`]: the page's `localStorage`, shared by the store's tabs, or, once it
//! refuses an event, this page's memory. The cart is one small record, always tried in
//! `localStorage`.
//!
//! Every storage call may throw (storage disabled, quota exceeded, a sandboxed iframe): each
//! failure reads as "nothing stored" and writes as `false`.

use super::value::from_js;
use crate::number;
use crate::outbox::Entry;
use crate::value::Value;
use js_sys::JSON;
use web_sys::Storage;

/// Where the held cart is kept between pages.
const CART_KEY: &str = "sm_salla_cart";
/// Where this browser's anonymous id is kept, as plain text (`docs/mapping.md` §4).
const ANONYMOUS_ID_KEY: &str = "sm_aid";
/// Each queued event is kept under this prefix and its id, so tabs never overwrite each other.
const OUTBOX_PREFIX: &str = "sm:o:";
/// The ids a page left without seeing their answer, and when (`docs/protocol.md` §2.1).
const UNANSWERED_KEY: &str = "sm:u";

/// A place for the outbox's events.
pub trait Persist {
    /// Other tabs of the store read and write the same events: one tab sends at a time (under
    /// the lease), and takes the others' events too.
    fn shared(&self) -> bool;
    /// Keeps a queued event; `false` if refused.
    fn put(&self, entry: &Entry) -> bool;
    /// Forgets these events.
    fn remove(&self, ids: &[String]);
    /// Every event kept, by this tab or another, those in `held` taken from it (a kept event
    /// never changes), and how many damaged records were removed; `None` when nothing is kept
    /// beyond this tab's own queue.
    fn events(&self, held: &[Entry]) -> Option<(Vec<Entry>, usize)>;
    /// What earlier pages left unanswered: when they left (ms), and the ids; forgotten as it
    /// is read.
    fn take_unanswered(&self) -> Option<(u64, Vec<String>)> {
        None
    }
    /// Keeps, for the next page, the ids this one leaves unanswered at `now_ms` (`\nid\nid…`).
    fn keep_unanswered(&self, _now_ms: u64, _ids: &str) {}
}

/// The page's `localStorage`.
pub struct Local;

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

fn event_key(id: &str) -> String {
    [OUTBOX_PREFIX, id].concat()
}

impl Persist for Local {
    fn shared(&self) -> bool {
        true
    }

    fn put(&self, entry: &Entry) -> bool {
        local().is_some_and(|storage| {
            storage
                .set_item(&event_key(&entry.id), &entry.to_record())
                .is_ok()
        })
    }

    fn remove(&self, ids: &[String]) {
        for id in ids {
            remove(&event_key(id));
        }
    }

    fn events(&self, held: &[Entry]) -> Option<(Vec<Entry>, usize)> {
        let Some(storage) = local() else {
            return Some((Vec::new(), 0));
        };
        // The ids first: removing a damaged record while walking the keys would shift them.
        let mut ids = Vec::new();
        for i in 0..storage.length().unwrap_or(0) {
            if let Some(key) = storage.key(i).ok().flatten() {
                if let Some(id) = key.strip_prefix(OUTBOX_PREFIX) {
                    ids.push(id.to_owned());
                }
            }
        }
        let (mut events, mut damaged) = (Vec::new(), 0);
        for id in ids {
            // The copy this tab holds is as good as storage's, and far cheaper than reading and
            // parsing it again on every send.
            if let Some(e) = held.iter().find(|e| e.id == id) {
                events.push(e.clone());
                continue;
            }
            let key = event_key(&id);
            match load(&key).and_then(|r| Entry::from_record(&id, &r)) {
                Some(e) => events.push(e),
                None => {
                    remove(&key);
                    damaged += 1;
                }
            }
        }
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

    fn put(&self, _: &Entry) -> bool {
        true
    }

    fn remove(&self, _: &[String]) {}

    fn events(&self, _: &[Entry]) -> Option<(Vec<Entry>, usize)> {
        None
    }
}
