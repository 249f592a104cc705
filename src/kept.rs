//! How the outbox is kept in a store shared by the store's tabs (the page's `localStorage` in
//! the browser), as records of many events: what a slice of work queued is written at its end,
//! and before anything is sent or read back, as records of at most about [`RECORD_BYTES`]
//! (`docs/protocol.md` §3). A batch takes whole records where it can (`Outbox::take`): a record
//! half sent is written again, without its sent events, and a burst's records were written
//! twice (`node bench/compare.mjs --event=viewed`: 0.57 MB written for 1,000 events, now 0.35).
//!
//! Why records and not one key per event: each write is a trip to the browser's storage whatever
//! its size, and per event it was the largest single cost of a burst (`bench/compare.mjs`).
//!
//! The rules:
//! - a record's key is never reused (the writing tab's id and its counter), so its content never
//!   changes: a tab that read a record trusts its own copy for as long as the key exists;
//! - when some of a record's events leave the queue, the rest are written into the next record
//!   and the old one is removed after that write (a page dying in between leaves a copy: resent
//!   at worst, never lost);
//! - a record another tab already removed (it sent what was in it) is never written back;
//! - a record is read whole or not at all: a damaged one is removed and counted.
//!
//! Pure: the store is a trait, so two tabs sharing one store are tested natively.

use crate::number;
use crate::outbox::{Entry, Outbox};
use crate::value::Value;
use crate::words;

/// Earlier versions kept each event under this prefix and its id; still read.
pub const EVENT_PREFIX: &str = "sm:o:";
/// Records of several events, under this prefix, the writing tab's id and its counter. A prefix
/// of its own: an earlier version still running in another tab ignores these rather than
/// removing them as damaged.
pub const RECORD_PREFIX: &str = "sm:g:";

/// A record is closed once its text reaches this size: a quarter of a request's body, so a
/// batch takes several whole records.
const RECORD_BYTES: usize = crate::outbox::MAX_BODY_BYTES / 4;

/// A key-value store shared by the store's tabs. Every call may fail: a failed read is "nothing
/// stored", a failed write `false`.
pub trait Store {
    /// Every key held.
    fn keys(&self) -> Vec<String>;
    /// Whether `key` is held.
    fn has(&self, key: &str) -> bool;
    /// The JSON stored under `key`, parsed; `None` if absent or not JSON.
    fn load(&self, key: &str) -> Option<Value>;
    /// Stores `text` under `key`; `false` if refused.
    fn set(&mut self, key: &str, text: &str) -> bool;
    /// Removes `key`.
    fn remove(&mut self, key: &str);
}

/// The records one tab knows: those it wrote, and those it read from other tabs.
#[derive(Debug)]
pub struct Records {
    /// This tab's id: the first part of its records' keys.
    tab: String,
    /// By number, ascending.
    records: Vec<Record>,
    /// The last record number handed out (0 means "kept nowhere" on an [`Entry`]).
    last: u32,
    /// Events left the queue since the last [`Records::keep`] that tidied.
    removed: bool,
}

/// One stored record as this tab knows it.
#[derive(Debug)]
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

impl Records {
    /// The records of the tab named `tab` (a random id: keys of two tabs never collide).
    pub fn new(tab: &str) -> Self {
        Records {
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

    /// Some events left the queue: their records are tidied at the next [`Records::keep`].
    pub fn removed(&mut self) {
        self.removed = true;
    }

    /// Writes what changed in the outbox since the last call: the events kept nowhere yet as
    /// new records (see [`RECORD_BYTES`]), then removes the records none of whose events are
    /// left. With `tidy`, also the records that lost only some (their other events go into the
    /// new records): before anything is sent or read back, so that no tab takes an event that
    /// already left. Without, those wait: a burst that outruns sending drops an event to make
    /// room on every push, and would rewrite a record per slice. `false` if the store refused a write (the events not
    /// written stay in the outbox, and what the writes would have replaced stays stored).
    pub fn keep(&mut self, store: &mut impl Store, outbox: &mut Outbox, tidy: bool) -> bool {
        if !self.removed && outbox.entries().iter().all(|e| e.record != 0) {
            return true;
        }
        // How many of each record's events are still queued.
        for r in &mut self.records {
            r.live = 0;
        }
        for e in outbox.entries() {
            if let Some(r) = self.records.iter_mut().find(|r| r.number == e.record) {
                r.live += 1;
            }
        }
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
            if r.live > 0 && store.has(&r.key) {
                partial.push(r.number);
            }
            replaced.push(std::mem::take(&mut r.key));
        }
        self.prune();
        self.removed = waiting;
        // The events kept nowhere yet, in records of at most RECORD_BYTES: a batch takes whole
        // records (`Outbox::take`), so a sent batch leaves none half-sent to write again. (A
        // refused write leaves numbers of records never written: the shell keeps the rest of
        // the page in memory then.)
        let (mut text, mut n) = (String::new(), 0);
        for e in outbox.entries_mut() {
            if partial.contains(&e.record) {
                e.record = 0;
            }
            if e.record == 0 {
                text.push(if n == 0 { '[' } else { ',' });
                e.write_record(&mut text);
                e.record = self.last + 1;
                n += 1;
                if text.len() >= RECORD_BYTES && !self.write(store, &mut text, &mut n) {
                    return false;
                }
            }
        }
        if !self.write(store, &mut text, &mut n) {
            return false;
        }
        for key in replaced {
            store.remove(&key);
        }
        true
    }

    /// Stores `text`, the `n` events numbered as the next record, as that record, and empties
    /// both; `true` when there was nothing to write.
    fn write(&mut self, store: &mut impl Store, text: &mut String, n: &mut u32) -> bool {
        if *n == 0 {
            return true;
        }
        text.push(']');
        let next = number::uint(u64::from(self.last + 1));
        let key = words::cat(&[RECORD_PREFIX, &self.tab, ".", &next]);
        if !store.set(&key, text) {
            return false;
        }
        self.add(key, std::mem::take(n));
        text.clear();
        true
    }

    /// Every event stored, by this tab or another (this tab's own, and those it read before,
    /// taken from `held`: a record never changes), and how many damaged records were removed.
    /// Call [`Records::keep`] with `tidy` first.
    pub fn events(&mut self, store: &mut impl Store, held: &[Entry]) -> (Vec<Entry>, usize) {
        for r in &mut self.records {
            r.keep = false;
        }
        let (mut read, mut damaged) = (Vec::new(), 0);
        for key in store.keys() {
            if !key.starts_with(RECORD_PREFIX) && !key.starts_with(EVENT_PREFIX) {
                continue;
            }
            if let Some(r) = self.records.iter_mut().find(|r| r.key == key) {
                r.keep = true;
                continue;
            }
            let id = key.strip_prefix(EVENT_PREFIX).unwrap_or("");
            let items = match store.load(&key) {
                Some(Value::Array(items)) if id.is_empty() => items,
                Some(item @ Value::Object(_)) if !id.is_empty() => vec![item],
                _ => Vec::new(),
            };
            let mut entries = Vec::new();
            for item in &items {
                match Entry::from_record(id, item) {
                    Some(e) => entries.push(e),
                    None => break,
                }
            }
            if entries.is_empty() || entries.len() < items.len() {
                store.remove(&key);
                damaged += 1;
                continue;
            }
            let record = self.add(key, entries.len() as u32);
            for mut e in entries {
                e.record = record;
                read.push(e);
            }
        }
        // Records gone from the store were sent or dropped by another tab.
        self.prune();
        let mut events = Vec::new();
        for e in held {
            if self.known(e.record) {
                events.push(e.clone());
            }
        }
        events.append(&mut read);
        (events, damaged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Class;
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;

    /// One store shared by every tab of a test, as `localStorage` is; `refuse` makes writes fail.
    #[derive(Clone, Default)]
    struct Shared {
        map: Rc<RefCell<BTreeMap<String, String>>>,
        refuse: Rc<RefCell<bool>>,
        writes: Rc<RefCell<usize>>,
    }

    impl Store for Shared {
        fn keys(&self) -> Vec<String> {
            self.map.borrow().keys().cloned().collect()
        }
        fn has(&self, key: &str) -> bool {
            self.map.borrow().contains_key(key)
        }
        fn load(&self, key: &str) -> Option<Value> {
            let text = self.map.borrow().get(key)?.clone();
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .map(Value::from)
        }
        fn set(&mut self, key: &str, text: &str) -> bool {
            if *self.refuse.borrow() {
                return false;
            }
            *self.writes.borrow_mut() += 1;
            self.map.borrow_mut().insert(key.into(), text.into());
            true
        }
        fn remove(&mut self, key: &str) {
            self.map.borrow_mut().remove(key);
        }
    }

    impl Shared {
        /// The ids stored, in every record, sorted.
        fn ids(&self) -> Vec<String> {
            let mut ids = Vec::new();
            for key in self.keys() {
                match self.load(&key) {
                    Some(Value::Array(items)) => ids.extend(
                        items
                            .iter()
                            .map(|i| i.get("i").and_then(Value::as_str).unwrap().to_owned()),
                    ),
                    _ => ids.push(key["sm:o:".len()..].to_owned()),
                }
            }
            ids.sort();
            ids
        }
    }

    /// One tab: its outbox and its records.
    struct Tab {
        outbox: Outbox,
        records: Records,
        store: Shared,
    }

    impl Tab {
        fn new(name: &str, store: &Shared) -> Tab {
            Tab {
                outbox: Outbox::default(),
                records: Records::new(name),
                store: store.clone(),
            }
        }
        fn queue(&mut self, ids: &[&str]) {
            for id in ids {
                let t = self.outbox.queue_time(1);
                let json = format!("{{\"id\":\"{id}\"}}");
                self.outbox
                    .push(Entry::new(id.to_string(), json, t, Class::Other));
            }
        }
        fn keep(&mut self, tidy: bool) -> bool {
            self.records.keep(&mut self.store, &mut self.outbox, tidy)
        }
        /// What the lease does before sending: keep, then take what the store holds.
        fn sync(&mut self) -> usize {
            assert!(self.keep(true));
            let (events, damaged) = self.records.events(&mut self.store, self.outbox.entries());
            self.outbox.sync(events);
            damaged
        }
        fn ids(&self) -> Vec<&str> {
            self.outbox
                .entries()
                .iter()
                .map(|e| e.id.as_str())
                .collect()
        }
        /// Sends the next batch and acknowledges it.
        fn send(&mut self) -> Vec<String> {
            let batch = self.outbox.take(0, usize::MAX).unwrap();
            self.outbox.ack(&batch.ids);
            self.records.removed();
            batch.ids
        }
    }

    #[test]
    fn a_slice_of_events_is_one_write_and_an_ack_removes_it() {
        let store = Shared::default();
        let mut tab = Tab::new("a", &store);
        tab.queue(&["1", "2", "3"]);
        assert!(tab.keep(false));
        assert_eq!(*store.writes.borrow(), 1);
        assert_eq!(store.keys(), ["sm:g:a.1"]);
        assert_eq!(store.ids(), ["1", "2", "3"]);
        // Nothing changed: nothing written.
        assert!(tab.keep(false));
        assert_eq!(*store.writes.borrow(), 1);
        tab.send();
        assert!(tab.keep(false));
        assert!(store.keys().is_empty());
    }

    #[test]
    fn a_burst_is_kept_in_records_a_batch_takes_whole_so_sending_rewrites_nothing() {
        let store = Shared::default();
        let mut tab = Tab::new("a", &store);
        // 20 events of 4 KB, queued in one slice: a record closes at its fourth (16 KB).
        for i in 0..20 {
            let t = tab.outbox.queue_time(1);
            let json = format!("{{\"x\":\"{}\"}}", "x".repeat(4_000));
            tab.outbox
                .push(Entry::new(i.to_string(), json, t, Class::Other));
        }
        assert!(tab.keep(false));
        assert_eq!(*store.writes.borrow(), 5);
        assert!(store
            .map
            .borrow()
            .values()
            .all(|text| text.len() < RECORD_BYTES + 4_100));
        // 15 would fit in a body; the batch ends where the fourth record begins.
        let batch = tab
            .outbox
            .take(0, crate::outbox::MAX_BODY_BYTES)
            .expect("due");
        assert_eq!(batch.ids.len(), 12);
        tab.outbox.ack(&batch.ids);
        tab.records.removed();
        assert!(tab.keep(true));
        assert_eq!(*store.writes.borrow(), 5, "nothing written again");
        assert_eq!(store.keys().len(), 2);
        assert_eq!(store.ids().len(), 8);
    }

    #[test]
    fn a_record_larger_than_a_body_is_split_by_the_batch_and_its_rest_written_anew() {
        let store = Shared::default();
        let mut tab = Tab::new("a", &store);
        let big = |tab: &mut Tab, id: &str| {
            let t = tab.outbox.queue_time(1);
            let json = format!("{{\"x\":\"{}\"}}", "x".repeat(10_000));
            tab.outbox
                .push(Entry::new(id.to_owned(), json, t, Class::Other));
        };
        // One record of 70 KB: written by an earlier version, or one event over the size.
        for i in 0..7 {
            big(&mut tab, &i.to_string());
        }
        let text = format!(
            "[{}]",
            tab.outbox
                .entries()
                .iter()
                .map(Entry::to_record)
                .collect::<Vec<_>>()
                .join(",")
        );
        store.map.borrow_mut().insert("sm:g:b.1".into(), text);
        let mut tab = Tab::new("a", &store);
        assert_eq!(tab.sync(), 0);
        let batch = tab
            .outbox
            .take(0, crate::outbox::MAX_BODY_BYTES)
            .expect("due");
        assert_eq!(
            batch.ids.len(),
            6,
            "as many as fit: no record boundary to cut at"
        );
        tab.outbox.ack(&batch.ids);
        tab.records.removed();
        assert!(tab.keep(true));
        assert_eq!(store.ids(), ["6"]);
    }

    #[test]
    fn a_record_that_lost_some_events_is_written_anew_when_tidying_only() {
        let store = Shared::default();
        let mut tab = Tab::new("a", &store);
        tab.queue(&["1", "2", "3"]);
        tab.keep(false);
        tab.outbox.forget(&["2".into()]);
        tab.records.removed();
        tab.queue(&["4"]);
        // Without tidying, the new event is written and the old record waits.
        tab.keep(false);
        assert_eq!(store.ids(), ["1", "2", "3", "4"]);
        tab.keep(true);
        assert_eq!(store.ids(), ["1", "3", "4"]);
        // "4" stays where it was written; "1" and "3" went into a new record. Every key is new:
        // none is ever written twice with two contents.
        assert_eq!(store.keys(), ["sm:g:a.2", "sm:g:a.3"]);
    }

    #[test]
    fn another_tab_sends_what_this_one_kept_and_this_one_lets_it_go() {
        let store = Shared::default();
        let (mut a, mut b) = (Tab::new("a", &store), Tab::new("b", &store));
        a.queue(&["1", "2"]);
        a.keep(false);
        b.queue(&["3"]);
        b.keep(false);
        assert_eq!(b.sync(), 0);
        let mut ids = b.ids();
        ids.sort();
        assert_eq!(ids, ["1", "2", "3"]);
        b.send();
        b.keep(true);
        assert!(store.keys().is_empty());
        // A learns that its events are gone (sent by B) at its next sync.
        a.sync();
        assert!(a.ids().is_empty());
    }

    #[test]
    fn a_record_another_tab_already_removed_is_never_written_back() {
        let store = Shared::default();
        let (mut a, mut b) = (Tab::new("a", &store), Tab::new("b", &store));
        a.queue(&["1", "2", "3"]);
        a.keep(false);
        b.sync();
        b.send();
        b.keep(true);
        // A, not synced since, drops one of those events: the rest must not come back.
        a.outbox.forget(&["1".into()]);
        a.records.removed();
        assert!(a.keep(true));
        assert!(store.ids().is_empty(), "{:?}", store.ids());
    }

    #[test]
    fn a_refused_write_keeps_what_it_would_have_replaced() {
        let store = Shared::default();
        let mut tab = Tab::new("a", &store);
        tab.queue(&["1", "2"]);
        tab.keep(false);
        tab.outbox.forget(&["1".into()]);
        tab.records.removed();
        tab.queue(&["3"]);
        *store.refuse.borrow_mut() = true;
        assert!(!tab.keep(true));
        // The old record stays whole: "2" is still stored (and "1" resent at worst).
        assert_eq!(store.ids(), ["1", "2"]);
        assert_eq!(tab.ids(), ["2", "3"]);
    }

    #[test]
    fn damaged_records_are_removed_and_counted_and_earlier_versions_read() {
        let mut store = Shared::default();
        store.set("sm:g:x.1", "not json");
        store.set(
            "sm:g:x.2",
            r#"[{"i":"ok","t":1,"c":"O","e":{}},{"i":"bad"}]"#,
        );
        store.set(
            "sm:o:old",
            r#"{"t":5,"c":"C","x":"cart","e":"{\"id\":\"old\"}"}"#,
        );
        store.set("sm:o:junk", "[]");
        let mut tab = Tab::new("a", &store);
        assert_eq!(tab.sync(), 3);
        assert_eq!(tab.ids(), ["old"]);
        assert_eq!(store.keys(), ["sm:o:old"]);
        // Sent, the earlier version's key goes too.
        tab.send();
        tab.keep(true);
        assert!(store.keys().is_empty());
    }
}
