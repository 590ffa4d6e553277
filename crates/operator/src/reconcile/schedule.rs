//! Time-bound grants: where `now` falls between an object's `startTime` and `endTime`,
//! and when that next changes. Pure: the time is passed in.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use okta_rbac_api::OktaGroupBinding;
use std::time::Duration;

/// A boundary is acted on this long after it, never before: a grant must not start early
/// or end while its end is still ahead by a timer's rounding.
const PAST_THE_BOUNDARY: Duration = Duration::from_millis(5);

/// Where an object's grant stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Neither `startTime` nor `endTime`: granted for as long as the object exists.
    Unbounded,
    NotYetActive {
        starts: Timestamp,
        ends: Option<Timestamp>,
    },
    Active {
        /// The start, or the object's creation if that came later.
        since: Timestamp,
        until: Option<Timestamp>,
    },
    Expired {
        ended: Timestamp,
    },
}

impl Window {
    /// Whether the object's bindings may exist now.
    pub fn grants(&self) -> bool {
        matches!(self, Window::Unbounded | Window::Active { .. })
    }

    /// How long until the window changes (the start or the end passes), if it will.
    pub fn next_change(&self, now: Timestamp) -> Option<Duration> {
        let boundary = match self {
            Window::NotYetActive { starts, .. } => *starts,
            Window::Active {
                until: Some(until), ..
            } => *until,
            _ => return None,
        };
        let ahead = boundary.duration_since(now);
        Some(
            Duration::try_from(ahead.max(SignedDuration::ZERO)).unwrap_or_default()
                + PAST_THE_BOUNDARY,
        )
    }

    /// When the grant ends, while it has not yet.
    pub fn ends(&self) -> Option<Timestamp> {
        match self {
            Window::NotYetActive { ends, .. } => *ends,
            Window::Active { until, .. } => *until,
            _ => None,
        }
    }
}

/// Whether a reconcile of `ogb` at `now` asks Okta about its group: not while paused,
/// and never once its grant is over (an expired grant verifies nothing).
pub fn asks_okta(ogb: &OktaGroupBinding, now: Timestamp) -> bool {
    !ogb.spec.paused && !matches!(window(ogb, now), Window::Expired { .. })
}

/// The window of `ogb` at `now`.
pub fn window(ogb: &OktaGroupBinding, now: Timestamp) -> Window {
    let start = ogb.spec.start_time.as_ref().map(|t| t.0);
    let end = ogb.spec.end_time.as_ref().map(|t| t.0);
    match (start, end) {
        (None, None) => Window::Unbounded,
        (_, Some(ended)) if now >= ended => Window::Expired { ended },
        (Some(starts), ends) if now < starts => Window::NotYetActive { starts, ends },
        (start, until) => {
            let created = ogb.metadata.creation_timestamp.as_ref().map(|t| t.0);
            let since = match (start, created) {
                (Some(start), Some(created)) => start.max(created),
                (Some(start), None) => start,
                (None, Some(created)) => created,
                (None, None) => now,
            };
            Window::Active { since, until }
        }
    }
}

/// When to look again: after `delay`, or just past the window's next boundary if that
/// comes first.
pub fn until_next_look(delay: Duration, window: &Window, now: Timestamp) -> Duration {
    window
        .next_change(now)
        .map_or(delay, |change| change.min(delay))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::fixtures::{ogb, spec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("time")
    }

    fn timed(start: Option<i64>, end: Option<i64>, created: i64) -> OktaGroupBinding {
        let mut object = ogb(spec());
        object.spec.start_time = start.map(|s| Time(at(s)));
        object.spec.end_time = end.map(|s| Time(at(s)));
        object.metadata.creation_timestamp = Some(Time(at(created)));
        object
    }

    #[test]
    fn before_between_and_after() {
        let object = timed(Some(1000), Some(2000), 500);
        assert_eq!(
            window(&object, at(999)),
            Window::NotYetActive {
                starts: at(1000),
                ends: Some(at(2000))
            }
        );
        assert_eq!(
            window(&object, at(1000)),
            Window::Active {
                since: at(1000),
                until: Some(at(2000))
            },
            "the start is in the window"
        );
        assert_eq!(
            window(&object, at(2000)),
            Window::Expired { ended: at(2000) },
            "the end is not"
        );
        assert!(!window(&object, at(999)).grants());
        assert!(window(&object, at(1500)).grants());
        assert!(!window(&object, at(2500)).grants());
    }

    #[test]
    fn only_a_grant_not_over_and_not_paused_asks_okta() {
        let object = timed(Some(1000), Some(2000), 500);
        assert!(asks_okta(&object, at(999)), "verified before it starts");
        assert!(asks_okta(&object, at(1500)));
        assert!(!asks_okta(&object, at(2000)), "over");
        let mut paused = object.clone();
        paused.spec.paused = true;
        assert!(!asks_okta(&paused, at(1500)));
        assert!(asks_okta(&timed(None, None, 0), at(10)));
    }

    #[test]
    fn without_times_nothing_changes() {
        let object = timed(None, None, 0);
        assert_eq!(window(&object, at(10)), Window::Unbounded);
        assert_eq!(window(&object, at(10)).next_change(at(10)), None);
        assert_eq!(
            until_next_look(Duration::from_secs(300), &Window::Unbounded, at(10)),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn an_end_alone_is_active_since_creation_and_a_past_end_never_grants() {
        let object = timed(None, Some(2000), 500);
        assert_eq!(
            window(&object, at(600)),
            Window::Active {
                since: at(500),
                until: Some(at(2000))
            }
        );
        let applied_late = timed(Some(100), Some(200), 500);
        assert_eq!(
            window(&applied_late, at(500)),
            Window::Expired { ended: at(200) }
        );
    }

    #[test]
    fn the_next_look_is_just_past_the_next_boundary() {
        let object = timed(Some(1000), Some(2000), 0);
        let now = at(990);
        let before = window(&object, now);
        assert_eq!(
            before.next_change(now),
            Some(Duration::from_secs(10) + PAST_THE_BOUNDARY)
        );
        assert_eq!(
            until_next_look(Duration::from_secs(300), &before, now),
            Duration::from_secs(10) + PAST_THE_BOUNDARY
        );
        assert_eq!(
            until_next_look(Duration::from_secs(2), &before, now),
            Duration::from_secs(2),
            "an earlier retry stays earlier"
        );
        let during = window(&object, at(1990));
        assert_eq!(
            during.next_change(at(1990)),
            Some(Duration::from_secs(10) + PAST_THE_BOUNDARY)
        );
        assert_eq!(window(&object, at(2001)).next_change(at(2001)), None);
    }
}
