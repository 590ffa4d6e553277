//! The Helm chart, with Helm itself (built from its Go module): it lints, its schema
//! refuses bad values, it renders what `kubectl apply -k config/default` installs (RBAC,
//! Deployment, Service, escalation guard), the apiserver accepts the rendering, and it
//! installs, upgrades and uninstalls on the test control plane.

use clap::{CommandFactory, Parser};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use okta_rbac_testenv::ControlPlane;
use okta_rbac_testenv::gotools::helm;
use serde_json::Value;
use std::collections::BTreeMap;

const CHART: &str = "charts/okta-rbac-operator";
const NAMESPACE: &str = "okta-rbac-operator";
/// The values that turn the revocation authorizer on.
const AUTHORIZER: [&str; 2] = [
    "revocationAuthorizer.enabled=true",
    "revocationAuthorizer.clientCAConfigMap=apiserver-client-ca",
];

/// The value that turns the event hook receiver on.
const HOOK: [&str; 1] = ["eventHook.enabled=true"];

fn hook_and(more: &'static str) -> Vec<&'static str> {
    vec![HOOK[0], more]
}

/// A control plane without the CRD: the chart installs it.
fn plane() -> &'static ControlPlane {
    ControlPlane::shared(Vec::new)
}

/// Helm and kubectl change the same cluster: one test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .filter_map(|document| serde::Deserialize::deserialize(document).ok())
        .filter(|value: &Value| !value.is_null())
        .collect()
}

fn by_kind_and_name(docs: Vec<Value>) -> BTreeMap<(String, String), Value> {
    docs.into_iter()
        .map(|doc| {
            let key = (
                doc["kind"].as_str().unwrap_or_default().to_string(),
                doc["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
            (key, doc)
        })
        .collect()
}

/// What must be equal between the chart and config/default: everything but labels (the
/// chart adds Helm's), the image (each picks its own) and the selector (Helm adds the
/// instance).
fn essence(mut doc: Value) -> Value {
    if let Some(metadata) = doc["metadata"].as_object_mut() {
        metadata.remove("labels");
        metadata.remove("annotations");
        metadata.remove("namespace");
    }
    if doc["kind"] == "Deployment" {
        let spec = &mut doc["spec"];
        spec.as_object_mut().map(|s| s.remove("selector"));
        spec["template"]["metadata"]
            .as_object_mut()
            .map(|m| m.remove("labels"));
        for container in spec["template"]["spec"]["containers"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            let container = container.as_object_mut().expect("a container");
            container.remove("image");
            container.remove("imagePullPolicy");
        }
    }
    if doc["kind"] == "Service" {
        doc["spec"].as_object_mut().map(|s| s.remove("selector"));
    }
    if doc["kind"] == "ValidatingAdmissionPolicy" {
        // kustomize re-folds the CEL expressions' `>-` scalars with blank lines between
        // the more-indented lines; CEL ignores white space, and so does this comparison.
        single_spaced(&mut doc);
    }
    doc
}

fn single_spaced(value: &mut Value) {
    match value {
        Value::String(text) => *text = text.split_whitespace().collect::<Vec<_>>().join(" "),
        Value::Array(items) => items.iter_mut().for_each(single_spaced),
        Value::Object(fields) => fields.values_mut().for_each(single_spaced),
        _ => {}
    }
}

/// `helm template` of the chart as release NAMESPACE, with each of `values` set.
fn template(values: &[&str]) -> String {
    let mut args = vec!["template", NAMESPACE, CHART];
    for value in values {
        args.extend(["--set", value]);
    }
    helm_ok(&args)
}

fn helm_ok(args: &[&str]) -> String {
    match helm(args).expect("helm runs") {
        Ok(stdout) => stdout,
        Err(stderr) => panic!("helm {args:?} failed: {stderr}"),
    }
}

#[tokio::test]
async fn the_chart_lints_and_renders_what_config_default_installs() {
    let _serial = SERIAL.lock().await;
    let plane = plane();
    let lint = helm_ok(&["lint", "--strict", CHART]);
    assert!(lint.contains("0 chart(s) failed"), "{lint}");

    // The schema refuses what cannot work, with the reason.
    for (value, says) in [
        (
            "okta.credentials=magic",
            "value must be one of 'token', 'serviceApp'",
        ),
        ("logFormat=xml", "value must be one of 'plain', 'json'"),
        ("oidc.groupsPrefix=system:", "oidc/groupsPrefix"),
        ("replicaCount=-1", "minimum"),
        ("reconcile.resyncInterval=soon", "resyncInterval"),
        ("extraArgs={okta-timeout=20s}", "extraArgs"),
        ("okta.rateLimitShare=2", "rateLimitShare"),
        ("okta.rateLimitShare=0", "rateLimitShare"),
        ("okta.rateLimitShare=half", "rateLimitShare"),
        ("unknownKey=1", "unknownKey"),
        (
            "grantDurationLimits.cluster-admin=a day",
            "grantDurationLimits",
        ),
    ] {
        let refused = helm(&["template", "x", CHART, "--set", value])
            .expect("helm runs")
            .expect_err(value);
        assert!(refused.contains(says), "{value}: {refused}");
    }
    let refused = helm(&[
        "template",
        "x",
        CHART,
        "--set",
        "okta.credentials=serviceApp",
    ])
    .expect("helm runs")
    .expect_err("a service app without a client id");
    assert!(
        refused.contains("okta.serviceApp.clientId is required"),
        "{refused}"
    );

    // Grant caps become the ConfigMap the grant-duration policy reads.
    let capped = documents(&helm_ok(&[
        "template",
        NAMESPACE,
        CHART,
        "--namespace",
        NAMESPACE,
        "--set",
        "grantDurationLimits.cluster-admin=8h",
    ]));
    let limits = capped
        .iter()
        .find(|d| {
            d["kind"] == "ConfigMap" && d["metadata"]["name"] == "okta-rbac-operator-grant-limits"
        })
        .expect("the caps' ConfigMap");
    assert_eq!(limits["data"]["cluster-admin"], "8h");
    let binding = capped
        .iter()
        .find(|d| {
            d["kind"] == "ValidatingAdmissionPolicyBinding"
                && d["metadata"]["name"] == "oktagroupbinding-grant-duration"
        })
        .expect("the grant-duration policy's binding");
    assert_eq!(binding["spec"]["paramRef"]["namespace"], NAMESPACE);

    let chart = by_kind_and_name(documents(&helm_ok(&[
        "template",
        NAMESPACE,
        CHART,
        "--namespace",
        NAMESPACE,
    ])));
    let kustomized = plane
        .kubectl(&["kustomize", "config/default"], None)
        .expect("kubectl");
    assert!(kustomized.success, "{}", kustomized.stderr);
    let mut shipped = by_kind_and_name(documents(&kustomized.stdout));
    // The chart leaves the namespace to `helm install --create-namespace`, and installs
    // the CRD from its crds/ (compared with crds/ by the CRD test).
    shipped.retain(|(kind, _), _| kind != "Namespace" && kind != "CustomResourceDefinition");
    assert_eq!(
        chart.keys().collect::<Vec<_>>(),
        shipped.keys().collect::<Vec<_>>(),
        "the chart renders the same objects as config/default"
    );
    for (key, doc) in &shipped {
        assert_eq!(
            essence(chart[key].clone()),
            essence(doc.clone()),
            "{key:?} differs between the chart and config/default"
        );
    }

    // The ServiceMonitor (its CRD accepts it: third_party_kinds.rs) selects the metrics
    // Service's port.
    let monitored = by_kind_and_name(documents(&template(&[
        "metrics.serviceMonitor.enabled=true",
        "metrics.serviceMonitor.labels.release=prometheus",
    ])));
    let monitor = &monitored[&("ServiceMonitor".to_string(), NAMESPACE.to_string())];
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    let service = &monitored[&("Service".to_string(), format!("{NAMESPACE}-metrics"))];
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        service["spec"]["selector"]
    );

    // The apiserver accepts the rendering, every option on.
    let namespace = plane
        .kubectl(&["create", "namespace", "helm-dry-run"], None)
        .expect("kubectl");
    assert!(namespace.success, "{}", namespace.stderr);
    let everything = helm_ok(&[
        "template",
        "dry-run",
        CHART,
        "--namespace",
        "helm-dry-run",
        "--include-crds",
        "--set",
        "podDisruptionBudget.enabled=true",
        "--set",
        "okta.credentials=serviceApp",
        "--set",
        "okta.serviceApp.clientId=0oa-service-app",
        "--set",
        "okta.caConfigMap=okta-ca",
        "--set",
        "okta.authorizationServer=default",
        "--set",
        "oidc.groupsPrefix=oidc:",
        "--set",
        "reconcile.resyncInterval=2m",
        "--set",
        "fullnameOverride=rbac",
        "--set",
        "priorityClassName=system-cluster-critical",
        "--set",
        "podAnnotations.example\\.com/team=platform",
        "--set",
        "nodeSelector.kubernetes\\.io/os=linux",
        "--set-json",
        r#"tolerations=[{"key":"dedicated","operator":"Equal","value":"platform","effect":"NoSchedule"}]"#,
        "--set-json",
        r#"affinity={"nodeAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":1,"preference":{"matchExpressions":[{"key":"kubernetes.io/arch","operator":"In","values":["amd64"]}]}}]}}"#,
        "--set",
        "extraArgs={--okta-timeout=20s}",
        "--set-json",
        r#"extraEnv=[{"name":"HTTPS_PROXY","value":"http://proxy.example:3128"}]"#,
        "--set",
        "oidc.scopes={openid,email,groups}",
        "--set-json",
        r#"topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"kubernetes.io/hostname","whenUnsatisfiable":"ScheduleAnyway","labelSelector":{"matchLabels":{"app.kubernetes.io/name":"okta-rbac-operator"}}}]"#,
    ]);
    let applied = plane
        .kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(&everything))
        .expect("kubectl");
    assert!(applied.success, "{}\n{}", applied.stderr, everything);
    for arg in ["--groups-prefix=oidc:", "--oidc-scopes=openid,email,groups"] {
        assert!(
            everything.contains(&format!("- \"{arg}\""))
                || everything.contains(&format!("- {arg}")),
            "{arg} in\n{everything}"
        );
    }
    let deployment = documents(&everything)
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let env: BTreeMap<String, Value> =
        deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .expect("env")
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap_or_default().to_string(),
                    e["value"].clone(),
                )
            })
            .collect();
    assert_eq!(env["OKTA_CLIENT_ID"], "0oa-service-app");
    assert_eq!(
        env["OKTA_PRIVATE_KEY_FILE"],
        "/var/run/secrets/okta/privateKey"
    );
    assert_eq!(
        env["OKTA_PRIVATE_KEY_ID_FILE"],
        "/var/run/secrets/okta/keyId"
    );
    assert_eq!(env["OKTA_DPOP"], "auto");
    assert_eq!(env["OKTA_CA_FILE"], "/var/run/okta-ca/ca.crt");
    assert!(
        !env.contains_key("OKTA_API_TOKEN_FILE"),
        "no conflicting credentials: {env:?}"
    );
    assert_eq!(env["HTTPS_PROXY"], "http://proxy.example:3128");
    let pod = &deployment["spec"]["template"];
    assert_eq!(deployment["metadata"]["name"], "rbac", "fullnameOverride");
    assert_eq!(
        pod["metadata"]["annotations"]["example.com/team"],
        "platform"
    );
    assert_eq!(pod["spec"]["priorityClassName"], "system-cluster-critical");
    assert_eq!(pod["spec"]["nodeSelector"]["kubernetes.io/os"], "linux");
    assert_eq!(pod["spec"]["tolerations"][0]["key"], "dedicated");
    assert_eq!(
        pod["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            [0]["weight"],
        1
    );
    let args = &pod["spec"]["containers"][0]["args"];
    assert_eq!(
        args.as_array().and_then(|a| a.last()),
        Some(&Value::from("--okta-timeout=20s")),
        "extraArgs come last: {args}"
    );
    assert!(
        everything.contains("name: rbac-grantable"),
        "the grantable ClusterRole follows fullnameOverride"
    );
    assert!(
        applied
            .stdout
            .contains("poddisruptionbudget.policy/rbac created (server dry run)"),
        "{}",
        applied.stdout
    );
}

#[tokio::test]
async fn helm_installs_upgrades_and_uninstalls_on_the_test_control_plane() {
    let _serial = SERIAL.lock().await;
    let plane = plane();
    let kubeconfig = plane.kubeconfig_path().display().to_string();
    let client = plane.client().await.expect("client");
    // The archive the release workflow pushes to the OCI registry, as `helm package`
    // makes it (what it leaves out of the chart's directory would break the install).
    let packaged = tempfile::tempdir().expect("tempdir");
    let destination = packaged.path().display().to_string();
    let said = helm_ok(&["package", CHART, "--destination", &destination]);
    let archive = said
        .split_whitespace()
        .last()
        .expect("helm package names the archive")
        .to_string();
    assert!(archive.ends_with(".tgz"), "{said}");
    helm_ok(&[
        "install",
        NAMESPACE,
        &archive,
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "--kubeconfig",
        &kubeconfig,
    ]);
    let crd = Api::<CustomResourceDefinition>::all(client.clone())
        .get("oktagroupbindings.oktarbac.io")
        .await
        .expect("the chart installs the CRD");
    assert!(crd.spec.versions.iter().any(|v| v.name == "v1alpha1"));
    let deployments = Api::<Deployment>::namespaced(client.clone(), NAMESPACE);
    let installed = deployments.get(NAMESPACE).await.expect("deployment");
    assert_eq!(installed.spec.replicas, Some(2));

    helm_ok(&[
        "upgrade",
        NAMESPACE,
        CHART,
        "--namespace",
        NAMESPACE,
        "--kubeconfig",
        &kubeconfig,
        "--set",
        "replicaCount=3",
        "--set",
        "grantable.clusterRoles={view}",
        "--set",
        "logFormat=plain",
        "--set",
        HOOK[0],
        "--set",
        "eventHook.ingress.enabled=true",
        "--set",
        "eventHook.ingress.host=okta-hook.example.com",
    ]);
    // The apiserver took the event hook's Service and Ingress as the chart renders them.
    let hook_service = format!("{NAMESPACE}-event-hook");
    Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), NAMESPACE)
        .get(&hook_service)
        .await
        .expect("the event hook's Service");
    let ingress =
        Api::<k8s_openapi::api::networking::v1::Ingress>::namespaced(client.clone(), NAMESPACE)
            .get(&hook_service)
            .await
            .expect("the event hook's Ingress");
    let rules = ingress.spec.and_then(|s| s.rules).unwrap_or_default();
    assert_eq!(rules[0].host.as_deref(), Some("okta-hook.example.com"));
    let upgraded = deployments.get(NAMESPACE).await.expect("deployment");
    assert_eq!(upgraded.spec.replicas, Some(3));
    let args = upgraded
        .spec
        .template
        .spec
        .and_then(|s| s.containers.first().cloned())
        .and_then(|c| c.args)
        .unwrap_or_default();
    assert!(args.contains(&"--log-format=plain".to_string()), "{args:?}");
    let grantable = Api::<ClusterRole>::all(client.clone())
        .get("okta-rbac-operator-grantable")
        .await
        .expect("grantable");
    let names: Vec<String> = grantable
        .rules
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.resources.as_deref() == Some(&["clusterroles".to_string()]))
        .flat_map(|r| r.resource_names.unwrap_or_default())
        .collect();
    assert_eq!(names, ["view"]);
    let history = helm_ok(&[
        "history",
        NAMESPACE,
        "--namespace",
        NAMESPACE,
        "--kubeconfig",
        &kubeconfig,
    ]);
    assert!(history.lines().count() >= 3, "{history}");

    // Uninstalling removes the operator but keeps the CRD, and with it every
    // OktaGroupBinding and binding: Helm never deletes CRDs.
    helm_ok(&[
        "uninstall",
        NAMESPACE,
        "--namespace",
        NAMESPACE,
        "--kubeconfig",
        &kubeconfig,
    ]);
    assert!(deployments.get_opt(NAMESPACE).await.expect("get").is_none());
    assert!(
        Api::<CustomResourceDefinition>::all(client)
            .get_opt("oktagroupbindings.oktarbac.io")
            .await
            .expect("get")
            .is_some()
    );
}

/// How a flag of `okta-rbac-operator run` reaches the Deployment.
enum Reaches {
    /// This argument.
    Arg(&'static str),
    /// This environment variable with this value.
    Env(&'static str, &'static str),
    /// This environment variable, from the Secret's key.
    EnvFromSecret(&'static str, &'static str),
    /// This environment variable, from the Pod's field.
    EnvFromField(&'static str, &'static str),
}

/// Every flag of `okta-rbac-operator run`, the values that set it, and what the Deployment
/// then holds. A flag added to the operator without a way through the chart's values fails
/// this test.
#[test]
fn every_run_flag_is_reachable_through_values() {
    use Reaches::*;
    let service_app = [
        "okta.credentials=serviceApp",
        "okta.serviceApp.clientId=0oa9",
    ];
    let ways: Vec<(&str, Vec<&str>, Reaches)> = vec![
        (
            "okta-org-url",
            vec!["okta.orgUrlKey=url"],
            EnvFromSecret("OKTA_ORG_URL", "url"),
        ),
        (
            "okta-token-file",
            vec!["okta.tokenKey=api-token"],
            Env("OKTA_API_TOKEN_FILE", "/var/run/secrets/okta/api-token"),
        ),
        (
            "okta-client-id",
            service_app.to_vec(),
            Env("OKTA_CLIENT_ID", "0oa9"),
        ),
        (
            "okta-private-key-file",
            [&service_app[..], &["okta.serviceApp.privateKeyKey=pk"]].concat(),
            Env("OKTA_PRIVATE_KEY_FILE", "/var/run/secrets/okta/pk"),
        ),
        (
            "okta-private-key-id",
            [&service_app[..], &["okta.serviceApp.keyId=kid-1"]].concat(),
            Env("OKTA_PRIVATE_KEY_ID", "kid-1"),
        ),
        (
            "okta-private-key-id-file",
            [&service_app[..], &["okta.serviceApp.keyIdKey=kid"]].concat(),
            Env("OKTA_PRIVATE_KEY_ID_FILE", "/var/run/secrets/okta/kid"),
        ),
        (
            "okta-dpop",
            [&service_app[..], &["okta.serviceApp.dpop=on"]].concat(),
            Env("OKTA_DPOP", "on"),
        ),
        (
            "okta-dpop-key-rotation",
            [&service_app[..], &["okta.serviceApp.dpopKeyRotation=12h"]].concat(),
            Env("OKTA_DPOP_KEY_ROTATION", "12h"),
        ),
        (
            "okta-ca-file",
            vec!["okta.caConfigMap=okta-ca"],
            Env("OKTA_CA_FILE", "/var/run/okta-ca/ca.crt"),
        ),
        (
            "okta-concurrency",
            vec!["okta.concurrency=4"],
            Arg("--okta-concurrency=4"),
        ),
        (
            "okta-timeout",
            vec!["okta.timeout=20s"],
            Arg("--okta-timeout=20s"),
        ),
        (
            "okta-rate-limit-share",
            vec!["okta.rateLimitShare=0.25"],
            Arg("--okta-rate-limit-share=0.25"),
        ),
        (
            "okta-system-log",
            vec!["okta.systemLog.enabled=false"],
            Arg("--okta-system-log=false"),
        ),
        (
            "okta-system-log-interval",
            vec!["okta.systemLog.interval=1m"],
            Arg("--okta-system-log-interval=1m"),
        ),
        (
            "groups-prefix",
            vec!["oidc.groupsPrefix=oidc:"],
            Arg("--groups-prefix=oidc:"),
        ),
        (
            "username-prefix",
            vec!["oidc.usernamePrefix=oidc:"],
            Arg("--username-prefix=oidc:"),
        ),
        (
            "username-attribute",
            vec!["oidc.usernameAttribute=login"],
            Arg("--username-attribute=login"),
        ),
        (
            "allowed-group-prefix",
            vec!["allowedGroupPrefix=team-"],
            Arg("--allowed-group-prefix=team-"),
        ),
        (
            "okta-authorization-server",
            vec!["okta.authorizationServer=default"],
            Arg("--okta-authorization-server=default"),
        ),
        (
            "oidc-groups-claim",
            vec!["oidc.groupsClaim=roles"],
            Arg("--oidc-groups-claim=roles"),
        ),
        (
            "oidc-scopes",
            vec!["oidc.scopes={openid,groups}"],
            Arg("--oidc-scopes=openid,groups"),
        ),
        (
            "resync-interval",
            vec!["reconcile.resyncInterval=2h"],
            Arg("--resync-interval=2h"),
        ),
        (
            "full-resync-interval",
            vec!["reconcile.fullResyncInterval=3h"],
            Arg("--full-resync-interval=3h"),
        ),
        (
            "reconcile-concurrency",
            vec!["reconcile.concurrency=32"],
            Arg("--reconcile-concurrency=32"),
        ),
        (
            "metrics-address",
            vec!["metrics.port=9090"],
            Arg("--metrics-address=0.0.0.0:9090"),
        ),
        ("leader-election", vec![], Arg("--leader-election")),
        (
            "lease-name",
            vec!["leaderElection.leaseName=my-lease"],
            Arg("--lease-name=my-lease"),
        ),
        (
            "lease-namespace",
            vec![],
            EnvFromField("POD_NAMESPACE", "metadata.namespace"),
        ),
        (
            "lease-duration",
            vec!["leaderElection.leaseDuration=30s"],
            Arg("--lease-duration=30s"),
        ),
        (
            "log-format",
            vec!["logFormat=plain"],
            Arg("--log-format=plain"),
        ),
        (
            "authorizer-address",
            AUTHORIZER.to_vec(),
            Env("AUTHORIZER_ADDRESS", "0.0.0.0:8443"),
        ),
        (
            "authorizer-tls-cert-file",
            AUTHORIZER.to_vec(),
            Env(
                "AUTHORIZER_TLS_CERT_FILE",
                "/var/run/okta-rbac-authorizer/tls/tls.crt",
            ),
        ),
        (
            "authorizer-tls-key-file",
            AUTHORIZER.to_vec(),
            Env(
                "AUTHORIZER_TLS_KEY_FILE",
                "/var/run/okta-rbac-authorizer/tls/tls.key",
            ),
        ),
        (
            "authorizer-client-ca-file",
            AUTHORIZER.to_vec(),
            Env(
                "AUTHORIZER_CLIENT_CA_FILE",
                "/var/run/okta-rbac-authorizer/client-ca/ca.crt",
            ),
        ),
        (
            "authorizer-service",
            AUTHORIZER.to_vec(),
            Env("AUTHORIZER_SERVICE", "okta-rbac-operator-authorizer"),
        ),
        (
            "pod-ip",
            AUTHORIZER.to_vec(),
            EnvFromField("POD_IP", "status.podIP"),
        ),
        (
            "log-level",
            vec!["logLevel=debug"],
            Arg("--log-level=debug"),
        ),
        (
            "event-hook-address",
            HOOK.to_vec(),
            Env("EVENT_HOOK_ADDRESS", "0.0.0.0:9443"),
        ),
        (
            "event-hook-tls-cert-file",
            HOOK.to_vec(),
            Env(
                "EVENT_HOOK_TLS_CERT_FILE",
                "/var/run/okta-rbac-event-hook/tls/tls.crt",
            ),
        ),
        (
            "event-hook-tls-key-file",
            HOOK.to_vec(),
            Env(
                "EVENT_HOOK_TLS_KEY_FILE",
                "/var/run/okta-rbac-event-hook/tls/tls.key",
            ),
        ),
        (
            "event-hook-secret-file",
            hook_and("eventHook.secretKey=hookSecret"),
            Env("EVENT_HOOK_SECRET_FILE", "/var/run/secrets/okta/hookSecret"),
        ),
        (
            "event-hook-header",
            hook_and("eventHook.header=X-Okta-Hook"),
            Env("EVENT_HOOK_HEADER", "X-Okta-Hook"),
        ),
        (
            "event-hook-body-limit",
            hook_and("eventHook.bodyLimit=65536"),
            Env("EVENT_HOOK_BODY_LIMIT", "65536"),
        ),
        (
            "event-hook-system-log-interval",
            hook_and("eventHook.systemLogInterval=5m"),
            Env("EVENT_HOOK_SYSTEM_LOG_INTERVAL", "5m"),
        ),
        (
            "event-hook-service",
            HOOK.to_vec(),
            Env("EVENT_HOOK_SERVICE", "okta-rbac-operator-event-hook"),
        ),
    ];

    // The operator's own list of flags, and the environment variable each reads.
    let command = okta_rbac_operator::cli::Cli::command();
    let run = command.find_subcommand("run").expect("run").clone();
    let flags: BTreeMap<String, Option<String>> = run
        .get_arguments()
        .chain(command.get_arguments().filter(|a| a.is_global_set()))
        .filter_map(|arg| {
            let long = arg.get_long()?;
            (!matches!(long, "help" | "version")).then(|| {
                (
                    long.to_string(),
                    arg.get_env().map(|e| e.to_string_lossy().into_owned()),
                )
            })
        })
        .collect();
    let covered: Vec<&str> = ways.iter().map(|(flag, _, _)| *flag).collect();
    let missing: Vec<&String> = flags
        .keys()
        .filter(|f| !covered.contains(&f.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "flags no chart value reaches: {missing:?}"
    );
    let unknown: Vec<&&str> = covered
        .iter()
        .filter(|f| !flags.contains_key(**f))
        .collect();
    assert!(unknown.is_empty(), "not flags of the operator: {unknown:?}");

    for (flag, values, reaches) in &ways {
        let mut args = vec!["template", NAMESPACE, CHART];
        for value in values {
            args.extend(["--set", value]);
        }
        let rendered = helm_ok(&args);
        let deployment = documents(&rendered)
            .into_iter()
            .find(|d| d["kind"] == "Deployment")
            .expect("a Deployment");
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let container_args: Vec<String> = container["args"]
            .as_array()
            .expect("args")
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect();
        let env: Vec<&Value> = container["env"].as_array().expect("env").iter().collect();
        let env_named = |name: &str| env.iter().find(|e| e["name"] == name).copied();
        match reaches {
            Arg(arg) => assert!(
                container_args.iter().any(|a| a == arg),
                "--{flag} via {values:?}: {arg} not in {container_args:?}"
            ),
            Env(name, value) => {
                assert_eq!(
                    env_named(name).map(|e| e["value"].clone()),
                    Some(Value::from(*value)),
                    "--{flag} via {values:?}"
                );
            }
            EnvFromSecret(name, key) => assert_eq!(
                env_named(name).map(|e| e["valueFrom"]["secretKeyRef"]["key"].clone()),
                Some(Value::from(*key)),
                "--{flag} via {values:?}"
            ),
            EnvFromField(name, field) => assert_eq!(
                env_named(name).map(|e| e["valueFrom"]["fieldRef"]["fieldPath"].clone()),
                Some(Value::from(*field)),
                "--{flag} via {values:?}"
            ),
        }
        if let Env(name, _) | EnvFromSecret(name, _) | EnvFromField(name, _) = reaches {
            assert_eq!(
                flags[*flag].as_deref(),
                Some(*name),
                "--{flag} reads {name} from the environment"
            );
        }

        // The operator's command line accepts what the chart renders: its arguments, with
        // each environment variable it sets given as the flag that reads it.
        let mut command_line = vec!["okta-rbac-operator".to_string()];
        command_line.extend(container_args.iter().cloned());
        for variable in &env {
            let name = variable["name"].as_str().unwrap_or_default();
            let Some((flag, _)) = flags.iter().find(|(_, env)| env.as_deref() == Some(name)) else {
                continue;
            };
            let value = variable["value"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| match flag.as_str() {
                    "okta-org-url" => "https://example.okta.com".into(),
                    "pod-ip" => "10.244.0.7".into(),
                    _ => "from-the-cluster".into(),
                });
            command_line.push(format!("--{flag}={value}"));
        }
        if let Err(error) = okta_rbac_operator::cli::Cli::try_parse_from(&command_line) {
            panic!("--{flag} via {values:?}: the operator refuses {command_line:?}: {error}");
        }
    }
}

#[test]
fn the_event_hook_renders_its_service_ingress_or_route_and_certificate_or_says_what_is_missing() {
    let rendered = template(&[
        HOOK[0],
        "eventHook.certManager.enabled=true",
        "eventHook.certManager.issuerRef.name=cluster-ca",
        "eventHook.ingress.enabled=true",
        "eventHook.ingress.host=okta-hook.example.com",
        "eventHook.ingress.className=nginx",
        "eventHook.ingress.annotations.nginx\\.ingress\\.kubernetes\\.io/backend-protocol=HTTPS",
    ]);
    let service_name = format!("{NAMESPACE}-event-hook");
    let docs = by_kind_and_name(documents(&rendered));
    let service = &docs[&("Service".to_string(), service_name.clone())];
    assert_eq!(service["spec"]["ports"][0]["targetPort"], 9443);
    assert_eq!(service["spec"]["ports"][0]["port"], 443);
    assert!(
        service["spec"].get("selector").is_none(),
        "no selector: the leader points the Service at itself"
    );
    let endpoint = &docs[&("Role".to_string(), format!("{service_name}-endpoint"))];
    assert_eq!(
        endpoint["rules"][1]["resourceNames"],
        serde_json::json!([format!("{service_name}-leader")]),
        "it may change its own EndpointSlice only"
    );
    let certificate = &docs[&("Certificate".to_string(), service_name.clone())];
    assert_eq!(
        certificate["spec"]["dnsNames"][0],
        format!("{service_name}.default.svc")
    );
    let ingress = &docs[&("Ingress".to_string(), service_name.clone())];
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert_eq!(ingress["spec"]["rules"][0]["host"], "okta-hook.example.com");
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][0]["path"],
        "/okta/event-hook"
    );
    assert_eq!(
        ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"],
        "HTTPS"
    );
    let deployment = docs
        .iter()
        .find(|((kind, _), _)| kind == "Deployment")
        .map(|(_, d)| d)
        .expect("a Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let env = container["env"].to_string();
    assert!(
        env.contains("/var/run/secrets/okta/eventHookSecret"),
        "the secret comes from the credentials Secret: {env}"
    );
    assert_eq!(
        env.matches("\"POD_IP\"").count(),
        1,
        "POD_IP set once: {env}"
    );
    let with_authorizer = template(&[HOOK[0], AUTHORIZER[0], AUTHORIZER[1]]);
    assert_eq!(
        with_authorizer.matches("name: POD_IP").count(),
        1,
        "POD_IP set once with both"
    );

    let route = template(&[
        HOOK[0],
        "eventHook.httpRoute.enabled=true",
        "eventHook.httpRoute.hostname=okta-hook.example.com",
        "eventHook.httpRoute.parentRefs[0].name=public",
        "eventHook.httpRoute.backendTLS.enabled=true",
        "eventHook.httpRoute.backendTLS.caConfigMap=hook-ca",
    ]);
    let docs = by_kind_and_name(documents(&route));
    let http_route = &docs[&("HTTPRoute".to_string(), service_name.clone())];
    assert_eq!(http_route["spec"]["parentRefs"][0]["name"], "public");
    assert_eq!(
        http_route["spec"]["rules"][0]["backendRefs"][0]["name"],
        service_name
    );
    let policy = &docs[&("BackendTLSPolicy".to_string(), service_name.clone())];
    assert_eq!(
        policy["spec"]["validation"]["hostname"],
        format!("{service_name}.default.svc")
    );
    assert_eq!(
        policy["spec"]["validation"]["caCertificateRefs"][0]["name"],
        "hook-ca"
    );

    for (values, says) in [
        (
            vec![HOOK[0], "eventHook.ingress.enabled=true"],
            "eventHook.ingress.host is required",
        ),
        (
            vec![HOOK[0], "eventHook.httpRoute.enabled=true"],
            "eventHook.httpRoute.parentRefs is required",
        ),
        (
            vec![HOOK[0], "eventHook.certManager.enabled=true"],
            "eventHook.certManager.issuerRef.name is required",
        ),
        (
            vec![HOOK[0], "eventHook.header=Bad Header"],
            "/eventHook/header",
        ),
    ] {
        let mut args = vec!["template", NAMESPACE, CHART];
        for value in &values {
            args.extend(["--set", value]);
        }
        let refused = helm(&args).expect("helm runs").expect_err("refused");
        assert!(refused.contains(says), "{values:?}: {refused}");
    }
    let off = helm_ok(&["template", NAMESPACE, CHART]);
    assert!(!off.contains("event-hook"), "off by default");
}

#[test]
fn the_revocation_authorizer_renders_its_service_permission_and_certificates_or_says_what_is_missing()
 {
    let rendered = template(&[
        AUTHORIZER[0],
        AUTHORIZER[1],
        "revocationAuthorizer.certManager.enabled=true",
        "revocationAuthorizer.certManager.issuerRef.name=cluster-ca",
    ]);
    let docs = by_kind_and_name(documents(&rendered));
    let service = &docs[&("Service".to_string(), format!("{NAMESPACE}-authorizer"))];
    assert_eq!(service["spec"]["ports"][0]["targetPort"], 8443);
    assert!(
        service["spec"].get("selector").is_none(),
        "no selector: the leader points the Service at itself"
    );
    assert_eq!(service["spec"]["type"], "ClusterIP");
    let endpoint = &docs[&(
        "Role".to_string(),
        format!("{NAMESPACE}-authorizer-endpoint"),
    )];
    assert_eq!(endpoint["rules"][0]["resources"][0], "endpointslices");
    assert_eq!(endpoint["rules"][0]["verbs"], serde_json::json!(["create"]));
    assert_eq!(
        endpoint["rules"][1]["resourceNames"],
        serde_json::json!([format!("{NAMESPACE}-authorizer-leader")]),
        "it may change its own EndpointSlice only"
    );
    let role = &docs[&("ClusterRole".to_string(), format!("{NAMESPACE}-authorizer"))];
    assert_eq!(
        role["rules"][0]["resources"][0], "subjectaccessreviews",
        "the one permission it adds"
    );
    let certificate = &docs[&("Certificate".to_string(), format!("{NAMESPACE}-authorizer"))];
    assert_eq!(
        certificate["spec"]["dnsNames"][0],
        format!("{NAMESPACE}-authorizer.default.svc"),
        "the release's namespace (helm template's default here)"
    );
    let deployment = docs
        .iter()
        .find(|((kind, _), _)| kind == "Deployment")
        .map(|(_, d)| d)
        .expect("a Deployment");
    let volumes = deployment["spec"]["template"]["spec"]["volumes"].to_string();
    assert!(
        volumes.contains(&format!("{NAMESPACE}-authorizer-tls"))
            && volumes.contains("apiserver-client-ca"),
        "{volumes}"
    );

    // For an apiserver that reaches only the nodes: a NodePort, on the port asked for.
    let node_port = template(&[
        AUTHORIZER[0],
        AUTHORIZER[1],
        "revocationAuthorizer.service.type=NodePort",
        "revocationAuthorizer.service.nodePort=30443",
    ]);
    let docs = by_kind_and_name(documents(&node_port));
    let service = &docs[&("Service".to_string(), format!("{NAMESPACE}-authorizer"))];
    assert_eq!(service["spec"]["type"], "NodePort");
    assert_eq!(service["spec"]["ports"][0]["nodePort"], 30443);
    let refused = helm(&[
        "template",
        NAMESPACE,
        CHART,
        "--set",
        AUTHORIZER[0],
        "--set",
        AUTHORIZER[1],
        "--set",
        "revocationAuthorizer.service.type=LoadBalancer",
    ])
    .expect("helm runs")
    .expect_err("refused");
    assert!(
        refused.contains("/revocationAuthorizer/service/type")
            && refused.contains("'ClusterIP', 'NodePort'"),
        "the schema names what it refuses: {refused}"
    );

    let off = helm_ok(&["template", NAMESPACE, CHART]);
    assert!(!off.contains("subjectaccessreviews"), "off by default");
    let missing = helm(&[
        "template",
        NAMESPACE,
        CHART,
        "--set",
        "revocationAuthorizer.enabled=true",
    ])
    .expect("helm runs")
    .expect_err("refused");
    assert!(
        missing.contains("revocationAuthorizer.clientCAConfigMap is required"),
        "{missing}"
    );
}
