use super::*;
use crate::cache::NamespaceInfo;
use crate::reconcile::fixtures::{group, labels, ogb, policy, spec};
use crate::reconcile::judge::Outcome;
use crate::reconcile::observe::RolesPresent;
use crate::reconcile::subjects::group_subject;
use k8s_openapi::api::rbac::v1::RoleRef;
use std::sync::Arc;

fn namespace(name: &str, pairs: &[(&str, &str)]) -> NamespaceInfo {
    NamespaceInfo {
        name: Arc::from(name),
        labels: Arc::new(labels(pairs)),
    }
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
            Write::Create(b) | Write::Repair(b) | Write::Recreate(b, _) => {
                cluster.owned.insert(b.reference(), b.clone());
            }
            Write::Delete(target, _) => {
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
        matches!(recreate.writes.as_slice(), [Write::Recreate(b, _)] if b.role_ref().name == "view")
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
        .filter(|w| matches!(w, Write::Delete(..)))
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
    assert!(
        revoked
            .writes
            .iter()
            .all(|w| matches!(w, Write::Delete(..)))
    );
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
    bare.namespaces.retain(|ns| &*ns.name != "default");
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

/// A binding marked for deletion but kept by a finalizer still grants: it is not deleted
/// again, not counted as bound, not created over, and named in the plan.
#[test]
fn a_binding_kept_by_a_finalizer_is_neither_bound_nor_written_to_and_is_named() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    let object = ogb(spec());
    let mut cluster = applied(
        cluster(),
        &plan(&object, &verified(Grant::Declared), &cluster()),
    );
    for binding in cluster.owned.values_mut() {
        let meta = match binding {
            BindingObject::Cluster(b) => &mut b.metadata,
            BindingObject::Namespaced(b) => &mut b.metadata,
        };
        meta.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        meta.finalizers = Some(vec!["example.com/audit".into()]);
        meta.uid = Some("uid-of-binding".into());
    }
    let still = plan(&object, &verified(Grant::Declared), &cluster);
    assert!(still.writes.is_empty(), "{:?}", still.writes);
    assert!(
        still.bound.is_empty(),
        "nothing counts as bound while it is going"
    );
    assert_eq!(still.terminating.len(), 3);
    assert!(
        still.terminating[0]
            .describe()
            .contains("kept by finalizers [example.com/audit]"),
        "{}",
        still.terminating[0].describe()
    );
    let revoked = plan(
        &object,
        &Judgement {
            grant: Grant::RevokeAll,
            ..verified(Grant::RevokeAll)
        },
        &cluster,
    );
    assert!(
        revoked.writes.is_empty(),
        "deleting it again changes nothing"
    );
    assert_eq!(revoked.terminating.len(), 3);
}

#[test]
fn deletes_name_the_uid_they_observed() {
    let object = ogb(spec());
    let mut full = applied(
        cluster(),
        &plan(&object, &verified(Grant::Declared), &cluster()),
    );
    for binding in full.owned.values_mut() {
        match binding {
            BindingObject::Cluster(b) => b.metadata.uid = Some("observed".into()),
            BindingObject::Namespaced(b) => b.metadata.uid = Some("observed".into()),
        }
    }
    let revoked = plan(&object, &verified(Grant::RevokeAll), &full);
    assert!(
        revoked
            .writes
            .iter()
            .all(|w| matches!(w, Write::Delete(_, Some(uid)) if uid == "observed")),
        "{:?}",
        revoked.writes
    );
}
