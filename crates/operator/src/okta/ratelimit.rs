//! What Okta's `X-Rate-Limit-*` headers said, per endpoint bucket: the client never sends
//! into a window it knows is exhausted, and never spends more of a window than its share.
//!
//! Okta's rate limits are per org: every cluster and app that uses the org draws on the
//! same buckets. With a share below one, the operator counts its own requests in each
//! window and stops at that fraction of the window's limit, leaving the rest to others.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// `X-Rate-Limit-Limit`, when the answer had it.
    pub limit: Option<u64>,
    pub remaining: u64,
    /// Epoch seconds.
    pub reset: u64,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    window: Window,
    /// Requests this client sent in the window that resets at `window.reset`.
    spent: u64,
}

pub struct RateLimits {
    /// The fraction of each window's limit this client may spend, in (0, 1].
    share: f64,
    buckets: Mutex<HashMap<&'static str, Bucket>>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::with_share(1.0)
    }
}

pub fn epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl RateLimits {
    pub fn with_share(share: f64) -> Self {
        Self {
            share: share.clamp(f64::MIN_POSITIVE, 1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The requests of a window with this limit that the share allows (at least one).
    fn allowance(&self, limit: u64) -> u64 {
        ((limit as f64 * self.share).floor() as u64).max(1)
    }

    /// Takes a request's place in `bucket`'s window, or says how long to wait first: until
    /// the reset when nothing remains or this client has spent its share.
    pub fn reserve(&self, bucket: &'static str, now: u64) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let Some(state) = buckets.get_mut(bucket) else {
            return Ok(());
        };
        if now > state.window.reset {
            // A new window whose numbers the next answer will tell.
            return Ok(());
        }
        let share_spent = self.share < 1.0
            && state
                .window
                .limit
                .is_some_and(|limit| state.spent >= self.allowance(limit));
        if state.window.remaining == 0 || share_spent {
            // Reset is in whole seconds; like Okta's SDKs, allow one more second.
            // A nonsensical reset (far ahead, the header's largest number) must not
            // overflow: it makes a long wait, which callers cap.
            return Err(Duration::from_secs(
                state.window.reset.saturating_add(1).saturating_sub(now),
            ));
        }
        state.spent += 1;
        state.window.remaining = state.window.remaining.saturating_sub(1);
        Ok(())
    }

    /// What an answer's headers said. An answer from a window not seen before starts its
    /// count at one: the request that brought it.
    pub fn record(&self, bucket: &'static str, window: Window) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let spent = match buckets.get(bucket) {
            Some(state) if state.window.reset == window.reset => state.spent,
            _ => 1,
        };
        buckets.insert(bucket, Bucket { window, spent });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(limit: u64, remaining: u64, reset: u64) -> Window {
        Window {
            limit: Some(limit),
            remaining,
            reset,
        }
    }

    #[test]
    fn a_reset_at_the_end_of_time_overflows_nothing() {
        let limits = RateLimits::with_share(1.0);
        limits.record("groups", window(100, 0, u64::MAX));
        let wait = limits.reserve("groups", 1_000).expect_err("exhausted");
        assert_eq!(wait, Duration::from_secs(u64::MAX - 1_000));
    }

    #[test]
    fn an_exhausted_window_is_waited_out_until_after_its_reset() {
        let limits = RateLimits::default();
        assert_eq!(
            limits.reserve("groups", 100),
            Ok(()),
            "unknown buckets are open"
        );
        limits.record("groups", window(100, 3, 160));
        assert_eq!(limits.reserve("groups", 100), Ok(()));
        limits.record("groups", window(100, 0, 160));
        assert_eq!(limits.reserve("groups", 100), Err(Duration::from_secs(61)));
        assert_eq!(limits.reserve("groups", 160), Err(Duration::from_secs(1)));
        assert_eq!(limits.reserve("groups", 161), Ok(()), "a new window");
        assert_eq!(
            limits.reserve("group-users", 100),
            Ok(()),
            "buckets are separate"
        );
    }

    #[test]
    fn requests_in_flight_count_before_their_answers_arrive() {
        let limits = RateLimits::default();
        limits.record("groups", window(100, 2, 160));
        assert_eq!(limits.reserve("groups", 100), Ok(()));
        assert_eq!(limits.reserve("groups", 100), Ok(()));
        assert!(
            limits.reserve("groups", 100).is_err(),
            "two remained, two sent"
        );
    }

    #[test]
    fn a_share_stops_at_its_fraction_of_each_window_however_much_remains() {
        let limits = RateLimits::with_share(0.25);
        limits.record("groups", window(100, 99, 160));
        let sent = (0..100)
            .take_while(|_| limits.reserve("groups", 100).is_ok())
            .count();
        assert_eq!(
            sent, 24,
            "25 of 100 per window: the first answer's request and 24 more"
        );
        assert_eq!(limits.reserve("groups", 100), Err(Duration::from_secs(61)));
        // The next window starts a new count.
        limits.record("groups", window(100, 99, 220));
        assert_eq!(limits.reserve("groups", 170), Ok(()));
    }

    #[test]
    fn a_small_share_of_a_small_limit_still_allows_one_request() {
        let limits = RateLimits::with_share(0.01);
        limits.record("logs", window(60, 59, 160));
        assert!(
            limits.reserve("logs", 100).is_err(),
            "the answer's own request was the one"
        );
    }
}
