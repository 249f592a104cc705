//! The queue of events waiting for the receiver's 2xx, and its retry and drop policy
//! (`docs/protocol.md` §2–3).
//!
//! Pure: the browser shell decides nothing about batching or retries; it asks [`Outbox::take`]
//! for the next batch, sends it, and reports the answer through [`crate::delivery`], which calls
//! [`Outbox::ack`] or [`Outbox::retry`]. Time and randomness come in as arguments.
//!
//! An event leaves the outbox only on a 2xx for the batch that carried it. Each keeps its `id`
//! across retries, so a receiver that saw a batch whose answer was lost deduplicates it.
//!
//! The rules, in one place:
//! - **retry** on no answer, 408, 425, 429 (after `Retry-After`, capped) and 5xx, with exponential
//!   backoff and full jitter, [`BASE_BACKOFF_MS`] doubling up to [`MAX_BACKOFF_MS`]. The backoff
//!   is the tracker's own guess and gives way (the connection is back, a 2xx, a page leaving);
//!   a receiver's `Retry-After` does not: nothing is sent to it before that time, not even by
//!   `sendBeacon`;
//! - **drop** on any other 4xx (the receiver will never take it);
//! - **coalesce** CART events: a newer CART for the same cart replaces one still waiting (not on
//!   the wire). SALESmanago keeps one CART per cart and updates it in place, so the waiting one
//!   would only be overwritten on arrival; a burst of cart changes, or a receiver that was away,
//!   costs one request and one SALESmanago call for the latest cart, not one per change. A CART
//!   without a cart id cannot be updated in place: it is replaced only while the receiver fails;
//! - **caps**: at most [`Limits::max_events`] events and [`Limits::max_bytes`] of JSON; when full,
//!   the oldest event that is not a PURCHASE goes first, and a PURCHASE only when nothing else is
//!   left; events older than [`Limits::max_age_ms`] are dropped. The shell removes every dropped
//!   event from storage and names the drop in the debug log.

use crate::protocol;
use crate::salesmanago::{ContactEvent, ExternalEventType};
use crate::value::{same_text, Value};

/// Largest body a page that is leaving hands to `sendBeacon`: browsers refuse a beacon (and a
/// `keepalive` fetch) once the bodies in flight pass 64 KiB.
pub const MAX_BODY_BYTES: usize = 60 * 1024;
/// Largest body of an ordinary request. Only a body within
/// [`crate::delivery::KEEPALIVE_BUDGET`] may outlive the page, so larger ones gain nothing from
/// being cut at [`MAX_BODY_BYTES`], while every request has a cost of its own on the page's main
/// thread (~5 ms in Chromium's trace, about that of 200 KB of body): a burst of 1,000 events went
/// as five. The receiver takes 256 KiB (`docs/protocol.md` §1).
pub const MAX_REQUEST_BYTES: usize = 192 * 1024;
/// Most events in one request (SALESmanago's batch call takes 1000; a receiver forwards as is).
pub const MAX_BATCH_EVENTS: usize = 500;
/// How long after an earlier page's unanswered request its events are asked about: time for a
/// `keepalive` request or a beacon sent as that page left to reach the receiver.
pub const CONFIRM_DELAY_MS: u64 = 1_000;
/// First retry delay cap; doubles per failure up to [`MAX_BACKOFF_MS`].
pub const BASE_BACKOFF_MS: u64 = 1_000;
/// Longest wait between two attempts.
pub const MAX_BACKOFF_MS: u64 = 300_000;

/// What kind of event an entry holds, as far as the queue's policy cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// A PURCHASE: the last thing ever dropped.
    Purchase,
    /// A CART for the cart with this `externalId` (`None`: the cart has no id yet).
    Cart(Option<String>),
    /// Anything else.
    Other,
}

impl Class {
    /// The class of a SALESmanago event.
    pub fn of(event: &ContactEvent) -> Class {
        match event.event_type() {
            ExternalEventType::Purchase => Class::Purchase,
            ExternalEventType::Cart => Class::Cart(event.external_id().map(str::to_owned)),
            _ => Class::Other,
        }
    }
}

/// One event waiting to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its stable id (the protocol's idempotency key).
    pub id: String,
    /// The protocol v1 event object, already JSON.
    pub json: String,
    /// When it was queued, ms since the epoch; the queue's order. A tab hands out strictly
    /// increasing times, so events queued in one millisecond keep their order.
    pub queued_ms: u64,
    /// What kind of event it is.
    pub class: Class,
    /// The storage record that holds it (the shell's number for it); 0 while it is kept
    /// nowhere yet. Events are kept many to a record, written once per slice of work
    /// ([`crate::kept`]).
    pub record: u32,
    in_flight: bool,
    /// A hash of `id`, kept beside the entry: a new event's check against every queued id
    /// reads it rather than following each id's pointer (a cache miss per queued event).
    tag: u32,
    /// Sent by an earlier page that never saw the answer: asked about, not resent
    /// (`docs/protocol.md` §2.1).
    unconfirmed: bool,
}

impl Entry {
    /// An event to queue.
    pub fn new(id: String, json: String, queued_ms: u64, class: Class) -> Self {
        Entry {
            tag: protocol::id_tag(&id),
            id,
            json,
            queued_ms,
            class,
            record: 0,
            in_flight: false,
            unconfirmed: false,
        }
    }

    /// The event as it is kept in storage, one of a record's items, as JSON text:
    /// `{"i":id,"t":queued_ms,"c":"P"|"C"|"O","x":cart id,"e":event}`. The event is embedded as
    /// the JSON it already is, not escaped into a string again: escaping a whole cart twice was a
    /// measurable part of each event's cost.
    pub fn to_record(&self) -> String {
        let mut out = String::with_capacity(self.json.len() + 96);
        self.write_record(&mut out);
        out
    }

    /// [`Entry::to_record`], written at the end of `out` (a record of many events is written in
    /// one string, not one per event).
    pub fn write_record(&self, out: &mut String) {
        let (class, cart) = match &self.class {
            Class::Purchase => ("P", None),
            Class::Cart(id) => ("C", id.as_deref()),
            Class::Other => ("O", None),
        };
        out.push_str("{\"i\":");
        crate::value::write_json_string(&self.id, out);
        out.push_str(",\"t\":");
        crate::number::push_uint(self.queued_ms, out);
        out.push_str(",\"c\":\"");
        out.push_str(class);
        out.push('"');
        if let Some(id) = cart {
            out.push_str(",\"x\":");
            crate::value::write_json_string(id, out);
        }
        out.push_str(",\"e\":");
        out.push_str(&self.json);
        out.push('}');
    }

    /// Reads a stored item; `None` for anything damaged (it is then removed, not sent half).
    /// The id is the item's own `i`, else `id` (earlier versions kept one event per key, named
    /// after its id). The event may be an object (this version) or a string of JSON (earlier
    /// versions, still in a shopper's storage after an update).
    pub fn from_record(id: &str, record: &Value) -> Option<Entry> {
        let id = record.get("i").and_then(Value::as_str).unwrap_or(id);
        let queued_ms = match record.get("t")? {
            Value::Number(n) if n.is_finite() && *n >= 0.0 => *n as u64,
            _ => return None,
        };
        let json = match record.get("e")? {
            Value::String(json) if json.starts_with('{') => json.clone(),
            event @ Value::Object(_) => event.to_json(),
            _ => return None,
        };
        if id.is_empty() {
            return None;
        }
        let class = match record.get("c")?.as_str()? {
            "P" => Class::Purchase,
            "C" => Class::Cart(record.get("x").and_then(Value::as_str).map(str::to_owned)),
            "O" => Class::Other,
            _ => return None,
        };
        Some(Entry::new(id.to_owned(), json, queued_ms, class))
    }
}

/// Two ids are the same ([`same_text`]: ids are random, so the last byte rules out nearly every
/// other id; these checks run over the queue for every batch answered; an event queued compares
/// the entries' tags instead).
fn same_id(a: &str, b: &str) -> bool {
    same_text(a, b)
}

/// `ids` holds `id`.
fn holds(ids: &[String], id: &str) -> bool {
    ids.iter().any(|i| same_id(i, id))
}

/// The queue's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most events held.
    pub max_events: usize,
    /// Most bytes of event JSON held. The page's storage (about 5 MB an origin) is the shop's
    /// too: the tracker takes a small share.
    pub max_bytes: usize,
    /// Oldest event kept, ms.
    pub max_age_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_events: 1_000,
            max_bytes: 512 * 1024,
            max_age_ms: 7 * 24 * 3_600_000,
        }
    }
}

/// The events of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Their ids, to acknowledge or retry.
    pub ids: Vec<String>,
    /// Their JSON, in queue order.
    pub events: Vec<String>,
}

/// Pending events and the retry state.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    entries: Vec<Entry>,
    /// The bytes of the entries' JSON, kept as they change: `push` checks the cap on every
    /// event, and summing the queue there cost a burst of a thousand half a million additions.
    json_bytes: usize,
    /// The queued ids' tags, or more: `push` walks the queue for a new event's id only when
    /// this says it may be there (a burst of a thousand events walked it a thousand times).
    /// Kept with `json_bytes`: a superset between changes, exact after `recount`.
    tags: protocol::TagFilter,
    failures: u32,
    /// No attempt before this: the backoff, or the receiver's `Retry-After`.
    not_before_ms: u64,
    /// No attempt before this either, whatever else happens: the receiver's `Retry-After`.
    hold_until_ms: u64,
    /// The last queue time handed out (see [`Outbox::queue_time`]).
    last_queued_ms: u64,
    limits: Limits,
    /// Unconfirmed events are not asked about before this: the earlier page's request may
    /// still be on its way.
    confirm_after_ms: u64,
}

impl Outbox {
    /// An empty outbox with these bounds.
    pub fn with_limits(limits: Limits) -> Self {
        Outbox {
            limits,
            ..Outbox::default()
        }
    }

    /// The events held, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The events held, for the shell to note where each is kept ([`Entry::record`]); not to
    /// change their JSON, whose bytes the queue keeps count of.
    pub fn entries_mut(&mut self) -> &mut [Entry] {
        &mut self.entries
    }

    /// The queue time of an event queued at `now_ms`: strictly increasing within a tab, so that
    /// a burst in one millisecond keeps its order when read back from storage.
    pub fn queue_time(&mut self, now_ms: u64) -> u64 {
        self.last_queued_ms = now_ms.max(self.last_queued_ms + 1);
        self.last_queued_ms
    }

    /// Queues an event. Returns the ids that left the queue to make room or because this event
    /// supersedes them (the shell removes them from storage); an id already queued is ignored.
    pub fn push(&mut self, entry: Entry) -> Vec<String> {
        if self.tags.may_hold(entry.tag)
            && self
                .entries
                .iter()
                .any(|e| e.tag == entry.tag && e.id == entry.id)
        {
            return Vec::new();
        }
        let mut removed = Vec::new();
        if let Class::Cart(cart) = &entry.class {
            let failing = self.failures > 0;
            // Only what is not on the wire can be replaced: an in-flight CART may arrive.
            self.entries.retain(|e| {
                let superseded = !e.in_flight
                    && matches!(&e.class, Class::Cart(c) if c == cart && (c.is_some() || failing));
                if superseded {
                    removed.push(e.id.clone());
                }
                !superseded
            });
            if !removed.is_empty() {
                self.recount();
            }
        }
        self.json_bytes += entry.json.len();
        self.tags.insert(entry.tag);
        self.entries.push(entry);
        removed.extend(self.enforce_caps());
        removed
    }

    /// Sets the byte total and the tags anew, after the queue changed other than by `push`.
    fn recount(&mut self) {
        self.json_bytes = 0;
        self.tags.clear();
        for e in &self.entries {
            self.json_bytes += e.json.len();
            self.tags.insert(e.tag);
        }
    }

    /// Drops the oldest non-PURCHASE events (PURCHASE only when nothing else is left) until the
    /// queue is within its caps. Events in flight stay: their answer decides.
    fn enforce_caps(&mut self) -> Vec<String> {
        debug_assert_eq!(
            self.json_bytes,
            self.entries.iter().map(|e| e.json.len()).sum::<usize>(),
            "the byte total drifted from the queue"
        );
        let mut removed = Vec::new();
        loop {
            if self.entries.len() <= self.limits.max_events
                && self.json_bytes <= self.limits.max_bytes
            {
                return removed;
            }
            let victim = self
                .entries
                .iter()
                .position(|e| !e.in_flight && e.class != Class::Purchase)
                .or_else(|| self.entries.iter().position(|e| !e.in_flight));
            let Some(at) = victim else {
                return removed;
            };
            let gone = self.entries.remove(at);
            self.json_bytes -= gone.json.len();
            removed.push(gone.id);
        }
    }

    /// Drops events older than the maximum age; returns their ids.
    pub fn expire(&mut self, now_ms: u64) -> Vec<String> {
        let max_age = self.limits.max_age_ms;
        let mut removed = Vec::new();
        self.entries.retain(|e| {
            let old = !e.in_flight && now_ms.saturating_sub(e.queued_ms) > max_age;
            if old {
                removed.push(e.id.clone());
            }
            !old
        });
        self.recount();
        removed
    }

    /// Makes the queue what storage holds (the events every tab of the store wrote), keeping
    /// this tab's in-flight events as they are. Stored events are taken oldest first.
    pub fn sync(&mut self, stored: Vec<Entry>) {
        // What this tab knows of an event beyond storage (on the wire, to be asked about) stays.
        // (Taken whole and thinned in place: `drain().filter().collect()` was ~600 B of the wasm.)
        let mut in_flight = std::mem::take(&mut self.entries);
        in_flight.retain(|e| e.in_flight || e.unconfirmed);
        // Oldest first: each event goes in after those queued at or before it. A binary
        // insertion rather than a sort: the slice sorts are ~1 KB gzip of the wasm, and at this
        // queue's size (1,000 at most) the moves are a few bulk copies, less than the storage
        // reads that produced `stored`.
        let mut place = |e: Entry| {
            let at = self.entries.partition_point(|x| x.queued_ms <= e.queued_ms);
            self.entries.insert(at, e);
        };
        // Storage still holds what is in flight: the copy marked in flight stays, once. (Checked
        // against the in-flight events only, not the growing queue: a thousand stored events
        // would otherwise cost half a million id comparisons on every send.)
        for e in stored {
            match in_flight.iter_mut().find(|held| same_id(&held.id, &e.id)) {
                // Where storage keeps it now (another tab may have written it anew).
                Some(held) => held.record = e.record,
                None => place(e),
            }
        }
        for e in in_flight {
            place(e);
        }
        self.recount();
    }

    /// Events waiting, in flight or not.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// When the next attempt may start (after failures), ms since the epoch.
    pub fn not_before_ms(&self) -> u64 {
        self.not_before_ms
    }

    /// The next batch to send at `now_ms`, marked in flight: the oldest events not already in
    /// flight, within [`MAX_BATCH_EVENTS`] and `max_bytes` of event JSON. `None` when nothing is
    /// due. An event larger than `max_bytes` alone still goes, alone, so it cannot block the queue.
    pub fn take(&mut self, now_ms: u64, max_bytes: usize) -> Option<Batch> {
        if now_ms < self.not_before_ms {
            return None;
        }
        let due = |e: &&mut Entry| !e.in_flight && !e.unconfirmed;
        // How many go: as many as fit, cut where a storage record begins if the limit falls
        // inside one (and the batch has an earlier record whole): a record half sent would be
        // written again without its sent events ([`crate::kept`]).
        let (mut n, mut bytes, mut whole, mut record) = (0, 0, 0, None);
        for e in self.entries.iter_mut().filter(due) {
            if record != Some(e.record) {
                (whole, record) = (n, Some(e.record));
            }
            let size = e.json.len() + 1;
            if n == MAX_BATCH_EVENTS || (n > 0 && bytes + size > max_bytes) {
                if whole > 0 && e.record != 0 {
                    n = whole;
                }
                break;
            }
            bytes += size;
            n += 1;
        }
        let mut batch = Batch {
            ids: Vec::new(),
            events: Vec::new(),
        };
        for e in self.entries.iter_mut().filter(due).take(n) {
            e.in_flight = true;
            batch.ids.push(e.id.clone());
            batch.events.push(e.json.clone());
        }
        (n > 0).then_some(batch)
    }

    /// The next batch for a page that is leaving, where waiting out the backoff is not an
    /// option; but not before a receiver's `Retry-After` (it would refuse the batch again).
    pub fn take_for_exit(&mut self, now_ms: u64, max_bytes: usize) -> Option<Batch> {
        if now_ms < self.hold_until_ms {
            return None;
        }
        let not_before = std::mem::take(&mut self.not_before_ms);
        let batch = self.take(0, max_bytes);
        self.not_before_ms = not_before;
        batch
    }

    /// The receiver took these: they leave the outbox, and the backoff resets (a `Retry-After`
    /// still in force stays: another request's 2xx does not lift it).
    pub fn ack(&mut self, ids: &[String]) {
        self.forget_sent(ids);
        self.failures = 0;
        self.not_before_ms = self.hold_until_ms;
    }

    /// These were not taken: they stay, and the next attempt waits. `random` in `[0, 1)` gives
    /// the full jitter; `retry_after_ms` (a 429's `Retry-After`) is honoured, capped.
    pub fn retry(&mut self, ids: &[String], now_ms: u64, random: f64, retry_after_ms: Option<u64>) {
        self.release(ids);
        let wait = match retry_after_ms {
            Some(ms) => {
                let ms = ms.min(MAX_BACKOFF_MS);
                self.hold_until_ms = self.hold_until_ms.max(now_ms + ms);
                ms
            }
            None => backoff_ms(self.failures, random),
        };
        self.failures = self.failures.saturating_add(1);
        self.not_before_ms = self.hold_until_ms.max(now_ms + wait);
    }

    /// The request never reached the receiver for a reason of the page's own (the browser
    /// refused it before sending): these may go again at once, and the receiver has not failed.
    pub fn release(&mut self, ids: &[String]) {
        for e in self.entries.iter_mut().filter(|e| holds(ids, &e.id)) {
            e.in_flight = false;
        }
    }

    /// Takes these off this page's queue without a verdict: handed to `sendBeacon` as the page
    /// leaves. Storage keeps them until a 2xx is seen. A beacon's answer is never read, so the
    /// backoff stays as it was.
    pub fn forget(&mut self, ids: &[String]) {
        self.entries.retain(|e| !holds(ids, &e.id));
        self.recount();
    }

    /// [`Outbox::forget`] for the ids of a batch that went out: only events in flight are looked
    /// at, and a batch is taken in queue order, so each is looked for first where the last one
    /// was found — a thousand queued events and a batch of hundreds would otherwise cost a
    /// comparison for every pair, on every answer.
    pub fn forget_sent(&mut self, ids: &[String]) {
        let mut next = 0;
        self.entries.retain(|e| {
            if !e.in_flight {
                return true;
            }
            if ids.get(next).is_some_and(|i| same_id(i, &e.id)) {
                next += 1;
                return false;
            }
            !holds(ids, &e.id)
        });
        self.recount();
    }

    /// An earlier page sent these at `sent_ms` and never saw the answer: the queued ones among
    /// them are asked about, not sent, from [`CONFIRM_DELAY_MS`] after that (the request may
    /// still be on its way). Ids not queued here are ignored.
    pub fn unconfirmed(&mut self, ids: &[String], sent_ms: u64) {
        for e in &mut self.entries {
            if !e.in_flight && ids.contains(&e.id) {
                e.unconfirmed = true;
            }
        }
        self.confirm_after_ms = self
            .confirm_after_ms
            .max(sent_ms.saturating_add(CONFIRM_DELAY_MS));
    }

    /// The ids to ask the receiver about at `now_ms`, marked in flight: `Ok` with none when
    /// nothing is to be asked, `Err(at)` when some are, from `at`.
    pub fn take_confirm(&mut self, now_ms: u64) -> Result<Vec<String>, u64> {
        let wait = self.confirm_after_ms.max(self.not_before_ms);
        let mut ids = Vec::new();
        for e in &mut self.entries {
            if e.unconfirmed && !e.in_flight && ids.len() < MAX_BATCH_EVENTS {
                if now_ms < wait {
                    return Err(wait);
                }
                e.in_flight = true;
                ids.push(e.id.clone());
            }
        }
        Ok(ids)
    }

    /// The receiver answered which of `asked` it holds (`held`; nothing, without a usable
    /// answer): those leave the outbox (returned, for the shell to remove from storage); the
    /// others are sent again, whole, as any queued event. Nothing is dropped for a confirmation.
    pub fn confirmed(&mut self, asked: &[String], held: &[String]) -> Vec<String> {
        let mut gone = Vec::new();
        for e in &mut self.entries {
            if holds(asked, &e.id) {
                e.in_flight = false;
                e.unconfirmed = false;
                if holds(held, &e.id) {
                    gone.push(e.id.clone());
                }
            }
        }
        self.forget(&gone);
        gone
    }

    /// What this page sent or handed over without seeing the answer, and what it has yet to
    /// ask about: kept for the next page when this one leaves.
    pub fn unanswered(&self, out: &mut String) {
        for e in &self.entries {
            if e.in_flight || e.unconfirmed {
                out.push('\n');
                out.push_str(&e.id);
            }
        }
    }

    /// The connection is back: the next attempt may start now, or when the receiver's
    /// `Retry-After` ends.
    pub fn resume(&mut self) {
        self.not_before_ms = self.hold_until_ms;
    }

    /// Drops these for good: the receiver refused them as invalid.
    pub fn refuse(&mut self, ids: &[String]) {
        self.forget_sent(ids);
    }
}

/// What the receiver's answer means for the events of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: taken; they leave the outbox.
    Accepted,
    /// No answer (network error, offline), 408, 425, 429, 5xx, or anything unexpected: try later.
    Retry,
    /// Another 4xx: the receiver will never take these; drop them (and say so in debug mode).
    Refused,
}

/// The retry rules, in one place. `None` is a network error (no answer at all).
pub fn verdict(status: Option<u16>) -> Verdict {
    match status {
        Some(200..=299) => Verdict::Accepted,
        Some(408 | 425 | 429) => Verdict::Retry,
        Some(400..=499) => Verdict::Refused,
        _ => Verdict::Retry,
    }
}

/// A `Retry-After` header in seconds, as milliseconds. The HTTP-date form is not read (the
/// backoff applies instead): receivers that rate-limit send seconds.
pub fn retry_after_ms(header: Option<&str>) -> Option<u64> {
    let secs = header?.trim();
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) || secs.len() > 9 {
        return None;
    }
    let n = secs.bytes().fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
    Some(n * 1000)
}

/// Exponential backoff with full jitter: a uniformly random wait in
/// `[0, min(MAX, BASE * 2^failures))`, at least 100 ms.
pub fn backoff_ms(failures: u32, random: f64) -> u64 {
    let cap = BASE_BACKOFF_MS
        .saturating_mul(1u64 << failures.min(20))
        .min(MAX_BACKOFF_MS);
    let r = if random.is_finite() {
        random.clamp(0.0, 1.0)
    } else {
        0.5
    };
    ((cap as f64 * r) as u64).max(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, size: usize) -> Entry {
        Entry::new(id.into(), "x".repeat(size), 0, Class::Other)
    }

    fn of(id: &str, t: u64, class: Class) -> Entry {
        Entry::new(id.into(), format!("{{\"id\":\"{id}\"}}"), t, class)
    }

    #[test]
    fn an_answer_removes_exactly_its_batch_in_any_order() {
        let mut o = Outbox::default();
        for (i, id) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
            o.push(of(id, i as u64, Class::Other));
        }
        let first = o.take(0, 3 * 11).unwrap();
        assert_eq!(first.ids, ["a", "b", "c"]);
        o.push(of("f", 9, Class::Other));
        // Answered out of the queue's order, with an id of this batch no longer queued.
        o.ack(&["c".into(), "gone".into(), "a".into()]);
        assert_eq!(ids(&o), ["b", "d", "e", "f"]);
        // Not in flight: an answer naming it is not about it.
        o.ack(&["d".into()]);
        assert_eq!(ids(&o), ["b", "d", "e", "f"]);
        o.ack(&first.ids);
        assert_eq!(ids(&o), ["d", "e", "f"]);
    }

    #[test]
    fn an_earlier_pages_unanswered_events_are_asked_about_not_resent() {
        let mut o = Outbox::default();
        for id in ["a", "b", "c"] {
            o.push(of(id, 1, Class::Other));
        }
        // The earlier page sent a and b at 5,000 and left; "gone" is no longer queued.
        o.unconfirmed(&["a".into(), "b".into(), "gone".into()], 5_000);
        let batch = o.take(5_000, MAX_BODY_BYTES).unwrap();
        assert_eq!(batch.ids, ["c"], "only the event never sent goes whole");
        assert_eq!(
            o.take_confirm(5_500),
            Err(5_000 + CONFIRM_DELAY_MS),
            "not asked while the earlier request may still be on its way"
        );
        let asked = o.take_confirm(6_000).unwrap();
        assert_eq!(asked, ["a", "b"]);
        assert_eq!(o.take_confirm(6_000), Ok(vec![]), "asked once at a time");
        assert_eq!(o.take(6_000, MAX_BODY_BYTES), None, "in flight while asked");
        let gone = o.confirmed(&asked, &["a".to_owned(), "zzz".to_owned()]);
        assert_eq!(
            gone,
            ["a"],
            "held: leaves the outbox; an id never asked is ignored"
        );
        let again = o.take(6_000, MAX_BODY_BYTES).unwrap();
        assert_eq!(again.ids, ["b"], "not held: sent again whole");
    }

    #[test]
    fn a_confirmation_without_an_answer_loses_nothing() {
        let mut o = Outbox::default();
        o.push(of("a", 1, Class::Purchase));
        o.unconfirmed(&["a".into()], 0);
        let asked = o.take_confirm(CONFIRM_DELAY_MS).unwrap();
        assert_eq!(o.confirmed(&asked, &[]), Vec::<String>::new());
        assert_eq!(o.take(CONFIRM_DELAY_MS, MAX_BODY_BYTES).unwrap().ids, ["a"]);
    }

    #[test]
    fn unanswered_events_outlive_a_sync_and_are_kept_for_the_next_page() {
        let mut o = Outbox::default();
        for id in ["a", "b", "c"] {
            o.push(of(id, 1, Class::Other));
        }
        o.unconfirmed(&["a".into()], 0);
        let sent = o.take(0, MAX_BODY_BYTES).unwrap();
        assert_eq!(sent.ids, ["b", "c"]);
        // Storage holds all three (and another tab's d): the marks stay.
        o.sync(vec![
            of("a", 1, Class::Other),
            of("b", 1, Class::Other),
            of("c", 1, Class::Other),
            of("d", 2, Class::Other),
        ]);
        assert_eq!(o.len(), 4);
        let mut kept = String::new();
        o.unanswered(&mut kept);
        assert_eq!(kept, "\na\nb\nc", "in flight or still to be asked about");
        assert_eq!(o.take(0, MAX_BODY_BYTES).unwrap().ids, ["d"]);
    }

    fn ids(o: &Outbox) -> Vec<&str> {
        o.entries().iter().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn a_newer_cart_replaces_the_one_waiting_for_the_same_cart() {
        let mut o = Outbox::default();
        let cart = |id: &str, t, cart: &str| of(id, t, Class::Cart(Some(cart.into())));
        o.push(cart("c1", 1, "9"));
        o.push(cart("d1", 2, "10"));
        assert_eq!(o.push(cart("c2", 3, "9")), ["c1"]);
        assert_eq!(ids(&o), ["d1", "c2"], "another cart's CART stays");
        let in_flight = o.take(u64::MAX, MAX_BODY_BYTES).unwrap();
        assert_eq!(in_flight.ids, ["d1", "c2"]);
        assert!(
            o.push(cart("c3", 4, "9")).is_empty(),
            "c2 is on the wire and stays"
        );
        assert_eq!(ids(&o), ["d1", "c2", "c3"]);
    }

    #[test]
    fn while_the_receiver_answers_carts_without_an_id_are_all_kept() {
        let mut o = Outbox::default();
        o.push(of("n1", 1, Class::Cart(None)));
        assert!(o.push(of("n2", 2, Class::Cart(None))).is_empty());
        assert_eq!(ids(&o), ["n1", "n2"]);
    }

    #[test]
    fn while_the_receiver_fails_a_newer_cart_replaces_the_one_waiting() {
        let mut o = Outbox::default();
        let cart = |id: &str, t| of(id, t, Class::Cart(Some("9".into())));
        o.push(of("first", 0, Class::Other));
        let failed = o.take(0, MAX_BODY_BYTES).unwrap();
        o.retry(&failed.ids, 0, 0.0, None);
        assert!(o.push(cart("c1", 1)).is_empty());
        o.push(of("v", 2, Class::Other));
        let in_flight = o.take(u64::MAX, MAX_BODY_BYTES).unwrap();
        assert_eq!(in_flight.ids, ["first", "c1", "v"]);
        o.push(cart("c2", 3));
        assert_eq!(
            o.push(cart("c3", 4)),
            ["c2"],
            "c2 waited; c1 is on the wire and stays"
        );
        o.push(of("other-cart", 5, Class::Cart(Some("10".into()))));
        assert_eq!(ids(&o), ["first", "c1", "v", "c3", "other-cart"]);
    }

    #[test]
    fn when_full_the_oldest_non_purchase_goes_first() {
        let mut o = Outbox::with_limits(Limits {
            max_events: 3,
            ..Limits::default()
        });
        o.push(of("p1", 1, Class::Purchase));
        o.push(of("o1", 2, Class::Other));
        o.push(of("o2", 3, Class::Other));
        assert_eq!(o.push(of("p2", 4, Class::Purchase)), ["o1"]);
        assert_eq!(o.push(of("p3", 5, Class::Purchase)), ["o2"]);
        assert_eq!(
            o.push(of("p4", 6, Class::Purchase)),
            ["p1"],
            "purchases only when nothing else is left"
        );
        assert_eq!(ids(&o), ["p2", "p3", "p4"]);
    }

    #[test]
    fn the_byte_cap_counts_event_json() {
        let mut o = Outbox::with_limits(Limits {
            max_bytes: 250,
            ..Limits::default()
        });
        o.push(entry("a", 100));
        o.push(entry("b", 100));
        assert_eq!(o.push(entry("c", 100)), ["a"]);
    }

    #[test]
    fn old_events_expire() {
        let mut o = Outbox::default();
        let week = Limits::default().max_age_ms;
        o.push(of("old", 0, Class::Purchase));
        o.push(of("new", week, Class::Other));
        assert_eq!(o.expire(week + 1), ["old"]);
        assert_eq!(ids(&o), ["new"]);
    }

    /// A record as the browser reads it back: `JSON.parse` of the stored text.
    fn parsed(text: &str) -> Value {
        Value::from(serde_json::from_str::<serde_json::Value>(text).unwrap())
    }

    #[test]
    fn records_round_trip_and_damage_is_refused() {
        for class in [
            Class::Purchase,
            Class::Cart(Some("9 \"quoted\"".into())),
            Class::Cart(None),
            Class::Other,
        ] {
            let e = of("id-1", 1_763_829_999_000, class);
            assert_eq!(Entry::from_record("id-1", &parsed(&e.to_record())), Some(e));
        }
        // The item's own id counts; none at all is damage.
        let good = parsed(&of("x", 1, Class::Other).to_record());
        assert_eq!(
            Entry::from_record("", &good),
            Some(of("x", 1, Class::Other))
        );
        let nameless = parsed(&of("", 1, Class::Other).to_record());
        assert_eq!(Entry::from_record("", &nameless), None);
        for damaged in [
            Value::Null,
            Value::from("junk"),
            Value::object([
                ("t", Value::from("1")),
                ("c", Value::from("O")),
                ("e", Value::from("{}")),
            ]),
            Value::object([
                ("t", Value::Number(1.0)),
                ("c", Value::from("Z")),
                ("e", Value::from("{}")),
            ]),
            Value::object([
                ("t", Value::Number(1.0)),
                ("c", Value::from("O")),
                ("e", Value::from("nope")),
            ]),
            Value::object([
                ("t", Value::Number(1.0)),
                ("c", Value::from("O")),
                ("e", Value::Array(vec![])),
            ]),
        ] {
            assert_eq!(Entry::from_record("x", &damaged), None, "{damaged:?}");
        }
    }

    #[test]
    fn records_written_by_earlier_versions_still_read() {
        // Before the event was embedded as JSON, it was kept as a string of JSON.
        let old = Value::object([
            ("t", Value::Number(5.0)),
            ("c", Value::from("C")),
            ("x", Value::from("cart-1")),
            ("e", Value::from("{\"id\":\"a\"}")),
        ]);
        assert_eq!(
            Entry::from_record("a", &old),
            Some(of("a", 5, Class::Cart(Some("cart-1".into()))))
        );
    }

    #[test]
    fn sync_takes_what_storage_holds_and_keeps_in_flight() {
        let mut o = Outbox::default();
        o.push(of("mine", 1, Class::Other));
        o.push(of("acked-elsewhere", 2, Class::Other));
        let b = o.take(0, 20).unwrap();
        assert_eq!(b.ids, ["mine"]);
        o.sync(vec![
            of("from-tab-b", 3, Class::Other),
            of("mine", 1, Class::Other),
            of("older", 0, Class::Other),
        ]);
        assert_eq!(ids(&o), ["older", "mine", "from-tab-b"]);
        assert!(
            o.take(0, 20).is_some_and(|b| b.ids == ["older"]),
            "mine is still in flight"
        );
    }

    #[test]
    fn sync_orders_what_storage_holds_by_queue_time() {
        // Storage hands its keys back in its own order (by id in Chromium), not by time.
        let mut o = Outbox::default();
        o.sync(
            (0..50u64)
                .map(|i| of(&format!("e{i}"), i * 37 % 50, Class::Other))
                .collect(),
        );
        let times: Vec<u64> = o.entries.iter().map(|e| e.queued_ms).collect();
        assert_eq!(times, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn batches_respect_byte_and_count_limits_and_never_resend_in_flight() {
        let mut o = Outbox::default();
        for i in 0..5 {
            assert!(o.push(entry(&format!("e{i}"), 99)).is_empty());
        }
        o.push(entry("e0", 1));
        assert_eq!(o.len(), 5, "an id is queued once");
        let b = o.take(0, 250).unwrap();
        assert_eq!(
            b.ids,
            ["e0", "e1"],
            "100 bytes each with the comma; 300 > 250"
        );
        let c = o.take(0, 250).unwrap();
        assert_eq!(c.ids, ["e2", "e3"], "in-flight events are not taken again");
        o.ack(&b.ids);
        assert_eq!(o.len(), 3);
        let d = o.take(0, 250).unwrap();
        assert_eq!(d.ids, ["e4"]);
        assert!(o.take(0, 250).is_none());
    }

    #[test]
    fn an_oversized_event_goes_alone() {
        let mut o = Outbox::default();
        o.push(entry("big", 1000));
        o.push(entry("small", 1));
        assert_eq!(o.take(0, 100).unwrap().ids, ["big"]);
        assert_eq!(o.take(0, 100).unwrap().ids, ["small"]);
    }

    #[test]
    fn failures_back_off_and_success_resets() {
        let mut o = Outbox::default();
        o.push(entry("a", 1));
        let b = o.take(1_000, MAX_BODY_BYTES).unwrap();
        o.retry(&b.ids, 1_000, 0.5, None);
        assert_eq!(o.not_before_ms(), 1_500, "half of the first 1 s cap");
        assert!(o.take(1_499, MAX_BODY_BYTES).is_none());
        let b = o.take(1_500, MAX_BODY_BYTES).unwrap();
        o.retry(&b.ids, 2_000, 0.5, None);
        assert_eq!(o.not_before_ms(), 3_000, "half of 2 s");
        let b = o.take(3_000, MAX_BODY_BYTES).unwrap();
        o.retry(&b.ids, 3_000, 0.0, Some(600_000));
        assert_eq!(o.not_before_ms(), 303_000, "Retry-After is capped");
        let b = o.take(303_000, MAX_BODY_BYTES).unwrap();
        o.ack(&b.ids);
        assert!(o.is_empty());
        o.push(entry("b", 1));
        assert!(
            o.take(303_000, MAX_BODY_BYTES).is_some(),
            "after a 2xx the next goes at once"
        );
        let b = o.take(303_000, MAX_BODY_BYTES);
        assert!(b.is_none());
    }

    #[test]
    fn the_connection_coming_back_ends_the_backoff() {
        let mut o = Outbox::default();
        o.push(entry("a", 1));
        let b = o.take(0, MAX_BODY_BYTES).unwrap();
        o.retry(&b.ids, 0, 0.9, None);
        assert_eq!(o.not_before_ms(), 900);
        o.resume();
        assert_eq!(o.take(1, MAX_BODY_BYTES).unwrap().ids, ["a"], "online");
    }

    #[test]
    fn queue_times_are_strictly_increasing() {
        let mut o = Outbox::default();
        assert_eq!(o.queue_time(1_000), 1_000);
        assert_eq!(o.queue_time(1_000), 1_001, "same millisecond");
        assert_eq!(o.queue_time(999), 1_002, "the clock stepped back");
        assert_eq!(o.queue_time(5_000), 5_000);
    }

    #[test]
    fn the_class_follows_the_salesmanago_type() {
        use crate::salesmanago::{ContactEvent, ExternalEventType as T};
        let mut cart = ContactEvent::new(T::Cart, 1);
        assert_eq!(Class::of(&cart), Class::Cart(None));
        cart.set_external_id("9");
        assert_eq!(Class::of(&cart), Class::Cart(Some("9".into())));
        assert_eq!(
            Class::of(&ContactEvent::new(T::Purchase, 1)),
            Class::Purchase
        );
        assert_eq!(Class::of(&ContactEvent::new(T::Visit, 1)), Class::Other);
    }

    #[test]
    fn a_released_batch_goes_again_at_once_without_counting_a_failure() {
        let mut o = Outbox::default();
        o.push(entry("a", 1));
        let b = o.take(1_000, MAX_BODY_BYTES).unwrap();
        o.release(&b.ids);
        assert_eq!(o.not_before_ms(), 0);
        let again = o.take(1_000, MAX_BODY_BYTES).unwrap();
        assert_eq!(again.ids, ["a"]);
        // A real failure afterwards is still the first one: the first backoff cap (1 s).
        o.retry(&again.ids, 1_000, 0.5, None);
        assert_eq!(o.not_before_ms(), 1_500);
    }

    #[test]
    fn the_retry_rules() {
        assert_eq!(verdict(Some(200)), Verdict::Accepted);
        assert_eq!(verdict(Some(204)), Verdict::Accepted);
        for s in [408, 425, 429, 500, 502, 503, 599] {
            assert_eq!(verdict(Some(s)), Verdict::Retry, "{s}");
        }
        for s in [400, 401, 403, 404, 413, 422] {
            assert_eq!(verdict(Some(s)), Verdict::Refused, "{s}");
        }
        assert_eq!(verdict(None), Verdict::Retry, "network error");
        assert_eq!(verdict(Some(0)), Verdict::Retry);
        assert_eq!(verdict(Some(302)), Verdict::Retry);
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(retry_after_ms(Some("3")), Some(3000));
        assert_eq!(retry_after_ms(Some(" 120 ")), Some(120_000));
        assert_eq!(retry_after_ms(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after_ms(Some("-1")), None);
        assert_eq!(retry_after_ms(Some("99999999999")), None);
        assert_eq!(retry_after_ms(None), None);
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        assert_eq!(backoff_ms(0, 0.0), 100);
        assert_eq!(backoff_ms(0, 0.999), 999);
        assert_eq!(backoff_ms(40, 1.0), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(3, f64::NAN), 4_000);
    }
}
