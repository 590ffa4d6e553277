//! The operator on the real control plane against the local Okta over HTTPS: every
//! semantic of an OktaGroupBinding, as the cluster and the object's status show it.

mod common;

use common::{
    RESYNC, apply_binding, condition, eventually, harness, owned_bindings, wait_condition,
};
use k8s_openapi::api::core::v1::{Event, Namespace};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use okta_rbac_api::{
    ClusterRoleBindingSpec, OktaGroupBinding, OktaGroupBindingSpec, OnGroupMissing,
    RoleBindingSpec, SubjectKind, SubjectSpec, UserNameAttribute,
};
use okta_rbac_operator::reconcile::desired::{Scope, binding_name};
use okta_rbac_testenv::unique_name;
use okta_sim::{GroupType, UserStatus};
use std::collections::BTreeMap;
use std::time::Duration;

async fn client() -> Client {
    harness().plane.client().await.expect("client")
}

fn spec(group: &str) -> OktaGroupBindingSpec {
    OktaGroupBindingSpec {
        group: group.into(),
        subject: SubjectSpec::default(),
        cluster_role_bindings: vec![ClusterRoleBindingSpec {
            cluster_role: "view".into(),
        }],
        role_bindings: vec![],
        on_group_missing: OnGroupMissing::Revoke,
        paused: false,
        start_time: None,
        end_time: None,
    }
}

fn in_namespace(
    namespace: &str,
    role: Option<&str>,
    cluster_role: Option<&str>,
) -> RoleBindingSpec {
    RoleBindingSpec {
        namespace: Some(namespace.into()),
        namespace_selector: None,
        role: role.map(str::to_string),
        cluster_role: cluster_role.map(str::to_string),
    }
}

/// A new Okta group with a unique `k8s-` name; returns its name and id.
fn okta_group(prefix: &str) -> (String, String) {
    let name = unique_name(&format!("k8s-{prefix}"));
    let id = harness()
        .sim
        .create_group(&name, GroupType::OktaGroup)
        .expect("create group");
    (name, id)
}

async fn namespace(client: &Client, labels: &[(&str, &str)]) -> String {
    let name = unique_name("ns");
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    name
}

async fn read_role(client: &Client, namespace: &str, name: &str) -> Role {
    let role = Role {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["pods".into(), "services".into()]),
            verbs: vec!["get".into(), "watch".into(), "list".into()],
            ..Default::default()
        }]),
    };
    Api::<Role>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &role)
        .await
        .expect("role")
}

fn group_subject(name: &str) -> Vec<Subject> {
    vec![Subject {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "Group".into(),
        name: name.into(),
        namespace: None,
    }]
}

#[tokio::test]
async fn a_found_group_gets_its_bindings_and_the_object_is_ready() {
    let client = client().await;
    let (group, id) = okta_group("found");
    let ns = namespace(&client, &[]).await;
    read_role(&client, &ns, "restricted-user").await;
    let name = unique_name("found");
    let mut spec = spec(&group);
    spec.role_bindings = vec![in_namespace(&ns, Some("restricted-user"), None)];
    apply_binding(&client, &name, spec).await;

    let ogb = wait_condition(&client, &name, "Ready", "True", Some("Ready")).await;
    let status = ogb.status.clone().expect("status");
    assert_eq!(status.subject.as_deref(), Some(group.as_str()));
    assert_eq!(
        status.group.as_ref().map(|g| g.id.as_str()),
        Some(id.as_str()),
        "the group id is recorded"
    );
    assert_eq!(status.binding_count, 2);
    assert_eq!(status.observed_generation, ogb.metadata.generation);
    assert_eq!(
        condition(&ogb, "GroupVerified").expect("verified").reason,
        "Found"
    );

    let (crbs, rbs) = owned_bindings(&client, &ogb).await;
    assert_eq!(crbs.len(), 1);
    assert_eq!(crbs[0].role_ref.name, "view");
    assert_eq!(
        crbs[0].subjects.as_deref(),
        Some(group_subject(&group).as_slice())
    );
    let owner = &crbs[0].metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("OktaGroupBinding", name.as_str(), Some(true))
    );
    assert_eq!(rbs.len(), 1);
    assert_eq!(rbs[0].namespace().as_deref(), Some(ns.as_str()));
    assert_eq!(
        (rbs[0].role_ref.kind.as_str(), rbs[0].role_ref.name.as_str()),
        ("Role", "restricted-user")
    );
    let granted = event(&client, &name, "Granted").await;
    assert_eq!(granted.type_.as_deref(), Some("Normal"));
    assert!(
        granted
            .message
            .as_deref()
            .is_some_and(|m| m.contains("2 bindings created")),
        "{granted:?}"
    );
}

/// The first event with this reason about an object.
async fn event(client: &Client, object: &str, reason: &str) -> Event {
    let events = Api::<Event>::all(client.clone());
    eventually(
        Duration::from_secs(20),
        &format!("a {reason} event for {object}"),
        || {
            let events = events.clone();
            async move {
                let selector = format!("involvedObject.name={object}");
                let list = events
                    .list(&ListParams::default().fields(&selector))
                    .await
                    .ok()?;
                list.items
                    .into_iter()
                    .find(|e| e.reason.as_deref() == Some(reason))
            }
        },
    )
    .await
}

#[tokio::test]
async fn a_missing_group_is_revoked_by_default_and_kept_with_retain() {
    let client = client().await;
    let (revoked_group, revoked_id) = okta_group("revoke");
    let (retained_group, retained_id) = okta_group("retain");
    let revoke = unique_name("revoke");
    let retain = unique_name("retain");
    apply_binding(&client, &revoke, spec(&revoked_group)).await;
    let mut retain_spec = spec(&retained_group);
    retain_spec.on_group_missing = OnGroupMissing::Retain;
    apply_binding(&client, &retain, retain_spec).await;
    let revoked = wait_condition(&client, &revoke, "Ready", "True", None).await;
    let retained = wait_condition(&client, &retain, "Ready", "True", None).await;

    harness().sim.delete_group(&revoked_id).expect("delete");
    harness().sim.delete_group(&retained_id).expect("delete");

    let after = wait_condition(
        &client,
        &revoke,
        "GroupVerified",
        "False",
        Some("GroupMissing"),
    )
    .await;
    assert_eq!(
        condition(&after, "BindingsApplied")
            .expect("applied")
            .reason,
        "Revoked"
    );
    assert!(
        condition(&after, "GroupVerified")
            .expect("v")
            .message
            .contains("revoked")
    );
    let (crbs, _) = owned_bindings(&client, &revoked).await;
    assert!(
        crbs.is_empty(),
        "the bindings of a deleted group are revoked"
    );

    let after = wait_condition(
        &client,
        &retain,
        "GroupVerified",
        "False",
        Some("GroupMissing"),
    )
    .await;
    assert_eq!(
        condition(&after, "BindingsApplied")
            .expect("applied")
            .reason,
        "Retained"
    );
    let (crbs, _) = owned_bindings(&client, &retained).await;
    assert_eq!(crbs.len(), 1, "Retain keeps the binding");
}

#[tokio::test]
async fn a_group_renamed_in_okta_is_missing_under_its_old_name_until_renamed_back() {
    let client = client().await;
    let (group, id) = okta_group("renamed");
    let name = unique_name("renamed");
    apply_binding(&client, &name, spec(&group)).await;
    let ready = wait_condition(&client, &name, "Ready", "True", None).await;

    harness()
        .sim
        .rename_group(&id, &format!("{group}-new"))
        .expect("rename");
    wait_condition(
        &client,
        &name,
        "GroupVerified",
        "False",
        Some("GroupMissing"),
    )
    .await;
    let (crbs, _) = owned_bindings(&client, &ready).await;
    assert!(crbs.is_empty(), "the old name grants nothing any more");

    harness()
        .sim
        .rename_group(&id, &group)
        .expect("rename back");
    let back = wait_condition(&client, &name, "Ready", "True", None).await;
    assert_eq!(
        back.status.and_then(|s| s.group).map(|g| g.id),
        Some(id),
        "the same group, so it is trusted again"
    );
    let (crbs, _) = owned_bindings(&client, &ready).await;
    assert_eq!(crbs.len(), 1);
}

#[tokio::test]
async fn a_group_re_created_with_the_same_name_is_treated_as_missing_with_a_warning() {
    let client = client().await;
    let (group, id) = okta_group("replaced");
    let name = unique_name("replaced");
    apply_binding(&client, &name, spec(&group)).await;
    let ogb = wait_condition(&client, &name, "Ready", "True", None).await;
    harness().sim.delete_group(&id).expect("delete");
    let new_id = harness()
        .sim
        .create_group(&group, GroupType::OktaGroup)
        .expect("re-create");
    assert_ne!(id, new_id);

    let after = wait_condition(
        &client,
        &name,
        "GroupVerified",
        "False",
        Some("GroupReplaced"),
    )
    .await;
    let message = &condition(&after, "GroupVerified").expect("v").message;
    assert!(
        message.contains(&id) && message.contains(&new_id),
        "{message}"
    );
    let (crbs, _) = owned_bindings(&client, &ogb).await;
    assert!(crbs.is_empty(), "a replaced group loses its bindings");
    let warning = event(&client, &name, "GroupReplaced").await;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
}

fn view_binding_name(ogb_name: &str) -> String {
    let role_ref = RoleRef {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "ClusterRole".into(),
        name: "view".into(),
    };
    binding_name(ogb_name, &Scope::Cluster, &role_ref)
}

#[tokio::test]
async fn hand_edits_and_deletes_are_repaired_within_seconds() {
    let client = client().await;
    let (group, _) = okta_group("drift");
    let name = unique_name("drift");
    apply_binding(&client, &name, spec(&group)).await;
    wait_condition(&client, &name, "Ready", "True", None).await;
    let crbs = Api::<ClusterRoleBinding>::all(client.clone());
    let binding = view_binding_name(&name);

    let edit = serde_json::json!({"subjects": [{"kind": "Group", "name": "intruders", "apiGroup": "rbac.authorization.k8s.io"}]});
    crbs.patch(&binding, &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .expect("hand edit");
    eventually(Duration::from_secs(10), "the subjects are repaired", || {
        let crbs = crbs.clone();
        let (binding, group) = (binding.clone(), group.clone());
        async move {
            let crb = crbs.get(&binding).await.ok()?;
            (crb.subjects.as_deref() == Some(group_subject(&group).as_slice())).then_some(())
        }
    })
    .await;

    crbs.delete(&binding, &DeleteParams::default())
        .await
        .expect("hand delete");
    eventually(Duration::from_secs(10), "the binding is re-created", || {
        let crbs = crbs.clone();
        let binding = binding.clone();
        async move { crbs.get(&binding).await.ok().map(|_| ()) }
    })
    .await;
}

#[tokio::test]
async fn a_role_change_replaces_the_binding_and_undeclared_ones_are_deleted() {
    let client = client().await;
    let (group, _) = okta_group("change");
    let name = unique_name("change");
    let mut first = spec(&group);
    first.cluster_role_bindings.push(ClusterRoleBindingSpec {
        cluster_role: "edit".into(),
    });
    apply_binding(&client, &name, first).await;
    let ogb = wait_condition(&client, &name, "Ready", "True", None).await;
    assert_eq!(ogb.status.as_ref().expect("status").binding_count, 2);

    let api: Api<OktaGroupBinding> = Api::all(client.clone());
    let change = serde_json::json!({"spec": {"clusterRoleBindings": [{"clusterRole": "admin"}]}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&change))
        .await
        .expect("change roles");
    let roles = eventually(
        Duration::from_secs(20),
        "only the admin binding remains",
        || {
            let client = client.clone();
            let ogb = ogb.clone();
            async move {
                let (crbs, _) = owned_bindings(&client, &ogb).await;
                let roles: Vec<String> = crbs.iter().map(|b| b.role_ref.name.clone()).collect();
                (roles == ["admin"]).then_some(roles)
            }
        },
    )
    .await;
    assert_eq!(roles, ["admin"]);
}

#[tokio::test]
async fn deleting_the_object_removes_all_its_bindings() {
    let client = client().await;
    let (group, _) = okta_group("delete");
    let ns = namespace(&client, &[]).await;
    let name = unique_name("delete");
    let mut spec = spec(&group);
    spec.role_bindings = vec![in_namespace(&ns, None, Some("edit"))];
    apply_binding(&client, &name, spec).await;
    let ogb = wait_condition(&client, &name, "Ready", "True", None).await;
    Api::<OktaGroupBinding>::all(client.clone())
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete");
    eventually(
        Duration::from_secs(30),
        "the garbage collector removes every binding",
        || {
            let client = client.clone();
            let ogb = ogb.clone();
            async move {
                let (crbs, rbs) = owned_bindings(&client, &ogb).await;
                (crbs.is_empty() && rbs.is_empty()).then_some(())
            }
        },
    )
    .await;
}

#[tokio::test]
async fn namespaces_gain_and_lose_bindings_as_their_labels_match() {
    let client = client().await;
    let (group, _) = okta_group("selector");
    let team = unique_name("team");
    let name = unique_name("selector");
    let mut spec = spec(&group);
    spec.cluster_role_bindings = vec![];
    spec.role_bindings = vec![RoleBindingSpec {
        namespace: None,
        namespace_selector: Some(okta_rbac_api::NamespaceSelector {
            match_labels: Some(BTreeMap::from([("team".into(), team.clone())])),
            match_expressions: None,
        }),
        role: None,
        cluster_role: Some("edit".into()),
    }];
    let first = namespace(&client, &[("team", &team)]).await;
    apply_binding(&client, &name, spec).await;
    let ogb = wait_condition(&client, &name, "Ready", "True", None).await;
    let later = namespace(&client, &[("team", &team)]).await;
    let namespaces_with_binding = || {
        let client = client.clone();
        let ogb = ogb.clone();
        async move {
            let (_, rbs) = owned_bindings(&client, &ogb).await;
            let mut names: Vec<String> = rbs.iter().filter_map(|b| b.namespace()).collect();
            names.sort();
            names
        }
    };
    let mut both = vec![first.clone(), later.clone()];
    both.sort();
    eventually(
        Duration::from_secs(20),
        "a namespace created later gets its binding",
        || {
            let expected = both.clone();
            let current = namespaces_with_binding();
            async move { (current.await == expected).then_some(()) }
        },
    )
    .await;
    let unlabel = serde_json::json!({"metadata": {"labels": {"team": null}}});
    Api::<Namespace>::all(client.clone())
        .patch(&first, &PatchParams::default(), &Patch::Merge(&unlabel))
        .await
        .expect("unlabel");
    eventually(
        Duration::from_secs(20),
        "a namespace that stops matching loses it",
        || {
            let expected = vec![later.clone()];
            let current = namespaces_with_binding();
            async move { (current.await == expected).then_some(()) }
        },
    )
    .await;
}

/// Namespaces are selected by the label naming them, which the apiserver sets on every
/// namespace (and which the operator's cache answers from the name).
#[tokio::test]
async fn a_selector_on_the_namespace_name_label_binds_exactly_the_named_namespaces() {
    let client = client().await;
    let (group, _) = okta_group("by-name");
    let chosen = namespace(&client, &[]).await;
    let other = namespace(&client, &[]).await;
    let name = unique_name("by-name");
    let mut spec = spec(&group);
    spec.cluster_role_bindings = vec![];
    spec.role_bindings = vec![RoleBindingSpec {
        namespace: None,
        namespace_selector: Some(okta_rbac_api::NamespaceSelector {
            match_labels: None,
            match_expressions: Some(vec![okta_rbac_api::SelectorRequirement {
                key: "kubernetes.io/metadata.name".into(),
                operator: okta_rbac_api::SelectorOperator::In,
                values: Some(vec![chosen.clone(), "no-such-namespace".into()]),
            }]),
        }),
        role: None,
        cluster_role: Some("view".into()),
    }];
    apply_binding(&client, &name, spec).await;
    let ogb = wait_condition(&client, &name, "Ready", "True", None).await;
    let (_, rbs) = owned_bindings(&client, &ogb).await;
    let namespaces: Vec<String> = rbs.iter().filter_map(|b| b.namespace()).collect();
    assert_eq!(namespaces, vec![chosen], "not {other}");
}

#[tokio::test]
async fn a_missing_role_is_bound_anyway_and_reported_until_it_exists() {
    let client = client().await;
    let (group, _) = okta_group("norole");
    let role = unique_name("not-yet");
    let name = unique_name("norole");
    let mut spec = spec(&group);
    spec.cluster_role_bindings = vec![ClusterRoleBindingSpec {
        cluster_role: role.clone(),
    }];
    apply_binding(&client, &name, spec).await;
    let ogb = wait_condition(&client, &name, "Ready", "False", Some("RoleMissing")).await;
    assert!(
        condition(&ogb, "Ready")
            .expect("ready")
            .message
            .contains(&role)
    );
    let (crbs, _) = owned_bindings(&client, &ogb).await;
    assert_eq!(crbs.len(), 1, "the binding exists before its role");
    let cluster_role = ClusterRole {
        metadata: ObjectMeta {
            name: Some(role.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<ClusterRole>::all(client.clone())
        .create(&PostParams::default(), &cluster_role)
        .await
        .expect("role");
    wait_condition(&client, &name, "Ready", "True", Some("Ready")).await;
}

#[tokio::test]
async fn a_paused_object_says_so_and_its_bindings_are_left_alone_until_resumed() {
    let client = client().await;
    let api = Api::<OktaGroupBinding>::all(client.clone());
    let (group, _) = okta_group("paused");
    let name = unique_name("paused");
    apply_binding(&client, &name, spec(&group)).await;
    let ready = wait_condition(&client, &name, "Ready", "True", None).await;

    let pause = |paused: bool| {
        let api = api.clone();
        let name = name.clone();
        async move {
            api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": {"paused": paused}})),
            )
            .await
            .expect("patch");
        }
    };
    pause(true).await;
    let paused = wait_condition(&client, &name, "Paused", "True", Some("Paused")).await;
    let ready_now = condition(&paused, "Ready").expect("ready");
    assert_eq!(
        (ready_now.status.as_str(), ready_now.reason.as_str()),
        ("Unknown", "Paused"),
        "Ready no longer claims True"
    );
    assert_eq!(
        paused.status.as_ref().and_then(|s| s.observed_generation),
        paused.metadata.generation
    );

    // Left alone: a deleted binding is not repaired, and the status is written once.
    let (crbs, _) = owned_bindings(&client, &ready).await;
    Api::<ClusterRoleBinding>::all(client.clone())
        .delete(&crbs[0].name_any(), &Default::default())
        .await
        .expect("delete");
    let reconciled = common::reconciles().await;
    tokio::time::sleep(RESYNC * 2).await;
    assert!(
        common::reconciles().await >= reconciled + 2.0,
        "the controller was running meanwhile (a paused object is looked at each resync)"
    );
    let (crbs, _) = owned_bindings(&client, &ready).await;
    assert!(crbs.is_empty(), "nothing is repaired while paused");
    let still = api.get(&name).await.expect("get");
    assert_eq!(
        still.metadata.resource_version, paused.metadata.resource_version,
        "a paused object's status is written once"
    );

    pause(false).await;
    let resumed = wait_condition(&client, &name, "Ready", "True", None).await;
    assert!(
        condition(&resumed, "Paused").is_none(),
        "the Paused condition goes"
    );
    let (crbs, _) = owned_bindings(&client, &ready).await;
    assert_eq!(crbs.len(), 1, "resumed: the binding is back");
}

#[tokio::test]
async fn users_mode_binds_active_members_and_follows_membership() {
    let client = client().await;
    let sim = &harness().sim;
    let (group, id) = okta_group("users");
    let ann = format!("{}@example.com", unique_name("ann"));
    let ben = format!("{}@example.com", unique_name("ben"));
    let sus = format!("{}@example.com", unique_name("sus"));
    for (login, status) in [
        (&ann, UserStatus::Active),
        (&ben, UserStatus::Active),
        (&sus, UserStatus::Suspended),
    ] {
        sim.create_user(login, status, None).expect("user");
        sim.add_member(&id, login).expect("member");
    }
    let name = unique_name("users");
    let mut spec = spec(&group);
    spec.subject = SubjectSpec {
        kind: SubjectKind::Users,
        prefix: Some("okta:".into()),
        user_name: Some(UserNameAttribute::Login),
    };
    apply_binding(&client, &name, spec).await;
    let ogb = wait_condition(&client, &name, "Ready", "True", None).await;
    let group_status = ogb
        .status
        .as_ref()
        .and_then(|s| s.group.clone())
        .expect("group status");
    assert_eq!(group_status.bound_users, Some(2));
    let subjects_now = || {
        let client = client.clone();
        let ogb = ogb.clone();
        async move {
            let (crbs, _) = owned_bindings(&client, &ogb).await;
            let mut names: Vec<String> = crbs
                .first()
                .and_then(|b| b.subjects.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.name)
                .collect();
            names.sort();
            names
        }
    };
    let mut expected = vec![format!("okta:{ann}"), format!("okta:{ben}")];
    expected.sort();
    assert_eq!(subjects_now().await, expected, "active members only");
    sim.remove_member(&id, &ben).expect("remove");
    eventually(
        Duration::from_secs(20),
        "a removed member loses the binding at the next check",
        || {
            let expected = vec![format!("okta:{ann}")];
            let current = subjects_now();
            async move { (current.await == expected).then_some(()) }
        },
    )
    .await;
}

#[tokio::test]
async fn a_reconcile_that_changes_nothing_writes_nothing() {
    let client = client().await;
    let (group, _) = okta_group("quiet");
    let name = unique_name("quiet");
    apply_binding(&client, &name, spec(&group)).await;
    let ready = wait_condition(&client, &name, "Ready", "True", None).await;
    // Let a first resync settle anything still moving, then watch two more.
    tokio::time::sleep(RESYNC + Duration::from_secs(1)).await;
    let before = Api::<OktaGroupBinding>::all(client.clone())
        .get(&name)
        .await
        .expect("get");
    let (crbs_before, _) = owned_bindings(&client, &ready).await;
    let reconciled = common::reconciles().await;
    tokio::time::sleep(RESYNC * 2 + Duration::from_secs(1)).await;
    assert!(
        common::reconciles().await >= reconciled + 2.0,
        "the controller looked at it meanwhile (a resync each {RESYNC:?})"
    );
    let after = Api::<OktaGroupBinding>::all(client.clone())
        .get(&name)
        .await
        .expect("get");
    let (crbs_after, _) = owned_bindings(&client, &ready).await;
    assert_eq!(
        before.metadata.resource_version, after.metadata.resource_version,
        "status unchanged"
    );
    assert_eq!(
        crbs_before
            .iter()
            .map(|b| b.metadata.resource_version.clone())
            .collect::<Vec<_>>(),
        crbs_after
            .iter()
            .map(|b| b.metadata.resource_version.clone())
            .collect::<Vec<_>>(),
        "bindings unchanged"
    );
    // And it is alive: a change made now is applied.
    Api::<OktaGroupBinding>::all(client.clone())
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"spec": {"clusterRoleBindings": [{"clusterRole": "edit"}]}}),
            ),
        )
        .await
        .expect("change");
    eventually(Duration::from_secs(20), "the change is applied", || {
        let client = client.clone();
        let ready = ready.clone();
        async move {
            let (crbs, _) = owned_bindings(&client, &ready).await;
            crbs.iter().any(|b| b.role_ref.name == "edit").then_some(())
        }
    })
    .await;
}
