//! Helpers shared by the operator's integration tests: one control plane, one local Okta
//! and the operator binary running against both, for every test of a test binary.
#![allow(dead_code)]

pub mod world;

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use kube::CustomResourceExt;
use kube::api::{Api, PostParams};
use okta_rbac_api::{OktaGroupBinding, OktaGroupBindingSpec};
#[allow(unused_imports)]
pub use okta_rbac_testenv::wait::{condition, eventually, wait_condition};
use okta_rbac_testenv::{ControlPlane, OperatorLaunch, OperatorProcess};
use okta_sim::seed::SeedApiToken;
use okta_sim::{OktaSim, Seed, SimOptions};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub const OPERATOR_TOKEN: &str = "00operator-test-token";
pub const RESYNC: Duration = Duration::from_secs(3);
/// The harness operator's --okta-concurrency and --okta-timeout.
pub const OKTA_CONCURRENCY: usize = 4;
pub const OKTA_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the controller manager's garbage collector may take to act on an orphaning
/// delete: it starts watching a kind installed after it (our CRD) only at its discovery
/// resync, every 30 s, and does not orphan what it does not watch.
pub const GARBAGE_COLLECTOR_WAIT: Duration = Duration::from_secs(60);

/// The operator binary this package builds, or `$OKTA_RBAC_TEST_OPERATOR_BIN` (to run the
/// tests against another build, such as an older one).
pub fn operator_binary() -> PathBuf {
    std::env::var_os("OKTA_RBAC_TEST_OPERATOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_okta-rbac-operator")))
}

/// A control plane with the CRD, a local Okta, and the operator binary running against
/// both as its own process, shared by the tests of one binary (each uses its own groups
/// and objects).
pub struct Harness {
    pub plane: &'static ControlPlane,
    pub sim: OktaSim,
    /// `http://127.0.0.1:PORT` of the operator's /metrics, /healthz and /readyz.
    pub metrics: String,
    pub operator: Mutex<OperatorProcess>,
}

pub fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let plane = ControlPlane::shared(|| vec![OktaGroupBinding::crd()]);
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        // The local Okta is served by a runtime of its own, for the whole run: each
        // #[tokio::test] has its own runtime, which ends with the test.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let seed = Seed {
                    api_tokens: vec![SeedApiToken {
                        name: "operator".into(),
                        token: OPERATOR_TOKEN.into(),
                        scopes: Some(vec!["okta.groups.read".into()]),
                    }],
                    ..Default::default()
                };
                let sim = OktaSim::start(SimOptions::new(seed))
                    .await
                    .expect("local Okta");
                let ca = plane.dir().join("harness-okta-ca.pem");
                sim.write_ca(&ca).expect("CA");
                let mut operator =
                    OperatorLaunch::new(operator_binary(), plane.kubeconfig_path(), sim.base_url())
                        .okta_ca_file(&ca)
                        .okta_token(OPERATOR_TOKEN)
                        .identity("harness-operator")
                        .args([
                            "--resync-interval".to_string(),
                            format!("{}s", RESYNC.as_secs()),
                            "--okta-concurrency".to_string(),
                            OKTA_CONCURRENCY.to_string(),
                            "--okta-timeout".to_string(),
                            format!("{}s", OKTA_TIMEOUT.as_secs()),
                            "--reconcile-concurrency".to_string(),
                            "8".to_string(),
                        ])
                        .start(&plane.dir().join("harness-operator.log"))
                        .expect("the operator starts");
                operator
                    .wait_ready(Duration::from_secs(60))
                    .await
                    .expect("the operator is ready");
                started_tx
                    .send(Harness {
                        plane,
                        sim,
                        metrics: operator.metrics_url().to_string(),
                        operator: Mutex::new(operator),
                    })
                    .expect("hand over");
                std::future::pending::<()>().await;
            });
        });
        started_rx.recv().expect("harness started")
    })
}

/// The CRD as an older version had it: the times only `date-time` (so an end the
/// operator cannot hold passes), and a subject kind of a newer version allowed. Objects
/// stored through it stay when the current CRD is installed over it, as an upgrade or a
/// rollback leaves them.
pub fn looser_crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use serde_json::json;
    let mut crd = serde_json::to_value(OktaGroupBinding::crd()).expect("CRD");
    let spec = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    for time in ["startTime", "endTime"] {
        spec["properties"][time] = json!({"type": "string", "format": "date-time"});
    }
    spec["x-kubernetes-validations"] =
        json!([{"rule": "size(self.clusterRoleBindings) + size(self.roleBindings) > 0"}]);
    spec["properties"]["subject"]["properties"]["kind"]["enum"]
        .as_array_mut()
        .expect("enum")
        .push(json!("ServiceAccounts"));
    serde_json::from_value(crd).expect("a CRD")
}

/// An end no Rust time type of Kubernetes holds: what a person writes for "never".
pub const NEVER: &str = "9999-12-31T23:59:59Z";

/// The simplest declaration: the group gets the `view` ClusterRole.
pub fn view_spec(group: &str) -> OktaGroupBindingSpec {
    OktaGroupBindingSpec {
        group: group.into(),
        subject: Default::default(),
        cluster_role_bindings: vec![okta_rbac_api::ClusterRoleBindingSpec {
            cluster_role: "view".into(),
        }],
        role_bindings: vec![],
        on_group_missing: Default::default(),
        paused: false,
        start_time: None,
        end_time: None,
    }
}

pub async fn apply_binding(
    client: &kube::Client,
    name: &str,
    spec: OktaGroupBindingSpec,
) -> OktaGroupBinding {
    let api: Api<OktaGroupBinding> = Api::all(client.clone());
    api.create(&PostParams::default(), &OktaGroupBinding::new(name, spec))
        .await
        .expect("create OktaGroupBinding")
}

/// The ClusterRoleBindings and RoleBindings owned by an object, by its uid label.
pub async fn owned_bindings(
    client: &kube::Client,
    ogb: &OktaGroupBinding,
) -> (Vec<ClusterRoleBinding>, Vec<RoleBinding>) {
    let selector = format!(
        "oktarbac.io/owner-uid={}",
        ogb.metadata.uid.as_deref().expect("uid")
    );
    let params = kube::api::ListParams::default().labels(&selector);
    let crbs = Api::<ClusterRoleBinding>::all(client.clone())
        .list(&params)
        .await
        .expect("list")
        .items;
    let rbs = Api::<RoleBinding>::all(client.clone())
        .list(&params)
        .await
        .expect("list")
        .items;
    (crbs, rbs)
}

/// Watches objects and collects every moment one was seen not Ready.
pub struct ReadyWatch {
    stop: tokio::sync::oneshot::Sender<()>,
    seen: tokio::task::JoinHandle<Vec<String>>,
}

impl ReadyWatch {
    pub async fn stop(self) -> Vec<String> {
        let _ = self.stop.send(());
        self.seen.await.expect("watch task")
    }
}

pub fn never_leaves_ready(client: &kube::Client, names: &[&str]) -> ReadyWatch {
    let api: Api<OktaGroupBinding> = Api::all(client.clone());
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let seen = tokio::spawn(async move {
        let mut left = Vec::new();
        loop {
            for name in &names {
                if let Ok(object) = api.get(name).await
                    && let Some(ready) = condition(&object, "Ready")
                    && ready.status != "True"
                {
                    left.push(format!("{name}: {}: {}", ready.reason, ready.message));
                }
            }
            tokio::select! {
                _ = &mut stopped => return left,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    });
    ReadyWatch { stop, seen }
}

/// A counter or gauge of the operator's /metrics at `metrics_url` (0 when absent).
pub async fn metric(metrics_url: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{metrics_url}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// How many reconciles the harness operator has run: a window in which it moved was one
/// in which the controller was alive.
pub async fn reconciles() -> f64 {
    metric(&harness().metrics, "okta_rbac_reconciles_total").await
}
