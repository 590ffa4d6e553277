//! What a token issued before a change in Okta still gets: the changes within the
//! tokens' lifetime that took a group away, the groups such a token carries, and the
//! apiserver's answer for it, the revocation authorizer included.

use crate::check::Check;
use crate::cluster::Cluster;
use crate::explain::{CheckFinding, Settings, allowed_because, token_finding};
use crate::okta_side::PastChange;
use k8s_openapi::jiff::Timestamp;
use okta_rbac_operator::okta::{OktaClaim, OktaError};
use serde::Serialize;
use std::collections::BTreeMap;

/// What a token issued before the user's latest changes in Okta still gets: it carries the
/// groups of its login until it expires, whatever Okta did since.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EarlierTokens {
    /// The changes such a token does not know of, oldest first.
    pub changes: Vec<PastChange>,
    /// When the last token issued before them expires, at the latest.
    pub valid_until: String,
    /// The groups such a token carries, as RBAC sees them.
    pub groups: Vec<String>,
    /// The apiserver's answer for such a token (the revocation authorizer included).
    pub checks: Vec<CheckFinding>,
}

/// The changes a token issued before them does not know of, and the Okta groups such a
/// token carries: those the user left, and, while the user is not ACTIVE, those the user
/// is still in. `None` when no change within the tokens' lifetime took anything away.
pub fn earlier_groups(
    changes: &[PastChange],
    groups: &[String],
    active: bool,
) -> Option<(Vec<PastChange>, Vec<String>)> {
    let left = |c: &PastChange| {
        c.what.starts_with("left ") && c.group.as_ref().is_some_and(|g| !groups.contains(g))
    };
    let barred = |c: &PastChange| {
        !active && ["suspended", "deactivated", "deleted"].contains(&c.what.as_str())
    };
    let relevant: Vec<PastChange> = changes
        .iter()
        .filter(|c| left(c) || barred(c))
        .cloned()
        .collect();
    if relevant.is_empty() {
        return None;
    }
    let mut carried: Vec<String> = if active { Vec::new() } else { groups.to_vec() };
    for change in relevant.iter().filter(|c| left(c)) {
        if let Some(group) = &change.group
            && !carried.contains(group)
        {
            carried.push(group.clone());
        }
    }
    Some((relevant, carried))
}

/// How a token of the user looks to the apiserver: its user name, the prefix and claim
/// filter its groups pass, and the bindings' owners for the reasons.
pub struct TokenView<'a> {
    pub username: &'a str,
    pub prefix: &'a str,
    pub claims: Option<&'a Result<Vec<OktaClaim>, OktaError>>,
    pub settings: &'a Settings,
    pub bindings_of: &'a BTreeMap<String, String>,
}

/// The apiserver's answer, check by check, for a token carrying `carried` (Okta names)
/// issued just before the last of `changes`.
pub async fn earlier_tokens(
    cluster: &Cluster,
    checks: &[Check],
    view: &TokenView<'_>,
    changes: Vec<PastChange>,
    carried: Vec<String>,
) -> Result<EarlierTokens, String> {
    let TokenView {
        username,
        prefix,
        claims,
        settings,
        bindings_of,
    } = view;
    let last = changes
        .iter()
        .filter_map(|c| c.at.parse::<Timestamp>().ok())
        .max()
        .unwrap_or_else(Timestamp::now);
    let valid_until = crate::who_can::expires(&last.to_string(), settings.token_lifetime);
    let groups: Vec<String> = carried
        .iter()
        .filter(|name| match claims {
            Some(claims) => token_finding(name, Some(claims), &settings.claim).0 != Some(false),
            None => true,
        })
        .map(|name| format!("{prefix}{name}"))
        .collect();
    let mut asked = groups.clone();
    asked.push("system:authenticated".into());
    let mut findings = Vec::new();
    for check in checks {
        let review = cluster.review(username, &asked, check).await?;
        let why = if review.allowed {
            format!(
                "until {valid_until}: {}",
                allowed_because(&review, bindings_of)
            )
        } else if review.denied {
            format!("denied: {}", review.reason)
        } else {
            "nothing grants it to such a token".to_string()
        };
        findings.push(CheckFinding {
            check: check.describe(),
            allowed: review.allowed,
            why,
        });
    }
    Ok(EarlierTokens {
        changes,
        valid_until,
        groups,
        checks: findings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(what: &str, group: Option<&str>, at: &str) -> PastChange {
        PastChange {
            user: "bob@example.com".into(),
            what: what.into(),
            group: group.map(str::to_string),
            at: at.into(),
        }
    }

    #[test]
    fn an_active_user_s_earlier_tokens_carry_only_the_groups_left() {
        let changes = [
            change("left k8s-a", Some("k8s-a"), "2026-12-03T10:00:00Z"),
            change("left k8s-b", Some("k8s-b"), "2026-12-03T10:01:00Z"),
            change("joined k8s-b", Some("k8s-b"), "2026-12-03T10:02:00Z"),
            change("suspended", None, "2026-12-03T10:03:00Z"),
            change("back", None, "2026-12-03T10:04:00Z"),
        ];
        let (relevant, carried) =
            earlier_groups(&changes, &["k8s-b".into()], true).expect("something was taken");
        assert_eq!(carried, ["k8s-a"]);
        assert_eq!(relevant, [changes[0].clone()]);
    }

    #[test]
    fn a_suspended_user_s_earlier_tokens_carry_every_group() {
        let changes = [change("suspended", None, "2026-12-03T10:03:00Z")];
        let (_, carried) =
            earlier_groups(&changes, &["k8s-b".into()], false).expect("something was taken");
        assert_eq!(carried, ["k8s-b"]);
        assert!(earlier_groups(&[], &["k8s-b".into()], false).is_none());
        assert!(earlier_groups(&changes, &["k8s-b".into()], true).is_none());
    }
}
