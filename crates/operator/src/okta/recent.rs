//! The Okta changes read lately, by the group and the user they name, so that a change in
//! the cluster can name the Okta event that caused it.

use super::LogEvent;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One System Log event, as an audit record names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OktaEvent {
    pub uuid: String,
    pub event_type: String,
    /// When Okta logged it (RFC 3339).
    pub published: Option<String>,
}

impl OktaEvent {
    /// Seconds from Okta's publication to now; `None` when Okta gave no readable time.
    pub fn age_seconds(&self) -> Option<f64> {
        age_seconds(self.published.as_deref()?)
    }
}

/// Seconds from `published` (RFC 3339) to now.
pub fn age_seconds(published: &str) -> Option<f64> {
    let at: k8s_openapi::jiff::Timestamp = published.parse().ok()?;
    Some(
        k8s_openapi::jiff::Timestamp::now()
            .duration_since(at)
            .as_secs_f64(),
    )
}

/// Longer than the operator takes to act on an event (a System Log poll, a reconcile, its
/// retries), and short enough that a later, unrelated change is not blamed on it.
const REMEMBERED: Duration = Duration::from_secs(600);

/// Events by what they name: a group's id, a user's id and login (lowercase).
#[derive(Default)]
pub struct RecentEvents {
    by_key: Mutex<HashMap<String, Vec<(Instant, OktaEvent)>>>,
}

impl RecentEvents {
    pub fn record(&self, events: &[LogEvent]) {
        let now = Instant::now();
        let mut by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        by_key.retain(|_, seen| {
            seen.retain(|(at, _)| now.duration_since(*at) < REMEMBERED);
            !seen.is_empty()
        });
        for event in events {
            let recorded = OktaEvent {
                uuid: event.uuid.clone(),
                event_type: event.event_type.clone(),
                published: event.published.clone(),
            };
            for target in &event.target {
                let keys = std::iter::once(target.id.clone())
                    .chain(target.alternate_id.as_deref().map(str::to_lowercase));
                for key in keys {
                    by_key.entry(key).or_default().push((now, recorded.clone()));
                }
            }
        }
    }

    /// The latest event naming any of `keys` (a group id, a user's id or login) that
    /// `fits`, read within the last few minutes.
    pub fn latest(&self, keys: &[&str], fits: impl Fn(&str) -> bool) -> Option<OktaEvent> {
        let by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .filter_map(|key| by_key.get(&key.to_lowercase()).or_else(|| by_key.get(*key)))
            .flatten()
            .filter(|(at, event)| at.elapsed() < REMEMBERED && fits(&event.event_type))
            .max_by(|(_, a), (_, b)| a.published.cmp(&b.published))
            .map(|(_, event)| event.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okta::LogTarget;

    fn event(uuid: &str, kind: &str, published: &str, targets: &[(&str, &str, &str)]) -> LogEvent {
        LogEvent {
            uuid: uuid.into(),
            event_type: kind.into(),
            published: Some(published.into()),
            target: targets
                .iter()
                .map(|(id, kind, login)| LogTarget {
                    id: (*id).into(),
                    kind: (*kind).into(),
                    display_name: None,
                    alternate_id: Some((*login).into()),
                })
                .collect(),
        }
    }

    #[test]
    fn the_latest_fitting_event_about_a_user_or_group_is_found() {
        let recent = RecentEvents::default();
        recent.record(&[
            event(
                "e1",
                "group.user_membership.remove",
                "2026-12-03T10:00:00.000Z",
                &[
                    ("00u1", "User", "Bob@Example.com"),
                    ("00g1", "UserGroup", "k8s-a"),
                ],
            ),
            event(
                "e2",
                "group.user_membership.add",
                "2026-12-03T10:00:05.000Z",
                &[
                    ("00u1", "User", "bob@example.com"),
                    ("00g1", "UserGroup", "k8s-a"),
                ],
            ),
        ]);
        let removal = |t: &str| t.ends_with(".remove");
        let by_login = recent.latest(&["bob@example.com"], removal);
        assert_eq!(by_login.map(|e| e.uuid).as_deref(), Some("e1"));
        let any = recent.latest(&["00g1"], |_| true);
        assert_eq!(any.map(|e| e.uuid).as_deref(), Some("e2"));
        assert_eq!(recent.latest(&["00u2"], |_| true), None);
    }
}
