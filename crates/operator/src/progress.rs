//! Whether the controller is making progress, for `/healthz`.
//!
//! The rule: every OktaGroupBinding is reconciled again at least once per resync interval
//! (after an error the backoff is capped at that interval too). So while this replica
//! leads and at least one object exists, some reconcile must finish within every
//! resync interval. If none has finished for `stall_after` (twice the resync interval, and
//! at least two minutes) the controller is stuck and `/healthz` fails, so the kubelet
//! restarts the container. Before it leads, or with no objects, there is nothing to do and
//! it is healthy.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The longest a leading controller with objects may go without finishing a reconcile.
pub fn stall_after(resync: Duration) -> Duration {
    (resync * 2).max(Duration::from_secs(120))
}

/// What `/healthz` decides on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observed {
    pub leading: bool,
    pub objects: usize,
    /// How long since the last reconcile finished, or since this replica began to lead
    /// when none has finished yet.
    pub idle: Duration,
}

/// The rule above: `Err` says why the controller counts as stuck.
pub fn judge(observed: Observed, stall_after: Duration) -> Result<(), String> {
    if !observed.leading || observed.objects == 0 || observed.idle < stall_after {
        return Ok(());
    }
    Err(format!(
        "no reconcile has finished for {}s with {} objects to keep (the limit is {}s)",
        observed.idle.as_secs(),
        observed.objects,
        stall_after.as_secs()
    ))
}

/// Kept by the controller, read by `/healthz`.
pub struct Progress {
    stall_after: Duration,
    leading: AtomicBool,
    objects: AtomicUsize,
    last: Mutex<Instant>,
}

impl Progress {
    pub fn new(resync: Duration) -> Self {
        Self {
            stall_after: stall_after(resync),
            leading: AtomicBool::new(false),
            objects: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
        }
    }

    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// The controller starts: from now on it must make progress.
    pub fn leading(&self) {
        self.touch();
        self.leading.store(true, Ordering::SeqCst);
    }

    /// A reconcile finished (whatever its result).
    pub fn reconciled(&self) {
        self.touch();
    }

    /// How many objects the controller keeps.
    pub fn objects(&self, count: usize) {
        self.objects.store(count, Ordering::SeqCst);
    }

    pub fn check(&self) -> Result<(), String> {
        let idle = self
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed();
        judge(
            Observed {
                leading: self.leading.load(Ordering::SeqCst),
                objects: self.objects.load(Ordering::SeqCst),
                idle,
            },
            self.stall_after,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(600);

    fn observed(leading: bool, objects: usize, idle_seconds: u64) -> Observed {
        Observed {
            leading,
            objects,
            idle: Duration::from_secs(idle_seconds),
        }
    }

    #[test]
    fn a_leader_with_objects_must_finish_a_reconcile_within_the_limit() {
        assert!(judge(observed(true, 10, 599), LIMIT).is_ok());
        let stuck = judge(observed(true, 10, 600), LIMIT).expect_err("stuck");
        assert!(stuck.contains("600s with 10 objects"), "{stuck}");
    }

    #[test]
    fn with_nothing_to_do_it_is_healthy_however_long_it_waits() {
        assert!(
            judge(observed(true, 0, 86_400), LIMIT).is_ok(),
            "no objects"
        );
        assert!(
            judge(observed(false, 10, 86_400), LIMIT).is_ok(),
            "a standby"
        );
    }

    #[test]
    fn the_limit_is_two_resync_intervals_and_never_under_two_minutes() {
        assert_eq!(stall_after(Duration::from_secs(300)), LIMIT);
        assert_eq!(
            stall_after(Duration::from_secs(3)),
            Duration::from_secs(120)
        );
    }
}
