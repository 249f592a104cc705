//! The queue of events waiting for the receiver's 2xx, and the policy for sending them.
//!
//! Pure: the browser shell decides nothing about batching or retries; it asks [`Outbox::take`]
//! for the next batch, sends it, and reports the answer with [`Outbox::ack`] or
//! [`Outbox::retry`]. Time and randomness come in as arguments.
//!
//! An event leaves the outbox only on a 2xx for the batch that carried it. Each keeps its `id`
//! across retries, so a receiver that saw a batch whose answer was lost deduplicates it.

/// Largest request body. Browsers refuse a `keepalive` fetch or a beacon once the bodies in
/// flight pass 64 KiB; staying under it lets every request outlive the page.
pub const MAX_BODY_BYTES: usize = 60 * 1024;
/// Most events in one request (SALESmanago's batch call takes 1000; a receiver forwards as is).
pub const MAX_BATCH_EVENTS: usize = 500;
/// First retry delay cap; doubles per failure up to [`MAX_BACKOFF_MS`].
pub const BASE_BACKOFF_MS: u64 = 1_000;
/// Longest wait between two attempts.
pub const MAX_BACKOFF_MS: u64 = 300_000;

/// One event waiting to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its stable id (the protocol's idempotency key).
    pub id: String,
    /// The protocol v1 event object, already JSON.
    pub json: String,
    /// When it was queued, ms since the epoch.
    pub queued_ms: u64,
    in_flight: bool,
}

impl Entry {
    /// An event to queue.
    pub fn new(id: String, json: String, queued_ms: u64) -> Self {
        Entry {
            id,
            json,
            queued_ms,
            in_flight: false,
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
    failures: u32,
    not_before_ms: u64,
}

impl Outbox {
    /// Queues an event; an id already queued is not queued twice.
    pub fn push(&mut self, entry: Entry) -> bool {
        if self.entries.iter().any(|e| e.id == entry.id) {
            return false;
        }
        self.entries.push(entry);
        true
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
        let mut batch = Batch {
            ids: Vec::new(),
            events: Vec::new(),
        };
        let mut bytes = 0;
        for e in self.entries.iter_mut().filter(|e| !e.in_flight) {
            let size = e.json.len() + 1;
            if batch.ids.len() == MAX_BATCH_EVENTS
                || (!batch.ids.is_empty() && bytes + size > max_bytes)
            {
                break;
            }
            bytes += size;
            e.in_flight = true;
            batch.ids.push(e.id.clone());
            batch.events.push(e.json.clone());
        }
        (!batch.ids.is_empty()).then_some(batch)
    }

    /// The next batch regardless of backoff: for a page that is leaving, where waiting is not
    /// an option.
    pub fn take_ignoring_backoff(&mut self, max_bytes: usize) -> Option<Batch> {
        let not_before = std::mem::take(&mut self.not_before_ms);
        let batch = self.take(0, max_bytes);
        self.not_before_ms = not_before;
        batch
    }

    /// The receiver took these: they leave the outbox, and the backoff resets.
    pub fn ack(&mut self, ids: &[String]) {
        self.entries.retain(|e| !ids.contains(&e.id));
        self.failures = 0;
        self.not_before_ms = 0;
    }

    /// These were not taken: they stay, and the next attempt waits. `random` in `[0, 1)` gives
    /// the full jitter; `retry_after_ms` (a 429's `Retry-After`) is honoured, capped.
    pub fn retry(&mut self, ids: &[String], now_ms: u64, random: f64, retry_after_ms: Option<u64>) {
        for e in self.entries.iter_mut().filter(|e| ids.contains(&e.id)) {
            e.in_flight = false;
        }
        let wait = retry_after_ms
            .map(|ms| ms.min(MAX_BACKOFF_MS))
            .unwrap_or_else(|| backoff_ms(self.failures, random));
        self.failures = self.failures.saturating_add(1);
        self.not_before_ms = now_ms + wait;
    }

    /// Drops these for good (the receiver refused them as invalid).
    pub fn drop_ids(&mut self, ids: &[String]) {
        self.entries.retain(|e| !ids.contains(&e.id));
    }

    /// Forgets what was in flight: for a page that is leaving, whose requests' answers will
    /// never be read. The events stay queued.
    pub fn release_in_flight(&mut self) {
        for e in &mut self.entries {
            e.in_flight = false;
        }
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
        Entry::new(id.into(), "x".repeat(size), 0)
    }

    #[test]
    fn batches_respect_byte_and_count_limits_and_never_resend_in_flight() {
        let mut o = Outbox::default();
        for i in 0..5 {
            assert!(o.push(entry(&format!("e{i}"), 99)));
        }
        assert!(!o.push(entry("e0", 1)), "an id is queued once");
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
        assert_eq!(o.not_before_ms(), 0);
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
