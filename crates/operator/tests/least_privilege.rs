//! The operator running as itself: a token of its own ServiceAccount and exactly the
//! RBAC shipped in config/. It is enough to do the job, and no more: no Secret can be
//! read, and no role outside its grantable list can be bound.

mod common;

use common::{apply_binding, condition, view_spec, wait_condition};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use kube::CustomResourceExt;
use kube::api::{Api, ObjectMeta, PostParams};
use okta_rbac_api::{ClusterRoleBindingSpec, OktaGroupBinding, RoleBindingSpec};
use okta_rbac_testenv::{ControlPlane, OperatorLaunch, unique_name};
use okta_sim::{GroupType, OktaSim, Seed, SimOptions};

const NAMESPACE: &str = "okta-rbac-operator";
const TOKEN: &str = "00least-privilege-token";

fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

#[tokio::test]
async fn the_shipped_rbac_is_enough_and_no_more() {
    let plane = ControlPlane::shared(|| vec![OktaGroupBinding::crd()]);
    let admin = plane.client().await.expect("admin");
    // The shipped manifests, and the samples' Role, which the grantable list names.
    for args in [
        ["apply", "-k", "config/default"],
        ["apply", "-f", "config/samples/k8s-restricted-users.yaml"],
    ] {
        let applied = plane.kubectl(&args, None).expect("kubectl");
        assert!(applied.success, "kubectl {args:?}: {}", applied.stderr);
    }

    let token = Api::<ServiceAccount>::namespaced(admin.clone(), NAMESPACE)
        .create_token_request(
            "okta-rbac-operator",
            &PostParams::default(),
            &TokenRequest {
                spec: Some(TokenRequestSpec {
                    expiration_seconds: Some(3600),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .expect("TokenRequest")
        .status
        .and_then(|s| s.token)
        .expect("token");
    let kubeconfig = plane.dir().join("operator-sa.kubeconfig");
    plane
        .write_token_kubeconfig(&token, &kubeconfig)
        .expect("kubeconfig");

    let sim = OktaSim::start(SimOptions::new(Seed::groups_only(TOKEN, [])))
        .await
        .expect("local Okta");
    let ca = plane.dir().join("least-privilege-okta-ca.pem");
    sim.write_ca(&ca).expect("CA");
    let running = OperatorLaunch::new(common::operator_binary(), &kubeconfig, sim.base_url())
        .okta_ca_file(&ca)
        .okta_token(TOKEN)
        .namespace(NAMESPACE)
        .args(["--resync-interval", "3s", "--leader-election"])
        .start(&plane.dir().join("least-privilege-operator.log"))
        .expect("operator");

    // Enough: grants within the grantable list are made, in a namespace and cluster-wide.
    let group = unique_name("k8s-least");
    sim.create_group(&group, GroupType::OktaGroup)
        .expect("group");
    let allowed = unique_name("allowed");
    let mut spec = view_spec(&group);
    spec.role_bindings = vec![RoleBindingSpec {
        namespace: Some("default".into()),
        namespace_selector: None,
        role: Some("restricted-user".into()),
        cluster_role: None,
    }];
    apply_binding(&admin, &allowed, spec).await;
    let ready = wait_condition(&admin, &allowed, "Ready", "True", None).await;
    assert_eq!(ready.status.as_ref().expect("status").binding_count, 2);

    // No more: a ClusterRole outside the grantable list cannot be bound by the operator.
    let secret_reader = unique_name("secret-reader");
    let role = ClusterRole {
        metadata: ObjectMeta {
            name: Some(secret_reader.clone()),
            ..Default::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["secrets".into()]),
            verbs: vec!["get".into(), "list".into()],
            ..Default::default()
        }]),
        ..Default::default()
    };
    Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &role)
        .await
        .expect("role");
    let refused = unique_name("refused");
    let mut spec = view_spec(&group);
    spec.cluster_role_bindings = vec![ClusterRoleBindingSpec {
        cluster_role: secret_reader.clone(),
    }];
    apply_binding(&admin, &refused, spec).await;
    let failed = wait_condition(
        &admin,
        &refused,
        "BindingsApplied",
        "False",
        Some("ApplyFailed"),
    )
    .await;
    let message = &condition(&failed, "BindingsApplied")
        .expect("applied")
        .message;
    assert!(
        message.contains("forbidden"),
        "RBAC refuses the grant: {message}"
    );
    let (_, metrics) = running.get("/metrics").await.expect("metrics");
    assert!(
        metrics.contains(r#"okta_rbac_binding_write_failures_total{kind="Forbidden"}"#),
        "the refused write is counted by kind: {metrics}"
    );

    // And as the operator's identity itself: no Secret anywhere, no direct grant.
    let operator = plane
        .client_with_token(&token)
        .await
        .expect("operator client");
    for namespace in [NAMESPACE, "kube-system", "default"] {
        let error = Api::<Secret>::namespaced(operator.clone(), namespace)
            .list(&Default::default())
            .await
            .expect_err("no Secret can be read");
        assert_eq!(status_code(&error), Some(403), "{namespace}: {error}");
    }
    let escalation = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(unique_name("escalate")),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: "cluster-admin".into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Group".into(),
            name: "k8s-anyone".into(),
            namespace: None,
        }]),
    };
    Api::<ClusterRoleBinding>::all(operator.clone())
        .create(&PostParams::default(), &escalation)
        .await
        .expect("cluster-admin is in the grantable list");
    let escalation = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(unique_name("escalate")),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: secret_reader,
        },
        ..escalation
    };
    let error = Api::<ClusterRoleBinding>::all(operator)
        .create(&PostParams::default(), &escalation)
        .await
        .expect_err("a role outside the grantable list");
    assert_eq!(status_code(&error), Some(403), "{error}");
    let log = running.log();
    assert!(
        !log.contains(TOKEN) && !log.contains(&token),
        "no credential in the operator's log"
    );
}
