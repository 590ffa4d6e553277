//! The shipped manifests as kubectl, Argo CD and Flux meet them: `config/default`
//! renders with kustomize and the apiserver accepts it (server-side dry run), as it
//! accepts the samples.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, PostParams};
use okta_rbac_api::OktaGroupBinding;
use okta_rbac_testenv::paths::{checkout, controlplane_bin_dir};
use okta_rbac_testenv::wait::eventually;
use okta_rbac_testenv::{ControlPlane, ControlPlaneOptions};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

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

/// The same document whatever way its numbers were written: the CRD's schema bounds are
/// floats in Kubernetes' types (`maximum: 2147483647.0`), and kustomize writes them back
/// as integers.
fn numbers_as_floats(value: Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map_or(Value::Number(n), Value::from),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_floats).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, numbers_as_floats(v)))
                .collect(),
        ),
        other => other,
    }
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
    assert_eq!(
        numbers_as_floats(crd.clone()),
        numbers_as_floats(committed),
        "the CRD is the one in crds/"
    );
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

/// What config/default with these components renders.
fn render_with(components: &[&str]) -> Vec<Value> {
    let overlay = okta_rbac_testenv::paths::checkout()
        .join(".build/test-overlays")
        .join(okta_rbac_testenv::unique_name("components"));
    std::fs::create_dir_all(&overlay).expect("overlay directory");
    let components: Vec<String> = components
        .iter()
        .map(|c| format!("../../../config/components/{c}"))
        .collect();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!(
            "resources: [../../../config/default]\ncomponents: [{}]\n",
            components.join(", ")
        ),
    )
    .expect("kustomization.yaml");
    let (ok, rendered, stderr) = kubectl(&["kustomize", &overlay.to_string_lossy()], None);
    std::fs::remove_dir_all(&overlay).expect("remove the overlay");
    assert!(ok, "kubectl kustomize: {stderr}");
    documents(&rendered)
}

/// The environment of the rendered Deployment whose names start with `prefix`: name ->
/// literal value, or the Secret key it comes from.
fn env_of(docs: &[Value], prefix: &str) -> BTreeMap<String, String> {
    let deployment = find(docs, "Deployment", "okta-rbac-operator");
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .map(|e| {
            let source = match e["value"].as_str() {
                Some(value) => value.to_string(),
                None => format!(
                    "secret:{}",
                    e["valueFrom"]["secretKeyRef"]["key"]
                        .as_str()
                        .unwrap_or("?")
                ),
            };
            (e["name"].as_str().unwrap_or_default().to_string(), source)
        })
        .collect()
}

/// The environment (names starting with `prefix`) of the Deployment the chart renders
/// with these values.
fn chart_env(values: &[&str], prefix: &str) -> BTreeMap<String, String> {
    let mut args = vec![
        "template",
        "okta-rbac-operator",
        "charts/okta-rbac-operator",
    ];
    for value in values {
        args.extend(["--set", value]);
    }
    let chart = std::process::Command::new(okta_rbac_testenv::paths::tool("helm"))
        .current_dir(checkout())
        .args(args)
        .output()
        .expect("helm (make tools)");
    assert!(
        chart.status.success(),
        "{}",
        String::from_utf8_lossy(&chart.stderr)
    );
    env_of(&documents(&String::from_utf8_lossy(&chart.stdout)), prefix)
}

/// The credential environment of the Deployment that config/default with these
/// components renders.
fn credential_env(components: &[&str]) -> BTreeMap<String, String> {
    env_of(&render_with(components), "OKTA_")
}

#[tokio::test]
async fn the_revocation_authorizer_component_serves_it_as_the_chart_does() {
    let docs = render_with(&["revocation-authorizer"]);
    let env = env_of(&docs, "AUTHORIZER_");
    assert_eq!(
        env.get("AUTHORIZER_ADDRESS").map(String::as_str),
        Some("0.0.0.0:8443")
    );
    let mut env = env;
    assert_eq!(
        env.remove("AUTHORIZER_SERVICE").as_deref(),
        Some("okta-rbac-authorizer"),
        "the leader points its own Service at itself"
    );
    assert_eq!(env.len(), 4, "{env:?}");
    let service = find(&docs, "Service", "okta-rbac-authorizer");
    assert_eq!(service["metadata"]["namespace"], "okta-rbac-operator");
    assert!(service["spec"].get("selector").is_none(), "no selector");
    let endpoint = find(&docs, "Role", "okta-rbac-operator-authorizer-endpoint");
    assert_eq!(
        endpoint["rules"][1]["resourceNames"],
        serde_json::json!(["okta-rbac-authorizer-leader"])
    );
    let binding = find(&docs, "ClusterRoleBinding", "okta-rbac-operator-authorizer");
    assert_eq!(binding["subjects"][0]["namespace"], "okta-rbac-operator");
    let volumes =
        find(&docs, "Deployment", "okta-rbac-operator")["spec"]["template"]["spec"]["volumes"]
            .to_string();
    assert!(
        volumes.contains("okta-rbac-authorizer-tls")
            && volumes.contains("okta-rbac-authorizer-client-ca"),
        "{volumes}"
    );
    let mut chart_env = chart_env(
        &[
            "revocationAuthorizer.enabled=true",
            "revocationAuthorizer.clientCAConfigMap=x",
        ],
        "AUTHORIZER_",
    );
    assert_eq!(
        chart_env.remove("AUTHORIZER_SERVICE").as_deref(),
        Some("okta-rbac-operator-authorizer"),
        "the chart's Service, named after the release"
    );
    assert_eq!(
        chart_env, env,
        "the chart and the component serve it the same way"
    );
}

#[tokio::test]
async fn the_event_hook_component_serves_it_as_the_chart_does_and_beside_the_authorizer() {
    let docs = render_with(&["event-hook"]);
    let mut env = env_of(&docs, "EVENT_HOOK_");
    assert_eq!(
        env.get("EVENT_HOOK_SECRET_FILE").map(String::as_str),
        Some("/var/run/secrets/okta/eventHookSecret"),
        "the secret is a key of the credentials Secret"
    );
    assert_eq!(
        env.remove("EVENT_HOOK_SERVICE").as_deref(),
        Some("okta-rbac-event-hook"),
        "the leader points its own Service at itself"
    );
    let service = find(&docs, "Service", "okta-rbac-event-hook");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], 9443);
    assert!(service["spec"].get("selector").is_none(), "no selector");
    let endpoint = find(&docs, "Role", "okta-rbac-operator-event-hook-endpoint");
    assert_eq!(
        endpoint["rules"][1]["resourceNames"],
        serde_json::json!(["okta-rbac-event-hook-leader"])
    );
    let mut chart_env = chart_env(&["eventHook.enabled=true"], "EVENT_HOOK_");
    assert_eq!(
        chart_env.remove("EVENT_HOOK_SERVICE").as_deref(),
        Some("okta-rbac-operator-event-hook"),
        "the chart's Service, named after the release"
    );
    assert_eq!(
        chart_env.remove("EVENT_HOOK_HEADER").as_deref(),
        Some("Authorization"),
        "the chart says the default outright"
    );
    assert_eq!(
        chart_env, env,
        "the chart and the component serve it the same way"
    );

    // Both components: one POD_IP, both Services.
    let both = render_with(&["revocation-authorizer", "event-hook"]);
    let pod_ip = env_of(&both, "POD_IP");
    assert_eq!(pod_ip.len(), 1, "{pod_ip:?}");
    find(&both, "Service", "okta-rbac-authorizer");
    find(&both, "Service", "okta-rbac-event-hook");
}

#[tokio::test]
async fn each_credential_component_sets_one_mode_and_nothing_that_conflicts() {
    let token = credential_env(&[]);
    assert_eq!(
        token,
        BTreeMap::from([
            ("OKTA_ORG_URL".to_string(), "secret:orgUrl".to_string()),
            (
                "OKTA_API_TOKEN_FILE".to_string(),
                "/var/run/secrets/okta/token".to_string()
            ),
        ])
    );
    let service_app = credential_env(&["okta-service-app", "okta-ca"]);
    assert_eq!(
        service_app,
        BTreeMap::from([
            ("OKTA_ORG_URL".to_string(), "secret:orgUrl".to_string()),
            ("OKTA_CLIENT_ID".to_string(), "secret:clientId".to_string()),
            (
                "OKTA_PRIVATE_KEY_FILE".to_string(),
                "/var/run/secrets/okta/privateKey".to_string()
            ),
            (
                "OKTA_PRIVATE_KEY_ID_FILE".to_string(),
                "/var/run/secrets/okta/keyId".to_string()
            ),
            (
                "OKTA_CA_FILE".to_string(),
                "/var/run/okta-ca/ca.crt".to_string()
            ),
        ]),
        "the service app replaces the token file (the operator refuses both at once)"
    );
}

/// `make deploy` and `make undeploy` as a kubebuilder user runs them, on a control plane of
/// their own (undeploy removes the CRD).
#[tokio::test]
async fn make_deploy_installs_the_named_image_and_make_undeploy_removes_it_all() {
    let plane = ControlPlane::start(ControlPlaneOptions::default())
        .await
        .expect("control plane");
    let make = |target: &str| {
        let output = std::process::Command::new("make")
            .current_dir(checkout())
            .args([
                "--no-print-directory",
                target,
                "IMG=registry.example.test/platform/okta-rbac-operator:1.2.3-rc.1",
            ])
            .arg(format!(
                "KUBECTL={}",
                controlplane_bin_dir().join("kubectl").display()
            ))
            .env("KUBECONFIG", plane.kubeconfig_path())
            .env_remove("MAKEFLAGS")
            .output()
            .expect("make");
        assert!(
            output.status.success(),
            "make {target}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let client = plane.client().await.expect("client");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "okta-rbac-operator");

    make("deploy");
    let deployment = deployments
        .get("okta-rbac-operator")
        .await
        .expect("make deploy created the Deployment");
    let image = deployment
        .spec
        .template
        .spec
        .and_then(|s| s.containers.into_iter().next())
        .and_then(|c| c.image);
    assert_eq!(
        image.as_deref(),
        Some("registry.example.test/platform/okta-rbac-operator:1.2.3-rc.1")
    );

    make("undeploy");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let namespaces: Api<Namespace> = Api::all(client);
    eventually(
        Duration::from_secs(60),
        "the CRD and the namespace are gone",
        || async {
            let crd_gone = crds
                .get_opt("oktagroupbindings.oktarbac.io")
                .await
                .ok()?
                .is_none();
            let namespace_gone = namespaces
                .get_opt("okta-rbac-operator")
                .await
                .ok()?
                .is_none();
            (crd_gone && namespace_gone).then_some(())
        },
    )
    .await;
}
