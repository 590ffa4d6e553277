//! Injected trouble for event hook deliveries, the kinds Okta warns of (no order, no
//! exactly-once, no maximum delay): late, duplicated, reordered and dropped deliveries.
//! Counted, not drawn at random, so a test sees the same trouble every run.

use crate::limits::lock;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Which deliveries go wrong. "Every Nth" counts each hook's deliveries from when the
/// faults were set; 0 turns a fault off.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EventHookFaults {
    /// Waited before every delivery is sent.
    pub delay_ms: u64,
    /// Every Nth delivery is sent twice (1: every one), with the same `eventId`.
    pub duplicate_every: u64,
    /// Every Nth delivery is held back and sent right after the next one.
    pub reorder_every: u64,
    /// How long a held delivery waits for a next one before it is sent alone.
    pub reorder_hold_ms: u64,
    /// Every Nth delivery is dropped: never sent, and nothing logged.
    pub drop_every: u64,
    /// The next this many deliveries (of any hook) are dropped.
    pub drop_next: u64,
}

impl Default for EventHookFaults {
    fn default() -> Self {
        Self {
            delay_ms: 0,
            duplicate_every: 0,
            reorder_every: 0,
            reorder_hold_ms: 1_000,
            drop_every: 0,
            drop_next: 0,
        }
    }
}

/// What happens to one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub delay: Duration,
    pub drop: bool,
    pub duplicate: bool,
    pub hold: bool,
}

#[derive(Default)]
struct State {
    /// `drop_next` counts down as deliveries are dropped.
    faults: EventHookFaults,
    /// Deliveries per hook since the faults were set.
    counts: HashMap<String, u64>,
}

#[derive(Default)]
pub struct DeliveryFaults {
    state: Mutex<State>,
}

fn nth(every: u64, n: u64) -> bool {
    every > 0 && n.is_multiple_of(every)
}

impl DeliveryFaults {
    pub fn set(&self, faults: EventHookFaults) {
        *lock(&self.state) = State {
            faults,
            counts: HashMap::new(),
        };
    }

    /// The faults as they stand: `dropNext` is what is left of it.
    pub fn get(&self) -> EventHookFaults {
        lock(&self.state).faults.clone()
    }

    pub fn hold_limit(&self) -> Duration {
        Duration::from_millis(lock(&self.state).faults.reorder_hold_ms)
    }

    /// Counts a delivery of `hook_id` and says what happens to it.
    pub fn plan(&self, hook_id: &str) -> Plan {
        let mut state = lock(&self.state);
        let count = state.counts.entry(hook_id.to_string()).or_default();
        *count += 1;
        let n = *count;
        let faults = &mut state.faults;
        let drop = if faults.drop_next > 0 {
            faults.drop_next -= 1;
            true
        } else {
            nth(faults.drop_every, n)
        };
        Plan {
            delay: Duration::from_millis(faults.delay_ms),
            drop,
            duplicate: nth(faults.duplicate_every, n),
            hold: nth(faults.reorder_every, n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_hit_every_nth_delivery_of_each_hook_and_drop_next_counts_down() {
        let faults = DeliveryFaults::default();
        faults.set(EventHookFaults {
            duplicate_every: 2,
            reorder_every: 3,
            drop_next: 1,
            ..Default::default()
        });
        let plans: Vec<Plan> = (0..4).map(|_| faults.plan("a")).collect();
        assert_eq!(
            plans.iter().map(|p| p.drop).collect::<Vec<_>>(),
            [true, false, false, false]
        );
        assert_eq!(
            plans.iter().map(|p| p.duplicate).collect::<Vec<_>>(),
            [false, true, false, true]
        );
        assert_eq!(
            plans.iter().map(|p| p.hold).collect::<Vec<_>>(),
            [false, false, true, false]
        );
        assert_eq!(faults.get().drop_next, 0);
        assert!(!faults.plan("b").duplicate, "hook b counts from one");
        faults.set(EventHookFaults::default());
        assert_eq!(
            faults.plan("a"),
            Plan {
                delay: Duration::ZERO,
                drop: false,
                duplicate: false,
                hold: false
            }
        );
    }
}
