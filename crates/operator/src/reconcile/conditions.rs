//! What each condition says: GroupVerified from the judgement, BindingsApplied from what
//! the writes did, Ready from both. Pure; the words are the user's first clue, so every
//! message says what happened and what the operator did about it.

use super::claim::ClaimFinding;
use super::judge::{Grant, Outcome, Refusal};
use super::schedule::Window;
use super::tally::Tally;
use crate::okta::OktaError;
use crate::policy::ClaimCheck;
use okta_rbac_api::OnGroupMissing;
use okta_rbac_api::conditions::{
    ACTIVE, BINDINGS_APPLIED, CLAIM_CARRIES_GROUP, GROUP_VERIFIED, READY, Reason, Status, Verdict,
};

fn bindings(count: usize) -> String {
    match count {
        1 => "1 binding".to_string(),
        n => format!("{n} bindings"),
    }
}

/// The first few items and how many more.
pub fn list(items: &[String]) -> String {
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

/// GroupVerified; None when Okta was not asked (a grant that is over keeps the condition
/// of its last verification).
pub fn group_verified(
    outcome: &Outcome,
    group: &str,
    allowed_prefix: &str,
    on_missing: OnGroupMissing,
) -> Option<Verdict> {
    let kept = match on_missing {
        OnGroupMissing::Revoke => "its bindings are revoked",
        OnGroupMissing::Retain => "its bindings are retained (onGroupMissing: Retain)",
    };
    Some(match outcome {
        Outcome::NotChecked => return None,
        Outcome::Verified(g) => Verdict::new(
            GROUP_VERIFIED,
            Status::True,
            Reason::Found,
            format!("Okta group {} ({}, {})", g.profile.name, g.id, g.group_type),
        ),
        Outcome::Missing => Verdict::new(
            GROUP_VERIFIED,
            Status::False,
            Reason::GroupMissing,
            format!("Okta has no group named {group:?}; {kept}"),
        ),
        Outcome::Replaced { recorded, found } => Verdict::new(
            GROUP_VERIFIED,
            Status::False,
            Reason::GroupReplaced,
            format!(
                "the Okta group named {group:?} is now {found}, not the verified {recorded}: it was deleted and re-created, so it is treated as missing and {kept}"
            ),
        ),
        Outcome::Refused(Refusal::OutsideAllowedPrefix) => Verdict::new(
            GROUP_VERIFIED,
            Status::False,
            Reason::OutsideAllowedPrefix,
            format!(
                "{group:?} does not start with the allowed prefix {allowed_prefix:?}, so it never reaches a token; nothing is bound"
            ),
        ),
        Outcome::Refused(Refusal::BuiltIn) => Verdict::new(
            GROUP_VERIFIED,
            Status::False,
            Reason::BuiltInGroup,
            format!("{group:?} is a BUILT_IN Okta group that holds every user; it is never bound"),
        ),
        Outcome::Refused(Refusal::Ambiguous(count)) => Verdict::new(
            GROUP_VERIFIED,
            Status::False,
            Reason::AmbiguousName,
            format!(
                "{count} Okta groups are named {group:?} (for example an OKTA_GROUP and an APP_GROUP); nothing is bound until only one is"
            ),
        ),
        Outcome::Unknown(error) => Verdict::new(
            GROUP_VERIFIED,
            Status::Unknown,
            error.reason(),
            format!("{error}; existing bindings are kept and none are created until Okta answers"),
        ),
    })
}

/// The Active condition of a time-bound grant (None without `startTime` or `endTime`).
pub fn active(window: &Window) -> Option<Verdict> {
    Some(match window {
        Window::Unbounded => return None,
        Window::NotYetActive { starts, ends } => Verdict::new(
            ACTIVE,
            Status::False,
            Reason::NotYetActive,
            format!(
                "the grant starts at {starts}{}; no bindings until then",
                ends.map(|e| format!(" and ends at {e}"))
                    .unwrap_or_default()
            ),
        ),
        Window::Active { since, until } => Verdict::new(
            ACTIVE,
            Status::True,
            Reason::Active,
            match until {
                Some(until) => format!("in effect since {since}, until {until}"),
                None => format!("in effect since {since}, with no end"),
            },
        ),
        Window::Expired { ended } => Verdict::new(
            ACTIVE,
            Status::False,
            Reason::Expired,
            format!("the grant ended at {ended}; its bindings are deleted"),
        ),
    })
}

pub fn bindings_applied(
    grant: Grant,
    outcome: &Outcome,
    members_unknown: Option<&OktaError>,
    tally: &Tally,
    window: &Window,
) -> Verdict {
    if !tally.conflicts.is_empty() {
        return Verdict::new(
            BINDINGS_APPLIED,
            Status::False,
            Reason::Conflict,
            format!(
                "not managed by this object, left untouched: {}",
                list(&tally.conflicts)
            ),
        );
    }
    // Before anything else that would call the object done: access it no longer
    // declares still exists.
    if !tally.terminating.is_empty() {
        return Verdict::new(
            BINDINGS_APPLIED,
            Status::False,
            Reason::BindingTerminating,
            list(&tally.terminating),
        );
    }
    if !tally.failures.is_empty() {
        return Verdict::new(
            BINDINGS_APPLIED,
            Status::False,
            Reason::ApplyFailed,
            list(&tally.failures),
        );
    }
    if !tally.missing_namespaces.is_empty() {
        return Verdict::new(
            BINDINGS_APPLIED,
            Status::False,
            Reason::NamespaceMissing,
            format!(
                "these namespaces do not exist (the bindings follow when they do): {}",
                list(&tally.missing_namespaces)
            ),
        );
    }
    match window {
        Window::NotYetActive { starts, .. } => {
            return Verdict::new(
                BINDINGS_APPLIED,
                Status::True,
                Reason::NotYetActive,
                format!("no bindings until the grant starts at {starts}"),
            );
        }
        Window::Expired { ended } => {
            return Verdict::new(
                BINDINGS_APPLIED,
                Status::True,
                Reason::Expired,
                format!("no bindings: the grant ended at {ended}"),
            );
        }
        _ => {}
    }
    if let Some(error) = members_unknown {
        return Verdict::new(
            BINDINGS_APPLIED,
            Status::Unknown,
            Reason::AwaitingMembers,
            format!(
                "the group's members could not be read ({error}); {} kept, nothing is created until Okta answers",
                bindings(tally.bound.len())
            ),
        );
    }
    match (grant, outcome) {
        (Grant::Declared, _) => Verdict::new(
            BINDINGS_APPLIED,
            Status::True,
            Reason::Applied,
            format!("{} as declared", bindings(tally.bound.len())),
        ),
        (Grant::RevokeAll, _) => Verdict::new(
            BINDINGS_APPLIED,
            Status::True,
            Reason::Revoked,
            "no bindings are kept for this group",
        ),
        (Grant::KeepExisting, Outcome::Unknown(_)) => Verdict::new(
            BINDINGS_APPLIED,
            Status::Unknown,
            Reason::AwaitingVerification,
            format!(
                "{} kept; nothing is created until Okta verifies the group",
                bindings(tally.bound.len())
            ),
        ),
        (Grant::KeepExisting, _) => Verdict::new(
            BINDINGS_APPLIED,
            Status::True,
            Reason::Retained,
            format!("{} existing bindings retained", tally.bound.len()),
        ),
    }
}

/// The advisory ClaimCarriesGroup condition: whether an ID token will carry the group.
pub fn claim_carries_group(
    finding: &Result<ClaimFinding, OktaError>,
    check: &ClaimCheck,
    group: &str,
) -> Verdict {
    let server = &check.server_id;
    let claim = &check.claim;
    let (status, reason, message) = match finding {
        Ok(ClaimFinding::Carries { filter }) => (
            Status::True,
            Reason::ClaimCarriesGroup,
            format!(
                "ID tokens of authorization server {server} carry {group:?} in claim {claim:?} (filter {filter})"
            ),
        ),
        Ok(ClaimFinding::NoGroupsClaim { found }) => (
            Status::False,
            Reason::ClaimMissing,
            format!(
                "authorization server {server} has no active ID-token claim {claim:?} of type GROUPS{}; no token carries any group, so nobody gets these bindings",
                found
                    .as_ref()
                    .map(|f| format!(" (it has a {f})"))
                    .unwrap_or_default()
            ),
        ),
        Ok(ClaimFinding::NotInIdTokens) => (
            Status::False,
            Reason::ClaimNotInIdTokens,
            format!(
                "claim {claim:?} of authorization server {server} is not always included in ID tokens (set Include in token type: ID Token, Always), so kubectl's tokens do not carry {group:?}"
            ),
        ),
        Ok(ClaimFinding::ScopeNotRequested { claim_scopes }) => (
            Status::False,
            Reason::ClaimScopeNotRequested,
            format!(
                "claim {claim:?} of authorization server {server} is issued only for the scopes {claim_scopes:?}, and kubectl asks for {:?}",
                check.scopes
            ),
        ),
        Ok(ClaimFinding::FilterUnreadable { filter, error }) => (
            Status::Unknown,
            Reason::ClaimFilterUnreadable,
            format!(
                "the filter of claim {claim:?} of authorization server {server} ({filter}) is a regular expression the operator cannot evaluate ({error}), so whether ID tokens carry {group:?} is not known"
            ),
        ),
        Ok(ClaimFinding::FilterExcludes { filter }) => (
            Status::False,
            Reason::ClaimFilterExcludesGroup,
            format!(
                "the filter of claim {claim:?} of authorization server {server} ({filter}) leaves {group:?} out of ID tokens, so nobody gets these bindings"
            ),
        ),
        Err(error) => (
            Status::Unknown,
            error.reason(),
            format!("the claims of authorization server {server} could not be read: {error}"),
        ),
    };
    Verdict::new(CLAIM_CARRIES_GROUP, status, reason, message)
}

/// Ready: verified (when Okta was asked) and applied. A grant not yet in effect, or over,
/// has reached what it declares: no bindings.
pub fn ready(
    verified: Option<&Verdict>,
    applied: &Verdict,
    missing_roles: &[String],
    window: &Window,
) -> Verdict {
    if let Some(verified) = verified.filter(|v| v.status != Status::True) {
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
    if !window.grants() {
        return Verdict::new(READY, Status::True, applied.reason, applied.message.clone());
    }
    if !missing_roles.is_empty() {
        return Verdict::new(
            READY,
            Status::False,
            Reason::RoleMissing,
            format!(
                "bound, but these roles do not exist, so the bindings grant nothing yet: {}",
                list(missing_roles)
            ),
        );
    }
    Verdict::new(READY, Status::True, Reason::Ready, applied.message.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::fixtures::group;
    use okta_rbac_api::ManagedBinding;

    fn bound(count: usize) -> Vec<ManagedBinding> {
        (0..count)
            .map(|i| ManagedBinding {
                kind: "ClusterRoleBinding".into(),
                namespace: None,
                name: format!("b{i}"),
                role_ref: "ClusterRole/view".into(),
            })
            .collect()
    }

    #[test]
    fn conditions_say_why() {
        let outage = Outcome::Unknown(OktaError::Api {
            status: 503,
            code: "E0000010".into(),
            summary: "down".into(),
        });
        let verified =
            group_verified(&outage, "k8s-a", "k8s-", OnGroupMissing::Revoke).expect("asked");
        assert_eq!(
            (verified.status, verified.reason),
            (Status::Unknown, Reason::OktaServerError)
        );
        let tally = Tally {
            bound: bound(2),
            ..Default::default()
        };
        let applied = bindings_applied(
            Grant::KeepExisting,
            &outage,
            None,
            &tally,
            &Window::Unbounded,
        );
        assert_eq!(applied.reason, Reason::AwaitingVerification);
        assert_eq!(
            ready(Some(&verified), &applied, &[], &Window::Unbounded).status,
            Status::Unknown
        );

        let found = Outcome::Verified(group("k8s-a", "OKTA_GROUP"));
        let verified =
            group_verified(&found, "k8s-a", "k8s-", OnGroupMissing::Revoke).expect("asked");
        let conflict = Tally {
            conflicts: vec!["okta-a-view-123".into()],
            ..Default::default()
        };
        let applied =
            bindings_applied(Grant::Declared, &found, None, &conflict, &Window::Unbounded);
        assert_eq!(
            (applied.status, applied.reason),
            (Status::False, Reason::Conflict)
        );
        assert!(applied.message.contains("okta-a-view-123"));
        let bound = Tally {
            bound: bound(1),
            ..Default::default()
        };
        let applied = bindings_applied(Grant::Declared, &found, None, &bound, &Window::Unbounded);
        assert_eq!(applied.status, Status::True);
        let ready = ready(
            Some(&verified),
            &applied,
            &["ClusterRole/nope".into()],
            &Window::Unbounded,
        );
        assert_eq!(
            (ready.status, ready.reason),
            (Status::False, Reason::RoleMissing)
        );

        let retained = group_verified(&Outcome::Missing, "k8s-a", "k8s-", OnGroupMissing::Retain)
            .expect("asked");
        assert!(retained.message.contains("retained"));
        let outside = group_verified(
            &Outcome::Refused(Refusal::OutsideAllowedPrefix),
            "ops",
            "k8s-",
            OnGroupMissing::Revoke,
        )
        .expect("asked");
        assert!(outside.message.contains("\"k8s-\""));
    }

    #[test]
    fn unread_members_keep_the_bindings_and_say_so() {
        let found = Outcome::Verified(group("k8s-a", "OKTA_GROUP"));
        let error = OktaError::Timeout(std::time::Duration::from_secs(5));
        let tally = Tally {
            bound: bound(3),
            ..Default::default()
        };
        let applied = bindings_applied(
            Grant::KeepExisting,
            &found,
            Some(&error),
            &tally,
            &Window::Unbounded,
        );
        assert_eq!(
            (applied.status, applied.reason),
            (Status::Unknown, Reason::AwaitingMembers)
        );
        assert!(
            applied.message.contains("3 bindings kept"),
            "{}",
            applied.message
        );
        let verified =
            group_verified(&found, "k8s-a", "k8s-", OnGroupMissing::Revoke).expect("asked");
        assert_eq!(verified.status, Status::True, "the group itself was found");
        assert_eq!(
            ready(Some(&verified), &applied, &[], &Window::Unbounded).reason,
            Reason::AwaitingMembers
        );
    }

    #[test]
    fn a_grant_not_in_effect_is_ready_with_no_bindings_and_says_when() {
        use k8s_openapi::jiff::Timestamp;
        let starts = Timestamp::from_second(2_000_000_000).expect("time");
        let ends = Timestamp::from_second(2_000_003_600).expect("time");
        let found = Outcome::Verified(group("k8s-a", "OKTA_GROUP"));
        let verified = group_verified(&found, "k8s-a", "k8s-", OnGroupMissing::Revoke);
        let before = Window::NotYetActive {
            starts,
            ends: Some(ends),
        };
        let applied = bindings_applied(Grant::RevokeAll, &found, None, &Tally::default(), &before);
        assert_eq!(
            (applied.status, applied.reason),
            (Status::True, Reason::NotYetActive)
        );
        let ready_before = ready(verified.as_ref(), &applied, &[], &before);
        assert_eq!(
            (ready_before.status, ready_before.reason),
            (Status::True, Reason::NotYetActive),
            "the declared state (nothing yet) is reached"
        );
        let pending = active(&before).expect("time-bound");
        assert_eq!(
            (pending.status, pending.reason),
            (Status::False, Reason::NotYetActive)
        );
        assert!(
            pending.message.contains("2033-05-18T03:33:20Z"),
            "{}",
            pending.message
        );

        let missing = group_verified(&Outcome::Missing, "k8s-a", "k8s-", OnGroupMissing::Revoke);
        assert_eq!(
            ready(missing.as_ref(), &applied, &[], &before).reason,
            Reason::GroupMissing,
            "a problem shows before the start"
        );

        let over = Window::Expired { ended: ends };
        assert!(
            group_verified(
                &Outcome::NotChecked,
                "k8s-a",
                "k8s-",
                OnGroupMissing::Revoke
            )
            .is_none()
        );
        let applied = bindings_applied(
            Grant::RevokeAll,
            &Outcome::NotChecked,
            None,
            &Tally::default(),
            &over,
        );
        let ready_after = ready(None, &applied, &[], &over);
        assert_eq!(
            (ready_after.status, ready_after.reason),
            (Status::True, Reason::Expired)
        );
        assert_eq!(active(&over).expect("time-bound").reason, Reason::Expired);
        let during = Window::Active {
            since: starts,
            until: Some(ends),
        };
        assert_eq!(active(&during).expect("time-bound").status, Status::True);
        assert!(active(&Window::Unbounded).is_none());
    }

    #[test]
    fn long_lists_are_cut_with_a_count() {
        let items: Vec<String> = (0..8).map(|i| format!("ns-{i}")).collect();
        assert_eq!(list(&items), "ns-0, ns-1, ns-2, ns-3, ns-4 and 3 more");
    }
}
