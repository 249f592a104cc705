//! How long the forwarder pauses the queue after SALESmanago could not take a call (a network
//! error, 5xx, 408 or 429), and why these numbers.
//!
//! The receiver keeps its own schedule instead of the browser outbox's: the two wait for
//! different things. A tab retries one shopper's events against our receiver, thousands of tabs
//! at once, and its waits are bounded by how long a shopper stays (1 s doubling to 5 min, full
//! jitter to spread the herd). The receiver is one client of each store's SALESmanago account and
//! pauses every shopper's events of that store together, so:
//! - the first pause is short ([`FIRST`]): one failed call is usually a blip, and the store's whole
//!   queue waits on it;
//! - the pause doubles to at most [`MAX`], a minute: during a long outage that is one probe call a
//!   minute, which costs SALESmanago nothing, and once it is back delivery resumes within a minute
//!   rather than within five;
//! - half of each pause is random ("equal jitter"): with one receiver, or a few sharing a
//!   database, there is no herd to spread, and full jitter's near-zero waits would call an API
//!   that is down again and again; half is still enough to keep several instances out of step.

use std::time::Duration;

/// The pause after the first failure is between half of this and this.
pub const FIRST: Duration = Duration::from_millis(500);
/// The longest pause.
pub const MAX: Duration = Duration::from_secs(60);

/// The pause after `failures` failures in a row (0 for the first), `random` in `[0, 1)` choosing
/// where in `[cap / 2, cap)` it falls, with `cap` = [`FIRST`] doubled per earlier failure, at
/// most [`MAX`]. A `random` that is not a number counts as the middle.
pub fn pause(failures: u32, random: f64) -> Duration {
    let cap = FIRST.saturating_mul(1 << failures.min(16)).min(MAX);
    let r = if random.is_finite() {
        random.clamp(0.0, 1.0)
    } else {
        0.5
    };
    cap / 2 + (cap / 2).mul_f64(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_first_pause_is_short_and_never_zero() {
        assert_eq!(pause(0, 0.0), 250 * MS);
        assert!(pause(0, 0.999) < FIRST);
        assert_eq!(pause(0, f64::NAN), 375 * MS, "the middle");
        assert_eq!(pause(0, -3.0), 250 * MS);
    }

    #[test]
    fn each_failure_doubles_the_pause_until_a_minute() {
        let lows: Vec<Duration> = (0..9).map(|n| pause(n, 0.0)).collect();
        assert_eq!(
            lows,
            [250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000].map(|ms| ms * MS),
            "from the 8th failure on, the cap of a minute"
        );
        for failures in [7, 8, 100, u32::MAX] {
            assert!(pause(failures, 0.0) >= MAX / 2);
            assert!(pause(failures, 0.999_999) < MAX);
            assert_eq!(pause(failures, 1.0), MAX);
        }
    }

    #[test]
    fn an_outage_is_noticed_to_be_over_within_a_minute() {
        // Whenever SALESmanago comes back, the next call is at most one pause away.
        assert!((0..1_000).all(|n| pause(n, 1.0) <= MAX));
        // And a short outage costs little: five failures in a row wait 15.5 s at most in all.
        let five: Duration = (0..5).map(|n| pause(n, 1.0)).sum();
        assert_eq!(five, 15_500 * MS);
    }
}
