//! The shipped manifests as kubectl, Argo CD and Flux meet them: `config/default`
//! renders with kustomize and the apiserver accepts it (server-side dry run), as it
//! accepts the samples.

use k8s_openapi::api::core::v1::Namespace;
use kube::CustomResourceExt;
use kube::api::{Api, PostParams};
use okta_rbac_api::OktaGroupBinding;
use okta_rbac_testenv::ControlPlane;
use serde::Deserialize;
use serde_json::Value;

fn plane() -> &'static ControlPlane {
    ControlPlane::shared(|| vec![OktaGroupBinding::crd()])
}

fn kubectl(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let output = plane().kubectl(args, stdin).expect("kubectl");
    (output.success, output.stdout, output.stderr)
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).expect("YAML document"))
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} is not in config/default"))
}

#[tokio::test]
async fn config_default_renders_and_the_apiserver_accepts_it() {
    let (ok, rendered, stderr) = kubectl(&["kustomize", "config/default"], None);
    assert!(ok, "kubectl kustomize config/default: {stderr}");
    let docs = documents(&rendered);

    let crd = find(
        &docs,
        "CustomResourceDefinition",
        "oktagroupbindings.oktarbac.io",
    );
    let committed: Value = serde_yaml_ng::from_str(include_str!(
        "../../../crds/oktagroupbindings.oktarbac.io.yaml"
    ))
    .expect("CRD");
    assert_eq!(crd, &committed, "the CRD is the one in crds/");
    for (kind, name) in [
        ("Namespace", "okta-rbac-operator"),
        ("ServiceAccount", "okta-rbac-operator"),
        ("ClusterRole", "okta-rbac-operator"),
        ("ClusterRole", "okta-rbac-operator-grantable"),
        ("ClusterRoleBinding", "okta-rbac-operator"),
        ("Role", "okta-rbac-operator-leader-election"),
        ("Service", "okta-rbac-operator-metrics"),
    ] {
        find(&docs, kind, name);
    }
    let deployment = find(&docs, "Deployment", "okta-rbac-operator");
    let spec = &deployment["spec"]["template"]["spec"];
    let container = &spec["containers"][0];
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    assert!(
        container["resources"]["requests"]["memory"].is_string()
            && container["resources"]["limits"]["memory"].is_string()
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(
        container["args"]
            .as_array()
            .expect("args")
            .iter()
            .any(|a| a == "--leader-election")
    );
    assert_eq!(
        spec["volumes"][0]["secret"]["secretName"], "okta-credentials",
        "credentials come from a Secret"
    );

    // A server-side dry run persists nothing, so the namespace must exist for real.
    let client = plane().client().await.expect("client");
    let namespace = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some("okta-rbac-operator".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let _ = Api::<Namespace>::all(client)
        .create(&PostParams::default(), &namespace)
        .await;
    let (ok, stdout, stderr) = kubectl(
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=manifest-test",
            "-f",
            "-",
        ],
        Some(&rendered),
    );
    assert!(ok, "server-side dry run of config/default failed: {stderr}");
    assert_eq!(
        stdout.matches("(server dry run)").count(),
        docs.len(),
        "{stdout}"
    );

    let (ok, samples, stderr) = kubectl(&["kustomize", "config/samples"], None);
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = kubectl(
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=manifest-test",
            "-f",
            "-",
        ],
        Some(&samples),
    );
    assert!(ok, "the samples are valid OktaGroupBindings: {stderr}");
    assert!(
        stdout.contains(
            "oktagroupbinding.oktarbac.io/k8s-admins serverside-applied (server dry run)"
        ),
        "{stdout}"
    );
}

#[test]
fn version_names_the_kubernetes_release_the_tests_run() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_okta-rbac-operator"))
        .arg("version")
        .output()
        .expect("okta-rbac-operator version");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        text.contains(&format!(
            "Kubernetes {}",
            okta_rbac_testenv::KUBERNETES_VERSION
        )),
        "{text}"
    );
}
