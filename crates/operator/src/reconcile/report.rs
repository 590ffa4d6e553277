//! Step 5, report: from the judgement, the plan and what the writes did, the object's new
//! status, the events for people, the metrics' state and when to look again. Pure: the
//! time is passed in.

use super::apply::{Done, WriteFailure, WriteResult};
use super::conditions::{bindings_applied, group_verified, ready};
use super::judge::{Judgement, Outcome};
use super::plan::Plan;
use super::subjects::subject_summary;
use crate::policy::Policy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::events::EventType;
use okta_rbac_api::conditions::{self, GROUP_VERIFIED, Status, Verdict};
use okta_rbac_api::{OktaGroupBinding, OktaGroupBindingStatus, OktaGroupStatus, SubjectKind};
use std::collections::BTreeSet;

/// What the writes came to, in the terms the conditions and events use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    /// Bindings of the declared names that this object does not own: left untouched.
    pub conflicts: Vec<String>,
    pub missing_namespaces: Vec<String>,
    pub failures: Vec<String>,
    /// Owned bindings after this reconcile.
    pub bound: usize,
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
}

/// An event for people (`kubectl describe`).
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    pub type_: EventType,
    pub reason: &'static str,
    pub note: String,
}

/// When to reconcile the object again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// At the next resync: everything is as decided.
    Resync,
    /// Soon, with growing backoff: Okta did not answer, or a write failed.
    Backoff,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub status: OktaGroupBindingStatus,
    pub events: Vec<Note>,
    /// The verification state for the `groups{state}` metric.
    pub state: &'static str,
    pub retry: Retry,
    /// The kinds of the failed writes, for `binding_write_failures_total{kind}`.
    pub failed_writes: Vec<&'static str>,
}

pub fn tally(plan: &Plan, results: &[WriteResult]) -> Tally {
    let mut tally = Tally {
        missing_namespaces: plan.missing_namespaces.clone(),
        ..Default::default()
    };
    let mut lost = BTreeSet::new();
    for write in results {
        match &write.result {
            Ok(Done::Created) => tally.created += 1,
            Ok(Done::Repaired) => tally.updated += 1,
            Ok(Done::Deleted) => tally.deleted += 1,
            Ok(Done::AlreadyGone | Done::AlreadyOwned) => {}
            Err(failure) => {
                lost.insert(write.target.clone());
                match failure {
                    WriteFailure::Conflict => tally.conflicts.push(write.target.to_string()),
                    WriteFailure::NamespaceMissing(ns) => {
                        if !tally.missing_namespaces.contains(ns) {
                            tally.missing_namespaces.push(ns.clone());
                        }
                    }
                    other => tally.failures.push(other.to_string()),
                }
            }
        }
    }
    tally.bound = plan
        .bound
        .iter()
        .filter(|(target, _)| !lost.contains(target))
        .count();
    tally
}

fn state_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Verified(_) => "verified",
        Outcome::Missing | Outcome::Replaced { .. } => "missing",
        Outcome::Refused(_) => "refused",
        Outcome::Unknown(_) => "unknown",
    }
}

/// Everything a report is made from.
pub struct Inputs<'a> {
    pub ogb: &'a OktaGroupBinding,
    pub policy: &'a Policy,
    /// The status as last known before this reconcile.
    pub old: &'a OktaGroupBindingStatus,
    pub judgement: &'a Judgement,
    pub plan: &'a Plan,
    pub results: &'a [WriteResult],
}

pub fn report(inputs: &Inputs<'_>, now: &Time) -> Report {
    let Inputs {
        ogb,
        policy,
        old,
        judgement,
        plan,
        results,
    } = inputs;
    let tally = tally(plan, results);
    let outcome = &judgement.outcome;
    let verified = group_verified(
        outcome,
        &ogb.spec.group,
        &policy.allowed_group_prefix,
        ogb.spec.on_group_missing,
    );
    let applied = bindings_applied(
        judgement.grant,
        outcome,
        judgement.members_unknown.as_ref(),
        &tally,
    );
    let ready = ready(&verified, &applied, &plan.missing_roles);
    let events = events(old, &verified, &applied, &tally);
    let status = status(inputs, &[ready, verified, applied], now);
    let failed_writes: Vec<&'static str> = results
        .iter()
        .filter_map(|w| w.result.as_ref().err().map(WriteFailure::kind))
        .collect();
    let unanswered = matches!(outcome, Outcome::Unknown(_)) || judgement.members_unknown.is_some();
    Report {
        status,
        events,
        state: state_name(outcome),
        retry: if unanswered || !tally.failures.is_empty() {
            Retry::Backoff
        } else {
            Retry::Resync
        },
        failed_writes,
    }
}

fn status(inputs: &Inputs<'_>, verdicts: &[Verdict], now: &Time) -> OktaGroupBindingStatus {
    let Inputs {
        ogb,
        policy,
        old,
        judgement,
        plan,
        results,
    } = inputs;
    let conditions = conditions::merge(&old.conditions, verdicts, ogb.metadata.generation, now);
    let group = match &judgement.outcome {
        Outcome::Verified(group) => Some(OktaGroupStatus {
            id: group.id.clone(),
            name: group.profile.name.clone(),
            group_type: group.group_type.clone(),
            member_count: group.member_count().map(i64::from),
            bound_users: (ogb.spec.subject.kind == SubjectKind::Users
                && judgement.members_unknown.is_none())
            .then_some(judgement.subjects.len() as i64)
            .or_else(|| old.group.as_ref().and_then(|g| g.bound_users)),
        }),
        // Keep the verified id: a group re-created under the same name must not pass.
        _ => old.group.clone(),
    };
    let transition =
        |conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]| {
            conditions
                .iter()
                .find(|c| c.type_ == GROUP_VERIFIED)
                .map(|c| c.last_transition_time.clone())
        };
    // The time of verification moves when what was verified changes, so that a resync
    // that confirms everything writes nothing.
    let verification_changed =
        old.group != group || transition(&conditions) != transition(&old.conditions);
    let last_verified = match judgement.outcome {
        Outcome::Unknown(_) => old.last_verified.clone(),
        _ if verification_changed || old.last_verified.is_none() => Some(now.clone()),
        _ => old.last_verified.clone(),
    };
    let lost: BTreeSet<_> = results
        .iter()
        .filter(|w| w.result.is_err())
        .map(|w| &w.target)
        .collect();
    let bindings: Vec<_> = plan
        .bound
        .iter()
        .filter(|(target, _)| !lost.contains(target))
        .map(|(_, binding)| binding.clone())
        .collect();
    OktaGroupBindingStatus {
        observed_generation: ogb.metadata.generation,
        subject: Some(subject_summary(ogb, policy)),
        group,
        binding_count: bindings.len() as i32,
        bindings,
        last_verified,
        conditions,
    }
}

/// Warnings when a condition turns bad (once, not on every reconcile), and notes of what
/// was granted or revoked.
fn events(
    old: &OktaGroupBindingStatus,
    verified: &Verdict,
    applied: &Verdict,
    tally: &Tally,
) -> Vec<Note> {
    let previous = |type_: &str| {
        old.conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| c.reason.clone())
    };
    let mut events = Vec::new();
    if previous(conditions::GROUP_VERIFIED).as_deref() != Some(verified.reason)
        && verified.status != Status::True
    {
        events.push(Note {
            type_: EventType::Warning,
            reason: verified.reason,
            note: verified.message.clone(),
        });
    }
    if previous(conditions::BINDINGS_APPLIED).as_deref() != Some(applied.reason)
        && applied.status == Status::False
    {
        events.push(Note {
            type_: EventType::Warning,
            reason: applied.reason,
            note: applied.message.clone(),
        });
    }
    if tally.created > 0 || tally.updated > 0 {
        events.push(Note {
            type_: EventType::Normal,
            reason: "Granted",
            note: format!(
                "{} bindings created, {} repaired",
                tally.created, tally.updated
            ),
        });
    }
    if tally.deleted > 0 {
        events.push(Note {
            type_: EventType::Normal,
            reason: "Revoked",
            note: format!("{} bindings deleted", tally.deleted),
        });
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::BindingRef;
    use crate::reconcile::apply::WriteResult;
    use crate::reconcile::fixtures::{group, ogb, policy, spec};
    use crate::reconcile::judge::Grant;
    use k8s_openapi::jiff::Timestamp;
    use okta_rbac_api::ManagedBinding;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).expect("time"))
    }

    fn target(name: &str) -> BindingRef {
        BindingRef {
            namespace: None,
            name: name.into(),
        }
    }

    fn bound(names: &[&str]) -> Plan {
        Plan {
            bound: names
                .iter()
                .map(|name| {
                    (
                        target(name),
                        ManagedBinding {
                            kind: "ClusterRoleBinding".into(),
                            namespace: None,
                            name: name.to_string(),
                            role_ref: "ClusterRole/view".into(),
                        },
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    fn verified() -> Judgement {
        Judgement {
            outcome: Outcome::Verified(group("k8s-restricted-users", "OKTA_GROUP")),
            subjects: vec![],
            members_unknown: None,
            grant: Grant::Declared,
        }
    }

    fn report_at(
        old: &OktaGroupBindingStatus,
        judgement: &Judgement,
        plan: &Plan,
        results: &[WriteResult],
        now: i64,
    ) -> Report {
        let object = ogb(spec());
        report(
            &Inputs {
                ogb: &object,
                policy: &policy(),
                old,
                judgement,
                plan,
                results,
            },
            &at(now),
        )
    }

    fn condition<'a>(status: &'a OktaGroupBindingStatus, type_: &str) -> (&'a str, &'a str) {
        let c = status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .expect("condition");
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn a_first_grant_is_ready_with_a_granted_event_and_a_quiet_resync_changes_nothing() {
        let plan = bound(&["a", "b"]);
        let created = [
            WriteResult {
                target: target("a"),
                result: Ok(Done::Created),
            },
            WriteResult {
                target: target("b"),
                result: Ok(Done::Created),
            },
        ];
        let first = report_at(&Default::default(), &verified(), &plan, &created, 100);
        assert_eq!(condition(&first.status, "Ready"), ("True", "Ready"));
        assert_eq!(first.status.binding_count, 2);
        assert_eq!(first.status.group.as_ref().unwrap().id, "00g1");
        assert_eq!(
            first.status.subject.as_deref(),
            Some("oidc:k8s-restricted-users")
        );
        assert_eq!(first.status.last_verified, Some(at(100)));
        assert_eq!(first.retry, Retry::Resync);
        assert_eq!(first.state, "verified");
        assert!(
            matches!(first.events.as_slice(), [Note { reason: "Granted", note, .. }] if note == "2 bindings created, 0 repaired")
        );

        let resync = report_at(&first.status, &verified(), &plan, &[], 400);
        assert_eq!(
            resync.status, first.status,
            "nothing changed, so the status is the same, time included"
        );
        assert!(resync.events.is_empty());
    }

    #[test]
    fn failed_writes_are_typed_counted_and_not_listed_as_bound() {
        let plan = bound(&["a", "b", "c"]);
        let results = [
            WriteResult {
                target: target("a"),
                result: Ok(Done::Created),
            },
            WriteResult {
                target: target("b"),
                result: Err(WriteFailure::Conflict),
            },
            WriteResult {
                target: target("c"),
                result: Err(WriteFailure::Api {
                    doing: "creating",
                    target: "ClusterRoleBinding/c".into(),
                    code: 403,
                    reason: "Forbidden".into(),
                    message: "cannot bind".into(),
                }),
            },
        ];
        let report = report_at(&Default::default(), &verified(), &plan, &results, 100);
        assert_eq!(report.failed_writes, ["Conflict", "Forbidden"]);
        assert_eq!(report.status.binding_count, 1);
        assert_eq!(
            condition(&report.status, "BindingsApplied"),
            ("False", "Conflict")
        );
        assert_eq!(
            report.retry,
            Retry::Backoff,
            "a failed write is retried soon"
        );
        let warnings: Vec<_> = report
            .events
            .iter()
            .filter(|n| n.type_ == EventType::Warning)
            .collect();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].note.contains("ClusterRoleBinding/b"),
            "{}",
            warnings[0].note
        );
    }

    #[test]
    fn an_outage_keeps_the_recorded_group_and_the_time_of_verification() {
        let plan = bound(&["a"]);
        let verified_status = report_at(&Default::default(), &verified(), &plan, &[], 100).status;
        let outage = Judgement {
            outcome: Outcome::Unknown(crate::okta::OktaError::Timeout(
                std::time::Duration::from_secs(5),
            )),
            subjects: vec![],
            members_unknown: None,
            grant: Grant::KeepExisting,
        };
        let report = report_at(&verified_status, &outage, &plan, &[], 200);
        assert_eq!(report.status.group, verified_status.group);
        assert_eq!(report.status.last_verified, Some(at(100)));
        assert_eq!(
            condition(&report.status, "GroupVerified"),
            ("Unknown", "OktaTimeout")
        );
        assert_eq!(
            condition(&report.status, "BindingsApplied"),
            ("Unknown", "AwaitingVerification")
        );
        assert_eq!(report.status.binding_count, 1, "kept");
        assert_eq!(report.retry, Retry::Backoff);
        assert_eq!(report.state, "unknown");
        assert_eq!(report.events[0].reason, "OktaTimeout");
    }
}
