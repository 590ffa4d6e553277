//! Step 5, report: from the judgement, the plan and what the writes did, the object's new
//! status, the events for people, the metrics' state and when to look again. Pure: the
//! time is passed in.

use super::apply::{WriteFailure, WriteResult};
use super::conditions::{active, bindings_applied, claim_carries_group, group_verified, ready};
use super::judge::{Judgement, Outcome};
use super::plan::Plan;
use super::schedule::Window;
use super::subjects::subject_summary;
use super::tally::{Tally, tally};
use crate::okta::OktaError;
use crate::policy::Policy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use okta_rbac_api::conditions::{
    self, ACTIVE, CLAIM_CARRIES_GROUP, GROUP_VERIFIED, PAUSED, READY, Reason, STALLED, Status,
    Verdict,
};
use okta_rbac_api::{
    LISTED_BINDINGS, OktaGroupBinding, OktaGroupBindingStatus, OktaGroupStatus, SubjectKind,
};

pub use crate::events::{EventType, Note};

/// When to reconcile the object again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// At the next resync: everything is as decided.
    Resync,
    /// Soon, with growing backoff: Okta did not answer, or a write failed.
    Backoff,
    /// When Okta's rate-limit window resets (epoch seconds): asking before is refused,
    /// and a growing backoff would wait well past the reset (seen: the last objects of a
    /// 5,000-object sync half a minute late).
    AtReset(u64),
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
    /// Bindings of the object being deleted but kept by finalizers.
    pub terminating: usize,
}

fn state_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Verified(_) => "verified",
        Outcome::Missing | Outcome::Replaced { .. } => "missing",
        Outcome::Refused(_) => "refused",
        Outcome::Unknown(_) => "unknown",
        Outcome::NotChecked => "expired",
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
    /// Where a time-bound grant stands.
    pub window: &'a Window,
}

pub fn report(inputs: &Inputs<'_>, now: &Time) -> Report {
    let Inputs {
        ogb,
        policy,
        old,
        judgement,
        plan,
        results,
        window,
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
        window,
    );
    let ready = ready(verified.as_ref(), &applied, &plan.missing_roles, window);
    let active = active(window);
    let claim = match (&judgement.claim, &policy.claim_check) {
        (Some(finding), Some(check)) => Some(claim_carries_group(finding, check, &ogb.spec.group)),
        _ => None,
    };
    let mut events = events(old, verified.iter().chain([&applied]).chain(&claim), &tally);
    events.extend(active.as_ref().and_then(|a| grant_event(old, a, &tally)));
    let stalled = stalled(outcome, verified.as_ref(), &applied, &tally);
    let mut retired = vec![PAUSED];
    let mut verdicts: Vec<Verdict> = [Some(ready), verified, Some(applied)]
        .into_iter()
        .flatten()
        .collect();
    for (verdict, type_) in [
        (stalled, STALLED),
        (claim, CLAIM_CARRIES_GROUP),
        (active, ACTIVE),
    ] {
        match verdict {
            Some(verdict) => verdicts.push(verdict),
            None => retired.push(type_),
        }
    }
    let status = status(inputs, &tally, &verdicts, &retired, now);
    let failed_writes: Vec<&'static str> = results
        .iter()
        .filter_map(|w| w.result.as_ref().err().map(WriteFailure::kind))
        .collect();
    let unanswered = matches!(outcome, Outcome::Unknown(_)) || judgement.members_unknown.is_some();
    Report {
        status,
        events,
        state: state_name(outcome),
        retry: match (outcome, &judgement.members_unknown) {
            (Outcome::Unknown(OktaError::RateLimited { reset }), _)
            | (_, Some(OktaError::RateLimited { reset }))
                if tally.failures.is_empty() =>
            {
                Retry::AtReset(*reset)
            }
            _ if unanswered || !tally.failures.is_empty() => Retry::Backoff,
            _ => Retry::Resync,
        },
        failed_writes,
        terminating: tally.terminating.len(),
    }
}

/// Stalled (True) when the object cannot succeed without a change by a person: Okta
/// definitely refuses the group, or a binding's name belongs to someone else.
fn stalled(
    outcome: &Outcome,
    verified: Option<&Verdict>,
    applied: &Verdict,
    tally: &Tally,
) -> Option<Verdict> {
    let cause = match (outcome, verified) {
        (Outcome::Missing | Outcome::Replaced { .. } | Outcome::Refused(_), Some(verified)) => {
            verified
        }
        _ if !tally.conflicts.is_empty() => applied,
        _ => return None,
    };
    Some(Verdict::new(
        STALLED,
        Status::True,
        cause.reason,
        cause.message.clone(),
    ))
}

/// The status of a paused object: it says so, and Ready no longer claims anything; the
/// rest is kept as last seen.
pub fn paused(
    ogb: &OktaGroupBinding,
    policy: &Policy,
    old: &OktaGroupBindingStatus,
    now: &Time,
) -> OktaGroupBindingStatus {
    let kept = match old.binding_count {
        1 => "1 binding".to_string(),
        n => format!("{n} bindings"),
    };
    let message = format!(
        "paused (spec.paused): the group is not verified and the {kept} are left as they are, unrepaired"
    );
    let verdicts = [
        Verdict::new(READY, Status::Unknown, Reason::Paused, message.clone()),
        Verdict::new(PAUSED, Status::True, Reason::Paused, message),
    ];
    OktaGroupBindingStatus {
        observed_generation: ogb.metadata.generation,
        subject: Some(subject_summary(ogb, policy)),
        conditions: conditions::merge(
            &old.conditions,
            &verdicts,
            &[STALLED],
            ogb.metadata.generation,
            now,
        ),
        ..old.clone()
    }
}

fn status(
    inputs: &Inputs<'_>,
    tally: &Tally,
    verdicts: &[Verdict],
    retired: &[&str],
    now: &Time,
) -> OktaGroupBindingStatus {
    let Inputs {
        ogb,
        policy,
        old,
        judgement,
        ..
    } = inputs;
    let conditions = conditions::merge(
        &old.conditions,
        verdicts,
        retired,
        ogb.metadata.generation,
        now,
    );
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
    let count = tally.bound.len();
    let (active_since, active_until) = match inputs.window {
        Window::Active { since, until } => (Some(Time(*since)), until.map(Time)),
        _ => (None, None),
    };
    OktaGroupBindingStatus {
        observed_generation: ogb.metadata.generation,
        active_since,
        active_until,
        subject: Some(subject_summary(ogb, policy)),
        group,
        binding_count: count as i32,
        bindings: tally.bound.iter().take(LISTED_BINDINGS).cloned().collect(),
        bindings_not_listed: (count > LISTED_BINDINGS).then(|| (count - LISTED_BINDINGS) as i32),
        last_verified,
        conditions,
    }
}

/// A note when a time-bound grant starts, and when it ends (or is applied already over,
/// or ahead of its start).
fn grant_event(old: &OktaGroupBindingStatus, active: &Verdict, tally: &Tally) -> Option<Note> {
    let before = old
        .conditions
        .iter()
        .find(|c| c.type_ == ACTIVE)
        .map(|c| c.reason.as_str());
    if before == Some(active.reason.as_str()) {
        return None;
    }
    let note = match active.reason {
        Reason::Active => format!("{}; {} bindings created", active.message, tally.created),
        Reason::Expired => format!("{}; {} deleted", active.message, tally.deleted),
        _ => active.message.clone(),
    };
    Some(Note {
        type_: EventType::Normal,
        reason: active.reason.as_str(),
        note,
    })
}

/// Warnings when a condition turns bad (once, not on every reconcile), and notes of what
/// was granted or revoked.
fn events<'a>(
    old: &OktaGroupBindingStatus,
    verdicts: impl IntoIterator<Item = &'a Verdict>,
    tally: &Tally,
) -> Vec<Note> {
    let previous = |type_: &str| {
        old.conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| c.reason.clone())
    };
    let mut events = Vec::new();
    for verdict in verdicts {
        // GroupVerified warns of Unknown too (Okta trouble); the others only of False.
        let bad = match verdict.type_ {
            GROUP_VERIFIED => verdict.status != Status::True,
            _ => verdict.status == Status::False,
        };
        if bad && previous(verdict.type_).as_deref() != Some(verdict.reason.as_str()) {
            events.push(Note {
                type_: EventType::Warning,
                reason: verdict.reason.as_str(),
                note: verdict.message.clone(),
            });
        }
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
mod tests;
