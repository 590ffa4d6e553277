//! A change is reported done only when the cluster holds exactly what is declared: a
//! binding another tool's finalizer keeps, a delete an admission policy refuses, and a
//! same-name repair whose delete fails are each reported as what they are, and cleared as
//! soon as they are resolved, by the watch and not the resync.

mod common;

use common::world::World;
use common::{condition, eventually, wait_condition};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use okta_rbac_api::{ClusterRoleBindingSpec, OktaGroupBindingSpec};
use std::time::{Duration, Instant};

static ONE_WORLD_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// Longer than any test: whatever clears a condition here is an event, not the resync.
const RESYNC: &str = "--resync-interval=30m";
const POLICY: &str = "refuse-deleting-protected-bindings";

fn granting(group: &str, roles: &[&str]) -> OktaGroupBindingSpec {
    OktaGroupBindingSpec {
        group: group.into(),
        subject: Default::default(),
        cluster_role_bindings: roles
            .iter()
            .map(|r| ClusterRoleBindingSpec {
                cluster_role: r.to_string(),
            })
            .collect(),
        role_bindings: vec![],
        on_group_missing: Default::default(),
        paused: false,
        start_time: None,
        end_time: None,
    }
}

/// The object's ClusterRoleBinding of `role`, as the apiserver has it.
async fn binding_of(world: &World, object: &str, role: &str) -> Option<ClusterRoleBinding> {
    Api::<ClusterRoleBinding>::all(world.client.clone())
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=okta-rbac-operator"))
        .await
        .expect("list")
        .items
        .into_iter()
        .find(|b| {
            b.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("oktarbac.io/owner"))
                .is_some_and(|o| o == object)
                && b.role_ref.name == role
        })
}

fn metadata_patch(value: serde_json::Value) -> Patch<serde_json::Value> {
    Patch::Merge(serde_json::json!({ "metadata": value }))
}

/// A ValidatingAdmissionPolicy that refuses to delete bindings named `okta-protected-*`.
async fn protect(world: &World) {
    let policy: ValidatingAdmissionPolicy = serde_json::from_value(serde_json::json!({
        "metadata": {"name": POLICY},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["rbac.authorization.k8s.io"], "apiVersions": ["*"],
                "operations": ["DELETE"], "resources": ["clusterrolebindings", "rolebindings"],
            }]},
            "validations": [{
                "expression": "!oldObject.metadata.name.startsWith('okta-protected-')",
                "message": "protected bindings may not be deleted",
            }],
        },
    }))
    .expect("policy");
    let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": POLICY},
        "spec": {"policyName": POLICY, "validationActions": ["Deny"]},
    }))
    .expect("binding");
    Api::<ValidatingAdmissionPolicy>::all(world.client.clone())
        .create(&PostParams::default(), &policy)
        .await
        .expect("create the policy");
    Api::<ValidatingAdmissionPolicyBinding>::all(world.client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .expect("bind the policy");
}

async fn unprotect(world: &World) {
    let _ = Api::<ValidatingAdmissionPolicyBinding>::all(world.client.clone())
        .delete(POLICY, &DeleteParams::default())
        .await;
    let _ = Api::<ValidatingAdmissionPolicy>::all(world.client.clone())
        .delete(POLICY, &DeleteParams::default())
        .await;
}

#[tokio::test]
async fn a_binding_a_finalizer_keeps_is_reported_until_it_is_gone() {
    let _one = ONE_WORLD_AT_A_TIME.lock().await;
    let world = World::start().await;
    let operator = world.operator(&[RESYNC]).await;
    let group = world.group("k8s-narrowed");
    let name = "narrowed";
    world
        .create(name, granting(&group, &["cluster-admin"]))
        .await;
    wait_condition(&world.client, name, "Ready", "True", Some("Ready")).await;
    let broad = binding_of(&world, name, "cluster-admin")
        .await
        .expect("the cluster-admin binding");
    let broad_name = broad.metadata.name.clone().expect("name");
    // An audit tool holds it.
    Api::<ClusterRoleBinding>::all(world.client.clone())
        .patch(
            &broad_name,
            &PatchParams::default(),
            &metadata_patch(serde_json::json!({"finalizers": ["audit.example.com/hold"]})),
        )
        .await
        .expect("add a finalizer");

    world
        .objects()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"spec": {"clusterRoleBindings": [{"clusterRole": "view"}]}}),
            ),
        )
        .await
        .expect("narrow to view");
    let held = wait_condition(
        &world.client,
        name,
        "Ready",
        "False",
        Some("BindingTerminating"),
    )
    .await;
    let message = &condition(&held, "BindingsApplied")
        .expect("applied")
        .message;
    assert!(
        message.contains(&broad_name)
            && message.contains("ClusterRole/cluster-admin")
            && message.contains("audit.example.com/hold"),
        "the status names the binding, what it grants and who holds it: {message}"
    );
    assert!(
        binding_of(&world, name, "cluster-admin").await.is_some(),
        "and it is really still there"
    );
    let (_, metrics) = operator.get("/metrics").await.expect("metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l == "okta_rbac_bindings_terminating 1"),
        "{metrics}"
    );

    let released = Instant::now();
    Api::<ClusterRoleBinding>::all(world.client.clone())
        .patch(
            &broad_name,
            &PatchParams::default(),
            &metadata_patch(serde_json::json!({"finalizers": null})),
        )
        .await
        .expect("remove the finalizer");
    wait_condition(&world.client, name, "Ready", "True", Some("Ready")).await;
    let cleared = released.elapsed();
    println!(
        "finalizer removed: Ready again {:.1} s later",
        cleared.as_secs_f64()
    );
    assert!(
        cleared < Duration::from_secs(10),
        "the watch clears it, not the 30 min resync: {cleared:?}"
    );
    let (_, metrics) = operator.get("/metrics").await.expect("metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l == "okta_rbac_bindings_terminating 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_refused_delete_and_a_failed_same_name_repair_are_not_reported_done() {
    let _one = ONE_WORLD_AT_A_TIME.lock().await;
    let world = World::start().await;
    let _operator = world.operator(&[RESYNC]).await;
    let group = world.group("k8s-protected");

    // A delete an admission policy refuses: the narrowed grant is not called done.
    let narrowed = "protected-narrowed";
    world
        .create(narrowed, granting(&group, &["view", "edit"]))
        .await;
    wait_condition(&world.client, narrowed, "Ready", "True", Some("Ready")).await;
    protect(&world).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    world
        .objects()
        .patch(
            narrowed,
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"spec": {"clusterRoleBindings": [{"clusterRole": "view"}]}}),
            ),
        )
        .await
        .expect("narrow");
    let refused = wait_condition(
        &world.client,
        narrowed,
        "BindingsApplied",
        "False",
        Some("ApplyFailed"),
    )
    .await;
    let message = &condition(&refused, "BindingsApplied")
        .expect("applied")
        .message;
    assert!(
        message.contains("protected bindings may not be deleted"),
        "{message}"
    );
    assert_eq!(condition(&refused, "Ready").expect("ready").status, "False");
    assert!(binding_of(&world, narrowed, "edit").await.is_some());

    // A binding of the object's own name with another roleRef (a hand-made one, adopted
    // as the object's), whose delete is refused: not "repaired".
    let same_name = "protected-same-name";
    world.create(same_name, granting(&group, &["view"])).await;
    let ready = wait_condition(&world.client, same_name, "Ready", "True", Some("Ready")).await;
    let view = binding_of(&world, same_name, "view")
        .await
        .expect("view binding");
    let view_name = view.metadata.name.clone().expect("name");
    world
        .objects()
        .patch(
            same_name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"paused": true}})),
        )
        .await
        .expect("pause");
    wait_condition(&world.client, same_name, "Paused", "True", None).await;
    unprotect(&world).await;
    let crbs = Api::<ClusterRoleBinding>::all(world.client.clone());
    eventually(
        Duration::from_secs(20),
        "the view binding is deleted",
        || async {
            crbs.delete(&view_name, &DeleteParams::default())
                .await
                .ok()
                .map(|_| ())
        },
    )
    .await;
    let mut impostor = view.clone();
    impostor.metadata = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        name: Some(view_name.clone()),
        labels: view.metadata.labels.clone(),
        annotations: view.metadata.annotations.clone(),
        owner_references: view.metadata.owner_references.clone(),
        ..Default::default()
    };
    impostor.role_ref = RoleRef {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "ClusterRole".into(),
        name: "cluster-admin".into(),
    };
    crbs.create(&PostParams::default(), &impostor)
        .await
        .expect("the same name, cluster-admin");
    protect(&world).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    world
        .objects()
        .patch(
            same_name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"paused": false}})),
        )
        .await
        .expect("resume");
    let failed = wait_condition(
        &world.client,
        same_name,
        "BindingsApplied",
        "False",
        Some("ApplyFailed"),
    )
    .await;
    let message = &condition(&failed, "BindingsApplied")
        .expect("applied")
        .message;
    assert!(
        message.contains("replacing") && message.contains("protected bindings may not be deleted"),
        "{message}"
    );
    assert_eq!(
        crbs.get(&view_name)
            .await
            .expect("still there")
            .role_ref
            .name,
        "cluster-admin",
        "the status tells the truth: the broad binding is still there"
    );
    assert_ne!(failed.metadata.generation, None);
    let _ = ready;

    // Both resolve once the policy is gone.
    unprotect(&world).await;
    wait_condition(&world.client, narrowed, "Ready", "True", Some("Ready")).await;
    wait_condition(&world.client, same_name, "Ready", "True", Some("Ready")).await;
    assert!(binding_of(&world, narrowed, "edit").await.is_none());
    assert_eq!(
        crbs.get(&view_name)
            .await
            .expect("re-created")
            .role_ref
            .name,
        "view"
    );
}
