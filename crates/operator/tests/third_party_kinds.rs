//! What the chart and the kustomize manifests render of other projects' kinds
//! (cert-manager's Certificate, Gateway API's HTTPRoute and BackendTLSPolicy, the
//! Prometheus Operator's ServiceMonitor and PrometheusRule) is accepted by those projects'
//! own CRDs, taken from their Go modules: every rendering is applied to the test control
//! plane with a server-side dry run and strict field validation, so a misspelt or
//! misplaced field, or a value a schema or a CEL rule refuses, fails here rather than in
//! a user's cluster.

use k8s_openapi::api::core::v1::Namespace;
use kube::CustomResourceExt;
use kube::api::{Api, ObjectMeta, PostParams};
use okta_rbac_api::OktaGroupBinding;
use okta_rbac_testenv::ControlPlane;
use okta_rbac_testenv::gotools::{helm, third_party_crds};
use serde::Deserialize;
use serde_json::Value;

const CHART: &str = "charts/okta-rbac-operator";
const RELEASE_NAMESPACE: &str = "iam";

/// The kinds of other projects the shipped manifests can render, each with its CRD here.
const THIRD_PARTY_KINDS: [&str; 5] = [
    "Certificate",
    "HTTPRoute",
    "BackendTLSPolicy",
    "ServiceMonitor",
    "PrometheusRule",
];

fn plane() -> &'static ControlPlane {
    ControlPlane::shared(|| {
        let mut crds = third_party_crds().expect("the third-party CRDs");
        crds.push(OktaGroupBinding::crd());
        crds
    })
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).expect("YAML document"))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn kinds(docs: &[Value]) -> Vec<&str> {
    docs.iter().filter_map(|d| d["kind"].as_str()).collect()
}

async fn namespace(name: &str) {
    let client = plane().client().await.expect("client");
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    // A server-side dry run persists nothing, so the namespace must exist for real.
    let _ = Api::<Namespace>::all(client)
        .create(&PostParams::default(), &namespace)
        .await;
}

/// Applies `yaml` with a server-side dry run and strict field validation: `Ok` with
/// kubectl's output, or `Err` with what the apiserver refused.
fn dry_run(yaml: &str, namespace: &str) -> Result<String, String> {
    let output = plane()
        .kubectl(
            &[
                "apply",
                "--server-side",
                "--dry-run=server",
                "--validate=strict",
                "--field-manager=third-party-kinds-test",
                "--namespace",
                namespace,
                "-f",
                "-",
            ],
            Some(yaml),
        )
        .expect("kubectl");
    if output.success {
        Ok(output.stdout)
    } else {
        Err(output.stderr)
    }
}

/// Asserts that the apiserver accepts every one of the `count` objects of `yaml` in
/// `namespace` (created for real: a dry run persists nothing).
async fn all_accepted(yaml: &str, count: usize, namespace_name: &str, what: &str) {
    namespace(namespace_name).await;
    let applied = dry_run(yaml, namespace_name)
        .unwrap_or_else(|refused| panic!("the apiserver refused {what}: {refused}"));
    assert_eq!(
        applied.matches("(server dry run)").count(),
        count,
        "every object of {what} accepted: {applied}"
    );
}

/// The chart with every option that renders another project's kind turned on.
fn chart_with_everything() -> String {
    let values = [
        "metrics.serviceMonitor.enabled=true",
        "metrics.serviceMonitor.labels.release=prometheus",
        "metrics.prometheusRule.enabled=true",
        "metrics.grafanaDashboard.enabled=true",
        "podDisruptionBudget.enabled=true",
        "eventHook.enabled=true",
        "eventHook.certManager.enabled=true",
        "eventHook.certManager.issuerRef.name=cluster-ca",
        "eventHook.certManager.issuerRef.kind=ClusterIssuer",
        "eventHook.ingress.enabled=true",
        "eventHook.ingress.className=nginx",
        "eventHook.ingress.host=okta-hook.example.com",
        "eventHook.ingress.tlsSecretName=okta-hook-public-tls",
        "eventHook.httpRoute.enabled=true",
        "eventHook.httpRoute.hostname=okta-hook.example.com",
        "eventHook.httpRoute.parentRefs[0].name=public",
        "eventHook.httpRoute.parentRefs[0].namespace=gateways",
        "eventHook.httpRoute.backendTLS.enabled=true",
        "eventHook.httpRoute.backendTLS.caConfigMap=hook-ca",
        "revocationAuthorizer.enabled=true",
        "revocationAuthorizer.clientCAConfigMap=apiserver-client-ca",
        "revocationAuthorizer.certManager.enabled=true",
        "revocationAuthorizer.certManager.issuerRef.name=cluster-ca",
        "revocationAuthorizer.certManager.issuerRef.kind=ClusterIssuer",
    ];
    let mut args = vec!["template", "rbac", CHART, "--namespace", RELEASE_NAMESPACE];
    for value in &values {
        args.extend(["--set", value]);
    }
    match helm(&args).expect("helm runs") {
        Ok(rendered) => rendered,
        Err(stderr) => panic!("helm template failed: {stderr}"),
    }
}

#[tokio::test]
async fn the_chart_with_every_option_on_is_accepted_by_each_kind_s_own_crd() {
    let rendered = chart_with_everything();
    let docs = documents(&rendered);
    let rendered_kinds = kinds(&docs);
    for kind in THIRD_PARTY_KINDS {
        assert!(
            rendered_kinds.contains(&kind),
            "the chart renders a {kind}: {rendered_kinds:?}"
        );
    }
    assert_eq!(
        rendered_kinds
            .iter()
            .filter(|k| **k == "Certificate")
            .count(),
        2,
        "the receiver's and the authorizer's serving certificates"
    );
    all_accepted(&rendered, docs.len(), RELEASE_NAMESPACE, "the chart").await;
}

#[tokio::test]
async fn config_prometheus_is_accepted_by_the_prometheus_operator_s_crd() {
    let output = plane()
        .kubectl(&["kustomize", "config/prometheus"], None)
        .expect("kubectl");
    assert!(output.success, "kubectl kustomize: {}", output.stderr);
    let docs = documents(&output.stdout);
    assert!(
        kinds(&docs).contains(&"PrometheusRule"),
        "{:?}",
        kinds(&docs)
    );
    all_accepted(
        &output.stdout,
        docs.len(),
        "okta-rbac-operator",
        "config/prometheus",
    )
    .await;
}

/// The check has teeth: each kind's CRD refuses a field its schema does not have, and a
/// value its schema or CEL rules do not allow, with a message that names it.
#[tokio::test]
async fn each_crd_refuses_an_unknown_field_and_a_bad_value_by_name() {
    let docs = documents(&chart_with_everything());
    namespace(RELEASE_NAMESPACE).await;
    let of_kind = |kind: &str| -> Value {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("a {kind}"))
    };
    for kind in THIRD_PARTY_KINDS {
        let mut misspelt = of_kind(kind);
        misspelt["spec"]["specTypo"] = Value::from(true);
        let refused = dry_run(&misspelt.to_string(), RELEASE_NAMESPACE)
            .expect_err(&format!("a {kind} with an unknown field is refused"));
        assert!(
            refused.contains("specTypo") && refused.contains("field not declared in schema"),
            "{kind}: {refused}"
        );
    }
    for (kind, change, says) in [
        (
            "Certificate",
            serde_json::json!({"privateKey": {"algorithm": "DSA"}}),
            "spec.privateKey.algorithm",
        ),
        (
            "HTTPRoute",
            serde_json::json!({"hostnames": ["Not A Hostname"]}),
            "spec.hostnames[0]",
        ),
        (
            "BackendTLSPolicy",
            serde_json::json!({"validation": {"hostname": "*.wildcard.example.com"}}),
            "spec.validation.hostname",
        ),
        (
            "ServiceMonitor",
            serde_json::json!({"endpoints": [{"port": "metrics", "scheme": "gopher"}]}),
            "spec.endpoints[0].scheme",
        ),
        (
            "PrometheusRule",
            serde_json::json!({"groups": [{"name": "x", "rules": [{"alert": "A"}]}]}),
            "expr",
        ),
    ] {
        let mut bad = of_kind(kind);
        merge(&mut bad["spec"], &change);
        let refused = dry_run(&bad.to_string(), RELEASE_NAMESPACE)
            .expect_err(&format!("a {kind} with {change} is refused"));
        assert!(refused.contains(says), "{kind} {change}: {refused}");
    }
}

/// `change`'s fields over `target`'s, objects merged, everything else replaced.
fn merge(target: &mut Value, change: &Value) {
    match (target.as_object_mut(), change.as_object()) {
        (Some(target), Some(change)) => {
            for (key, value) in change {
                merge(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        _ => *target = change.clone(),
    }
}
