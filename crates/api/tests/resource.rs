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
