//! rbac-manager v1.10.0 (FairwindsOps), built by `make peers` from its release source, on
//! a fresh control plane of its own with the same workload: one `RBACDefinition` per
//! object binding the object's group to `view` cluster-wide and in its 10 namespaces.

use crate::apiserver::apiserver_writes_by_kind;
use crate::results::PeerResult;
use crate::watch::watch_bindings;
use crate::workload::{
    CONCURRENCY, NAMESPACES_PER_OBJECT, create_namespaces, group, namespaces_of,
};
use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use okta_rbac_testenv::peer::PeerProcess;
use okta_rbac_testenv::{ControlPlane, ControlPlaneOptions, http_get};
use std::time::{Duration, Instant};

/// What rbac-manager puts on everything it manages.
const MANAGED: &str = "rbac-manager=reactiveops";
/// How long after convergence its memory is read again as the steady value.
pub const SETTLE: Duration = Duration::from_secs(10);

fn definition(i: usize) -> DynamicObject {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "rbacmanager.reactiveops.io",
        "v1beta1",
        "RBACDefinition",
    ));
    let role_bindings: Vec<serde_json::Value> = namespaces_of(i)
        .map(|ns| serde_json::json!({"clusterRole": "view", "namespace": ns}))
        .collect();
    let mut object = DynamicObject::new(&format!("team-{i:05}"), &resource);
    object.data = serde_json::json!({
        "rbacBindings": [{
            "name": format!("team-{i:05}"),
            "subjects": [{"kind": "Group", "name": group(i), "apiGroup": "rbac.authorization.k8s.io"}],
            "clusterRoleBindings": [{"clusterRole": "view"}],
            "roleBindings": role_bindings,
        }]
    });
    object
}

pub async fn run_rbac_manager(objects: usize) -> PeerResult {
    let binary = okta_rbac_testenv::paths::peer("rbac-manager");
    let crd_path = okta_rbac_testenv::paths::peer("rbac-manager-crd.yaml");
    let crd: CustomResourceDefinition = serde_yaml_ng::from_str(
        &std::fs::read_to_string(&crd_path)
            .unwrap_or_else(|e| panic!("{}: {e} (make peers)", crd_path.display())),
    )
    .expect("rbac-manager's CRD");
    let plane = ControlPlane::start(ControlPlaneOptions {
        crds: vec![crd],
        ..Default::default()
    })
    .await
    .expect("control plane");
    let client = plane.client().await.expect("client");
    create_namespaces(&client).await;

    let port = okta_rbac_testenv::free_port().expect("a port");
    let metrics_address = format!("127.0.0.1:{port}");
    let mut peer = PeerProcess::start(
        &binary,
        &["--metrics-address", &metrics_address, "--log-level", "warn"],
        plane.kubeconfig_path(),
        &plane.dir().join("rbac-manager.log"),
    )
    .expect("rbac-manager starts (make peers)");
    let started = Instant::now();
    while http_get(&format!("http://{metrics_address}/metrics"))
        .await
        .is_none()
    {
        assert!(
            peer.running() && started.elapsed() < Duration::from_secs(60),
            "rbac-manager did not start: {}",
            peer.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (crbs, rbs) = watch_bindings(&client, MANAGED).await;
    let before = apiserver_writes_by_kind(&client).await;
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "rbacmanager.reactiveops.io",
        "v1beta1",
        "RBACDefinition",
    ));
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let started = Instant::now();
    let creator = tokio::spawn(
        futures::stream::iter(0..objects)
            .map(move |i| {
                let api = api.clone();
                async move {
                    api.create(&PostParams::default(), &definition(i))
                        .await
                        .expect("create RBACDefinition");
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<()>>(),
    );
    let expected_rbs = objects * NAMESPACES_PER_OBJECT;
    while crbs.len() < objects || rbs.len() < expected_rbs {
        assert!(
            peer.running() && started.elapsed() < Duration::from_secs(3600),
            "rbac-manager: {} + {} bindings after {:?}: {}",
            crbs.len(),
            rbs.len(),
            started.elapsed(),
            peer.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    creator.await.expect("creates");
    let after = apiserver_writes_by_kind(&client).await;
    let writes = after.values().sum::<u64>() - before.values().sum::<u64>() - objects as u64;
    let peak_mib = peer.peak_memory_kib().unwrap_or_default() as f64 / 1024.0;
    let cpu_seconds = peer.cpu_seconds();
    tokio::time::sleep(SETTLE).await;
    PeerResult {
        seconds,
        writes,
        peak_mib,
        steady_mib: peer.memory_kib().unwrap_or_default() as f64 / 1024.0,
        cpu_seconds,
    }
}
