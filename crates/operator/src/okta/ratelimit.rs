//! What Okta's `X-Rate-Limit-*` headers said, per endpoint bucket: the client never sends
//! into a window it knows is exhausted.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub remaining: u64,
    /// Epoch seconds.
    pub reset: u64,
}

#[derive(Default)]
pub struct RateLimits {
    windows: Mutex<HashMap<&'static str, Window>>,
}

pub fn epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl RateLimits {
    /// How long to wait before sending to `bucket`: until its reset when nothing remains.
    pub fn wait_before(&self, bucket: &'static str, now: u64) -> Option<Duration> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let window = windows.get(bucket)?;
        // Reset is in whole seconds; like Okta's SDKs, allow one more second.
        (window.remaining == 0 && now <= window.reset)
            .then(|| Duration::from_secs(window.reset + 1 - now))
    }

    pub fn record(&self, bucket: &'static str, window: Window) {
        self.windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(bucket, window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exhausted_window_is_waited_out_until_after_its_reset() {
        let limits = RateLimits::default();
        assert_eq!(
            limits.wait_before("groups", 100),
            None,
            "unknown buckets are open"
        );
        limits.record(
            "groups",
            Window {
                remaining: 3,
                reset: 160,
            },
        );
        assert_eq!(limits.wait_before("groups", 100), None);
        limits.record(
            "groups",
            Window {
                remaining: 0,
                reset: 160,
            },
        );
        assert_eq!(
            limits.wait_before("groups", 100),
            Some(Duration::from_secs(61))
        );
        assert_eq!(
            limits.wait_before("groups", 160),
            Some(Duration::from_secs(1))
        );
        assert_eq!(limits.wait_before("groups", 161), None, "a new window");
        assert_eq!(
            limits.wait_before("group-users", 100),
            None,
            "buckets are separate"
        );
    }
}
