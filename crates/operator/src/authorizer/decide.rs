//! The authorizer's decision, pure: a request's user and groups against the roster. It
//! never allows: a token carrying a group its user no longer has in Okta is a candidate
//! for Deny (the edge then asks whether the user's other groups allow the request), and
//! everything else is NoOpinion, so that RBAC decides.

use super::roster::{Roster, Standing};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    NoOpinion,
    /// The token carries groups its user no longer has: (group, why) for each, and the
    /// groups that stay.
    Stale {
        stale: Vec<(String, String)>,
        kept: Vec<String>,
    },
}

/// The verdict for a request by `user` (as the apiserver names them, with the username
/// prefix) carrying `groups` (with their prefixes).
pub fn decide(roster: &Roster, username_prefix: &str, user: &str, groups: &[String]) -> Verdict {
    if user.starts_with("system:") || roster.is_empty() {
        return Verdict::NoOpinion;
    }
    let Some(name) = user.strip_prefix(username_prefix) else {
        return Verdict::NoOpinion;
    };
    let mut stale = Vec::new();
    let mut kept = Vec::new();
    for group in groups {
        match roster.standing(group, name) {
            Standing::Gone(why) => stale.push((group.clone(), why)),
            _ => kept.push(group.clone()),
        }
    }
    if stale.is_empty() {
        Verdict::NoOpinion
    } else {
        Verdict::Stale { stale, kept }
    }
}

/// The reason a denial gives, for a person reading `kubectl`'s error.
pub fn reason(name: &str, stale: &[(String, String)]) -> String {
    let each: Vec<String> = stale
        .iter()
        .map(|(group, why)| format!("{name} {why} (the token still carries {group})"))
        .collect();
    format!(
        "okta-rbac: {}; a new login gets the groups of now",
        each.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorizer::roster::tests::grant;
    use crate::okta::{OktaUser, UserProfile};
    use okta_rbac_api::UserNameAttribute;
    use std::time::Instant;

    fn roster() -> Roster {
        let roster = Roster::new(UserNameAttribute::Email);
        roster.track("a", Some(grant("oidc:k8s-admins", "00g1")));
        roster.track("b", Some(grant("oidc:k8s-view", "00g2")));
        let alice = OktaUser {
            id: "00u1".into(),
            status: "ACTIVE".into(),
            profile: UserProfile {
                login: "alice@example.com".into(),
                email: Some("alice@example.com".into()),
            },
        };
        roster.listed("00g1", &[], Instant::now());
        roster.listed("00g2", &[alice], Instant::now());
        roster
    }

    fn groups(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_group_the_user_left_is_stale_and_the_others_are_kept() {
        let verdict = decide(
            &roster(),
            "oidc:",
            "oidc:alice@example.com",
            &groups(&["oidc:k8s-admins", "oidc:k8s-view", "system:authenticated"]),
        );
        let Verdict::Stale { stale, kept } = verdict else {
            panic!("stale expected");
        };
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].0, "oidc:k8s-admins");
        assert_eq!(kept, groups(&["oidc:k8s-view", "system:authenticated"]));
        let reason = reason("alice@example.com", &stale);
        assert!(
            reason.contains("alice@example.com is not a member of k8s-admins in Okta"),
            "{reason}"
        );
    }

    #[test]
    fn system_users_other_prefixes_and_current_members_get_no_opinion() {
        let roster = roster();
        for (user, carried) in [
            ("system:serviceaccount:x:y", &["oidc:k8s-admins"][..]),
            ("alice@example.com", &["oidc:k8s-admins"][..]),
            ("oidc:alice@example.com", &["oidc:k8s-view"][..]),
            (
                "oidc:alice@example.com",
                &["oidc:unbound", "system:masters"][..],
            ),
        ] {
            assert_eq!(
                decide(&roster, "oidc:", user, &groups(carried)),
                Verdict::NoOpinion,
                "{user} {carried:?}"
            );
        }
    }
}
