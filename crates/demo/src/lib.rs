//! `make demo` and `make bench`: the local Okta with the example org, a control plane
//! whose kube-apiserver trusts it as OIDC issuer, the operator running as itself, and the
//! samples; then what each example user may do with their own real ID token. Depends on
//! the test environment, the local Okta and (for the benchmark's own watches) the
//! operator's library; nothing here is shipped.

mod access;
mod authorizer;
mod hook;

pub use access::{ACTIONS, access, access_table, id_token};
pub use authorizer::AuthorizerSetup;
pub use hook::EventHookSetup;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{Api, PostParams};
use kube::{Client, CustomResourceExt};
use okta_rbac_api::OktaGroupBinding;
use okta_rbac_testenv::{
    ControlPlane, ControlPlaneOptions, OidcOptions, OperatorLaunch, OperatorProcess,
};
use okta_sim::{OktaSim, Seed, SimOptions};
use std::path::Path;
use std::time::{Duration, Instant};

pub const EXAMPLE_ORG: &str = include_str!("../../../examples/okta-org.yaml");
const SAMPLES: [&str; 2] = [
    include_str!("../../../config/samples/k8s-admins.yaml"),
    include_str!("../../../config/samples/k8s-restricted-users.yaml"),
];
const OPERATOR_TOKEN: &str = "00simulated-operator-token";
/// Where `config/default` installs the operator.
const OPERATOR_NAMESPACE: &str = "okta-rbac-operator";
/// The example users and their passwords in the example org.
pub const USERS: [(&str, &str); 4] = [
    ("alice@example.com", "alice-password"),
    ("bob@example.com", "bob-password"),
    ("carol@example.com", "carol-password"),
    ("dave@example.com", "dave-password"),
];

/// The example org, a control plane that trusts it with this prefix, the operator (its
/// own process, with its ServiceAccount's token and exactly the RBAC of
/// `config/default`) and the samples, every object Ready.
pub struct Demo {
    // Dropped in this order: the operator stops before the control plane goes away.
    operator: OperatorProcess,
    pub plane: ControlPlane,
    pub sim: OktaSim,
    /// The revocation authorizer's certificates and configuration, when it serves.
    pub authorizer: Option<AuthorizerSetup>,
    /// The event hook receiver's certificate and secret, when Okta pushes its changes.
    pub event_hook: Option<EventHookSetup>,
}

/// What a demo world runs besides the operator's defaults.
#[derive(Clone, Debug, Default)]
pub struct DemoConfig<'a> {
    /// The apiserver's OIDC username and groups prefix (and the operator's).
    pub prefix: &'a str,
    pub operator_flags: &'a [&'a str],
    /// The revocation authorizer before RBAC, with this failure policy (`no-opinion` or
    /// `deny`).
    pub authorizer: Option<&'a str>,
    /// Okta's event hook, registered with the local Okta.
    pub event_hook: bool,
}

impl Demo {
    pub async fn start(prefix: &str, operator_binary: &Path) -> Result<Self, String> {
        Self::start_with(prefix, operator_binary, &[]).await
    }

    /// The same, with these operator flags after the demo's own.
    pub async fn start_with(
        prefix: &str,
        operator_binary: &Path,
        operator_flags: &[&str],
    ) -> Result<Self, String> {
        Self::start_configured(
            operator_binary,
            DemoConfig {
                prefix,
                operator_flags,
                ..Default::default()
            },
        )
        .await
    }

    /// The same, with the revocation authorizer placed before RBAC in the apiserver, with
    /// this failure policy (`no-opinion` or `deny`).
    pub async fn start_with_authorizer(
        prefix: &str,
        operator_binary: &Path,
        failure_policy: &str,
        operator_flags: &[&str],
    ) -> Result<Self, String> {
        Self::start_configured(
            operator_binary,
            DemoConfig {
                prefix,
                operator_flags,
                authorizer: Some(failure_policy),
                event_hook: false,
            },
        )
        .await
    }

    pub async fn start_configured(
        operator_binary: &Path,
        config: DemoConfig<'_>,
    ) -> Result<Self, String> {
        let prefix = config.prefix;
        let authorizer = config
            .authorizer
            .map(|policy| AuthorizerSetup::prepare(operator_binary, prefix, policy))
            .transpose()?;
        let event_hook = config
            .event_hook
            .then(EventHookSetup::prepare)
            .transpose()?;
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
            authorization_config: authorizer.as_ref().map(|a| a.authorization_config.clone()),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
        sim.write_ca(&plane.dir().join("okta-ca.pem"))
            .map_err(|e| e.to_string())?;
        let client = plane.client().await.map_err(|e| e.to_string())?;
        let mut flags: Vec<String> = config
            .operator_flags
            .iter()
            .map(|f| f.to_string())
            .collect();
        if let Some(setup) = &authorizer {
            flags.extend(setup.operator_flags());
        }
        if let Some(setup) = &event_hook {
            flags.extend(setup.operator_flags());
        }
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let operator = start_operator(
            &plane,
            &client,
            &sim,
            prefix,
            operator_binary,
            &flags,
            authorizer.is_some(),
        )
        .await?;
        let mut operator = operator;
        if let Some(setup) = &event_hook {
            // Okta's verification needs the receiver listening, which it is once the
            // operator answers its probes.
            operator
                .wait_ready(Duration::from_secs(60))
                .await
                .map_err(|e| e.to_string())?;
            setup.register(&sim).await?;
        }
        let demo = Self {
            operator,
            plane,
            sim,
            authorizer,
            event_hook,
        };
        apply_samples(&client).await?;
        wait_ready(&client, &["k8s-admins", "k8s-restricted-users"]).await?;
        Ok(demo)
    }

    /// Where the operator serves /metrics.
    pub fn operator_metrics_url(&self) -> &str {
        self.operator.metrics_url()
    }

    /// A client with a fresh ID token of one of the example users ([`USERS`]).
    pub async fn client_of(&self, user: &str) -> Result<Client, String> {
        let password = USERS
            .iter()
            .find(|(u, _)| *u == user)
            .map(|(_, p)| *p)
            .ok_or_else(|| format!("{user} is not an example user"))?;
        let token = id_token(&self.sim, "default", user, password).await?;
        self.plane
            .client_with_token(&token)
            .await
            .map_err(|e| e.to_string())
    }

    /// What the operator has logged so far.
    pub fn operator_log(&self) -> String {
        self.operator.log()
    }

    /// The operator's peak resident memory so far, in KiB.
    pub fn operator_peak_memory_kib(&self) -> Option<u64> {
        self.operator.peak_memory_kib()
    }

    /// Stops the operator with SIGTERM, as a rollout would, before the control plane and
    /// the local Okta go: a demo that ends prints no errors. `Err` says how it ended
    /// otherwise.
    pub fn stop(mut self) -> Result<(), String> {
        self.stop_operator()
    }

    /// The same, leaving the control plane and the local Okta running: what the cluster
    /// does while the operator is down.
    pub fn stop_operator(&mut self) -> Result<(), String> {
        let stopped = self
            .operator
            .terminate(Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        match stopped {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(format!(
                "the operator exited with {status}; see {}",
                self.operator.log_path().display()
            )),
            None => Err("the operator did not stop within 10 s of SIGTERM".into()),
        }
    }
}

/// Applies `config/default` and starts the operator binary with its ServiceAccount's token.
async fn start_operator(
    plane: &ControlPlane,
    client: &Client,
    sim: &OktaSim,
    prefix: &str,
    binary: &Path,
    flags: &[&str],
    with_authorizer: bool,
) -> Result<OperatorProcess, String> {
    let applied = plane
        .kubectl(&["apply", "-k", "config/default"], None)
        .map_err(|e| e.to_string())?;
    if !applied.success {
        return Err(format!("applying config/default: {}", applied.stderr));
    }
    if with_authorizer {
        // What the authorizer's component adds to the operator's permissions.
        let rbac = plane
            .kubectl(
                &[
                    "apply",
                    "-f",
                    "config/components/revocation-authorizer/rbac.yaml",
                ],
                None,
            )
            .map_err(|e| e.to_string())?;
        if !rbac.success {
            return Err(format!("applying the authorizer's RBAC: {}", rbac.stderr));
        }
    }
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = Api::<ServiceAccount>::namespaced(client.clone(), OPERATOR_NAMESPACE)
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
    // A short resync, unless the caller sets one (the benchmark uses the default).
    let resync = (!flags.iter().any(|f| f.starts_with("--resync-interval")))
        .then_some(["--resync-interval", "10s"])
        .into_iter()
        .flatten();
    OperatorLaunch::new(binary, &kubeconfig, sim.base_url())
        .okta_ca_file(&plane.dir().join("okta-ca.pem"))
        .okta_token(OPERATOR_TOKEN)
        .namespace(OPERATOR_NAMESPACE)
        .args(["--groups-prefix", prefix, "--username-prefix", prefix])
        .args(resync)
        .args(["--leader-election"])
        .args(["--okta-authorization-server", "default"])
        .args(["--oidc-scopes", "openid,email,profile,groups"])
        .args(flags.iter().copied())
        .start(&plane.dir().join("operator.log"))
        .map_err(|e| e.to_string())
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

/// `kubectl get ogb`, as the admin.
pub fn kubectl_get_ogb(demo: &Demo) -> Result<String, String> {
    let output = demo
        .plane
        .kubectl(&["get", "ogb"], None)
        .map_err(|e| e.to_string())?;
    Ok(output.stdout)
}

/// The kubectl plugin beside the demo's own binary (`cargo build` puts them together).
fn plugin_dir() -> Result<std::path::PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = exe
        .parent()
        .map(|d| {
            if d.ends_with("deps") {
                d.parent().unwrap_or(d)
            } else {
                d
            }
        })
        .ok_or("no directory for the demo's binary")?
        .to_path_buf();
    if dir.join("kubectl-okta_rbac").is_file() {
        Ok(dir)
    } else {
        Err(format!(
            "the kubectl plugin is not in {}: cargo build -p okta-rbac-kubectl-plugin",
            dir.display()
        ))
    }
}

/// `kubectl okta-rbac explain USER`, as a platform engineer runs it, with the example org's
/// token: what the demo ends with.
pub async fn kubectl_okta_rbac_explain(demo: &Demo, user: &str) -> Result<String, String> {
    let dir = demo.plane.dir();
    let token = dir.join("okta-token");
    std::fs::write(&token, OPERATOR_TOKEN).map_err(|e| e.to_string())?;
    let ca = dir.join("okta-ca.pem");
    demo.sim.write_ca(&ca).map_err(|e| e.to_string())?;
    let path = format!(
        "{}:{}:{}",
        plugin_dir()?.display(),
        okta_rbac_testenv::paths::controlplane_bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let args = vec![
        "okta-rbac".to_string(),
        "explain".into(),
        user.into(),
        format!("--okta-org-url={}", demo.sim.base_url()),
        format!("--okta-token-file={}", token.display()),
        format!("--okta-ca-file={}", ca.display()),
    ];
    let kubeconfig = demo.plane.kubeconfig_path().to_path_buf();
    // Off this thread: the local Okta the plugin asks answers on it.
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(okta_rbac_testenv::paths::controlplane_bin_dir().join("kubectl"))
            .args(&args)
            .env("PATH", path)
            .env("KUBECONFIG", kubeconfig)
            .output()
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("kubectl okta-rbac: {e}"))?;
    if output.status.code().is_some_and(|code| code > 1) {
        return Err(format!(
            "kubectl okta-rbac: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
