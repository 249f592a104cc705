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
    fn backoff_is_capped_and_jittered() {
        assert_eq!(backoff_ms(0, 0.0), 100);
        assert_eq!(backoff_ms(0, 0.999), 999);
        assert_eq!(backoff_ms(40, 1.0), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(3, f64::NAN), 4_000);
    }
}
