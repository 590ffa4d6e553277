//! The control plane the other tests stand on is real: objects persist in etcd, RBAC
//! decides, the garbage collector deletes dependents, CRDs serve objects, and a failed or
//! killed control plane is reported and cleaned up.

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use kube::{Client, Resource, ResourceExt};
use okta_rbac_testenv::{ControlPlane, ControlPlaneOptions, LaunchError, unique_name};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn plane() -> &'static ControlPlane {
    ControlPlane::shared(Vec::new)
}

async fn admin() -> Client {
    plane().client().await.expect("admin client")
}

async fn create_namespace(client: &Client, prefix: &str) -> String {
    let name = unique_name(prefix);
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create namespace");
    name
}

fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Polls `check` every 100 ms until it is true or `timeout` passes; returns the last answer.
async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn group_subject(name: &str) -> Subject {
    Subject {
        kind: "Group".into(),
        name: name.into(),
        api_group: Some("rbac.authorization.k8s.io".into()),
        namespace: None,
    }
}

#[tokio::test]
async fn namespace_and_cluster_role_binding_are_stored_and_read_back() {
    let client = admin().await;
    let namespace = create_namespace(&client, "roundtrip").await;
    let read = Api::<Namespace>::all(client.clone())
        .get(&namespace)
        .await
        .expect("get namespace");
    assert_eq!(read.name_any(), namespace);
    assert!(read.uid().is_some(), "the apiserver assigns a uid");

    let name = unique_name("roundtrip-view");
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: "view".into(),
        },
        subjects: Some(vec![group_subject("k8s-readers")]),
    };
    let bindings = Api::<ClusterRoleBinding>::all(client.clone());
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .expect("create binding");
    let read = bindings.get(&name).await.expect("get binding");
    assert_eq!(read.role_ref, binding.role_ref);
    assert_eq!(read.subjects, binding.subjects);
    assert!(read.metadata.resource_version.is_some());
    bindings
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete binding");
}

#[tokio::test]
async fn rbac_forbids_a_service_account_until_a_role_binding_grants_it() {
    let client = admin().await;
    let namespace = create_namespace(&client, "rbac").await;
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("reader".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), &namespace);
    accounts
        .create(&PostParams::default(), &account)
        .await
        .expect("create service account");
    let token = accounts
        .create_token_request(
            "reader",
            &PostParams::default(),
            &TokenRequest {
                spec: Some(TokenRequestSpec {
                    expiration_seconds: Some(600),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .expect("TokenRequest")
        .status
        .expect("token status")
        .token
        .expect("token");
    let reader = plane()
        .client_with_token(&token)
        .await
        .expect("token client");
    let secrets = Api::<Secret>::namespaced(reader.clone(), &namespace);
    let denied = secrets
        .list(&Default::default())
        .await
        .expect_err("no binding yet");
    assert_eq!(status_code(&denied), Some(403), "{denied}");

    let role = Role {
        metadata: ObjectMeta {
            name: Some("secret-reader".into()),
            ..Default::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["secrets".into()]),
            verbs: vec!["list".into()],
            ..Default::default()
        }]),
    };
    Api::<Role>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), &role)
        .await
        .expect("create role");
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("reader-reads-secrets".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: "secret-reader".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "reader".into(),
            namespace: Some(namespace.clone()),
            api_group: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), &binding)
        .await
        .expect("create role binding");

    let allowed = eventually(Duration::from_secs(10), || async {
        secrets.list(&Default::default()).await.is_ok()
    })
    .await;
    assert!(
        allowed,
        "the RoleBinding should let the service account list secrets"
    );
    let elsewhere = Api::<Secret>::namespaced(reader, "kube-system")
        .list(&Default::default())
        .await
        .expect_err("the grant is only for its own namespace");
    assert_eq!(status_code(&elsewhere), Some(403), "{elsewhere}");
}

fn owner_reference<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into(),
        kind: K::kind(&()).into(),
        name: owner.meta().name.clone().expect("owner name"),
        uid: owner.meta().uid.clone().expect("owner uid"),
        ..Default::default()
    }
}

fn config_map(name: &str, owner: OwnerReference) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("owned".into(), "yes".into())])),
        ..Default::default()
    }
}

#[tokio::test]
async fn garbage_collector_deletes_dependents_of_a_deleted_owner() {
    let client = admin().await;
    let namespace = create_namespace(&client, "gc").await;
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &namespace);

    // A namespaced dependent of a cluster-scoped owner, as the operator's RoleBindings are.
    let cluster_roles = Api::<ClusterRole>::all(client.clone());
    let cluster_owner = cluster_roles
        .create(
            &PostParams::default(),
            &ClusterRole {
                metadata: ObjectMeta {
                    name: Some(unique_name("gc-owner")),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("create cluster-scoped owner");
    config_maps
        .create(
            &PostParams::default(),
            &config_map("of-cluster-owner", owner_reference(&cluster_owner)),
        )
        .await
        .expect("create dependent of cluster owner");

    // A dependent of a namespaced owner in the same namespace.
    let namespaced_owner = config_maps
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("owner".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("create namespaced owner");
    config_maps
        .create(
            &PostParams::default(),
            &config_map("of-namespaced-owner", owner_reference(&namespaced_owner)),
        )
        .await
        .expect("create dependent of namespaced owner");
    config_maps
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("bystander".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("create unowned config map");

    cluster_roles
        .delete(&cluster_owner.name_any(), &DeleteParams::default())
        .await
        .expect("delete cluster owner");
    config_maps
        .delete("owner", &DeleteParams::default())
        .await
        .expect("delete namespaced owner");

    for dependent in ["of-cluster-owner", "of-namespaced-owner"] {
        let gone = eventually(Duration::from_secs(60), || async {
            matches!(config_maps.get(dependent).await, Err(ref e) if status_code(e) == Some(404))
        })
        .await;
        assert!(gone, "the garbage collector should delete {dependent}");
    }
    assert!(
        config_maps.get("bystander").await.is_ok(),
        "an object without owner stays"
    );
}

fn widget_crd(group: &str) -> CustomResourceDefinition {
    let schema: JSONSchemaProps = serde_json::from_value(serde_json::json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {"size": {"type": "integer", "minimum": 1}},
            },
        },
    }))
    .expect("schema");
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("widgets.{group}")),
            ..Default::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: group.into(),
            names: CustomResourceDefinitionNames {
                kind: "Widget".into(),
                plural: "widgets".into(),
                singular: Some("widget".into()),
                ..Default::default()
            },
            scope: "Cluster".into(),
            versions: vec![CustomResourceDefinitionVersion {
                name: "v1".into(),
                served: true,
                storage: true,
                schema: Some(CustomResourceValidation {
                    open_api_v3_schema: Some(schema),
                }),
                ..Default::default()
            }],
            ..Default::default()
        },
        status: None,
    }
}

#[tokio::test]
async fn a_crd_is_established_and_serves_its_objects() {
    let client = admin().await;
    let group = format!("{}.test.oktarbac.io", unique_name("crd"));
    plane()
        .install_crds(&[widget_crd(&group)])
        .await
        .expect("install CRD");
    let crd = Api::<CustomResourceDefinition>::all(client.clone())
        .get(&format!("widgets.{group}"))
        .await
        .expect("get CRD");
    let established = crd
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    assert!(established, "the CRD should be Established");

    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(&group, "v1", "Widget"));
    let widgets = Api::<DynamicObject>::all_with(client, &resource);
    let widget =
        DynamicObject::new("small", &resource).data(serde_json::json!({"spec": {"size": 3}}));
    widgets
        .create(&PostParams::default(), &widget)
        .await
        .expect("create widget");
    let read = widgets.get("small").await.expect("get widget");
    assert_eq!(read.data["spec"]["size"], 3);

    let invalid =
        DynamicObject::new("invalid", &resource).data(serde_json::json!({"spec": {"size": 0}}));
    let rejected = widgets
        .create(&PostParams::default(), &invalid)
        .await
        .expect_err("the schema's minimum is enforced");
    assert_eq!(status_code(&rejected), Some(422), "{rejected}");
}

#[tokio::test]
async fn a_component_that_fails_names_itself_and_shows_its_log() {
    let error = ControlPlane::start(ControlPlaneOptions {
        extra_apiserver_args: vec!["--no-such-flag=1".into()],
        ..Default::default()
    })
    .await
    .err()
    .expect("an unknown apiserver flag must fail the start");
    match &error {
        LaunchError::Component {
            component, tail, ..
        } => {
            assert_eq!(*component, "kube-apiserver");
            assert!(
                tail.contains("unknown flag: --no-such-flag"),
                "log tail: {tail}"
            );
        }
        other => panic!("expected a component failure, got: {other}"),
    }
    assert!(
        error.to_string().contains("kube-apiserver failed"),
        "{error}"
    );
}

fn is_running(pid: u32) -> bool {
    // A zombie waiting for its parent to reap it is no longer running.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// Starts `okta-rbac-controlplane`, waits for it to be ready, and returns the
/// process, the component pids and the working directory.
fn start_controlplane_process() -> (std::process::Child, Vec<u32>, std::path::PathBuf) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_okta-rbac-controlplane"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn controlplane");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut pids = Vec::new();
    let mut dir = None;
    for line in stdout.lines() {
        let line = line.expect("read stdout");
        if let Some(rest) = line.strip_prefix("process: ") {
            pids.push(
                rest.rsplit(' ')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("pid"),
            );
        } else if let Some(rest) = line.strip_prefix("directory: ") {
            dir = Some(std::path::PathBuf::from(rest));
        } else if line.starts_with("ready:") {
            break;
        }
    }
    let dir = dir.expect("the directory is printed");
    assert_eq!(
        pids.len(),
        3,
        "etcd, kube-apiserver and kube-controller-manager"
    );
    assert!(pids.iter().all(|pid| is_running(*pid)));
    assert!(dir.join("kubeconfig").is_file());
    (child, pids, dir)
}

fn assert_cleaned_up(pids: &[u32], dir: &std::path::Path, how: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while (pids.iter().any(|pid| is_running(*pid)) || dir.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|pid| is_running(*pid))
        .collect();
    assert!(
        left.is_empty(),
        "after {how}, components still running: {left:?}"
    );
    assert!(
        !dir.exists(),
        "after {how}, {} is still there",
        dir.display()
    );
}

#[test]
fn a_killed_owner_leaves_no_process_and_no_directory_behind() {
    let (mut child, pids, dir) = start_controlplane_process();
    child.kill().expect("SIGKILL the owner");
    child.wait().expect("reap the owner");
    assert_cleaned_up(&pids, &dir, "SIGKILL of its owner");
}

#[test]
fn an_interrupted_owner_stops_cleanly() {
    let (mut child, pids, dir) = start_controlplane_process();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("send SIGINT");
    assert!(status.success());
    let exit = child.wait().expect("wait for the owner");
    assert!(exit.success(), "Ctrl-C is a clean stop: {exit}");
    assert_cleaned_up(&pids, &dir, "Ctrl-C");
}

#[test]
fn the_launcher_names_the_release_the_go_module_builds() {
    let go_mod = include_str!("../controlplane/go.mod");
    let pinned = go_mod
        .lines()
        .find_map(|line| line.trim().strip_prefix("k8s.io/kubernetes "))
        .expect("go.mod requires k8s.io/kubernetes");
    assert_eq!(pinned.trim(), okta_rbac_testenv::KUBERNETES_VERSION);
}
