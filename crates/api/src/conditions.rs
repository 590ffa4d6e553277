//! `metav1.Condition` semantics for the conditions an OktaGroupBinding reports:
//! `lastTransitionTime` moves only when a condition's status changes.

pub use crate::reasons::Reason;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Verified, applied, and nothing left to do.
pub const READY: &str = "Ready";
pub const GROUP_VERIFIED: &str = "GroupVerified";
pub const BINDINGS_APPLIED: &str = "BindingsApplied";
/// Present (True) only when the object cannot succeed without a change by a person: the
/// kstatus convention, so that Flux and other kstatus readers report it as Failed.
pub const STALLED: &str = "Stalled";
/// Present (True) only while `spec.paused` is true.
pub const PAUSED: &str = "Paused";
/// Present only on an object with `spec.startTime` or `spec.endTime`: whether the grant is
/// in effect now (True), not yet (False, NotYetActive) or no more (False, Expired).
pub const ACTIVE: &str = "Active";
/// Advisory: whether an ID token from the authorization server kubectl logs in with will
/// carry the group (present when the operator knows that server).
pub const CLAIM_CARRIES_GROUP: &str = "ClaimCarriesGroup";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }
}

/// What a reconcile concluded about one condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub type_: &'static str,
    pub status: Status,
    pub reason: Reason,
    pub message: String,
}

impl Verdict {
    pub fn new(
        type_: &'static str,
        status: Status,
        reason: Reason,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }
}

/// The conditions after `verdicts`, keeping each `lastTransitionTime` whose status did not
/// change, and without the types in `retired`. Conditions of other types are kept as they
/// are.
pub fn merge(
    existing: &[Condition],
    verdicts: &[Verdict],
    retired: &[&str],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut merged: Vec<Condition> = verdicts
        .iter()
        .map(|verdict| {
            let previous = existing.iter().find(|c| c.type_ == verdict.type_);
            let last_transition_time = match previous {
                Some(previous) if previous.status == verdict.status.as_str() => {
                    previous.last_transition_time.clone()
                }
                _ => now.clone(),
            };
            Condition {
                type_: verdict.type_.to_string(),
                status: verdict.status.as_str().to_string(),
                reason: verdict.reason.as_str().to_string(),
                message: verdict.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect();
    merged.extend(
        existing
            .iter()
            .filter(|c| !verdicts.iter().any(|v| v.type_ == c.type_))
            .filter(|c| !retired.contains(&c.type_.as_str()))
            .cloned(),
    );
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).expect("time"))
    }

    #[test]
    fn the_transition_time_moves_only_when_the_status_changes() {
        let first = merge(
            &[],
            &[Verdict::new(
                READY,
                Status::True,
                Reason::Applied,
                "3 bindings",
            )],
            &[],
            Some(1),
            &at(100),
        );
        assert_eq!(first[0].last_transition_time, at(100));
        let same_status = merge(
            &first,
            &[Verdict::new(
                READY,
                Status::True,
                Reason::Applied,
                "4 bindings",
            )],
            &[],
            Some(2),
            &at(200),
        );
        assert_eq!(
            same_status[0].last_transition_time,
            at(100),
            "same status keeps the time"
        );
        assert_eq!(same_status[0].message, "4 bindings");
        assert_eq!(same_status[0].observed_generation, Some(2));
        let changed = merge(
            &same_status,
            &[Verdict::new(
                READY,
                Status::False,
                Reason::GroupMissing,
                "gone",
            )],
            &[],
            Some(2),
            &at(300),
        );
        assert_eq!(changed[0].last_transition_time, at(300));
    }

    #[test]
    fn other_conditions_are_kept() {
        let first = merge(
            &[],
            &[
                Verdict::new(READY, Status::True, Reason::Applied, ""),
                Verdict::new(GROUP_VERIFIED, Status::True, Reason::Found, ""),
            ],
            &[],
            None,
            &at(1),
        );
        let second = merge(
            &first,
            &[Verdict::new(READY, Status::False, Reason::Paused, "")],
            &[],
            None,
            &at(2),
        );
        assert_eq!(second.len(), 2);
        assert_eq!(second[1].type_, GROUP_VERIFIED);
    }

    #[test]
    fn retired_conditions_are_removed() {
        let stalled = merge(
            &[],
            &[Verdict::new(
                STALLED,
                Status::True,
                Reason::GroupMissing,
                "",
            )],
            &[],
            None,
            &at(1),
        );
        let recovered = merge(
            &stalled,
            &[Verdict::new(READY, Status::True, Reason::Ready, "")],
            &[STALLED],
            None,
            &at(2),
        );
        assert_eq!(recovered.len(), 1);
        assert_eq!(recovered[0].type_, READY);
    }
}
