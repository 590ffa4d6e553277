//! The one-command demo: the local Okta with the example org, a control plane whose
//! kube-apiserver trusts it as OIDC issuer, the CRD, the operator and the samples; then
//! what each example user may do with their own real ID token.

use crate::controller::desired::Policy;
use crate::controlplane::{ControlPlane, ControlPlaneOptions, OidcOptions, unique_name};
use crate::crd::{OktaGroupBinding, UserNameAttribute};
use crate::okta::auth::Credentials;
use crate::operator::{OperatorConfig, run};
use crate::sim::{OktaSim, Seed, SimOptions};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service};
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, CustomResourceExt};
use std::time::{Duration, Instant};

pub const EXAMPLE_ORG: &str = include_str!("../examples/okta-org.yaml");
const SAMPLES: [&str; 2] = [
    include_str!("../config/samples/k8s-admins.yaml"),
    include_str!("../config/samples/k8s-restricted-users.yaml"),
];
const OPERATOR_TOKEN: &str = "00simulated-operator-token";
/// The example users and their passwords in the example org.
pub const USERS: [(&str, &str); 4] = [
    ("alice@example.com", "alice-password"),
    ("bob@example.com", "bob-password"),
    ("carol@example.com", "carol-password"),
    ("dave@example.com", "dave-password"),
];

/// A real ID token for a user, from an authorization server of the local Okta.
pub async fn id_token(
    sim: &OktaSim,
    server: &str,
    user: &str,
    password: &str,
) -> Result<String, String> {
    let tls = crate::pki::client_config_trusting(&[sim.ca_pem().unwrap_or_default()])?;
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| e.to_string())?;
    let answer: serde_json::Value = http
        .post(format!("{}/v1/token", sim.issuer(server)))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "kubernetes"),
            ("username", user),
            ("password", password),
            ("scope", "openid email profile groups"),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    answer["id_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no ID token for {user}: {answer}"))
}

fn code<T>(result: Result<T, kube::Error>) -> u16 {
    match result {
        Ok(_) => 200,
        Err(kube::Error::Api(status)) => status.code,
        Err(_) => 0,
    }
}

pub const ACTIONS: [&str; 6] = [
    "list pods in default",
    "list services in default",
    "list secrets in default",
    "list pods in kube-system",
    "create a configmap in default",
    "list namespaces",
];

/// What a client may do: the HTTP status of each of [`ACTIONS`] (0: no answer).
pub async fn access(client: &Client) -> Vec<u16> {
    // A write no admission plugin gets in the way of (a pod would need a ServiceAccount).
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(unique_name("probe")),
            ..Default::default()
        },
        ..Default::default()
    };
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let default_pods = Api::<Pod>::namespaced(client.clone(), "default");
    vec![
        code(default_pods.list(&Default::default()).await),
        code(
            Api::<Service>::namespaced(client.clone(), "default")
                .list(&Default::default())
                .await,
        ),
        code(
            Api::<Secret>::namespaced(client.clone(), "default")
                .list(&Default::default())
                .await,
        ),
        code(
            Api::<Pod>::namespaced(client.clone(), "kube-system")
                .list(&Default::default())
                .await,
        ),
        code(
            Api::<ConfigMap>::namespaced(client.clone(), "default")
                .create(&dry_run, &config_map)
                .await,
        ),
        code(
            Api::<Namespace>::all(client.clone())
                .list(&Default::default())
                .await,
        ),
    ]
}

/// How the demo runs the operator.
pub enum OperatorRun {
    /// In this process, with the admin's credentials.
    InProcess,
    /// As its own process (this binary), with a token of its own ServiceAccount and
    /// exactly the RBAC of `config/default`, applied with kubectl from the working
    /// directory (the repository).
    AsItself { binary: std::path::PathBuf },
}

/// The example org, a control plane that trusts it with this prefix, the operator and
/// the samples, every object Ready.
pub struct Demo {
    pub sim: OktaSim,
    pub plane: ControlPlane,
    operator: Option<std::process::Child>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(child) = self.operator.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Demo {
    /// The peak resident memory of an operator running as its own process, in KiB.
    pub fn operator_peak_memory_kib(&self) -> Option<u64> {
        let pid = self.operator.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
    }

    pub async fn start(prefix: &str) -> Result<Self, String> {
        Self::start_with(prefix, OperatorRun::InProcess).await
    }

    pub async fn start_with(prefix: &str, operator: OperatorRun) -> Result<Self, String> {
        let seed = Seed::from_yaml(EXAMPLE_ORG).map_err(|e| e.to_string())?;
        let sim = OktaSim::start(SimOptions::new(seed))
            .await
            .map_err(|e| e.to_string())?;
        let plane = ControlPlane::start(ControlPlaneOptions {
            crds: vec![OktaGroupBinding::crd()],
            oidc: Some(OidcOptions {
                issuer_url: sim.issuer("default"),
                client_id: "kubernetes".into(),
                ca_pem: sim.ca_pem().unwrap_or_default().into(),
                username_claim: "email".into(),
                username_prefix: prefix.into(),
                groups_claim: "groups".into(),
                groups_prefix: prefix.into(),
            }),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
        sim.write_ca(&plane.dir().join("okta-ca.pem"))
            .map_err(|e| e.to_string())?;
        let client = plane.client().await.map_err(|e| e.to_string())?;
        let config = OperatorConfig {
            okta_org_url: sim
                .base_url()
                .parse()
                .map_err(|e: url::ParseError| e.to_string())?,
            okta_credentials: Credentials::ApiToken(OPERATOR_TOKEN.into()),
            okta_ca_pem: sim.ca_pem().map(str::to_string),
            okta_concurrency: 4,
            okta_timeout: Duration::from_secs(5),
            policy: Policy {
                allowed_group_prefix: "k8s-".into(),
                groups_prefix: prefix.into(),
                username_prefix: prefix.into(),
                user_name: UserNameAttribute::Email,
            },
            resync: Duration::from_secs(10),
            metrics_address: "127.0.0.1:0"
                .parse()
                .map_err(|e: std::net::AddrParseError| e.to_string())?,
            leader_election: None,
            reconcile_concurrency: 4,
        };
        let child = match operator {
            OperatorRun::InProcess => {
                let operator_client = client.clone();
                tokio::spawn(async move {
                    if let Err(error) =
                        run(operator_client, config, |_| {}, std::future::pending()).await
                    {
                        tracing::error!(%error, "the operator stopped");
                    }
                });
                None
            }
            OperatorRun::AsItself { binary } => {
                Some(start_as_itself(&plane, &client, &sim, prefix, &binary).await?)
            }
        };
        let demo = Self {
            sim,
            plane,
            operator: child,
        };
        apply_samples(&client).await?;
        wait_ready(&client, &["k8s-admins", "k8s-restricted-users"]).await?;
        Ok(demo)
    }
}

/// Applies `config/default` and starts the operator binary with its ServiceAccount's token.
async fn start_as_itself(
    plane: &ControlPlane,
    client: &Client,
    sim: &OktaSim,
    prefix: &str,
    binary: &std::path::Path,
) -> Result<std::process::Child, String> {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    let applied = plane
        .kubectl(&["apply", "-k", "config/default"], None)
        .map_err(|e| e.to_string())?;
    if !applied.success {
        return Err(format!("applying config/default: {}", applied.stderr));
    }
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = Api::<ServiceAccount>::namespaced(client.clone(), "okta-rbac-operator")
        .create_token_request("okta-rbac-operator", &PostParams::default(), &request)
        .await
        .map_err(|e| format!("a token for the operator: {e}"))?
        .status
        .and_then(|s| s.token)
        .ok_or("no token for the operator")?;
    let kubeconfig = plane.dir().join("operator.kubeconfig");
    plane
        .write_token_kubeconfig(&token, &kubeconfig)
        .map_err(|e| e.to_string())?;
    let log = std::fs::File::create(plane.dir().join("operator.log")).map_err(|e| e.to_string())?;
    std::process::Command::new(binary)
        .args(["run", "--okta-org-url", sim.base_url(), "--okta-ca-file"])
        .arg(plane.dir().join("okta-ca.pem"))
        .args(["--groups-prefix", prefix, "--username-prefix", prefix])
        .args([
            "--resync-interval",
            "10s",
            "--metrics-address",
            "127.0.0.1:0",
            "--leader-election",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("OKTA_API_TOKEN", OPERATOR_TOKEN)
        .env("POD_NAMESPACE", "okta-rbac-operator")
        .env("POD_NAME", "operator-0")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", binary.display()))
}

async fn apply_samples(client: &Client) -> Result<(), String> {
    for text in SAMPLES {
        for document in serde_yaml_ng::Deserializer::from_str(text) {
            let value: serde_json::Value =
                serde::Deserialize::deserialize(document).map_err(|e| e.to_string())?;
            match value["kind"].as_str() {
                Some("Role") => {
                    let role: Role = serde_json::from_value(value).map_err(|e| e.to_string())?;
                    let namespace = role
                        .metadata
                        .namespace
                        .clone()
                        .unwrap_or_else(|| "default".into());
                    Api::<Role>::namespaced(client.clone(), &namespace)
                        .create(&PostParams::default(), &role)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Some("OktaGroupBinding") => {
                    let ogb: OktaGroupBinding =
                        serde_json::from_value(value).map_err(|e| e.to_string())?;
                    Api::<OktaGroupBinding>::all(client.clone())
                        .create(&PostParams::default(), &ogb)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                other => return Err(format!("unexpected sample kind {other:?}")),
            }
        }
    }
    Ok(())
}

async fn wait_ready(client: &Client, names: &[&str]) -> Result<(), String> {
    let api: Api<OktaGroupBinding> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    for name in names {
        loop {
            let ready = api.get(name).await.ok().is_some_and(|ogb| {
                ogb.status.is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                })
            });
            if ready {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("{name} did not become Ready within a minute"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// The access table, a row per user.
pub async fn access_table(demo: &Demo) -> Result<String, String> {
    // RBAC's authorizer follows new bindings within moments: wait until bob's shows.
    let bob = id_token(&demo.sim, "default", USERS[1].0, USERS[1].1).await?;
    let bob = demo
        .plane
        .client_with_token(&bob)
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while access(&bob).await[0] != 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut table = format!("{:<20}", "user");
    for action in ACTIONS {
        table.push_str(&format!(" | {action}"));
    }
    table.push('\n');
    for (user, password) in USERS {
        let token = id_token(&demo.sim, "default", user, password).await?;
        let client = demo
            .plane
            .client_with_token(&token)
            .await
            .map_err(|e| e.to_string())?;
        let statuses = access(&client).await;
        table.push_str(&format!("{user:<20}"));
        for (action, status) in ACTIONS.iter().zip(statuses) {
            let verdict = match status {
                200 => "allowed",
                403 => "Forbidden",
                401 => "Unauthorized",
                _ => "no answer",
            };
            table.push_str(&format!(" | {verdict:<width$}", width = action.len()));
        }
        table.push('\n');
    }
    Ok(table)
}

/// `kubectl get ogb`, as the admin.
pub fn kubectl_get_ogb(demo: &Demo) -> Result<String, String> {
    let output = demo
        .plane
        .kubectl(&["get", "ogb"], None)
        .map_err(|e| e.to_string())?;
    Ok(output.stdout)
}
