//! How the outbox's events go out (`docs/protocol.md` §1–2): when a batch leaves, whether its
//! request may outlive the page (`keepalive`), and what the receiver's answer means for the next
//! step.
//!
//! Pure, like [`crate::outbox`]: the browser shell asks, executes what it is told (a timer, a
//! request, a beacon) and reports back. It owns no queue of its own; the events are the outbox's.

use crate::outbox::{self, Batch, Outbox, Verdict};

/// How long a burst may gather before it is sent as one request.
pub const BATCH_WINDOW_MS: u32 = 40;
/// How many times the batch window waits for a burst still being processed.
pub const MAX_WINDOW_EXTENSIONS: u32 = 5;
/// Browsers refuse `keepalive` requests once their bodies in flight pass 64 KiB, and Chromium
/// gives a finished request's share back only some time after its answer (never, for an answer
/// with `Cache-Control: no-store`, in Chromium 156). Half the limit leaves room for that lag.
pub const KEEPALIVE_BUDGET: usize = 32_000;
/// When another tab holds the send lease, look again after this long.
pub const LEASE_RETRY_MS: u32 = 2_000;

/// The batch window closed after `extended` extensions, with events still waiting to be read
/// (`busy`): `Some(n)` to wait window number `n` more (so that a burst read in slices on a slow
/// device still goes out as one request), `None` to send now.
pub fn extend_window(busy: bool, extended: u32) -> Option<u32> {
    (busy && extended < MAX_WINDOW_EXTENSIONS).then_some(extended + 1)
}

/// Which requests may use `keepalive` (a request that outlives the page).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keepalive {
    in_flight_bytes: usize,
    /// A `keepalive` request failed on this page while others worked: the browser's quota, not
    /// the network, is the likely cause. Leaving the page is covered by `sendBeacon`.
    broken: bool,
}

impl Keepalive {
    /// A request with a body of `bytes` leaves now: whether it may use `keepalive`. It counts
    /// as in flight until [`answered`] sees its end.
    pub fn begin(&mut self, bytes: usize) -> bool {
        let fits = !self.broken && self.in_flight_bytes + bytes <= KEEPALIVE_BUDGET;
        self.in_flight_bytes += bytes;
        fits
    }
}

/// A request on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Its events.
    pub batch: Batch,
    /// Its body's length.
    pub bytes: usize,
    /// Sent with `keepalive`.
    pub keepalive: bool,
}

/// The receiver's answer: status and `Retry-After` (readable when the receiver exposes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The `Retry-After` header, if readable and in seconds, as ms ([`outbox::retry_after_ms`]).
    pub retry_after_ms: Option<u64>,
}

/// What to do once a request is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The `keepalive` request failed, perhaps only for this page (a navigation, the browser's
    /// quota) and not on the wire: the receiver is asked about its events in
    /// [`outbox::CONFIRM_DELAY_MS`], and those it does not hold go again, without `keepalive`
    /// (no request of this page uses it again).
    Unanswered,
    /// The receiver took the batch (with this status): its events leave storage; the next batch
    /// goes.
    Accepted(u16),
    /// The receiver will never take the batch (this status): its events leave storage, dropped;
    /// the next batch goes.
    Refused(u16),
    /// Try again in `wait_ms`; `status` is `None` when there was no answer at all.
    Retry {
        /// The receiver's status.
        status: Option<u16>,
        /// How long until the next attempt may start.
        wait_ms: u64,
    },
}

/// Applies the end of `request` (`Err` when no answer came: network error, offline, blocked)
/// to the outbox and the keepalive budget at `now_ms`, and says what to do next. `random` in
/// `[0, 1)` is the backoff's jitter.
pub fn answered(
    outbox: &mut Outbox,
    keepalive: &mut Keepalive,
    request: &Request,
    answer: Result<Answer, ()>,
    now_ms: u64,
    random: f64,
) -> Next {
    keepalive.in_flight_bytes = keepalive.in_flight_bytes.saturating_sub(request.bytes);
    let ids = &request.batch.ids;
    let answer = match answer {
        // Chromium fails a page's keepalive fetches as a navigation starts, while the browser
        // still delivers them: asked about before they are sent again (by this page, if it
        // stays; by the next one, if not).
        Err(()) if request.keepalive => {
            keepalive.broken = true;
            outbox.release(ids);
            outbox.unconfirmed(ids, now_ms);
            return Next::Unanswered;
        }
        other => other.ok(),
    };
    let status = answer.as_ref().map(|a| a.status);
    match outbox::verdict(status) {
        Verdict::Accepted => {
            outbox.ack(ids);
            Next::Accepted(status.unwrap_or(0))
        }
        Verdict::Refused => {
            outbox.refuse(ids);
            Next::Refused(status.unwrap_or(0))
        }
        Verdict::Retry => {
            let retry_after = answer.and_then(|a| a.retry_after_ms);
            outbox.retry(ids, now_ms, random, retry_after);
            Next::Retry {
                status,
                wait_ms: outbox.not_before_ms().saturating_sub(now_ms),
            }
        }
    }
}

/// The page is going away and `sendBeacon` took these (`taken`) or refused them: taken, they
/// leave this page's queue but stay in storage until a later page sees a 2xx for them (a
/// beacon's answer is never read); refused, they wait for the next attempt.
pub fn beaconed(outbox: &mut Outbox, ids: &[String], taken: bool, now_ms: u64) {
    if taken {
        outbox.forget_sent(ids);
    } else {
        outbox.retry(ids, now_ms, 0.0, Some(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{Class, Entry, MAX_BODY_BYTES};

    fn outbox(ids: &[&str]) -> Outbox {
        let mut o = Outbox::default();
        for (t, id) in ids.iter().enumerate() {
            o.push(Entry::new(
                (*id).into(),
                format!("{{\"id\":\"{id}\"}}"),
                t as u64,
                Class::Other,
            ));
        }
        o
    }

    fn send(o: &mut Outbox, k: &mut Keepalive, now: u64, bytes: usize) -> Request {
        let batch = o.take(now, MAX_BODY_BYTES).expect("a batch is due");
        Request {
            batch,
            bytes,
            keepalive: k.begin(bytes),
        }
    }

    fn answer(status: u16, retry_after: Option<&str>) -> Result<Answer, ()> {
        Ok(Answer {
            status,
            retry_after_ms: outbox::retry_after_ms(retry_after),
        })
    }

    #[test]
    fn the_window_waits_for_a_burst_a_few_times_then_sends() {
        assert_eq!(extend_window(false, 0), None, "nothing left to read: send");
        assert_eq!(extend_window(true, 0), Some(1));
        assert_eq!(extend_window(true, MAX_WINDOW_EXTENSIONS - 1), Some(5));
        assert_eq!(extend_window(true, MAX_WINDOW_EXTENSIONS), None);
    }

    #[test]
    fn keepalive_is_used_within_the_budget_of_bodies_in_flight() {
        let mut o = outbox(&["a", "b", "c"]);
        let mut k = Keepalive::default();
        let first = send(&mut o, &mut k, 0, 20_000);
        assert!(first.keepalive);
        o.push(Entry::new("d".into(), "{}".into(), 9, Class::Other));
        let second = send(&mut o, &mut k, 0, 20_000);
        assert!(!second.keepalive, "20,000 + 20,000 > {KEEPALIVE_BUDGET}");
        let next = answered(&mut o, &mut k, &first, answer(200, None), 0, 0.5);
        assert_eq!(next, Next::Accepted(200));
        o.push(Entry::new("e".into(), "{}".into(), 10, Class::Other));
        assert!(
            send(&mut o, &mut k, 0, 10_000).keepalive,
            "the first request's share came back"
        );
    }

    #[test]
    fn a_failed_keepalive_request_is_asked_about_then_goes_again_without_keepalive() {
        let mut o = outbox(&["a", "b"]);
        let mut k = Keepalive::default();
        let first = send(&mut o, &mut k, 1_000, 100);
        assert!(first.keepalive);
        assert_eq!(
            answered(&mut o, &mut k, &first, Err(()), 1_000, 0.5),
            Next::Unanswered
        );
        // Perhaps delivered (a navigation began): not resent, asked about once the delay is over.
        assert_eq!(o.take(1_000, 100), None);
        assert_eq!(o.take_confirm(1_500), Err(1_000 + outbox::CONFIRM_DELAY_MS));
        let asked = o.take_confirm(2_000).unwrap();
        assert_eq!(asked, ["a", "b"]);
        o.confirmed(&asked, &["a".to_owned()]);
        let again = send(&mut o, &mut k, 2_000, 100);
        assert_eq!(
            again.batch.ids,
            ["b"],
            "no backoff: the receiver did not fail"
        );
        assert!(!again.keepalive, "never again on this page");
        // Without keepalive, no answer is the network's fault: the backoff applies.
        assert_eq!(
            answered(&mut o, &mut k, &again, Err(()), 2_000, 0.5),
            Next::Retry {
                status: None,
                wait_ms: 500
            }
        );
    }

    #[test]
    fn each_verdict_says_what_to_do_next() {
        let mut k = Keepalive::default();
        let mut o = outbox(&["a", "b", "c"]);
        let r = send(&mut o, &mut k, 0, 10);
        assert_eq!(
            answered(&mut o, &mut k, &r, answer(503, None), 0, 0.5),
            Next::Retry {
                status: Some(503),
                wait_ms: 500
            }
        );
        assert_eq!(o.len(), 3, "kept");
        let r = send(&mut o, &mut k, 500, 10);
        assert_eq!(
            answered(&mut o, &mut k, &r, answer(400, None), 500, 0.5),
            Next::Refused(400)
        );
        assert!(o.is_empty(), "dropped");
        let mut o = outbox(&["d"]);
        let r = send(&mut o, &mut k, 0, 10);
        assert_eq!(
            answered(&mut o, &mut k, &r, answer(204, None), 0, 0.5),
            Next::Accepted(204)
        );
        assert!(o.is_empty());
    }

    #[test]
    fn retry_after_holds_every_path_that_could_send_earlier() {
        // A 429 with Retry-After: 2. Nothing may reach the receiver before it is over: not
        // the connection coming back, not another request's 2xx, not a page going away.
        let mut k = Keepalive::default();
        let mut o = outbox(&["a", "b"]);
        let first = o.take(10_000, 20).unwrap();
        assert_eq!(first.ids, ["a"]);
        let first = Request {
            batch: first,
            bytes: 10,
            keepalive: k.begin(10),
        };
        let second = send(&mut o, &mut k, 10_000, 10);
        assert_eq!(
            answered(&mut o, &mut k, &first, answer(429, Some("2")), 10_005, 0.5),
            Next::Retry {
                status: Some(429),
                wait_ms: 2_000
            }
        );
        o.resume();
        assert!(o.take(10_600, MAX_BODY_BYTES).is_none(), "online");
        assert_eq!(
            answered(&mut o, &mut k, &second, answer(200, None), 10_567, 0.5),
            Next::Accepted(200)
        );
        assert!(o.take(10_567, MAX_BODY_BYTES).is_none(), "another 2xx");
        assert!(
            o.take_for_exit(10_567, MAX_BODY_BYTES).is_none(),
            "a beacon"
        );
        let retry = o.take(12_005, MAX_BODY_BYTES).expect("due after 2 s");
        assert_eq!(retry.ids, ["a"]);
    }

    #[test]
    fn a_page_leaving_ignores_the_backoff_and_a_beacon_keeps_it() {
        let mut k = Keepalive::default();
        let mut o = outbox(&["a"]);
        let r = send(&mut o, &mut k, 0, 10);
        answered(&mut o, &mut k, &r, answer(503, None), 0, 0.5);
        assert!(o.take(100, MAX_BODY_BYTES).is_none(), "backing off");
        let exit = o.take_for_exit(100, MAX_BODY_BYTES).expect("leaving");
        beaconed(&mut o, &exit.ids, true, 100);
        assert!(o.is_empty(), "handed to the beacon");
        o.push(Entry::new("b".into(), "{}".into(), 200, Class::Other));
        assert!(
            o.take(200, MAX_BODY_BYTES).is_none(),
            "a beacon's answer is never seen: the backoff still holds"
        );
        assert!(o.take(500, MAX_BODY_BYTES).is_some());
    }

    #[test]
    fn a_refused_beacon_leaves_the_batch_for_the_next_attempt() {
        let mut o = outbox(&["a"]);
        let exit = o.take_for_exit(0, MAX_BODY_BYTES).unwrap();
        beaconed(&mut o, &exit.ids, false, 50);
        assert_eq!(o.len(), 1);
        assert_eq!(o.take(50, MAX_BODY_BYTES).unwrap().ids, ["a"]);
    }
}
