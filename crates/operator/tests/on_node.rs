//! The operator as users run it: the image `make image` built, imported into a real node's
//! containerd, installed with `kubectl apply -k` from config/default (through an overlay
//! in tests/overlays that adds only the Okta URL, credentials and CA), running in Pods
//! under its shipped ServiceAccount, RBAC, probes, resources and restricted Pod Security.
//! The local Okta listens on the host's end of the node's network, where the Pods reach it.
//!
//! The tests take turns: each has a control plane and node of its own, and two Deployments
//! of two replicas at once would only slow each other down on a small machine.

mod common;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use kube::CustomResourceExt;
use kube::api::{Api, DeleteParams, ListParams};
use okta_rbac_api::{Decoded, OktaGroupBinding};
use okta_rbac_testenv::paths::{checkout, operator_image_archive};
use okta_rbac_testenv::wait::{condition, eventually};
use okta_rbac_testenv::{ControlPlane, ControlPlaneOptions};
use okta_sim::seed::SeedClient;
use okta_sim::{GroupType, HookRegistration, OktaSim, Seed, SimOptions};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const NAMESPACE: &str = "okta-rbac-operator";
const DEPLOYMENT: &str = "okta-rbac-operator";
const LEASE: &str = "okta-rbac-operator";
/// The label the operator puts on every binding it owns.
const MANAGED: &str = "app.kubernetes.io/managed-by=okta-rbac-operator";
const SSWS_TOKEN: &str = "00simulated-operator-token";
const SERVICE_APP: &str = "0oa-okta-rbac-operator";
/// Pulling nothing, two Pods start in seconds; the slack is for a loaded machine.
const ROLLOUT: Duration = Duration::from_secs(180);

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

enum Credentials {
    SswsToken,
    ServiceApp,
    /// The token, with the revocation authorizer served from the Pods.
    SswsTokenWithAuthorizer,
}

impl Credentials {
    fn overlay(&self) -> &'static str {
        match self {
            Self::SswsToken => "crates/operator/tests/overlays/node-token",
            Self::ServiceApp => "crates/operator/tests/overlays/node-service-app",
            Self::SswsTokenWithAuthorizer => "crates/operator/tests/overlays/node-authorizer",
        }
    }
}

/// The authorizer's Service as the apiserver reaches it: a NodePort on the node.
const AUTHORIZER_NODE_PORT: u16 = 30443;
/// The event hook receiver's Service as the local Okta (on the host) reaches it.
const EVENT_HOOK_NODE_PORT: u16 = 30444;
const EVENT_HOOK_SERVICE: &str = "okta-rbac-event-hook";
const EVENT_HOOK_SECRET: &str = "Bearer on-node-event-hook-secret";
const AUTHORIZER_SERVICE: &str = "okta-rbac-authorizer";

/// The revocation authorizer's certificates and the apiserver's configuration that
/// calls it on the node, made before the control plane starts (it reads them then).
struct AuthorizerWiring {
    /// Holds the files the apiserver reads; removed with the wiring.
    _dir: tempfile::TempDir,
    network_id: u32,
    /// The serving certificate and key, and the CA of the apiserver's client certificate.
    tls_crt: String,
    tls_key: String,
    client_ca: String,
    authorization_config: serde_json::Value,
    /// The event hook receiver's certificate (for the node's address, where the local
    /// Okta calls it), its key and CA, and its URL.
    hook_tls_crt: String,
    hook_tls_key: String,
    hook_ca: String,
    hook_url: String,
}

impl AuthorizerWiring {
    fn new() -> Self {
        use okta_rbac_pki::CertificateAuthority;
        // A network id of this test's own, so that the node's address is known now.
        let network_id = std::process::id().wrapping_mul(8) + 7;
        let (_, node_ip) = okta_rbac_testenv::node::network::NodeNetwork::addresses(network_id);
        let dir = tempfile::tempdir().expect("temp dir");
        let server_name = format!("{AUTHORIZER_SERVICE}.{NAMESPACE}.svc");
        let serving_ca = CertificateAuthority::new("authorizer serving CA").expect("CA");
        let serving = serving_ca
            .serving_cert(AUTHORIZER_SERVICE, &[server_name.as_str()], &[])
            .expect("serving cert");
        let client_ca = CertificateAuthority::new("authorizer client CA").expect("CA");
        let apiserver = client_ca
            .client_cert("kube-apiserver", &[])
            .expect("client cert");
        let write = |name: &str, content: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, content).expect("file");
            path.display().to_string()
        };
        let kubeconfig = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "authorizer", "cluster": {
                "server": format!("https://{node_ip}:{AUTHORIZER_NODE_PORT}/authorize"),
                "certificate-authority": write("serving-ca.crt", serving_ca.cert_pem()),
                "tls-server-name": server_name,
            }}],
            "users": [{"name": "kube-apiserver", "user": {
                "client-certificate": write("apiserver.crt", &apiserver.cert_pem),
                "client-key": write("apiserver.key", &apiserver.key_pem),
            }}],
            "contexts": [{"name": "authorizer", "context": {
                "cluster": "authorizer", "user": "kube-apiserver",
            }}],
            "current-context": "authorizer",
        });
        let kubeconfig_file = write("authorizer.kubeconfig", &kubeconfig.to_string());
        let authorization_config =
            okta_rbac_operator::authorizer::config::authorization_configuration(
                &okta_rbac_operator::authorizer::config::ConfigArgs {
                    kubeconfig_file,
                    groups_prefix: String::new(),
                    username_prefix: String::new(),
                    failure_policy:
                        okta_rbac_operator::authorizer::config::FailurePolicy::NoOpinion,
                    node: true,
                },
            );
        let hook_ca = CertificateAuthority::new("event hook serving CA").expect("CA");
        let hook = hook_ca
            .serving_cert(EVENT_HOOK_SERVICE, &[], &[std::net::IpAddr::from(node_ip)])
            .expect("serving cert");
        Self {
            _dir: dir,
            network_id,
            tls_crt: serving.cert_pem,
            tls_key: serving.key_pem,
            client_ca: client_ca.cert_pem().to_string(),
            authorization_config,
            hook_tls_crt: hook.cert_pem,
            hook_tls_key: hook.key_pem,
            hook_ca: hook_ca.cert_pem().to_string(),
            hook_url: format!("https://{node_ip}:{EVENT_HOOK_NODE_PORT}/okta/event-hook"),
        }
    }
}

/// A control plane with a node, the example Okta org on the node's network, and the
/// operator installed from the overlay, 2/2 Available.
struct Installed {
    plane: ControlPlane,
    sim: OktaSim,
    client: kube::Client,
    /// From `kubectl apply -k` until the Deployment was Available with both replicas.
    rollout: Duration,
}

async fn install(credentials: Credentials) -> Installed {
    install_with(credentials, None).await
}

async fn install_with(
    credentials: Credentials,
    authorizer: Option<&AuthorizerWiring>,
) -> Installed {
    let plane = ControlPlane::start(ControlPlaneOptions {
        node: true,
        node_network_id: authorizer.map(|a| a.network_id),
        authorization_config: authorizer.map(|a| a.authorization_config.clone()),
        ..Default::default()
    })
    .await
    .expect("control plane with a node (make node)");
    let host_ip = plane.host_ip().expect("the node's network");
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("key");
    let mut seed =
        Seed::from_yaml(include_str!("../../../examples/okta-org.yaml")).expect("example org");
    // The service app is made as Okta makes new API Services apps: requiring DPoP.
    seed.clients.push(SeedClient {
        dpop_bound_access_tokens: true,
        ..SeedClient::service_app(
            SERVICE_APP,
            key.to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("public key"),
            &["okta.groups.read", "okta.logs.read"],
        )
    });
    let sim = OktaSim::start(SimOptions {
        listen: SocketAddr::new(host_ip.into(), 0),
        ..SimOptions::new(seed)
    })
    .await
    .expect("local Okta on the node's network");

    let archive = operator_image_archive();
    assert!(
        archive.is_file(),
        "{} is missing: run `make image`",
        archive.display()
    );
    plane.import_image(&archive).expect("image import");

    let generated = checkout().join(credentials.overlay()).join("generated");
    std::fs::create_dir_all(&generated).expect("generated/");
    let write = |name: &str, content: &str| {
        std::fs::write(generated.join(name), content).expect("generated file");
    };
    write("orgUrl", sim.base_url());
    write("ca.crt", sim.ca_pem().expect("the local Okta's CA"));
    if let Some(authorizer) = authorizer {
        write("tls.crt", &authorizer.tls_crt);
        write("tls.key", &authorizer.tls_key);
        write("client-ca.crt", &authorizer.client_ca);
        write("hook-tls.crt", &authorizer.hook_tls_crt);
        write("hook-tls.key", &authorizer.hook_tls_key);
        write("eventHookSecret", EVENT_HOOK_SECRET);
    }
    match credentials {
        Credentials::SswsToken | Credentials::SswsTokenWithAuthorizer => write("token", SSWS_TOKEN),
        Credentials::ServiceApp => {
            write("clientId", SERVICE_APP);
            write(
                "privateKey",
                &key.to_pkcs8_pem(LineEnding::LF).expect("private key"),
            );
        }
    }

    let client = plane.client().await.expect("client");
    let started = Instant::now();
    kubectl(&plane, &["apply", "-k", credentials.overlay()], None);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    eventually(ROLLOUT, "the Deployment is 2/2 Available", || {
        let deployments = deployments.clone();
        async move {
            let status = deployments.get(DEPLOYMENT).await.ok()?.status?;
            (status.available_replicas == Some(2) && status.ready_replicas == Some(2)).then_some(())
        }
    })
    .await;
    let rollout = started.elapsed();
    Installed {
        plane,
        sim,
        client,
        rollout,
    }
}

fn kubectl(plane: &ControlPlane, args: &[&str], stdin: Option<&str>) -> String {
    let output = plane.kubectl(args, stdin).expect("kubectl");
    assert!(
        output.success,
        "kubectl {}: {}",
        args.join(" "),
        output.stderr
    );
    output.stdout
}

impl Installed {
    /// Polls like `eventually`, but on a timeout first prints what a person would look at:
    /// the Pods, the Lease, the events and each operator container's log.
    async fn eventually<T, F, Fut>(&self, timeout: Duration, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check().await {
                return value;
            }
            if Instant::now() >= deadline {
                self.print_diagnostics();
                panic!("timed out after {timeout:?} waiting for: {what}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn print_diagnostics(&self) {
        let show = |args: &[&str]| match self.plane.kubectl(args, None) {
            Ok(out) => eprintln!("$ kubectl {}\n{}{}", args.join(" "), out.stdout, out.stderr),
            Err(error) => eprintln!("$ kubectl {}: {error}", args.join(" ")),
        };
        show(&["get", "pods,lease,events", "-n", NAMESPACE, "-o", "wide"]);
        show(&["get", "lease", LEASE, "-n", NAMESPACE, "-o", "yaml"]);
        show(&[
            "logs",
            "-n",
            NAMESPACE,
            "-l",
            "app.kubernetes.io/name=okta-rbac-operator",
            "--tail=60",
            "--prefix",
        ]);
    }

    async fn pods(&self) -> Vec<Pod> {
        Api::<Pod>::namespaced(self.client.clone(), NAMESPACE)
            .list(&ListParams::default().labels("app.kubernetes.io/name=okta-rbac-operator"))
            .await
            .expect("pods")
            .items
    }

    /// The Pod IP of the replica holding the Lease.
    async fn leader_ip(&self) -> Option<String> {
        let holder = self.lease_holder().await?;
        let pod = self
            .pods()
            .await
            .into_iter()
            .find(|p| p.metadata.name.as_deref() == Some(holder.as_str()))?;
        pod.status?.pod_ip
    }

    async fn lease_holder(&self) -> Option<String> {
        Api::<Lease>::namespaced(self.client.clone(), NAMESPACE)
            .get(LEASE)
            .await
            .ok()?
            .spec?
            .holder_identity
    }

    /// The restart counts of the operator containers, and why each last stopped.
    async fn restarts(&self) -> Vec<(String, i32, Option<String>)> {
        self.pods()
            .await
            .into_iter()
            .flat_map(|pod| {
                let name = pod.metadata.name.clone().unwrap_or_default();
                pod.status
                    .and_then(|s| s.container_statuses)
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |c| {
                        let last = c
                            .last_state
                            .and_then(|s| s.terminated)
                            .and_then(|t| t.reason);
                        (name.clone(), c.restart_count, last)
                    })
            })
            .collect()
    }

    /// The operator container's id in a Pod (without `containerd://`).
    async fn container_id(&self, pod: &str) -> String {
        let pod = Api::<Pod>::namespaced(self.client.clone(), NAMESPACE)
            .get(pod)
            .await
            .expect("pod");
        let id = pod
            .status
            .and_then(|s| s.container_statuses)
            .and_then(|c| c.into_iter().next())
            .and_then(|c| c.container_id)
            .expect("a started container");
        id.trim_start_matches("containerd://").to_string()
    }

    /// The highest memory use of a Pod's operator container so far, in bytes.
    async fn peak_memory(&self, pod: &str) -> u64 {
        let id = self.container_id(pod).await;
        let cgroup = self
            .plane
            .container_cgroup("memory", &id)
            .unwrap_or_else(|| panic!("no memory cgroup for container {id}"));
        std::fs::read_to_string(cgroup.join("memory.max_usage_in_bytes"))
            .expect("memory.max_usage_in_bytes")
            .trim()
            .parse()
            .expect("a number")
    }

    async fn wait_ready(&self, names: &[String], timeout: Duration) {
        // Decoded one by one: an object stored through a looser CRD is one the typed list
        // would fail on.
        let api: Api<Decoded<OktaGroupBinding>> = Api::all(self.client.clone());
        let what = format!("{} OktaGroupBindings Ready=True", names.len());
        eventually(timeout, &what, || {
            let api = api.clone();
            async move {
                let all = api.list(&ListParams::default()).await.ok()?.items;
                let ready = all
                    .iter()
                    .filter_map(Decoded::readable)
                    .filter(|o| names.contains(&o.metadata.name.clone().unwrap_or_default()))
                    .filter(|o| condition(o, "Ready").is_some_and(|c| c.status == "True"))
                    .count();
                (ready == names.len()).then_some(())
            }
        })
        .await;
    }
}

/// What the samples grant, seen in the cluster.
async fn assert_sample_bindings(client: &kube::Client) {
    let crbs = Api::<ClusterRoleBinding>::all(client.clone())
        .list(&ListParams::default().labels(MANAGED))
        .await
        .expect("ClusterRoleBindings");
    assert!(
        crbs.items.iter().any(|b| b.role_ref.name == "cluster-admin"
            && b.subjects
                .iter()
                .flatten()
                .any(|s| s.kind == "Group" && s.name == "k8s-admins")),
        "k8s-admins is bound to cluster-admin: {crbs:?}"
    );
    let rbs = Api::<RoleBinding>::namespaced(client.clone(), "default")
        .list(&ListParams::default().labels(MANAGED))
        .await
        .expect("RoleBindings");
    assert!(
        rbs.items
            .iter()
            .any(|b| b.role_ref.name == "restricted-user"
                && b.subjects
                    .iter()
                    .flatten()
                    .any(|s| s.kind == "Group" && s.name == "k8s-restricted-users")),
        "k8s-restricted-users is bound to restricted-user in default: {rbs:?}"
    );
}

fn samples() -> Vec<String> {
    vec!["k8s-admins".into(), "k8s-restricted-users".into()]
}

#[tokio::test]
async fn the_shipped_manifests_run_the_operator_in_pods_that_hand_over_the_lease() {
    let _turn = TURN.lock().await;
    let world = install(Credentials::SswsToken).await;
    println!(
        "kubectl apply -k to 2/2 Available: {:.1}s",
        world.rollout.as_secs_f64()
    );

    // Restricted Pod Security admitted the Pods: they run as the shipped user.
    let namespace = Api::<Namespace>::all(world.client.clone())
        .get(NAMESPACE)
        .await
        .expect("namespace");
    assert_eq!(
        namespace
            .metadata
            .labels
            .unwrap_or_default()
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("restricted")
    );
    let pods = world.pods().await;
    assert_eq!(pods.len(), 2, "two replicas");
    for pod in &pods {
        let spec = pod.spec.as_ref().expect("spec");
        assert_eq!(spec.service_account_name.as_deref(), Some(DEPLOYMENT));
        assert_eq!(
            spec.node_name.as_deref(),
            world.plane.node_name(),
            "scheduled on the node"
        );
    }

    // An object the operator cannot read, stored through an older, looser CRD with the
    // current one installed over it; then every Pod restarts. The rollout completes, and
    // every other object is reconciled within seconds (below).
    world
        .plane
        .install_crds(&[common::looser_crd()])
        .await
        .expect("the looser CRD");
    let hostile = format!(
        "apiVersion: oktarbac.io/v1alpha1\nkind: OktaGroupBinding\nmetadata:\n  name: never-ends\nspec:\n  group: k8s-admins\n  endTime: \"{}\"\n  clusterRoleBindings:\n    - clusterRole: view\n",
        common::NEVER
    );
    kubectl(&world.plane, &["apply", "-f", "-"], Some(&hostile));
    world
        .plane
        .install_crds(&[OktaGroupBinding::crd()])
        .await
        .expect("the current CRD");
    let restarted = Instant::now();
    let deployment = format!("deployment/{DEPLOYMENT}");
    kubectl(
        &world.plane,
        &["-n", NAMESPACE, "rollout", "restart", &deployment],
        None,
    );
    kubectl(
        &world.plane,
        &[
            "-n",
            NAMESPACE,
            "rollout",
            "status",
            &deployment,
            "--timeout=180s",
        ],
        None,
    );
    println!(
        "rollout restart with an unreadable object stored: complete in {:.1}s",
        restarted.elapsed().as_secs_f64()
    );
    let names: Vec<String> = world
        .eventually(
            Duration::from_secs(90),
            "only the new Pods are left",
            || async {
                let pods = world.pods().await;
                let names: Vec<String> = pods
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .filter_map(|p| p.metadata.name.clone())
                    .collect();
                (pods.len() == 2).then_some(names)
            },
        )
        .await;

    let leader = eventually(
        Duration::from_secs(60),
        "one of the Pods holds the Lease",
        || async {
            let holder = world.lease_holder().await?;
            names.contains(&holder).then_some(holder)
        },
    )
    .await;

    let applied = Instant::now();
    kubectl(&world.plane, &["apply", "-k", "config/samples"], None);
    world.wait_ready(&samples(), Duration::from_secs(60)).await;
    println!(
        "kubectl apply -k config/samples to both Ready: {:.1}s",
        applied.elapsed().as_secs_f64()
    );
    assert_sample_bindings(&world.client).await;
    let hostile = kubectl(
        &world.plane,
        &[
            "get",
            "oktagroupbinding",
            "never-ends",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}",
        ],
        None,
    );
    assert_eq!(
        hostile.trim(),
        "Unreadable",
        "the stored object is reported"
    );

    // The leader's Pod goes away (as in a drain): the other Pod takes the Lease, and a
    // change made afterwards is applied by it.
    let deleted = Instant::now();
    Api::<Pod>::namespaced(world.client.clone(), NAMESPACE)
        .delete(&leader, &DeleteParams::default())
        .await
        .expect("delete the leader's Pod");
    // The standby and the Pod that replaces the deleted one both contend; either may win.
    let new_leader = world
        .eventually(
            Duration::from_secs(90),
            "another of the Deployment's Pods takes the Lease",
            || async {
                let holder = world.lease_holder().await?;
                let current: Vec<String> = world
                    .pods()
                    .await
                    .iter()
                    .filter_map(|p| p.metadata.name.clone())
                    .collect();
                (holder != leader && current.contains(&holder)).then_some(holder)
            },
        )
        .await;
    let role = if names.contains(&new_leader) {
        "the standby"
    } else {
        "the replacement Pod"
    };
    println!(
        "leader Pod deleted to {role} leading: {:.1}s",
        deleted.elapsed().as_secs_f64()
    );
    kubectl(
        &world.plane,
        &["apply", "-f", "-"],
        Some(
            "apiVersion: oktarbac.io/v1alpha1\nkind: OktaGroupBinding\nmetadata:\n  name: engineering-view\nspec:\n  group: k8s-restricted-users\n  clusterRoleBindings:\n    - clusterRole: view\n",
        ),
    );
    world
        .wait_ready(&["engineering-view".into()], Duration::from_secs(60))
        .await;
    let crbs = Api::<ClusterRoleBinding>::all(world.client.clone())
        .list(&ListParams::default().labels(MANAGED))
        .await
        .expect("ClusterRoleBindings");
    assert!(
        crbs.items.iter().any(|b| b.role_ref.name == "view"),
        "the new leader applied the change: {crbs:?}"
    );
    assert!(
        world
            .sim
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/api/v1/groups")),
        "the Pods asked the local Okta"
    );
    for (pod, restarts, last) in world.restarts().await {
        assert_eq!(restarts, 0, "{pod} restarted ({last:?})");
    }
}

/// Replaces keys of the credentials Secret, as `kubectl apply` of a rotated Secret does.
fn patch_credentials(world: &Installed, data: serde_json::Value) {
    let patch = serde_json::json!({ "stringData": data }).to_string();
    kubectl(
        &world.plane,
        &[
            "patch",
            "secret",
            "okta-credentials",
            "-n",
            NAMESPACE,
            "--type",
            "merge",
            "-p",
            &patch,
        ],
        None,
    );
}

/// A new object for a new group, Ready: proof that lookups made now succeed.
async fn apply_and_wait_ready(world: &Installed, group: &str) {
    world
        .sim
        .create_group(group, GroupType::OktaGroup)
        .expect("group");
    let manifest = format!(
        "apiVersion: oktarbac.io/v1alpha1\nkind: OktaGroupBinding\nmetadata:\n  name: {group}\n\
         spec:\n  group: {group}\n  clusterRoleBindings:\n    - clusterRole: view\n"
    );
    kubectl(&world.plane, &["apply", "-f", "-"], Some(&manifest));
    world
        .wait_ready(&[group.to_string()], Duration::from_secs(60))
        .await;
}

/// The rotation is done once the local Okta saw the new credentials answered; the old
/// ones may go then.
async fn wait_until_used(world: &Installed, caller: &str, changed: Instant) {
    world
        .eventually(
            Duration::from_secs(180),
            &format!("a request as {caller}"),
            || async {
                world
                    .sim
                    .requests()
                    .iter()
                    .any(|r| r.status == 200 && r.caller.as_deref() == Some(caller))
                    .then_some(())
            },
        )
        .await;
    println!(
        "the rotated credentials were in use {:.1}s after the Secret changed",
        changed.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn a_dpop_service_app_from_the_secret_authenticates_and_takes_a_rotated_key_without_a_restart()
 {
    let _turn = TURN.lock().await;
    let world = install(Credentials::ServiceApp).await;
    kubectl(&world.plane, &["apply", "-k", "config/samples"], None);
    world.wait_ready(&samples(), Duration::from_secs(60)).await;
    assert_sample_bindings(&world.client).await;
    let requests = world.sim.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.path == "/oauth2/v1/token" && r.status == 200),
        "the operator got an access token with its private key"
    );
    let group_calls: Vec<_> = requests
        .iter()
        .filter(|r| r.path.starts_with("/api/v1/groups"))
        .collect();
    assert!(
        !group_calls.is_empty()
            && group_calls.iter().all(|r| {
                r.status == 200 && r.caller.as_deref() == Some("DPoP 0oa-okta-rbac-operator")
            }),
        "every group request went out with the DPoP-bound token: {group_calls:?}"
    );

    // Rotation as Okta's admins do it: register the new key, put it and its kid in the
    // Secret, wait until it is used, remove the old key.
    let watch = common::never_leaves_ready(&world.client, &["k8s-admins", "k8s-restricted-users"]);
    let rotated = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("key");
    world
        .sim
        .add_client_key(
            SERVICE_APP,
            "key-2",
            &rotated
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("public key"),
        )
        .expect("register the new key");
    let changed = Instant::now();
    patch_credentials(
        &world,
        serde_json::json!({
            "privateKey": rotated.to_pkcs8_pem(LineEnding::LF).expect("pkcs8").to_string(),
            "keyId": "key-2",
        }),
    );
    wait_until_used(&world, &format!("{SERVICE_APP} kid=key-2"), changed).await;
    world
        .sim
        .remove_client_key(SERVICE_APP, None)
        .expect("remove the old key");
    apply_and_wait_ready(&world, "k8s-after-key-rotation").await;
    let left_ready = watch.stop().await;
    assert!(left_ready.is_empty(), "a sample left Ready: {left_ready:?}");
    for (pod, restarts, last) in world.restarts().await {
        assert_eq!(restarts, 0, "{pod} restarted ({last:?})");
    }
}

#[tokio::test]
async fn a_rotated_api_token_in_the_secret_is_used_without_a_restart() {
    const ROTATED: &str = "00rotated-operator-token";
    let _turn = TURN.lock().await;
    let world = install(Credentials::SswsToken).await;
    kubectl(&world.plane, &["apply", "-k", "config/samples"], None);
    world.wait_ready(&samples(), Duration::from_secs(60)).await;
    let watch = common::never_leaves_ready(&world.client, &["k8s-admins", "k8s-restricted-users"]);
    world.sim.issue_api_token("rotated", ROTATED, None);
    let changed = Instant::now();
    patch_credentials(&world, serde_json::json!({ "token": ROTATED }));
    // The System Log is read every 30 s: the first read after the kubelet updated the file
    // goes out with the new token.
    wait_until_used(&world, "SSWS rotated", changed).await;
    world.sim.revoke_api_token(SSWS_TOKEN);
    apply_and_wait_ready(&world, "k8s-after-token-rotation").await;
    let left_ready = watch.stop().await;
    assert!(left_ready.is_empty(), "a sample left Ready: {left_ready:?}");
    assert!(
        world.sim.requests().iter().all(|r| r.status != 401),
        "the revoked token was never refused: the operator had moved on"
    );
    for (pod, restarts, last) in world.restarts().await {
        assert_eq!(restarts, 0, "{pod} restarted ({last:?})");
    }
}

#[tokio::test]
async fn a_thousand_objects_converge_without_a_restart_inside_the_memory_limit() {
    const OBJECTS: usize = 1000;
    const NAMESPACES: usize = 100;
    const NAMESPACES_PER_OBJECT: usize = 10;
    let _turn = TURN.lock().await;
    let world = install(Credentials::SswsToken).await;
    let names: Vec<String> = (0..OBJECTS).map(|i| format!("k8s-scale-{i:04}")).collect();
    for name in &names {
        world
            .sim
            .create_group(name, GroupType::OktaGroup)
            .expect("group");
    }
    // The benchmark's workload: a ClusterRoleBinding and RoleBindings in 10 of 100
    // namespaces per object, 11,000 bindings in all.
    let namespaces: String = (0..NAMESPACES)
        .map(|n| format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: scale-{n:03}\n---\n"))
        .collect();
    kubectl(&world.plane, &["apply", "-f", "-"], Some(&namespaces));
    let manifests: String = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let role_bindings: String = (0..NAMESPACES_PER_OBJECT)
                .map(|k| {
                    let n = (i + k * NAMESPACES_PER_OBJECT) % NAMESPACES;
                    format!("    - namespace: scale-{n:03}\n      clusterRole: view\n")
                })
                .collect();
            format!(
                "apiVersion: oktarbac.io/v1alpha1\nkind: OktaGroupBinding\nmetadata:\n  name: {name}\nspec:\n  group: {name}\n  clusterRoleBindings:\n    - clusterRole: view\n  roleBindings:\n{role_bindings}---\n"
            )
        })
        .collect();
    let applied = Instant::now();
    kubectl(
        &world.plane,
        &["apply", "--server-side", "-f", "-"],
        Some(&manifests),
    );
    world.wait_ready(&names, Duration::from_secs(600)).await;
    println!(
        "{OBJECTS} objects applied to all Ready: {:.1}s",
        applied.elapsed().as_secs_f64()
    );
    let role_bindings = Api::<RoleBinding>::all(world.client.clone())
        .list_metadata(&ListParams::default().labels(MANAGED))
        .await
        .expect("RoleBindings")
        .items
        .len();
    assert_eq!(
        role_bindings,
        OBJECTS * NAMESPACES_PER_OBJECT,
        "RoleBindings"
    );
    for (pod, restarts, last) in world.restarts().await {
        assert_eq!(restarts, 0, "{pod} restarted ({last:?})");
    }
    let limit = memory_limit_bytes(&world).await;
    let leader = world.lease_holder().await.expect("a leader");
    let peak = world.peak_memory(&leader).await;
    println!(
        "leader's peak memory with {OBJECTS} objects: {:.0} MiB of a {:.0} MiB limit",
        mib(peak),
        mib(limit)
    );
    assert!(peak < limit, "peak {peak} B under the limit {limit} B");
}

#[tokio::test]
async fn the_kubelet_restarts_a_container_whose_liveness_fails() {
    let _turn = TURN.lock().await;
    let world = install(Credentials::SswsToken).await;
    let pod = world
        .pods()
        .await
        .into_iter()
        .find_map(|p| p.metadata.name)
        .expect("a pod");
    let id = world.container_id(&pod).await;
    let cgroup = world
        .plane
        .container_cgroup("pids", &id)
        .expect("the container's cgroup");
    let pids = std::fs::read_to_string(cgroup.join("cgroup.procs")).expect("cgroup.procs");
    // A stopped process answers no probe: a hang the kubelet must notice.
    let stopped = Instant::now();
    for pid in pids.split_whitespace() {
        let status = std::process::Command::new("kill")
            .args(["-STOP", pid])
            .status()
            .expect("kill");
        assert!(status.success(), "SIGSTOP {pid}");
    }
    let pods: Api<Pod> = Api::namespaced(world.client.clone(), NAMESPACE);
    eventually(
        Duration::from_secs(120),
        "the kubelet restarts the hung container",
        || async {
            let status = pods.get(&pod).await.ok()?.status?;
            let container = status.container_statuses?.into_iter().next()?;
            (container.restart_count >= 1 && container.ready).then_some(())
        },
    )
    .await;
    println!(
        "hung container restarted and ready again after {:.1}s",
        stopped.elapsed().as_secs_f64()
    );
    let events = kubectl(
        &world.plane,
        &[
            "-n",
            NAMESPACE,
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={pod}"),
            "-o",
            "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
        ],
        None,
    );
    assert!(
        events.contains("Liveness probe failed"),
        "the kubelet says why: {events}"
    );
}

async fn memory_limit_bytes(world: &Installed) -> u64 {
    let deployment = Api::<Deployment>::namespaced(world.client.clone(), NAMESPACE)
        .get(DEPLOYMENT)
        .await
        .expect("deployment");
    let limit = deployment
        .spec
        .template
        .spec
        .and_then(|s| s.containers.into_iter().next())
        .and_then(|c| c.resources)
        .and_then(|r| r.limits)
        .and_then(|l| l.get("memory").cloned())
        .expect("a memory limit");
    let text = limit.0;
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let factor = match unit {
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "" => 1,
        other => panic!("unexpected unit {other} in {text}"),
    };
    number.parse::<u64>().expect("a number") * factor
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// The apiserver's answer for `user` in `groups` listing pods in default: (allowed,
/// denied outright, reason), as for a token carrying them.
async fn may_list_pods(client: &kube::Client, user: &str, groups: &[&str]) -> (bool, bool, String) {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
    };
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.into()),
            groups: Some(groups.iter().map(|g| g.to_string()).collect()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some("list".into()),
                resource: Some("pods".into()),
                namespace: Some("default".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let status = Api::<SubjectAccessReview>::all(client.clone())
        .create(&Default::default(), &review)
        .await
        .expect("SubjectAccessReview")
        .status
        .unwrap_or_default();
    (
        status.allowed,
        status.denied.unwrap_or(false),
        status.reason.unwrap_or_default(),
    )
}

/// The Pod IP a leader-only Service's EndpointSlice points at, if any.
async fn leader_endpoint(client: &kube::Client, service: &str) -> Option<String> {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    let slice = Api::<EndpointSlice>::namespaced(client.clone(), NAMESPACE)
        .get(&format!("{service}-leader"))
        .await
        .ok()?;
    slice.endpoints?.first()?.addresses.first().cloned()
}

#[tokio::test]
async fn the_revocation_authorizer_and_the_event_hook_in_pods_are_the_leader_s_and_survive_a_failover()
 {
    let _turn = TURN.lock().await;
    let wiring = AuthorizerWiring::new();
    let world = install_with(Credentials::SswsTokenWithAuthorizer, Some(&wiring)).await;
    kubectl(&world.plane, &["apply", "-k", "config/samples"], None);
    world.wait_ready(&samples(), Duration::from_secs(60)).await;

    // Both Services point at the leader's Pod, not at the standby's.
    let leader = world
        .eventually(
            Duration::from_secs(60),
            "the EndpointSlices name the leader",
            || async {
                let ip = world.leader_ip().await?;
                let authorizer = leader_endpoint(&world.client, AUTHORIZER_SERVICE).await;
                let hook = leader_endpoint(&world.client, EVENT_HOOK_SERVICE).await;
                (authorizer.as_deref() == Some(ip.as_str()) && hook.as_deref() == Some(ip.as_str()))
                    .then_some(ip)
            },
        )
        .await;
    println!("the authorizer's and the event hook's Services point at the leader, {leader}");
    // Okta's event hook, registered at the receiver's NodePort and verified by the Pods.
    world.sim.trust_hook_roots(&wiring.hook_ca).expect("trust");
    world
        .sim
        .register_event_hook(HookRegistration {
            name: "okta-rbac-operator",
            uri: &wiring.hook_url,
            header: "Authorization",
            secret: EVENT_HOOK_SECRET,
            event_types: &okta_rbac_operator::hooks::EVENT_TYPES,
        })
        .await
        .expect("the Pods' receiver answers Okta's challenge");

    let bob = (
        "bob@example.com",
        ["k8s-restricted-users", "system:authenticated"],
    );
    let alice = ("alice@example.com", ["k8s-admins", "system:authenticated"]);
    let (allowed, _, reason) = may_list_pods(&world.client, bob.0, &bob.1).await;
    assert!(allowed, "bob, a member, lists pods: {reason}");

    // Removed in Okta: a token that still carries the group is denied, by the Pods'
    // authorizer, with its reason; alice and service accounts are untouched.
    let group = world
        .sim
        .group_id("k8s-restricted-users", GroupType::OktaGroup)
        .expect("group");
    let removed = Instant::now();
    world
        .sim
        .remove_member(&group, "bob@example.com")
        .expect("remove");
    let reason = world
        .eventually(
            Duration::from_secs(90),
            "bob's old groups are denied",
            || async {
                let (allowed, denied, reason) = may_list_pods(&world.client, bob.0, &bob.1).await;
                (!allowed && denied).then_some(reason)
            },
        )
        .await;
    let denied_after = removed.elapsed();
    println!(
        "removed in Okta to denied through the Pods' authorizer, told by the event hook: {:.1}s (System Log poll 30s)",
        denied_after.as_secs_f64()
    );
    assert!(
        denied_after < Duration::from_secs(10),
        "the hook, not the System Log, brought it: {denied_after:?}"
    );
    assert!(
        reason.contains("bob@example.com left k8s-restricted-users in Okta"),
        "{reason}"
    );
    assert!(
        may_list_pods(&world.client, alice.0, &alice.1).await.0,
        "alice is untouched"
    );
    let service_account = may_list_pods(
        &world.client,
        "system:serviceaccount:default:default",
        &["system:serviceaccounts", "system:authenticated"],
    )
    .await;
    assert!(
        !service_account.1,
        "a service account never reaches the authorizer"
    );

    // The leader's Pod deleted: the standby takes the Lease, points the Service at
    // itself, loads the member lists, and denies again. Until then the apiserver gets no
    // answer and falls back to RBAC (failurePolicy NoOpinion): that window is measured.
    let old_leader = world.lease_holder().await.expect("a leader");
    let failover = Instant::now();
    Api::<Pod>::namespaced(world.client.clone(), NAMESPACE)
        .delete(&old_leader, &DeleteParams::default())
        .await
        .expect("delete the leader's Pod");
    let mut fell_back = Duration::ZERO;
    let mut last = Instant::now();
    let mut taken_over = None;
    loop {
        let (allowed, denied, _) = may_list_pods(&world.client, bob.0, &bob.1).await;
        if allowed {
            fell_back += last.elapsed();
        }
        last = Instant::now();
        let holder = world.lease_holder().await;
        let new_leader = holder.is_some_and(|h| h != old_leader);
        if new_leader && taken_over.is_none() {
            taken_over = Some(failover.elapsed());
        }
        if denied && new_leader {
            break;
        }
        if failover.elapsed() > Duration::from_secs(120) {
            world.print_diagnostics();
            panic!("no new leader denied bob's old groups within 120s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let new_ip = world.leader_ip().await.expect("the new leader's IP");
    assert_eq!(
        leader_endpoint(&world.client, AUTHORIZER_SERVICE)
            .await
            .as_deref(),
        Some(new_ip.as_str()),
        "the Service follows the new leader"
    );
    println!(
        "failover to denying again: {:.1}s (the standby held the Lease after {:.1}s), of which RBAC alone answered for about {:.1}s",
        failover.elapsed().as_secs_f64(),
        taken_over.unwrap_or_default().as_secs_f64(),
        fell_back.as_secs_f64()
    );

    // The hook's Service follows too: bob added back reaches the new leader by the hook.
    world
        .eventually(
            Duration::from_secs(60),
            "the event hook's Service follows the new leader",
            || async {
                (leader_endpoint(&world.client, EVENT_HOOK_SERVICE)
                    .await
                    .as_deref()
                    == Some(new_ip.as_str()))
                .then_some(())
            },
        )
        .await;
    // The old leader's Pod answers (503, not leading) until it has stopped: only once it
    // is gone is the NodePort sure to reach the new leader.
    let pods = Api::<Pod>::namespaced(world.client.clone(), NAMESPACE);
    world
        .eventually(
            Duration::from_secs(60),
            "the old leader's Pod is gone",
            || async {
                pods.get_opt(&old_leader)
                    .await
                    .ok()?
                    .is_none()
                    .then_some(())
            },
        )
        .await;
    println!(
        "the old leader's Pod gone {:.1}s after its deletion",
        failover.elapsed().as_secs_f64()
    );
    // kube-proxy follows the EndpointSlice a moment later: Okta reaches the new leader
    // once its receiver answers Okta's challenge through the NodePort (a delivery sent
    // before that fails, Okta tries once more, and else the System Log brings it).
    let receiver = reqwest::Client::builder()
        .tls_backend_preconfigured(
            okta_rbac_pki::client_config_trusting(&[wiring.hook_ca.as_str()]).expect("TLS"),
        )
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    world
        .eventually(
            Duration::from_secs(60),
            "the receiver answers through the NodePort",
            || async {
                let answer = receiver
                    .get(&wiring.hook_url)
                    .header("Authorization", EVENT_HOOK_SECRET)
                    .header("x-okta-verification-challenge", "after-failover")
                    .send()
                    .await
                    .ok()?;
                answer.status().is_success().then_some(())
            },
        )
        .await;
    let added = Instant::now();
    world
        .sim
        .add_member(&group, "bob@example.com")
        .expect("add");
    world
        .eventually(Duration::from_secs(90), "bob allowed again", || async {
            may_list_pods(&world.client, bob.0, &bob.1)
                .await
                .0
                .then_some(())
        })
        .await;
    let allowed_after = added.elapsed();
    println!(
        "added back in Okta to allowed, the new leader told by the event hook: {:.1}s",
        allowed_after.as_secs_f64()
    );
    if allowed_after >= Duration::from_secs(10) {
        for delivery in world.sim.hook_deliveries() {
            eprintln!("hook delivery: {delivery:?}");
        }
        world.print_diagnostics();
    }
    assert!(
        allowed_after < Duration::from_secs(10),
        "the hook, not the System Log, brought it: {allowed_after:?}"
    );
}
