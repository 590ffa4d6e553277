//! The OktaGroupBinding resource as `kubectl apply` meets it: a valid object is admitted
//! with its defaults. What admission refuses, and with which message, is in bad_input.rs.

use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::{CustomResourceExt, Resource};
use okta_rbac_api::OktaGroupBinding;
use okta_rbac_testenv::{ControlPlane, unique_name};
use serde_json::{Value, json};

fn plane() -> &'static ControlPlane {
    ControlPlane::shared(|| vec![OktaGroupBinding::crd()])
}

async fn create(spec: Value) -> Result<DynamicObject, kube::Error> {
    let client = plane().client().await.expect("client");
    let resource = ApiResource::erase::<OktaGroupBinding>(&());
    let api = Api::<DynamicObject>::all_with(client, &resource);
    let object = DynamicObject::new(&unique_name("ogb"), &resource).data(json!({ "spec": spec }));
    api.create(&PostParams::default(), &object).await
}

#[tokio::test]
async fn a_valid_object_is_admitted_with_defaults() {
    let created = create(
        json!({"group": "k8s-admins", "clusterRoleBindings": [{"clusterRole": "cluster-admin"}]}),
    )
    .await
    .expect("admitted");
    let spec = &created.data["spec"];
    assert_eq!(spec["onGroupMissing"], "Revoke");
    assert_eq!(spec["paused"], false);
    assert_eq!(spec["roleBindings"], json!([]));
    assert_eq!(OktaGroupBinding::api_version(&()), "oktarbac.io/v1alpha1");
}

/// Conditions are a list-map keyed by `type`: two field managers each server-side apply
/// their own condition and both stay (an atomic list would keep only the last).
#[tokio::test]
async fn server_side_apply_merges_conditions_by_type() {
    let created =
        create(json!({"group": "k8s-admins", "clusterRoleBindings": [{"clusterRole": "view"}]}))
            .await
            .expect("admitted");
    let client = plane().client().await.expect("client");
    let resource = ApiResource::erase::<OktaGroupBinding>(&());
    let api = Api::<DynamicObject>::all_with(client, &resource);
    let name = created.metadata.name.clone().expect("name");
    for (manager, type_) in [("operator", "Ready"), ("a-tool", "Audited")] {
        let status = json!({
            "apiVersion": "oktarbac.io/v1alpha1",
            "kind": "OktaGroupBinding",
            "status": {"conditions": [{
                "type": type_,
                "status": "True",
                "reason": "Checked",
                "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }]},
        });
        api.patch_status(
            &name,
            &kube::api::PatchParams::apply(manager).force(),
            &kube::api::Patch::Apply(status),
        )
        .await
        .expect("apply status");
    }
    let merged = api.get_status(&name).await.expect("get");
    let types: Vec<&str> = merged.data["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(types, ["Ready", "Audited"]);
}
