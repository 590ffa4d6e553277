//! Helpers shared by integration tests.
#![allow(dead_code)]

use okta_rbac_operator::pki::client_config_trusting;
use okta_rbac_operator::sim::OktaSim;

/// An HTTP client that trusts only the simulator's CA, as a client configured with a CA
/// file would.
pub fn https_client(sim: &OktaSim) -> reqwest::Client {
    client_builder(sim).build().expect("HTTP client")
}

/// The same, speaking only HTTP/2, whose requests carry absolute URIs.
pub fn http2_client(sim: &OktaSim) -> reqwest::Client {
    client_builder(sim)
        .http2_prior_knowledge()
        .build()
        .expect("HTTP/2 client")
}

fn client_builder(sim: &OktaSim) -> reqwest::ClientBuilder {
    let pem = sim.ca_pem().expect("the simulator serves HTTPS");
    let config = client_config_trusting(&[pem]).expect("TLS config");
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .redirect(reqwest::redirect::Policy::none())
}

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use kube::CustomResourceExt;
use kube::api::{Api, PostParams};
use okta_rbac_operator::controller::desired::Policy;
use okta_rbac_operator::controlplane::ControlPlane;
use okta_rbac_operator::crd::{OktaGroupBinding, OktaGroupBindingSpec, UserNameAttribute};
use okta_rbac_operator::okta::auth::Credentials;
use okta_rbac_operator::operator::{OperatorConfig, run};
use okta_rbac_operator::sim::seed::SeedApiToken;
use okta_rbac_operator::sim::{Seed, SimOptions};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const OPERATOR_TOKEN: &str = "00operator-test-token";
pub const RESYNC: Duration = Duration::from_secs(3);
/// The harness operator's --okta-concurrency and --okta-timeout.
pub const OKTA_CONCURRENCY: usize = 4;
pub const OKTA_TIMEOUT: Duration = Duration::from_secs(5);

/// A control plane with the CRD, a local Okta, and the operator running against both,
/// shared by the tests of one binary (each uses its own groups and objects).
pub struct Harness {
    pub plane: &'static ControlPlane,
    pub sim: OktaSim,
    pub metrics: SocketAddr,
}

pub fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let plane = ControlPlane::shared(|| vec![OktaGroupBinding::crd()]);
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        // The simulator and the operator live on a runtime of their own, for the whole run.
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
                let config = OperatorConfig {
                    okta_org_url: sim.base_url().parse().expect("url"),
                    okta_credentials: Credentials::ApiToken(OPERATOR_TOKEN.into()),
                    okta_ca_pem: sim.ca_pem().map(str::to_string),
                    okta_concurrency: OKTA_CONCURRENCY,
                    okta_timeout: OKTA_TIMEOUT,
                    policy: Policy {
                        allowed_group_prefix: "k8s-".into(),
                        groups_prefix: String::new(),
                        username_prefix: String::new(),
                        user_name: UserNameAttribute::Email,
                    },
                    resync: RESYNC,
                    metrics_address: "127.0.0.1:0".parse().expect("address"),
                    leader_election: None,
                    reconcile_concurrency: 8,
                };
                let client = plane.client().await.expect("client");
                let (address_tx, address_rx) = tokio::sync::oneshot::channel();
                tokio::spawn(async move {
                    let result = run(
                        client,
                        config,
                        move |running| {
                            let _ = address_tx.send(running.metrics_address);
                        },
                        std::future::pending(),
                    )
                    .await;
                    panic!("the operator stopped: {result:?}");
                });
                let metrics = address_rx.await.expect("operator started");
                started_tx
                    .send(Harness {
                        plane,
                        sim,
                        metrics,
                    })
                    .expect("hand over");
                std::future::pending::<()>().await;
            });
        });
        started_rx.recv().expect("harness started")
    })
}

/// Polls `check` until it returns `Some`, or fails after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The simplest declaration: the group gets the `view` ClusterRole.
pub fn view_spec(group: &str) -> OktaGroupBindingSpec {
    OktaGroupBindingSpec {
        group: group.into(),
        subject: Default::default(),
        cluster_role_bindings: vec![okta_rbac_operator::crd::ClusterRoleBindingSpec {
            cluster_role: "view".into(),
        }],
        role_bindings: vec![],
        on_group_missing: Default::default(),
        paused: false,
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

pub fn condition<'a>(
    ogb: &'a OktaGroupBinding,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    ogb.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

/// The object once a condition has this status (and, if given, reason). A timeout
/// names the conditions last seen.
pub async fn wait_condition(
    client: &kube::Client,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> OktaGroupBinding {
    let api: Api<OktaGroupBinding> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut seen = String::from("nothing");
    loop {
        if let Ok(ogb) = api.get(name).await {
            if let Some(c) = condition(&ogb, type_)
                && c.status == status
                && reason.is_none_or(|r| c.reason == r)
            {
                return ogb;
            }
            let conditions = ogb
                .status
                .as_ref()
                .map(|s| s.conditions.clone())
                .unwrap_or_default();
            seen = conditions
                .iter()
                .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
                .collect::<Vec<_>>()
                .join("; ");
        }
        assert!(
            Instant::now() < deadline,
            "{name}: waited 45s for {type_}={status} {reason:?}; last seen: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
