use super::*;
use crate::reconcile::fixtures::{group, labels, ogb, policy, spec};
use crate::reconcile::judge::Outcome;
use crate::reconcile::observe::RolesPresent;
use crate::reconcile::subjects::group_subject;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::RoleRef;
use kube::core::{PartialObjectMeta, PartialObjectMetaExt};
use std::sync::Arc;

fn namespace(name: &str, pairs: &[(&str, &str)]) -> Arc<PartialObjectMeta<Namespace>> {
    Arc::new(
        ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels(pairs)),
            ..Default::default()
        }
        .into_response_partial(),
    )
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
        claim: None,
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
        claim: None,
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
        claim: None,
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
