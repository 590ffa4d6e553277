//! Following Okta's System Log, so that a quiet org costs almost nothing: instead of
//! verifying every group again on every resync, the operator reads the group events Okta
//! logs (lifecycle, profile, membership) and verifies again only the groups they name, and
//! the user lifecycle events (suspended, deactivated, deleted, back), which re-list the
//! member lists that hold the user: a status change does not move a group's
//! `lastMembershipUpdated`.
//! Answers are trusted for the long full-resync interval while the log is being read, and
//! for the ordinary resync interval whenever it is not (no permission, Okta down).

use super::client::{LOG_PAGE, OktaClient};
use super::groups::GroupDirectory;
use super::{LogEvent, OktaError};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

/// The events that can change Okta's answer about a group, its members or their status.
pub const WATCHED_EVENTS: &str = r#"eventType sw "group.lifecycle." or eventType eq "group.profile.update" or eventType sw "group.user_membership." or eventType sw "user.lifecycle.""#;

/// Reading from a little before the operator started covers events Okta logs late.
const START_OVERLAP: Duration = Duration::from_secs(60);
/// After a refusal (no permission) the log is tried again this rarely.
const RETRY_REFUSED: Duration = Duration::from_secs(600);

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

/// When the log was last read through to its end.
#[derive(Default)]
pub struct LogProgress {
    caught_up: Mutex<Option<Instant>>,
}

impl LogProgress {
    pub(super) fn caught_up(&self) {
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

/// Told of the events of each page read, and when it was read.
pub type OnEvents = Box<dyn Fn(&[LogEvent], Instant) + Send + Sync>;

/// Reads the log every `interval` and hands the names of the groups whose answers it
/// dropped to `changed`.
pub struct Follower {
    pub client: Arc<OktaClient>,
    pub directory: Arc<GroupDirectory>,
    pub interval: Duration,
    /// Told of every event read (not those that could not be read), and when, before
    /// the answers they make stale are dropped.
    pub on_events: OnEvents,
}

impl Follower {
    pub async fn run(self, changed: mpsc::Sender<Vec<String>>) {
        let since = SystemTime::now() - START_OVERLAP;
        let mut next = match self.client.system_log_query(since, WATCHED_EVENTS) {
            Ok(url) => url,
            Err(error) => {
                tracing::error!(%error, "cannot follow the System Log");
                return;
            }
        };
        let mut refused_before = false;
        loop {
            let wait = match self.client.system_log_page(&next).await {
                Ok((events, link)) => {
                    refused_before = false;
                    let count = events.read.len() + events.unreadable.len();
                    (self.on_events)(&events.read, Instant::now());
                    // An event that cannot be read may name any group: all are verified
                    // again, rather than one change being missed.
                    let names = if events.unreadable.is_empty() {
                        let mut names =
                            self.directory.forget_changed(&changed_groups(&events.read));
                        names.extend(
                            self.directory
                                .forget_member_lists_of(&users_with_new_status(&events.read)),
                        );
                        names.sort();
                        names.dedup();
                        names
                    } else {
                        self.directory.forget_all()
                    };
                    if !names.is_empty() {
                        tracing::info!(
                            groups = names.len(),
                            "the System Log names groups to verify again"
                        );
                        // Waits while the controller is behind: the log is not read
                        // faster than its reports are taken.
                        if changed.send(names).await.is_err() {
                            return;
                        }
                    }
                    let full_page = count >= LOG_PAGE;
                    match link {
                        Some(link) => next = link,
                        None => tracing::warn!(
                            "the System Log gave no next link; reading the same page again"
                        ),
                    }
                    if full_page {
                        continue;
                    }
                    self.directory.log_caught_up();
                    self.interval
                }
                Err(error) => self.after_error(&error, &mut refused_before),
            };
            tokio::time::sleep(wait).await;
        }
    }

    fn after_error(&self, error: &OktaError, refused_before: &mut bool) -> Duration {
        match error {
            OktaError::Api {
                status: 401 | 403, ..
            } => {
                if !*refused_before {
                    tracing::warn!(%error, "Okta refuses the System Log (the API token's admin, or the service app's okta.logs.read grant); every group is verified again each resync instead");
                }
                *refused_before = true;
                RETRY_REFUSED
            }
            OktaError::RateLimited { reset } => {
                tracing::debug!(
                    reset,
                    "the System Log's rate limit is spent for this window"
                );
                Duration::from_secs(reset.saturating_sub(super::ratelimit::epoch_seconds()) + 1)
                    .max(self.interval)
            }
            _ => {
                tracing::warn!(%error, "reading the System Log failed; trying again");
                self.interval
            }
        }
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
    fn progress_is_current_only_for_a_while_after_catching_up() {
        let progress = LogProgress::default();
        assert!(!progress.current(Duration::from_secs(60)), "never read");
        progress.caught_up();
        assert!(progress.current(Duration::from_secs(60)));
        assert!(!progress.current(Duration::ZERO));
    }
}
