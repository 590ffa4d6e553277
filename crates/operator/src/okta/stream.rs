//! One stream of Okta's changes with two sources: the System Log the operator polls
//! ([`super::system_log`]) and the event hook Okta pushes to ([`crate::hooks`]). Whichever
//! tells of an event first, it goes down one path at once: remembered for the audit
//! log and the revocation authorizer, the answers it makes stale dropped, and the names
//! of the groups to verify again handed to the controller. A copy (a hook's duplicate
//! delivery, or the log reading what a hook delivered) is dropped.

use super::LogEvent;
use super::changes::{
    ChangedGroup, SeenEvents, Source, changed_groups, hook_delivers, in_published_order,
    users_with_new_status,
};
use super::groups::GroupDirectory;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longer than the System Log's start overlap and reading interval with hooks, so that
/// the log's copy of a delivered event is still recognized.
const REMEMBER_SEEN: Duration = Duration::from_secs(3600);
/// Okta allows 400,000 hook events a day across an org's hooks: an hour of them fits.
const MOST_SEEN: usize = 20_000;
/// An event the log reads first this long after Okta published it is one the hook did not
/// deliver (Okta delivers within a second or two when it does).
const HOOK_GRACE: Duration = Duration::from_secs(10);

/// Told of each new event (never a copy), and when it was taken.
pub type OnEvents = Box<dyn Fn(&[LogEvent], Instant) + Send + Sync>;
/// Told of each event taken (`source`, and whether it was a copy).
pub type OnTaken = Box<dyn Fn(Source, bool) + Send + Sync>;

/// Whether the event hook delivers what the System Log finds: then the log, the safety
/// net, may be read less often. A delivery (or Okta's verification) is the evidence;
/// until the first, and from an event the log finds first, the log is read at its own
/// pace.
#[derive(Default, Debug)]
pub struct HookHealth {
    last_delivery: Option<Instant>,
    /// When the log last found an event the hook had not delivered in time.
    last_miss: Option<Instant>,
    /// Events the log found first, just published: by uuid, when the hook's copy is due.
    awaiting: HashMap<String, Instant>,
}

impl HookHealth {
    /// The hook delivered these events (new or copies).
    pub fn delivered<'a>(&mut self, uuids: impl IntoIterator<Item = &'a str>, now: Instant) {
        self.last_delivery = Some(now);
        for uuid in uuids {
            self.awaiting.remove(uuid);
        }
    }

    /// The log found this event before the hook delivered it; `published_ago`: how long
    /// after Okta published it (`None`: unknown).
    pub fn found_first(&mut self, uuid: &str, published_ago: Option<Duration>, now: Instant) {
        match published_ago {
            Some(ago) if ago < HOOK_GRACE => {
                self.awaiting
                    .insert(uuid.to_string(), now + (HOOK_GRACE - ago));
            }
            _ => self.last_miss = Some(now),
        }
    }

    /// A delivery came, and none was missed since.
    pub fn flowing(&mut self, now: Instant) -> bool {
        // A copy never delivered was missed when it was due, not when this is asked:
        // deliveries between the two show the hook flowing again.
        let missed_at = self
            .awaiting
            .values()
            .filter(|due| **due <= now)
            .max()
            .copied();
        self.awaiting.retain(|_, due| *due > now);
        if let Some(due) = missed_at {
            self.last_miss = Some(self.last_miss.map_or(due, |miss| miss.max(due)));
        }
        match (self.last_delivery, self.last_miss) {
            (Some(delivery), Some(miss)) => delivery > miss,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

pub struct ChangeStream {
    directory: Arc<GroupDirectory>,
    seen: Mutex<SeenEvents>,
    hooks: Mutex<HookHealth>,
    on_events: OnEvents,
    on_taken: OnTaken,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ChangeStream {
    pub fn new(directory: Arc<GroupDirectory>, on_events: OnEvents, on_taken: OnTaken) -> Self {
        Self {
            directory,
            seen: Mutex::new(SeenEvents::new(REMEMBER_SEEN, MOST_SEEN)),
            hooks: Mutex::new(HookHealth::default()),
            on_events,
            on_taken,
        }
    }

    /// Takes what `source` told: `events` read, and `unreadable` events that could not
    /// be read. Returns the names of the groups whose objects to reconcile now.
    pub fn take(&self, source: Source, events: Vec<LogEvent>, unreadable: usize) -> Vec<String> {
        let now = Instant::now();
        if source == Source::EventHook {
            lock(&self.hooks).delivered(events.iter().map(|e| e.uuid.as_str()), now);
        }
        let mut new: Vec<LogEvent> = {
            let mut seen = lock(&self.seen);
            events
                .into_iter()
                .filter(|event| {
                    let first = seen.first_told(&event.uuid, source, now);
                    (self.on_taken)(source, first.is_some());
                    first.is_none()
                })
                .collect()
        };
        if source == Source::SystemLog {
            // Only what the hook is subscribed to can be a delivery it missed.
            let mut hooks = lock(&self.hooks);
            for event in new.iter().filter(|e| hook_delivers(e)) {
                hooks.found_first(&event.uuid, published_ago(event), now);
            }
        }
        in_published_order(&mut new);
        if !new.is_empty() {
            (self.on_events)(&new, now);
        }
        // An event that cannot be read may name any group: all are verified again,
        // rather than one change being missed.
        if unreadable > 0 {
            return self.directory.forget_all();
        }
        let changed: Vec<ChangedGroup> = changed_groups(&new);
        let mut names = self.directory.forget_changed(&changed);
        names.extend(
            self.directory
                .forget_member_lists_of(&users_with_new_status(&new)),
        );
        names.sort();
        names.dedup();
        names
    }

    /// The System Log was read through to its end.
    pub fn log_caught_up(&self) {
        self.directory.log_caught_up();
    }

    /// Whether the event hook delivers every event before the System Log finds it.
    pub fn hooks_flowing(&self) -> bool {
        lock(&self.hooks).flowing(Instant::now())
    }
}

/// How long before now Okta published the event.
fn published_ago(event: &LogEvent) -> Option<Duration> {
    let seconds = super::recent::age_seconds(event.published.as_deref()?)?;
    Some(Duration::from_secs_f64(seconds.max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_flow_once_they_deliver_and_until_the_log_finds_what_they_missed() {
        let mut health = HookHealth::default();
        let start = Instant::now();
        assert!(!health.flowing(start), "no delivery yet");
        health.delivered(["e1"], start);
        assert!(health.flowing(start));
        health.found_first("e2", Some(Duration::from_secs(30)), start);
        assert!(!health.flowing(start), "the log found an old event first");
        health.delivered(["e3"], start + Duration::from_secs(1));
        assert!(
            health.flowing(start + Duration::from_secs(1)),
            "delivering again"
        );
    }

    #[test]
    fn an_event_the_log_reads_just_after_okta_published_it_waits_for_the_hook_s_copy() {
        let mut health = HookHealth::default();
        let start = Instant::now();
        health.delivered(["e1"], start);
        health.found_first("e2", Some(Duration::from_secs(1)), start);
        assert!(health.flowing(start), "the hook may still deliver it");
        health.delivered(["e2"], start + Duration::from_secs(2));
        assert!(health.flowing(start + HOOK_GRACE * 2), "it did");
        let later = start + Duration::from_secs(3);
        health.found_first("e4", None, later);
        assert!(!health.flowing(later), "no time to wait by");
        let mut health = HookHealth::default();
        health.delivered(["e1"], start);
        health.found_first("e5", Some(Duration::from_secs(1)), start);
        assert!(
            !health.flowing(start + HOOK_GRACE),
            "never delivered within the grace"
        );
    }

    #[test]
    fn a_copy_never_delivered_is_a_miss_when_it_was_due_and_later_deliveries_outweigh_it() {
        let mut health = HookHealth::default();
        let start = Instant::now();
        health.delivered(["e1"], start);
        // Published before the hook existed: the log finds it, the hook never sends it.
        health.found_first("before-the-hook", Some(Duration::from_secs(2)), start);
        let due = start + HOOK_GRACE - Duration::from_secs(2);
        health.delivered(["e2"], due + Duration::from_secs(5));
        assert!(
            health.flowing(start + Duration::from_secs(30)),
            "delivering since the miss, though the log asks only later"
        );
        let mut health = HookHealth::default();
        health.delivered(["e1"], start);
        health.found_first("dropped", Some(Duration::from_secs(2)), start);
        assert!(
            !health.flowing(start + Duration::from_secs(30)),
            "nothing delivered since it was due"
        );
    }

    #[test]
    fn an_event_s_age_is_read_from_its_publication() {
        let event = |published: Option<&str>| LogEvent {
            uuid: "e".into(),
            event_type: "group.user_membership.remove".into(),
            published: published.map(str::to_string),
            target: Vec::new(),
        };
        let old = published_ago(&event(Some("2026-01-01T00:00:00.000Z"))).expect("age");
        assert!(old > HOOK_GRACE);
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let fresh = published_ago(&event(Some(&now))).expect("age");
        assert!(fresh < HOOK_GRACE);
        assert_eq!(published_ago(&event(None)), None);
        assert_eq!(published_ago(&event(Some("yesterday"))), None);
    }
}
