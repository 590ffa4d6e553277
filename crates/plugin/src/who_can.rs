//! `who-can VERB RESOURCE [-n NAMESPACE]`: every subject a binding names, asked of the
//! apiserver one by one; those it allows, marked by whether an OktaGroupBinding grants it
//! (with the Okta group's active members, when Okta can be asked) or a binding the
//! operator does not manage.

use crate::check::Check;
use crate::cluster::Cluster;
use crate::okta_side::PastChange;
use k8s_openapi::api::rbac::v1::Subject;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use okta_rbac_api::OktaGroupBinding;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WhoCan {
    pub check: String,
    pub holders: Vec<Holder>,
    pub unchecked: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    /// User, Group or ServiceAccount.
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The OktaGroupBinding whose binding names the subject, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub okta_group_binding: Option<String>,
    /// Its Okta group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub okta_group: Option<String>,
    /// The Okta group's active members (absent: Okta not asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
    /// Users who left the group or stopped being ACTIVE within the tokens' lifetime: a
    /// token issued before still carries the group.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub former_members: Vec<FormerMember>,
    /// The authorizer's words.
    pub reason: String,
}

/// A user whose tokens issued before a change in Okta still carry the group, and what the
/// apiserver answers such a token.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FormerMember {
    pub user: String,
    pub change: PastChange,
    /// Whether a token issued just before the change is allowed, as the apiserver answers
    /// (the revocation authorizer included).
    pub allowed: bool,
    /// "until <time>", or the authorizer's reason for denying.
    pub why: String,
}

/// What Okta says of a group's people.
#[derive(Clone, Debug, Default)]
pub struct People {
    /// The ACTIVE members' user names.
    pub active: Vec<String>,
    /// Each user name that left, or stopped being ACTIVE, within the tokens' lifetime,
    /// with the change.
    pub former: Vec<(String, PastChange)>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    kind: String,
    name: String,
    namespace: Option<String>,
}

/// The user and groups a SubjectAccessReview asks about for a subject.
fn identity(key: &Key) -> (String, Vec<String>) {
    match key.kind.as_str() {
        "ServiceAccount" => {
            let namespace = key.namespace.clone().unwrap_or_default();
            (
                format!("system:serviceaccount:{namespace}:{}", key.name),
                vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{namespace}"),
                ],
            )
        }
        // A user of no name of its own: only the group's grants count. A `system:` name,
        // which the revocation authorizer's matchConditions leave to RBAC: the question
        // is what the group grants, not whether this made-up user is still in it.
        "Group" => ("system:okta-rbac:who-can".into(), vec![key.name.clone()]),
        _ => (key.name.clone(), vec![]),
    }
}

fn owner(meta: &ObjectMeta) -> Option<String> {
    let managed = meta
        .labels
        .as_ref()?
        .get("app.kubernetes.io/managed-by")
        .is_some_and(|v| v == "okta-rbac-operator");
    managed
        .then(|| meta.annotations.as_ref()?.get("oktarbac.io/owner").cloned())
        .flatten()
}

/// Who may do `check`; members of Okta groups from `members` when given (by group name),
/// and for each former member, what a token issued before the change gets. Tokens live
/// `token_lifetime`; user names reach the apiserver with `username_prefix`.
pub async fn who_can(
    cluster: &Cluster,
    check: &Check,
    username_prefix: &str,
    token_lifetime: std::time::Duration,
    members: impl AsyncFnOnce(Vec<String>) -> Result<BTreeMap<String, People>, String>,
) -> Result<WhoCan, String> {
    let (objects, mut unchecked) = cluster.objects().await?;
    let objects: BTreeMap<String, OktaGroupBinding> = objects
        .into_iter()
        .map(|o| (o.metadata.name.clone().unwrap_or_default(), o))
        .collect();
    let (cluster_bindings, bindings) = cluster.bindings(check.namespace.as_deref()).await?;
    let mut subjects: BTreeMap<Key, Option<String>> = BTreeMap::new();
    let named = cluster_bindings
        .iter()
        .map(|b| (&b.metadata, &b.subjects))
        .chain(bindings.iter().map(|b| (&b.metadata, &b.subjects)));
    for (meta, list) in named {
        for subject in list.iter().flatten() {
            let Subject {
                kind,
                name,
                namespace,
                ..
            } = subject;
            let key = Key {
                kind: kind.clone(),
                name: name.clone(),
                namespace: (kind == "ServiceAccount")
                    .then(|| namespace.clone())
                    .flatten(),
            };
            let managed = owner(meta);
            let entry = subjects.entry(key).or_default();
            if entry.is_none() {
                *entry = managed;
            }
        }
    }
    let mut holders = Vec::new();
    for (key, managed_by) in subjects {
        let (user, groups) = identity(&key);
        let review = cluster.review(&user, &groups, check).await?;
        if !review.allowed {
            continue;
        }
        let okta_group = managed_by
            .as_ref()
            .and_then(|o| objects.get(o))
            .map(|o| o.spec.group.clone());
        holders.push(Holder {
            kind: key.kind,
            name: key.name,
            namespace: key.namespace,
            okta_group_binding: managed_by,
            okta_group,
            members: None,
            former_members: Vec::new(),
            reason: review.reason,
        });
    }
    let groups: Vec<String> = holders
        .iter()
        .filter_map(|h| h.okta_group.clone())
        .collect();
    if !groups.is_empty() {
        match members(groups).await {
            Ok(found) => {
                for holder in &mut holders {
                    let Some(group) = &holder.okta_group else {
                        continue;
                    };
                    let people = found.get(group).cloned().unwrap_or_default();
                    holder.members = Some(people.active);
                    for (user, change) in people.former {
                        let username = format!("{username_prefix}{user}");
                        let groups = [holder.name.clone(), "system:authenticated".into()];
                        let review = cluster.review(&username, &groups, check).await?;
                        let why = if review.allowed {
                            format!("until {}", expires(&change.at, token_lifetime))
                        } else if review.denied {
                            format!("denied: {}", review.reason)
                        } else {
                            "nothing grants it to such a token".into()
                        };
                        holder.former_members.push(FormerMember {
                            user,
                            change,
                            allowed: review.allowed,
                            why,
                        });
                    }
                }
            }
            Err(why) => unchecked.push(format!("the Okta groups' members: {why}")),
        }
    }
    Ok(WhoCan {
        check: check.describe(),
        holders,
        unchecked,
    })
}

/// When a token issued just before `at` (RFC 3339) expires, at the latest.
pub fn expires(at: &str, lifetime: std::time::Duration) -> String {
    use k8s_openapi::jiff::{SignedDuration, Timestamp};
    let Ok(at) = at.parse::<Timestamp>() else {
        return format!("{at} plus the token lifetime");
    };
    let lifetime = SignedDuration::try_from(lifetime).unwrap_or(SignedDuration::from_hours(1));
    at.checked_add(lifetime)
        .unwrap_or(at)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
