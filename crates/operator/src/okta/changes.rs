//! What an Okta event says changed, whichever source told the operator of it (the System
//! Log it polls, or an event hook Okta pushes): the groups and users it names, and which
//! events were already taken. Pure: no I/O, no clock but the caller's.

use super::LogEvent;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The event types to subscribe the hook to: those the operator follows in the System
/// Log ([`super::system_log::WATCHED_EVENTS`]) that Okta lets a hook receive.
pub const HOOK_EVENT_TYPES: [&str; 11] = [
    "group.user_membership.add",
    "group.user_membership.remove",
    "group.lifecycle.create",
    "group.lifecycle.delete",
    "group.profile.update",
    "user.lifecycle.suspend",
    "user.lifecycle.unsuspend",
    "user.lifecycle.deactivate",
    "user.lifecycle.activate",
    "user.lifecycle.reactivate",
    "user.lifecycle.delete.initiated",
];

/// Whether an event the System Log found first may be one the hook failed to deliver:
/// only the event types the hook is subscribed to.
pub fn hook_delivers(event: &LogEvent) -> bool {
    HOOK_EVENT_TYPES.contains(&event.event_type.as_str())
}

/// Where an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    SystemLog,
    EventHook,
}

impl Source {
    /// As the metrics and the log name it.
    pub fn label(self) -> &'static str {
        match self {
            Source::SystemLog => "system_log",
            Source::EventHook => "event_hook",
        }
    }
}

/// A group that an event says changed: its id, and its name as the event gives it (a
/// renamed group's new name).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChangedGroup {
    pub id: String,
    pub name: Option<String>,
}

/// The groups named by group targets of the events, each once.
pub fn changed_groups(events: &[LogEvent]) -> Vec<ChangedGroup> {
    events
        .iter()
        .flat_map(|e| &e.target)
        .filter(|t| t.kind == "UserGroup")
        .map(|t| ChangedGroup {
            id: t.id.clone(),
            name: t.display_name.clone(),
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The users whose status the events say changed (by id), each once.
pub fn users_with_new_status(events: &[LogEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.event_type.starts_with("user.lifecycle."))
        .flat_map(|e| &e.target)
        .filter(|t| t.kind == "User")
        .map(|t| t.id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Orders events as Okta published them (an event hook's deliveries may arrive in any
/// order); events without a readable time keep their place after the others.
pub fn in_published_order(events: &mut [LogEvent]) {
    events.sort_by_cached_key(|e| {
        e.published
            .as_deref()
            .and_then(|p| p.parse::<k8s_openapi::jiff::Timestamp>().ok())
            .map_or((1, k8s_openapi::jiff::Timestamp::MAX), |t| (0, t))
    });
}

/// When the System Log was last read through to its end.
#[derive(Default)]
pub struct LogProgress {
    caught_up: Mutex<Option<Instant>>,
}

impl LogProgress {
    pub fn caught_up(&self) {
        *self.caught_up.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// Whether the log was read through to its end within `within`.
    pub fn current(&self, within: Duration) -> bool {
        self.caught_up
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() <= within)
    }
}

/// The events already taken, by uuid: Okta delivers a hook's events at least once, and
/// the System Log reads them again. Remembered for `keep` (longer than the log's
/// overlap and a hook's retries) and at most `capacity` of them.
pub struct SeenEvents {
    keep: Duration,
    capacity: usize,
    by_uuid: HashMap<String, Source>,
    order: VecDeque<(Instant, String)>,
}

impl SeenEvents {
    pub fn new(keep: Duration, capacity: usize) -> Self {
        Self {
            keep,
            capacity: capacity.max(1),
            by_uuid: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// `None` when the event is new (it is remembered as told by `source`); otherwise the
    /// source that told of it first.
    pub fn first_told(&mut self, uuid: &str, source: Source, now: Instant) -> Option<Source> {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < self.keep && self.order.len() < self.capacity {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.by_uuid.remove(&old);
            }
        }
        if let Some(first) = self.by_uuid.get(uuid) {
            return Some(*first);
        }
        self.by_uuid.insert(uuid.to_string(), source);
        self.order.push_back((now, uuid.to_string()));
        None
    }

    pub fn len(&self) -> usize {
        self.by_uuid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_uuid.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okta::LogTarget;

    fn event(event_type: &str, targets: &[(&str, &str, &str)]) -> LogEvent {
        LogEvent {
            uuid: format!("{event_type}-{}", targets.len()),
            event_type: event_type.into(),
            published: Some("2026-12-03T14:02:11.000Z".into()),
            target: targets
                .iter()
                .map(|(kind, id, name)| LogTarget {
                    id: id.to_string(),
                    kind: kind.to_string(),
                    display_name: Some(name.to_string()),
                    alternate_id: None,
                })
                .collect(),
        }
    }

    #[test]
    fn group_targets_are_the_changed_groups_each_once() {
        let events = [
            event(
                "group.user_membership.add",
                &[
                    ("User", "00u1", "Alice"),
                    ("UserGroup", "00g1", "k8s-admins"),
                ],
            ),
            event("group.profile.update", &[("UserGroup", "00g2", "k8s-ops")]),
            event(
                "group.user_membership.remove",
                &[("User", "00u2", "Bob"), ("UserGroup", "00g1", "k8s-admins")],
            ),
        ];
        assert_eq!(
            changed_groups(&events),
            vec![
                ChangedGroup {
                    id: "00g1".into(),
                    name: Some("k8s-admins".into())
                },
                ChangedGroup {
                    id: "00g2".into(),
                    name: Some("k8s-ops".into())
                },
            ]
        );
    }

    #[test]
    fn user_lifecycle_targets_are_the_users_whose_status_changed_each_once() {
        let events = [
            event("user.lifecycle.suspend", &[("User", "00u1", "Gina")]),
            event(
                "group.user_membership.remove",
                &[("User", "00u2", "Bob"), ("UserGroup", "00g1", "k8s-admins")],
            ),
            event(
                "user.lifecycle.delete.initiated",
                &[("User", "00u3", "Hal")],
            ),
            event("user.lifecycle.unsuspend", &[("User", "00u1", "Gina")]),
        ];
        assert_eq!(
            users_with_new_status(&events),
            ["00u1", "00u3"],
            "a membership change moves the group itself, not a user's status"
        );
        assert!(changed_groups(&events[..1]).is_empty());
    }

    #[test]
    fn events_deserialize_from_okta_s_shape() {
        let json = r#"[{"uuid":"a","published":"2026-11-24T10:00:00.000Z","eventType":"group.lifecycle.delete","actor":{"id":"x"},"target":[{"id":"00g1","type":"UserGroup","alternateId":"unknown","displayName":"k8s-admins","detailEntry":null}]}]"#;
        let events: Vec<LogEvent> = serde_json::from_str(json).expect("events");
        assert_eq!(changed_groups(&events)[0].id, "00g1");
    }

    #[test]
    fn events_are_put_in_the_order_okta_published_them() {
        let at = |uuid: &str, published: Option<&str>| LogEvent {
            uuid: uuid.into(),
            event_type: "group.user_membership.add".into(),
            published: published.map(str::to_string),
            target: Vec::new(),
        };
        let mut events = [
            at("late", Some("2026-12-03T14:02:12.000Z")),
            at("timeless", None),
            at("early", Some("2026-12-03T14:02:11.500Z")),
            at("offset", Some("2026-12-03T15:02:11.900+01:00")),
        ];
        in_published_order(&mut events);
        let uuids: Vec<&str> = events.iter().map(|e| e.uuid.as_str()).collect();
        assert_eq!(uuids, ["early", "offset", "late", "timeless"]);
    }

    #[test]
    fn an_event_is_taken_once_and_its_first_source_remembered() {
        let mut seen = SeenEvents::new(Duration::from_secs(60), 100);
        let now = Instant::now();
        assert_eq!(seen.first_told("e1", Source::EventHook, now), None);
        assert_eq!(
            seen.first_told("e1", Source::SystemLog, now),
            Some(Source::EventHook)
        );
        assert_eq!(
            seen.first_told("e1", Source::EventHook, now),
            Some(Source::EventHook),
            "a hook's duplicate delivery"
        );
        let later = now + Duration::from_secs(61);
        assert_eq!(
            seen.first_told("e2", Source::SystemLog, later),
            None,
            "older uuids are let go"
        );
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn memory_of_events_is_bounded() {
        let mut seen = SeenEvents::new(Duration::from_secs(3600), 3);
        let now = Instant::now();
        for uuid in ["a", "b", "c", "d"] {
            seen.first_told(uuid, Source::EventHook, now);
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(seen.first_told("a", Source::SystemLog, now), None);
    }

    #[test]
    fn only_the_subscribed_event_types_are_the_hook_s_to_deliver() {
        assert!(hook_delivers(&event("group.user_membership.remove", &[])));
        assert!(hook_delivers(&event("user.lifecycle.suspend", &[])));
        assert!(
            !hook_delivers(&event("user.lifecycle.create", &[])),
            "a new user is in no group: not subscribed, and never a miss"
        );
    }

    #[test]
    fn progress_is_current_only_for_a_while_after_catching_up() {
        let progress = LogProgress::default();
        assert!(!progress.current(Duration::from_secs(60)), "never read");
        progress.caught_up();
        assert!(progress.current(Duration::from_secs(60)));
        assert!(!progress.current(Duration::ZERO));
    }
}
