//! One stream of Okta's changes with two sources: the System Log the operator polls
//! ([`super::system_log`]) and the event hook Okta pushes to ([`crate::hooks`]). Whichever
//! tells of an event first, it goes down one path at once: remembered for the audit
//! log and the revocation authorizer, the answers it makes stale dropped, and the names
//! of the groups to verify again handed to the controller. A copy (a hook's duplicate
//! delivery, or the log reading what a hook delivered) is dropped.

use super::LogEvent;
use super::changes::{
    ChangedGroup, SeenEvents, Source, changed_groups, in_published_order, users_with_new_status,
};
use super::groups::GroupDirectory;
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
/// net, may be read less often.
#[derive(Default, Debug)]
pub struct HookHealth {
    last_delivery: Option<Instant>,
    /// When the log last found an event the hook had not delivered in time.
    last_miss: Option<Instant>,
}

impl HookHealth {
    pub fn delivered(&mut self, now: Instant) {
        self.last_delivery = Some(now);
    }

    pub fn missed(&mut self, now: Instant) {
        self.last_miss = Some(now);
    }

    /// A delivery came, and none was missed since.
    pub fn flowing(&self) -> bool {
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
            lock(&self.hooks).delivered(now);
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
        if source == Source::SystemLog && new.iter().any(|e| published_before(e, HOOK_GRACE)) {
            lock(&self.hooks).missed(now);
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
        lock(&self.hooks).flowing()
    }
}

/// Whether Okta published the event more than `ago` before now.
fn published_before(event: &LogEvent, ago: Duration) -> bool {
    event
        .published
        .as_deref()
        .and_then(super::recent::age_seconds)
        .is_some_and(|age| age > ago.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_flow_once_they_deliver_and_until_the_log_finds_what_they_missed() {
        let mut health = HookHealth::default();
        let start = Instant::now();
        assert!(!health.flowing(), "no delivery yet");
        health.delivered(start);
        assert!(health.flowing());
        health.missed(start + Duration::from_secs(1));
        assert!(!health.flowing(), "the log found an event first");
        health.delivered(start + Duration::from_secs(2));
        assert!(health.flowing(), "delivering again");
    }

    #[test]
    fn an_event_published_long_ago_is_one_the_hook_missed() {
        let event = |published: &str| LogEvent {
            uuid: "e".into(),
            event_type: "group.user_membership.remove".into(),
            published: Some(published.into()),
            target: Vec::new(),
        };
        assert!(published_before(
            &event("2026-01-01T00:00:00.000Z"),
            HOOK_GRACE
        ));
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        assert!(!published_before(&event(&now), HOOK_GRACE));
        assert!(!published_before(
            &LogEvent {
                published: None,
                ..event(&now)
            },
            HOOK_GRACE
        ));
    }
}
