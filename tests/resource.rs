//! The OktaGroupBinding resource as `kubectl apply` meets it: what admission accepts and
//! what it refuses, with which message.

use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::{CustomResourceExt, Resource};
use okta_rbac_operator::controlplane::{ControlPlane, unique_name};
use okta_rbac_operator::crd::OktaGroupBinding;
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

fn view() -> Value {
    json!([{"clusterRole": "view"}])
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

#[tokio::test]
async fn invalid_objects_are_refused_with_a_message_a_person_understands() {
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "no bindings",
            json!({"group": "k8s-a"}),
            "declare at least one entry in clusterRoleBindings or roleBindings",
        ),
        (
            "empty lists",
            json!({"group": "k8s-a", "clusterRoleBindings": [], "roleBindings": []}),
            "declare at least one entry",
        ),
        (
            "role and clusterRole",
            json!({"group": "k8s-a", "roleBindings": [{"namespace": "default", "role": "r", "clusterRole": "view"}]}),
            "set exactly one of role and clusterRole",
        ),
        (
            "neither role nor clusterRole",
            json!({"group": "k8s-a", "roleBindings": [{"namespace": "default"}]}),
            "set exactly one of role and clusterRole",
        ),
        (
            "namespace and selector",
            json!({"group": "k8s-a", "roleBindings": [{"namespace": "default", "namespaceSelector": {}, "clusterRole": "view"}]}),
            "set exactly one of namespace and namespaceSelector",
        ),
        (
            "neither namespace nor selector",
            json!({"group": "k8s-a", "roleBindings": [{"clusterRole": "view"}]}),
            "set exactly one of namespace and namespaceSelector",
        ),
        (
            "role with a selector",
            json!({"group": "k8s-a", "roleBindings": [{"namespaceSelector": {"matchLabels": {"a": "b"}}, "role": "r"}]}),
            "use namespace, not namespaceSelector, with role",
        ),
        (
            "no group",
            json!({"clusterRoleBindings": view()}),
            "spec.group: Required value",
        ),
        (
            "empty group",
            json!({"group": "", "clusterRoleBindings": view()}),
            "spec.group",
        ),
        (
            "group with surrounding space",
            json!({"group": " k8s-a", "clusterRoleBindings": view()}),
            "spec.group in body should match",
        ),
        (
            "group with a control character",
            json!({"group": "k8s-\u{7}bell", "clusterRoleBindings": view()}),
            "spec.group in body should match",
        ),
        (
            "unknown subject kind",
            json!({"group": "k8s-a", "subject": {"kind": "Robots"}, "clusterRoleBindings": view()}),
            "Unsupported value: \"Robots\"",
        ),
        (
            "unknown onGroupMissing",
            json!({"group": "k8s-a", "onGroupMissing": "Delete", "clusterRoleBindings": view()}),
            "Unsupported value: \"Delete\"",
        ),
        (
            "unknown userName",
            json!({"group": "k8s-a", "subject": {"kind": "Users", "userName": "phone"}, "clusterRoleBindings": view()}),
            "Unsupported value: \"phone\"",
        ),
        (
            "role name with a slash",
            json!({"group": "k8s-a", "clusterRoleBindings": [{"clusterRole": "a/b"}]}),
            "clusterRole in body should match",
        ),
        (
            "namespace that is not a DNS label",
            json!({"group": "k8s-a", "roleBindings": [{"namespace": "Not_A_Namespace", "clusterRole": "view"}]}),
            "namespace in body should match",
        ),
        (
            "a thousand role bindings",
            json!({"group": "k8s-a", "roleBindings": vec![json!({"namespace": "default", "clusterRole": "view"}); 1000]}),
            "must have at most 256 items",
        ),
    ];
    for (what, spec, expected) in cases {
        let error = create(spec)
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: should be refused"));
        let kube::Error::Api(status) = &error else {
            panic!("{what}: expected an API error, got {error}");
        };
        assert_eq!(status.code, 422, "{what}: {}", status.message);
        assert!(
            status.message.contains(expected),
            "{what}: {:?} should mention {expected:?}",
            status.message
        );
    }
}
