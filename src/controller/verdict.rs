//! The pure decisions: what Okta's answer means for the bindings (grant, keep, revoke)
//! and what the object's conditions say about it.

use super::desired::Refusal;
use crate::crd::OnGroupMissing;
use crate::crd::conditions::{BINDINGS_APPLIED, GROUP_VERIFIED, READY, Status, Verdict};
use crate::okta::{OktaError, OktaGroup};

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

fn bindings(count: usize) -> String {
    match count {
        1 => "1 binding".to_string(),
        n => format!("{n} bindings"),
    }
}

pub fn grant(outcome: &Outcome, on_missing: OnGroupMissing) -> Grant {
    match outcome {
        Outcome::Verified(_) => Grant::Declared,
        Outcome::Missing | Outcome::Replaced { .. } => match on_missing {
            OnGroupMissing::Revoke => Grant::RevokeAll,
            OnGroupMissing::Retain => Grant::KeepExisting,
        },
        Outcome::Refused(_) => Grant::RevokeAll,
        Outcome::Unknown(_) => Grant::KeepExisting,
    }
}

/// What applying the bindings found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApplyReport {
    /// Bindings of the declared names that this object does not own: left untouched.
    pub conflicts: Vec<String>,
    pub missing_namespaces: Vec<String>,
    /// Referenced roles that do not exist (`ClusterRole/x`, `Role/ns/x`).
    pub missing_roles: Vec<String>,
    pub failures: Vec<String>,
    /// Owned bindings after this reconcile.
    pub bound: usize,
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
}

fn list(items: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    text
}

pub fn group_verified(
    outcome: &Outcome,
    group: &str,
    allowed_prefix: &str,
    on_missing: OnGroupMissing,
) -> Verdict {
    let kept = match on_missing {
        OnGroupMissing::Revoke => "its bindings are revoked",
        OnGroupMissing::Retain => "its bindings are retained (onGroupMissing: Retain)",
    };
    match outcome {
        Outcome::Verified(g) => Verdict::new(
            GROUP_VERIFIED,
            Status::True,
            "Found",
            format!("Okta group {} ({}, {})", g.profile.name, g.id, g.group_type),
        ),
        Outcome::Missing => Verdict::new(
            GROUP_VERIFIED,
            Status::False,
            "GroupMissing",
            format!("Okta has no group named {group:?}; {kept}"),
        ),
        Outcome::Replaced { recorded, found } => Verdict::new(
            GROUP_VERIFIED,
            Status::False,
            "GroupReplaced",
            format!(
                "the Okta group named {group:?} is now {found}, not the verified {recorded}: it was deleted and re-created, so it is treated as missing and {kept}"
            ),
        ),
        Outcome::Refused(Refusal::OutsideAllowedPrefix) => Verdict::new(
            GROUP_VERIFIED,
            Status::False,
            "OutsideAllowedPrefix",
            format!(
                "{group:?} does not start with the allowed prefix {allowed_prefix:?}, so it never reaches a token; nothing is bound"
            ),
        ),
        Outcome::Refused(Refusal::BuiltIn) => Verdict::new(
            GROUP_VERIFIED,
            Status::False,
            "BuiltInGroup",
            format!("{group:?} is a BUILT_IN Okta group that holds every user; it is never bound"),
        ),
        Outcome::Refused(Refusal::Ambiguous(count)) => Verdict::new(
            GROUP_VERIFIED,
            Status::False,
            "AmbiguousName",
            format!(
                "{count} Okta groups are named {group:?} (for example an OKTA_GROUP and an APP_GROUP); nothing is bound until only one is"
            ),
        ),
        Outcome::Unknown(error) => Verdict::new(
            GROUP_VERIFIED,
            Status::Unknown,
            error.kind(),
            format!("{error}; existing bindings are kept and none are created until Okta answers"),
        ),
    }
}

pub fn bindings_applied(grant: Grant, outcome: &Outcome, report: &ApplyReport) -> Verdict {
    if !report.conflicts.is_empty() {
        return Verdict::new(
            BINDINGS_APPLIED,
            Status::False,
            "Conflict",
            format!(
                "not managed by this object, left untouched: {}",
                list(&report.conflicts)
            ),
        );
    }
    if !report.failures.is_empty() {
        return Verdict::new(
            BINDINGS_APPLIED,
            Status::False,
            "ApplyFailed",
            list(&report.failures),
        );
    }
    if !report.missing_namespaces.is_empty() {
        return Verdict::new(
            BINDINGS_APPLIED,
            Status::False,
            "NamespaceMissing",
            format!(
                "these namespaces do not exist (the bindings follow when they do): {}",
                list(&report.missing_namespaces)
            ),
        );
    }
    match (grant, outcome) {
        (Grant::Declared, _) => Verdict::new(
            BINDINGS_APPLIED,
            Status::True,
            "Applied",
            format!("{} as declared", bindings(report.bound)),
        ),
        (Grant::RevokeAll, _) => Verdict::new(
            BINDINGS_APPLIED,
            Status::True,
            "Revoked",
            "no bindings are kept for this group",
        ),
        (Grant::KeepExisting, Outcome::Unknown(_)) => Verdict::new(
            BINDINGS_APPLIED,
            Status::Unknown,
            "AwaitingVerification",
            format!(
                "{} kept; nothing is created until Okta verifies the group",
                bindings(report.bound)
            ),
        ),
        (Grant::KeepExisting, _) => Verdict::new(
            BINDINGS_APPLIED,
            Status::True,
            "Retained",
            format!("{} existing bindings retained", report.bound),
        ),
    }
}

pub fn ready(verified: &Verdict, applied: &Verdict, report: &ApplyReport) -> Verdict {
    if verified.status != Status::True {
        return Verdict::new(
            READY,
            verified.status,
            verified.reason,
            verified.message.clone(),
        );
    }
    if applied.status != Status::True {
        return Verdict::new(
            READY,
            applied.status,
            applied.reason,
            applied.message.clone(),
        );
    }
    if !report.missing_roles.is_empty() {
        return Verdict::new(
            READY,
            Status::False,
            "RoleMissing",
            format!(
                "bound, but these roles do not exist, so the bindings grant nothing yet: {}",
                list(&report.missing_roles)
            ),
        );
    }
    Verdict::new(READY, Status::True, "Ready", applied.message.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okta::GroupProfile;

    fn group() -> OktaGroup {
        OktaGroup {
            id: "00g1".into(),
            group_type: "OKTA_GROUP".into(),
            profile: GroupProfile {
                name: "k8s-a".into(),
            },
            last_membership_updated: None,
            embedded: None,
        }
    }

    #[test]
    fn only_a_definite_answer_revokes_and_an_outage_keeps() {
        assert_eq!(
            grant(&Outcome::Verified(group()), OnGroupMissing::Revoke),
            Grant::Declared
        );
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
    fn conditions_say_why() {
        let outage = Outcome::Unknown(OktaError::Api {
            status: 503,
            code: "E0000010".into(),
            summary: "down".into(),
        });
        let verified = group_verified(&outage, "k8s-a", "k8s-", OnGroupMissing::Revoke);
        assert_eq!(
            (verified.status, verified.reason),
            (Status::Unknown, "OktaServerError")
        );
        let report = ApplyReport {
            bound: 2,
            ..Default::default()
        };
        let applied = bindings_applied(Grant::KeepExisting, &outage, &report);
        assert_eq!(applied.reason, "AwaitingVerification");
        assert_eq!(ready(&verified, &applied, &report).status, Status::Unknown);

        let found = Outcome::Verified(group());
        let verified = group_verified(&found, "k8s-a", "k8s-", OnGroupMissing::Revoke);
        let conflict = ApplyReport {
            conflicts: vec!["okta-a-view-123".into()],
            ..Default::default()
        };
        let applied = bindings_applied(Grant::Declared, &found, &conflict);
        assert_eq!(
            (applied.status, applied.reason),
            (Status::False, "Conflict")
        );
        assert!(applied.message.contains("okta-a-view-123"));
        let missing_role = ApplyReport {
            bound: 1,
            missing_roles: vec!["ClusterRole/nope".into()],
            ..Default::default()
        };
        let applied = bindings_applied(Grant::Declared, &found, &missing_role);
        assert_eq!(applied.status, Status::True);
        let ready = ready(&verified, &applied, &missing_role);
        assert_eq!((ready.status, ready.reason), (Status::False, "RoleMissing"));

        let retained = group_verified(&Outcome::Missing, "k8s-a", "k8s-", OnGroupMissing::Retain);
        assert!(retained.message.contains("retained"));
        let outside = group_verified(
            &Outcome::Refused(Refusal::OutsideAllowedPrefix),
            "ops",
            "k8s-",
            OnGroupMissing::Revoke,
        );
        assert!(outside.message.contains("\"k8s-\""));
    }
}
