//! Step 3, plan: the exact writes that make the cluster match the judgement. Creates what
//! is missing, repairs what drifted (a changed roleRef means delete and re-create),
//! deletes what this object owns but must not keep, and never plans a write to a binding
//! it does not own. Pure.

use super::desired::{DesiredBinding, NamespaceView, desired_bindings};
use super::judge::{Grant, Judgement};
use super::observe::ClusterView;
use crate::binding::{BindingObject, BindingRef};
use crate::labels::{MANAGED_BY_LABEL, MANAGER, OWNER_ANNOTATION, OWNER_UID_LABEL};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};
use okta_rbac_api::{ManagedBinding, OktaGroupBinding};
use std::collections::{BTreeMap, BTreeSet};

/// One write to the cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    Create(BindingObject),
    /// The same roleRef: subjects, labels or owner reference are put back.
    Repair(BindingObject),
    /// roleRef is immutable: delete the binding and create it again.
    Recreate(BindingObject),
    Delete(BindingRef),
}

impl Write {
    pub fn target(&self) -> BindingRef {
        match self {
            Write::Create(b) | Write::Repair(b) | Write::Recreate(b) => b.reference(),
            Write::Delete(reference) => reference.clone(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub writes: Vec<Write>,
    /// The bindings the object has once every write succeeds, sorted (status.bindings).
    pub bound: Vec<(BindingRef, ManagedBinding)>,
    /// Explicitly named namespaces that do not exist: their bindings wait for them.
    pub missing_namespaces: Vec<String>,
    /// Roles the bound bindings reference that do not exist (`ClusterRole/x`, `Role/ns/x`).
    pub missing_roles: Vec<String>,
}

fn reference(binding: &DesiredBinding) -> BindingRef {
    BindingRef {
        namespace: binding.namespace().map(str::to_string),
        name: binding.name.clone(),
    }
}

fn managed(binding: &DesiredBinding) -> ManagedBinding {
    ManagedBinding {
        kind: binding.kind().to_string(),
        namespace: binding.namespace().map(str::to_string),
        name: binding.name.clone(),
        role_ref: format!("{}/{}", binding.role_ref.kind, binding.role_ref.name),
    }
}

/// The labels, annotation and controller owner reference of a binding `ogb` owns.
fn owned_meta(ogb: &OktaGroupBinding) -> ObjectMeta {
    ObjectMeta {
        labels: Some(BTreeMap::from([
            (MANAGED_BY_LABEL.to_string(), MANAGER.to_string()),
            (OWNER_UID_LABEL.to_string(), ogb.uid().unwrap_or_default()),
        ])),
        annotations: Some(BTreeMap::from([(
            OWNER_ANNOTATION.to_string(),
            ogb.name_any(),
        )])),
        owner_references: ogb.controller_owner_ref(&()).map(|r| vec![r]),
        ..Default::default()
    }
}

fn owned_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references.iter().flatten().any(|r| r.uid == uid)
}

/// Our labels and owner reference are in place.
fn marks_in_place(meta: &ObjectMeta, uid: &str) -> bool {
    let label = |key: &str| {
        meta.labels
            .as_ref()
            .and_then(|l| l.get(key))
            .map(String::as_str)
    };
    owned_by(meta, uid)
        && label(MANAGED_BY_LABEL) == Some(MANAGER)
        && label(OWNER_UID_LABEL) == Some(uid)
}

/// `current` with the declared subjects and our marks added (others' labels are kept).
fn repaired(
    current: &BindingObject,
    desired: &DesiredBinding,
    marks: &ObjectMeta,
    uid: &str,
) -> BindingObject {
    let mut meta = current.metadata().clone();
    meta.labels
        .get_or_insert_with(Default::default)
        .extend(marks.labels.clone().unwrap_or_default());
    meta.annotations
        .get_or_insert_with(Default::default)
        .extend(marks.annotations.clone().unwrap_or_default());
    if !owned_by(&meta, uid) {
        meta.owner_references
            .get_or_insert_with(Default::default)
            .extend(marks.owner_references.clone().unwrap_or_default());
    }
    BindingObject::build(
        &current.reference(),
        meta,
        current.role_ref().clone(),
        desired.subjects.clone(),
    )
}

fn role_name(binding: &DesiredBinding) -> String {
    match binding.namespace() {
        Some(ns) if binding.role_ref.kind == "Role" => {
            format!("Role/{ns}/{}", binding.role_ref.name)
        }
        _ => format!("{}/{}", binding.role_ref.kind, binding.role_ref.name),
    }
}

fn role_exists(binding: &DesiredBinding, cluster: &ClusterView) -> bool {
    match (binding.role_ref.kind.as_str(), binding.namespace()) {
        ("Role", Some(ns)) => cluster
            .roles
            .roles
            .contains(&(ns.to_string(), binding.role_ref.name.clone())),
        _ => cluster.roles.cluster_roles.contains(&binding.role_ref.name),
    }
}

pub fn plan(ogb: &OktaGroupBinding, judgement: &Judgement, cluster: &ClusterView) -> Plan {
    let uid = ogb.uid().unwrap_or_default();
    let views: Vec<NamespaceView<'_>> = cluster
        .namespaces
        .iter()
        .map(|ns| NamespaceView {
            name: ns.metadata.name.as_deref().unwrap_or_default(),
            labels: ns.metadata.labels.as_ref().unwrap_or(&EMPTY_LABELS),
        })
        .collect();
    let existing_namespaces: BTreeSet<&str> = views.iter().map(|ns| ns.name).collect();
    let desired = desired_bindings(ogb, &judgement.subjects, &views);
    let declared: BTreeSet<BindingRef> = desired.iter().map(reference).collect();

    let mut plan = Plan::default();
    for target in cluster.owned.keys() {
        if judgement.grant == Grant::RevokeAll || !declared.contains(target) {
            plan.writes.push(Write::Delete(target.clone()));
        }
    }
    match judgement.grant {
        Grant::RevokeAll => {}
        Grant::KeepExisting => {
            for binding in &desired {
                let target = reference(binding);
                if cluster.owned.contains_key(&target) {
                    plan.bound.push((target, managed(binding)));
                }
            }
        }
        Grant::Declared => {
            let marks = owned_meta(ogb);
            for binding in &desired {
                if let Some(ns) = binding.namespace()
                    && !existing_namespaces.contains(ns)
                {
                    plan.missing_namespaces.push(ns.to_string());
                    continue;
                }
                let target = reference(binding);
                let fresh = || {
                    BindingObject::build(
                        &target,
                        marks.clone(),
                        binding.role_ref.clone(),
                        binding.subjects.clone(),
                    )
                };
                match cluster.owned.get(&target) {
                    None if cluster.pending.contains(&target) => {}
                    None => plan.writes.push(Write::Create(fresh())),
                    Some(current) if current.role_ref() != &binding.role_ref => {
                        plan.writes.push(Write::Recreate(fresh()));
                    }
                    Some(current)
                        if current.subjects() == binding.subjects.as_slice()
                            && marks_in_place(current.metadata(), &uid) => {}
                    Some(current) => plan
                        .writes
                        .push(Write::Repair(repaired(current, binding, &marks, &uid))),
                }
                plan.bound.push((target, managed(binding)));
                let role = role_name(binding);
                if !role_exists(binding, cluster) && !plan.missing_roles.contains(&role) {
                    plan.missing_roles.push(role);
                }
            }
        }
    }
    plan.bound.sort_by(|a, b| a.1.cmp(&b.1));
    plan
}

static EMPTY_LABELS: BTreeMap<String, String> = BTreeMap::new();

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::fixtures::{group, labels, ogb, policy, spec};
    use crate::reconcile::judge::Outcome;
    use crate::reconcile::observe::RolesPresent;
    use crate::reconcile::subjects::group_subject;
    use k8s_openapi::api::core::v1::Namespace;
    use k8s_openapi::api::rbac::v1::RoleRef;
    use std::sync::Arc;

    fn namespace(name: &str, pairs: &[(&str, &str)]) -> Arc<Namespace> {
        Arc::new(Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(labels(pairs)),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    /// `default` and one payments namespace exist, and every referenced role.
    fn cluster() -> ClusterView {
        ClusterView {
            namespaces: vec![
                namespace("default", &[]),
                namespace("pay-1", &[("team", "payments")]),
            ],
            roles: RolesPresent {
                cluster_roles: ["view", "edit"].map(String::from).into(),
                roles: [("default".to_string(), "restricted-user".to_string())].into(),
            },
            ..Default::default()
        }
    }

    fn verified(grant: Grant) -> Judgement {
        let object = ogb(spec());
        Judgement {
            outcome: Outcome::Verified(group("k8s-restricted-users", "OKTA_GROUP")),
            subjects: group_subject(&object, &policy()),
            members_unknown: None,
            grant,
        }
    }

    /// The cluster after every write of `plan` succeeded.
    fn applied(mut cluster: ClusterView, plan: &Plan) -> ClusterView {
        for write in &plan.writes {
            match write {
                Write::Create(b) | Write::Repair(b) | Write::Recreate(b) => {
                    cluster.owned.insert(b.reference(), b.clone());
                }
                Write::Delete(target) => {
                    cluster.owned.remove(target);
                }
            }
        }
        cluster
    }

    fn creates(plan: &Plan) -> Vec<String> {
        plan.writes
            .iter()
            .filter_map(|w| match w {
                Write::Create(b) => Some(b.reference().to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_empty_cluster_gets_every_declared_binding_and_then_nothing_more() {
        let object = ogb(spec());
        let first = plan(&object, &verified(Grant::Declared), &cluster());
        assert_eq!(first.writes.len(), 3, "{:?}", creates(&first));
        assert_eq!(creates(&first).len(), 3);
        assert_eq!(first.bound.len(), 3);
        assert!(first.missing_namespaces.is_empty() && first.missing_roles.is_empty());
        let created = applied(cluster(), &first);
        let Write::Create(binding) = &first.writes[0] else {
            panic!("a create")
        };
        let meta = binding.metadata();
        assert_eq!(meta.labels.as_ref().unwrap()[OWNER_UID_LABEL], "uid-1");
        assert_eq!(meta.labels.as_ref().unwrap()[MANAGED_BY_LABEL], MANAGER);
        assert_eq!(
            meta.owner_references.as_ref().unwrap()[0].controller,
            Some(true)
        );

        let second = plan(&object, &verified(Grant::Declared), &created);
        assert!(
            second.writes.is_empty(),
            "steady state writes nothing: {:?}",
            second.writes
        );
        assert_eq!(second.bound, first.bound);
    }

    #[test]
    fn drift_is_repaired_and_a_new_role_ref_is_recreated() {
        let object = ogb(spec());
        let mut cluster = applied(
            cluster(),
            &plan(&object, &verified(Grant::Declared), &cluster()),
        );
        let mut edited = cluster.owned.values().next().cloned().expect("a binding");
        let target = edited.reference();
        if let BindingObject::Cluster(b) = &mut edited {
            b.subjects = Some(vec![]);
            b.metadata
                .labels
                .as_mut()
                .unwrap()
                .insert("team".into(), "kept".into());
        }
        cluster.owned.insert(target.clone(), edited);
        let repair = plan(&object, &verified(Grant::Declared), &cluster);
        let [Write::Repair(repaired)] = repair.writes.as_slice() else {
            panic!("one repair: {:?}", repair.writes)
        };
        assert_eq!(repaired.subjects()[0].name, "oidc:k8s-restricted-users");
        assert_eq!(
            repaired.metadata().labels.as_ref().unwrap()["team"],
            "kept",
            "others' labels stay"
        );

        let mut moved = cluster.owned[&target].clone();
        if let BindingObject::Cluster(b) = &mut moved {
            b.role_ref = RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: "admin".into(),
            };
        }
        cluster.owned.insert(target, moved);
        let recreate = plan(&object, &verified(Grant::Declared), &cluster);
        assert!(
            matches!(recreate.writes.as_slice(), [Write::Recreate(b)] if b.role_ref().name == "view")
        );
    }

    #[test]
    fn owned_bindings_no_longer_declared_are_deleted_and_revoke_deletes_all() {
        let object = ogb(spec());
        let full = applied(
            cluster(),
            &plan(&object, &verified(Grant::Declared), &cluster()),
        );
        let mut fewer = spec();
        fewer.role_bindings.clear();
        let narrowed = plan(&ogb(fewer), &verified(Grant::Declared), &full);
        let deletes = narrowed
            .writes
            .iter()
            .filter(|w| matches!(w, Write::Delete(_)))
            .count();
        assert_eq!(deletes, 2, "{:?}", narrowed.writes);
        assert_eq!(narrowed.bound.len(), 1);

        let missing = Judgement {
            outcome: Outcome::Missing,
            subjects: vec![],
            members_unknown: None,
            grant: Grant::RevokeAll,
        };
        let revoked = plan(&object, &missing, &full);
        assert_eq!(revoked.writes.len(), 3);
        assert!(revoked.writes.iter().all(|w| matches!(w, Write::Delete(_))));
        assert!(revoked.bound.is_empty());
    }

    #[test]
    fn keeping_existing_creates_and_repairs_nothing() {
        let object = ogb(spec());
        let mut partial = applied(
            cluster(),
            &plan(&object, &verified(Grant::Declared), &cluster()),
        );
        let first = partial.owned.keys().next().cloned().expect("a binding");
        partial.owned.remove(&first);
        let outage = Judgement {
            outcome: Outcome::Unknown(crate::okta::OktaError::Timeout(
                std::time::Duration::from_secs(5),
            )),
            subjects: vec![],
            members_unknown: None,
            grant: Grant::KeepExisting,
        };
        let kept = plan(&object, &outage, &partial);
        assert!(kept.writes.is_empty(), "{:?}", kept.writes);
        assert_eq!(kept.bound.len(), 2);
    }

    #[test]
    fn missing_namespaces_and_roles_are_reported_and_pending_creations_not_repeated() {
        let object = ogb(spec());
        let mut bare = cluster();
        bare.namespaces
            .retain(|ns| ns.metadata.name.as_deref() != Some("default"));
        bare.roles = RolesPresent::default();
        let first = plan(&object, &verified(Grant::Declared), &bare);
        assert_eq!(first.missing_namespaces, ["default"]);
        assert_eq!(
            first.missing_roles,
            ["ClusterRole/view", "ClusterRole/edit"]
        );
        assert_eq!(first.bound.len(), 2);

        bare.pending = first.writes.iter().map(Write::target).collect();
        let again = plan(&object, &verified(Grant::Declared), &bare);
        assert!(
            again.writes.is_empty(),
            "created bindings the watch has not shown yet are not created again"
        );
        assert_eq!(again.bound, first.bound);
    }
}
