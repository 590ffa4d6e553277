//! `who-can VERB RESOURCE [-n NAMESPACE]`: every subject a binding names, asked of the
//! apiserver one by one; those it allows, marked by whether an OktaGroupBinding grants it
//! (with the Okta group's active members, when Okta can be asked) or a binding the
//! operator does not manage.

use crate::check::Check;
use crate::cluster::Cluster;
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
    /// The authorizer's words.
    pub reason: String,
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
        // A user of no name of its own: only the group's grants count.
        "Group" => ("okta-rbac:who-can".into(), vec![key.name.clone()]),
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

/// Who may do `check`; members of Okta groups from `members` when given.
pub async fn who_can(
    cluster: &Cluster,
    check: &Check,
    members: impl AsyncFnOnce(Vec<String>) -> Result<BTreeMap<String, Vec<String>>, String>,
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
                    if let Some(group) = &holder.okta_group {
                        holder.members = Some(found.get(group).cloned().unwrap_or_default());
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
