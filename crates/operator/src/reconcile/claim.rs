//! Whether an ID token will carry the group: the authorization server has a claim of the
//! name the apiserver reads (`--oidc-groups-claim`), of value type GROUPS, in ID tokens
//! always, for a scope kubectl asks for, and its filter passes the group's name. Okta's
//! claim filter compares STARTS_WITH, EQUALS and CONTAINS without regard to case; a REGEX
//! must match the whole name. Pure, and advisory: it never changes what is bound.

use crate::okta::OktaClaim;
use crate::policy::ClaimCheck;

/// The answer for one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimFinding {
    /// The claim carries the group; the filter that passes it.
    Carries { filter: String },
    /// No active ID-token claim of that name with value type GROUPS.
    NoGroupsClaim { found: Option<String> },
    /// The claim is only for access tokens or the userinfo endpoint.
    NotInIdTokens,
    /// The claim is issued only for scopes kubectl does not request.
    ScopeNotRequested { claim_scopes: Vec<String> },
    /// The filter does not pass the group's name.
    FilterExcludes { filter: String },
    /// The filter is a REGEX this operator cannot evaluate: whether it passes is unknown.
    FilterUnreadable { filter: String, error: String },
}

fn describe(filter_type: &str, value: &str) -> String {
    format!("{filter_type} {value:?}")
}

/// Whether a group's name passes a GROUPS claim's filter, as Okta applies it.
pub fn passes(filter_type: &str, value: &str, group: &str) -> bool {
    let (name, value_lower) = (group.to_lowercase(), value.to_lowercase());
    match filter_type {
        "STARTS_WITH" => name.starts_with(&value_lower),
        "EQUALS" => name == value_lower,
        "CONTAINS" => name.contains(&value_lower),
        "REGEX" => regex::Regex::new(&format!("^(?:{value})$")).is_ok_and(|p| p.is_match(group)),
        _ => false,
    }
}

pub fn find(check: &ClaimCheck, claims: &[OktaClaim], group: &str) -> ClaimFinding {
    let named: Vec<&OktaClaim> = claims.iter().filter(|c| c.name == check.claim).collect();
    let Some(claim) = named.iter().copied().find(|c| {
        c.claim_type == "IDENTITY"
            && c.value_type == "GROUPS"
            && c.status.as_deref().is_none_or(|s| s == "ACTIVE")
    }) else {
        let found = named
            .first()
            .map(|c| format!("{} {} claim", c.claim_type, c.value_type));
        return ClaimFinding::NoGroupsClaim { found };
    };
    if claim.always_include_in_token == Some(false) {
        return ClaimFinding::NotInIdTokens;
    }
    let claim_scopes = claim
        .conditions
        .as_ref()
        .map(|c| c.scopes.clone())
        .unwrap_or_default();
    let any_scope = claim_scopes.is_empty() || claim_scopes.iter().any(|s| s == "*");
    if !any_scope && !claim_scopes.iter().any(|s| check.scopes.contains(s)) {
        return ClaimFinding::ScopeNotRequested { claim_scopes };
    }
    let filter_type = claim.group_filter_type.as_deref().unwrap_or("STARTS_WITH");
    let value = claim.value.as_deref().unwrap_or_default();
    let filter = describe(filter_type, value);
    if filter_type == "REGEX"
        && let Err(error) = regex::Regex::new(&format!("^(?:{value})$"))
    {
        return ClaimFinding::FilterUnreadable {
            filter,
            error: error
                .to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_string(),
        };
    }
    if passes(filter_type, value, group) {
        ClaimFinding::Carries { filter }
    } else {
        ClaimFinding::FilterExcludes { filter }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regex_that_cannot_be_read_is_said_so_not_taken_for_a_no() {
        let claims = [groups_claim("REGEX", "k8s-(?=admins).*")];
        assert!(matches!(
            find(&check(), &claims, "k8s-admins"),
            ClaimFinding::FilterUnreadable { error, .. } if error.contains("look-around")
        ));
    }
    use crate::okta::ClaimConditions;

    fn check() -> ClaimCheck {
        ClaimCheck {
            server_id: "default".into(),
            claim: "groups".into(),
            scopes: vec!["openid".into(), "email".into(), "groups".into()],
        }
    }

    fn groups_claim(filter_type: &str, value: &str) -> OktaClaim {
        OktaClaim {
            name: "groups".into(),
            status: Some("ACTIVE".into()),
            claim_type: "IDENTITY".into(),
            value_type: "GROUPS".into(),
            value: Some(value.into()),
            group_filter_type: Some(filter_type.into()),
            always_include_in_token: Some(true),
            conditions: Some(ClaimConditions { scopes: vec![] }),
        }
    }

    #[test]
    fn the_usual_k8s_filter_carries_k8s_groups_whatever_their_case() {
        let claims = [groups_claim("STARTS_WITH", "k8s-")];
        assert!(matches!(
            find(&check(), &claims, "K8S-Admins"),
            ClaimFinding::Carries { .. }
        ));
        assert!(matches!(
            find(&check(), &claims, "platform-admins"),
            ClaimFinding::FilterExcludes { filter } if filter == "STARTS_WITH \"k8s-\""
        ));
    }

    #[test]
    fn every_filter_type_is_applied_like_okta() {
        assert!(passes("EQUALS", "k8s-admins", "K8S-ADMINS"));
        assert!(!passes("EQUALS", "k8s-admins", "k8s-admins-2"));
        assert!(passes("CONTAINS", "k8s", "team-k8s-ops"));
        assert!(passes("REGEX", "k8s-.*-admins", "k8s-payments-admins"));
        assert!(!passes("REGEX", "k8s-.*", "xk8s-a"), "the whole name");
        assert!(
            !passes("REGEX", "(", "k8s-a"),
            "an invalid pattern passes nothing"
        );
        assert!(!passes("SOMETHING_NEW", "k8s-", "k8s-a"));
    }

    #[test]
    fn a_claim_that_cannot_reach_the_id_token_says_why() {
        let mut userinfo = groups_claim("STARTS_WITH", "k8s-");
        userinfo.always_include_in_token = Some(false);
        assert_eq!(
            find(&check(), &[userinfo], "k8s-a"),
            ClaimFinding::NotInIdTokens
        );

        let mut scoped = groups_claim("STARTS_WITH", "k8s-");
        scoped.conditions = Some(ClaimConditions {
            scopes: vec!["k8s".into()],
        });
        assert_eq!(
            find(&check(), &[scoped.clone()], "k8s-a"),
            ClaimFinding::ScopeNotRequested {
                claim_scopes: vec!["k8s".into()]
            }
        );
        scoped.conditions = Some(ClaimConditions {
            scopes: vec!["groups".into()],
        });
        assert!(matches!(
            find(&check(), &[scoped], "k8s-a"),
            ClaimFinding::Carries { .. }
        ));

        let mut access_only = groups_claim("STARTS_WITH", "k8s-");
        access_only.claim_type = "RESOURCE".into();
        assert_eq!(
            find(&check(), &[access_only], "k8s-a"),
            ClaimFinding::NoGroupsClaim {
                found: Some("RESOURCE GROUPS claim".into())
            }
        );
        assert_eq!(
            find(&check(), &[], "k8s-a"),
            ClaimFinding::NoGroupsClaim { found: None }
        );
    }
}
