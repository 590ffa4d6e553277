//! Step 2, judge: what Okta's answer means. Verified, missing, replaced, refused or
//! unknown; whom the bindings name; and what may be done with them (grant, keep, revoke).
//! Pure: only a definite answer from Okta revokes, and an outage never locks anyone out.

use super::claim::{self, ClaimFinding};
use super::observe::{GroupLookup, Observation, OktaView};
use super::schedule::Window;
use super::subjects::{group_subject, user_subjects};
use crate::okta::{OktaError, OktaGroup};
use crate::policy::Policy;
use k8s_openapi::api::rbac::v1::Subject;
use okta_rbac_api::{OktaGroupBinding, OnGroupMissing, SubjectKind};

/// Why a group must not be bound, whatever Okta says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    OutsideAllowedPrefix,
    BuiltIn,
    Ambiguous(usize),
}

/// Refuses what Okta answered that must not be bound: a BUILT_IN group (Everyone), or a
/// name that several groups share.
pub fn refuse_answer(groups: &[OktaGroup]) -> Option<Refusal> {
    match groups {
        [] => None,
        [group] if group.group_type == "BUILT_IN" => Some(Refusal::BuiltIn),
        [_] => None,
        many => Some(Refusal::Ambiguous(many.len())),
    }
}

/// What is known about the group.
#[derive(Clone, Debug)]
pub enum Outcome {
    Verified(OktaGroup),
    /// Okta says there is no such group.
    Missing,
    /// A group of that name exists, but not the one verified before (deleted and
    /// re-created): a security event, handled like a missing group.
    Replaced {
        recorded: String,
        found: String,
    },
    Refused(Refusal),
    /// Okta could not be asked or did not answer definitely.
    Unknown(OktaError),
    /// Okta was not asked: the grant is over.
    NotChecked,
}

/// What the operator does with the bindings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Create and repair every declared binding; delete owned ones no longer declared.
    Declared,
    /// Touch nothing that is still declared, create nothing; delete only bindings the
    /// object no longer declares (revoking is always safe).
    KeepExisting,
    /// Delete every binding the object owns.
    RevokeAll,
}

#[derive(Clone, Debug)]
pub struct Judgement {
    pub outcome: Outcome,
    /// Whom the bindings name; empty unless the group is verified (and, in Users mode,
    /// its members were read).
    pub subjects: Vec<Subject>,
    /// Users mode: the group is verified but its members could not be read, so whom to
    /// bind is unknown.
    pub members_unknown: Option<OktaError>,
    pub grant: Grant,
    /// Whether ID tokens carry the group (Group mode with the claim check on).
    pub claim: Option<Result<ClaimFinding, OktaError>>,
}

/// What the lookup says about the group, given the id recorded at the last verification.
pub fn verify(lookup: &GroupLookup, recorded: Option<&str>) -> Outcome {
    let answer = match lookup {
        GroupLookup::NotAsked => return Outcome::Refused(Refusal::OutsideAllowedPrefix),
        GroupLookup::Skipped => return Outcome::NotChecked,
        GroupLookup::Failed(error) => return Outcome::Unknown(error.clone()),
        GroupLookup::Answered(answer) => answer,
    };
    if let Some(refusal) = refuse_answer(&answer.groups) {
        return Outcome::Refused(refusal);
    }
    let Some(found) = answer.groups.first() else {
        return Outcome::Missing;
    };
    match recorded {
        Some(recorded) if recorded != found.id => Outcome::Replaced {
            recorded: recorded.to_string(),
            found: found.id.clone(),
        },
        _ => Outcome::Verified(found.clone()),
    }
}

pub fn grant(outcome: &Outcome, on_missing: OnGroupMissing) -> Grant {
    match outcome {
        Outcome::Verified(_) => Grant::Declared,
        Outcome::Missing | Outcome::Replaced { .. } => match on_missing {
            OnGroupMissing::Revoke => Grant::RevokeAll,
            OnGroupMissing::Retain => Grant::KeepExisting,
        },
        Outcome::Refused(_) | Outcome::NotChecked => Grant::RevokeAll,
        Outcome::Unknown(_) => Grant::KeepExisting,
    }
}

/// Users mode: the group whose members must be read before judging, once Okta verified it
/// and while the grant is in effect.
/// The group whose members to read: in Users mode to bind them, and in Group mode too
/// while the revocation authorizer serves (`for_authorizer`), which keeps them in memory.
pub fn members_to_read(
    ogb: &OktaGroupBinding,
    observation: &Observation,
    window: &Window,
    for_authorizer: bool,
) -> Option<OktaGroup> {
    if !window.grants() {
        return None;
    }
    let recorded = observation.status.group.as_ref().map(|g| g.id.as_str());
    match (
        verify(&observation.okta.lookup, recorded),
        ogb.spec.subject.kind,
    ) {
        (Outcome::Verified(group), SubjectKind::Users) => Some(group),
        (Outcome::Verified(group), SubjectKind::Group) if for_authorizer => Some(group),
        _ => None,
    }
}

/// What the revocation authorizer is to know of this object: `Some(Some(grant))` when it
/// grants a verified group through a Group subject, `Some(None)` when it grants none, and
/// `None` when that is not known (Okta did not answer; what was known stands).
pub fn authorizer_grant(
    ogb: &OktaGroupBinding,
    judgement: &Judgement,
) -> Option<Option<crate::authorizer::roster::Grant>> {
    match (&judgement.outcome, &judgement.grant) {
        (Outcome::Unknown(_), _) => None,
        (Outcome::Verified(group), Grant::Declared | Grant::KeepExisting)
            if ogb.spec.subject.kind == SubjectKind::Group =>
        {
            Some(
                judgement
                    .subjects
                    .first()
                    .map(|subject| crate::authorizer::roster::Grant {
                        token_group: subject.name.clone(),
                        group_id: group.id.clone(),
                        group_name: group.profile.name.clone(),
                        kept_if_deleted: ogb.spec.on_group_missing == OnGroupMissing::Retain,
                    }),
            )
        }
        _ => Some(None),
    }
}

pub fn judge(
    ogb: &OktaGroupBinding,
    policy: &Policy,
    observation: &Observation,
    window: &Window,
) -> Judgement {
    let recorded = observation.status.group.as_ref().map(|g| g.id.as_str());
    let OktaView {
        lookup, members, ..
    } = &observation.okta;
    let outcome = verify(lookup, recorded);
    let (subjects, members_unknown) = match (&outcome, ogb.spec.subject.kind, members) {
        (Outcome::Verified(_), SubjectKind::Group, _) => (group_subject(ogb, policy), None),
        (Outcome::Verified(_), SubjectKind::Users, Some(Ok(users))) => {
            (user_subjects(ogb, policy, users), None)
        }
        (Outcome::Verified(_), SubjectKind::Users, Some(Err(error))) => {
            (Vec::new(), Some(error.clone()))
        }
        _ => (Vec::new(), None),
    };
    let grant = match (&outcome, &members_unknown) {
        // Before the start and after the end nothing is granted, whatever Okta says.
        _ if !window.grants() => Grant::RevokeAll,
        // Whom to bind is unknown: as during an outage, keep what exists.
        (Outcome::Verified(_), Some(_)) => Grant::KeepExisting,
        _ => grant(&outcome, ogb.spec.on_group_missing),
    };
    let claim = match (&policy.claim_check, &observation.okta.claims) {
        _ if matches!(window, Window::Expired { .. }) => None,
        (Some(check), Some(Ok(claims))) => Some(Ok(claim::find(check, claims, &ogb.spec.group))),
        (Some(_), Some(Err(error))) => Some(Err(error.clone())),
        _ => None,
    };
    Judgement {
        outcome,
        subjects,
        members_unknown,
        grant,
        claim,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okta::GroupAnswer;
    use crate::reconcile::fixtures::{group, member, ogb, policy, spec};
    use crate::reconcile::observe::ClusterView;
    use std::sync::Arc;

    fn answered(groups: Vec<OktaGroup>) -> GroupLookup {
        GroupLookup::Answered(Arc::new(GroupAnswer {
            groups,
            fetched: std::time::Instant::now(),
        }))
    }

    fn observation(
        lookup: GroupLookup,
        members: Option<Result<Vec<crate::okta::OktaUser>, OktaError>>,
    ) -> Observation {
        Observation {
            status: Default::default(),
            okta: OktaView {
                lookup,
                members: members.map(|m| m.map(Arc::new)),
                claims: None,
            },
            cluster: ClusterView::default(),
        }
    }

    #[test]
    fn refusals() {
        assert!(!policy().admits("platform-admins"));
        assert!(
            policy().admits("K8S-admins"),
            "Okta's claim filter ignores case"
        );
        assert_eq!(
            refuse_answer(&[group("Everyone", "BUILT_IN")]),
            Some(Refusal::BuiltIn)
        );
        assert_eq!(
            refuse_answer(&[group("k8s-a", "OKTA_GROUP"), group("k8s-a", "APP_GROUP")]),
            Some(Refusal::Ambiguous(2))
        );
        assert_eq!(refuse_answer(&[group("k8s-a", "OKTA_GROUP")]), None);
        assert_eq!(refuse_answer(&[]), None, "missing is not a refusal");
    }

    #[test]
    fn only_a_definite_answer_revokes_and_an_outage_keeps() {
        let found = Outcome::Verified(group("k8s-a", "OKTA_GROUP"));
        assert_eq!(grant(&found, OnGroupMissing::Revoke), Grant::Declared);
        assert_eq!(
            grant(&Outcome::Missing, OnGroupMissing::Revoke),
            Grant::RevokeAll
        );
        assert_eq!(
            grant(&Outcome::Missing, OnGroupMissing::Retain),
            Grant::KeepExisting
        );
        let replaced = Outcome::Replaced {
            recorded: "a".into(),
            found: "b".into(),
        };
        assert_eq!(grant(&replaced, OnGroupMissing::Revoke), Grant::RevokeAll);
        assert_eq!(
            grant(&Outcome::Refused(Refusal::BuiltIn), OnGroupMissing::Retain),
            Grant::RevokeAll
        );
        let outage = Outcome::Unknown(OktaError::Timeout(std::time::Duration::from_secs(5)));
        assert_eq!(grant(&outage, OnGroupMissing::Revoke), Grant::KeepExisting);
    }

    #[test]
    fn a_different_id_under_the_recorded_name_is_a_replacement() {
        let lookup = answered(vec![group("k8s-a", "OKTA_GROUP")]);
        assert!(matches!(verify(&lookup, None), Outcome::Verified(_)));
        assert!(matches!(
            verify(&lookup, Some("00g1")),
            Outcome::Verified(_)
        ));
        assert!(matches!(
            verify(&lookup, Some("00gOLD")),
            Outcome::Replaced { recorded, found } if recorded == "00gOLD" && found == "00g1"
        ));
        assert!(matches!(
            verify(&answered(vec![]), Some("00g1")),
            Outcome::Missing
        ));
        assert!(matches!(
            verify(&GroupLookup::NotAsked, None),
            Outcome::Refused(Refusal::OutsideAllowedPrefix)
        ));
    }

    #[test]
    fn users_mode_binds_members_and_keeps_what_exists_when_they_cannot_be_read() {
        let mut users = spec();
        users.subject.kind = SubjectKind::Users;
        let object = ogb(users);
        let lookup = answered(vec![group("k8s-restricted-users", "OKTA_GROUP")]);

        let read = judge(
            &object,
            &policy(),
            &observation(lookup.clone(), Some(Ok(vec![member("amy", "ACTIVE")]))),
            &Window::Unbounded,
        );
        assert_eq!(read.grant, Grant::Declared);
        assert_eq!(read.subjects[0].name, "amy@example.com");

        let outage = OktaError::Timeout(std::time::Duration::from_secs(5));
        let unread = judge(
            &object,
            &policy(),
            &observation(lookup, Some(Err(outage))),
            &Window::Unbounded,
        );
        assert!(
            matches!(unread.outcome, Outcome::Verified(_)),
            "the group itself is verified"
        );
        assert!(unread.members_unknown.is_some());
        assert!(unread.subjects.is_empty());
        assert_eq!(unread.grant, Grant::KeepExisting);
    }

    #[test]
    fn nothing_is_granted_outside_the_window_whatever_okta_says() {
        let lookup = answered(vec![group("k8s-restricted-users", "OKTA_GROUP")]);
        let starts = k8s_openapi::jiff::Timestamp::from_second(2_000_000_000).expect("time");
        let before = Window::NotYetActive { starts, ends: None };
        let judged = judge(
            &ogb(spec()),
            &policy(),
            &observation(lookup.clone(), None),
            &before,
        );
        assert!(
            matches!(judged.outcome, Outcome::Verified(_)),
            "verified ahead of the start"
        );
        assert_eq!(judged.grant, Grant::RevokeAll);
        let outage = GroupLookup::Failed(OktaError::Unreachable("refused".into()));
        let judged = judge(&ogb(spec()), &policy(), &observation(outage, None), &before);
        assert_eq!(
            judged.grant,
            Grant::RevokeAll,
            "an outage before the start grants nothing"
        );
        let over = Window::Expired { ended: starts };
        let judged = judge(
            &ogb(spec()),
            &policy(),
            &observation(GroupLookup::Skipped, None),
            &over,
        );
        assert!(matches!(judged.outcome, Outcome::NotChecked));
        assert_eq!(judged.grant, Grant::RevokeAll);
        let mut users = spec();
        users.subject.kind = SubjectKind::Users;
        assert!(
            members_to_read(&ogb(users), &observation(lookup, None), &before, true).is_none(),
            "no member list is read for a grant not in effect"
        );
    }

    #[test]
    fn group_mode_reads_members_only_for_the_authorizer_which_learns_what_is_granted() {
        let lookup = answered(vec![group("k8s-restricted-users", "OKTA_GROUP")]);
        let observed = observation(lookup, None);
        let granted = Window::Unbounded;
        assert!(members_to_read(&ogb(spec()), &observed, &granted, false).is_none());
        assert!(members_to_read(&ogb(spec()), &observed, &granted, true).is_some());
        let judged = judge(&ogb(spec()), &policy(), &observed, &granted);
        let grant = authorizer_grant(&ogb(spec()), &judged)
            .expect("known")
            .expect("a Group subject");
        assert_eq!(grant.token_group, judged.subjects[0].name);
        assert_eq!(grant.group_name, "k8s-restricted-users");
        let outage = observation(GroupLookup::Failed(OktaError::Config("down".into())), None);
        let judged = judge(&ogb(spec()), &policy(), &outage, &granted);
        assert!(
            authorizer_grant(&ogb(spec()), &judged).is_none(),
            "an outage leaves what the authorizer knew"
        );
        let missing = judge(
            &ogb(spec()),
            &policy(),
            &observation(answered(vec![]), None),
            &granted,
        );
        assert_eq!(authorizer_grant(&ogb(spec()), &missing), Some(None));
    }

    #[test]
    fn group_mode_names_the_group_with_its_prefix() {
        let lookup = answered(vec![group("k8s-restricted-users", "OKTA_GROUP")]);
        let judged = judge(
            &ogb(spec()),
            &policy(),
            &observation(lookup, None),
            &Window::Unbounded,
        );
        assert_eq!(judged.grant, Grant::Declared);
        assert_eq!(judged.subjects[0].name, "oidc:k8s-restricted-users");
        let failed = GroupLookup::Failed(OktaError::Unreachable("refused".into()));
        let unknown = judge(
            &ogb(spec()),
            &policy(),
            &observation(failed, None),
            &Window::Unbounded,
        );
        assert!(unknown.subjects.is_empty());
        assert_eq!(unknown.grant, Grant::KeepExisting);
    }
}
