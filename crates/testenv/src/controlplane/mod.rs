//! A real Kubernetes control plane on loopback: etcd, kube-apiserver and
//! kube-controller-manager built from the official Go modules (`make controlplane`), with
//! freshly generated certificates. Integration tests and the demo start one with
//! [`ControlPlane::start`]; tests in one binary share one through [`ControlPlane::shared`]
//! and stay apart by using their own names ([`unique_name`]).

mod flags;
mod kubeconfig;
mod launch;
mod node;
mod pki;

pub use node::PAUSE_IMAGE;

pub use okta_rbac_pki::CertAndKey;
pub use pki::Pki;

pub use crate::error::LaunchError;

use crate::error::io_error;
use crate::node::network::{KUBERNETES_SERVICE_IP, NodeNetwork};
use crate::node::teardown::{tear_down, teardown_command};
use crate::paths::{checkout, controlplane_bin_dir};
use crate::process::{Component, Watchdog, free_port};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config};
use kubeconfig::{Credentials, kubeconfig};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The Kubernetes release the control plane is built from (`controlplane/go.mod`).
pub const KUBERNETES_VERSION: &str = "v1.37.2";

const ETCD: &str = "etcd";
const APISERVER: &str = "kube-apiserver";
const CONTROLLER_MANAGER: &str = "kube-controller-manager";
const READY_TIMEOUT: Duration = Duration::from_secs(120);
const LOG_TAIL_LINES: usize = 30;

/// What a kubectl run printed.
#[derive(Debug)]
pub struct KubectlOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// OIDC trust for the apiserver, written as a structured `--authentication-config`.
#[derive(Clone, Debug)]
pub struct OidcOptions {
    pub issuer_url: String,
    pub client_id: String,
    /// PEM of the CA that signed the issuer's serving certificate.
    pub ca_pem: String,
    pub username_claim: String,
    /// Prepended to usernames ("" for none).
    pub username_prefix: String,
    pub groups_claim: String,
    pub groups_prefix: String,
}

#[derive(Clone, Debug, Default)]
pub struct ControlPlaneOptions {
    /// Installed and waited for (Established) before `start` returns.
    pub crds: Vec<CustomResourceDefinition>,
    pub oidc: Option<OidcOptions>,
    /// The apiserver's `AuthorizationConfiguration` (`--authorization-config`), in place
    /// of `--authorization-mode` (it must then name Node itself when there is a node).
    pub authorization_config: Option<serde_json::Value>,
    /// Appended to the kube-apiserver command line (later flags win).
    pub extra_apiserver_args: Vec<String>,
    /// Keep the working directory (certificates, logs, etcd data) after teardown.
    pub keep_dir: bool,
    /// Also a node (`make node`): kube-scheduler, and in a network namespace of its own
    /// containerd, the kubelet and kube-proxy, so that Pods run.
    pub node: bool,
    /// The node network's id (`NodeNetwork::addresses` gives its addresses ahead);
    /// default: one of this process's own.
    pub node_network_id: Option<u32>,
}

/// A running control plane. Dropping it stops every process and removes its directory.
pub struct ControlPlane {
    components: Vec<Component>,
    watchdog: Watchdog,
    dir: PathBuf,
    server_url: String,
    pki: Pki,
    kubeconfig_path: PathBuf,
    time_to_ready: Duration,
    /// The node's network, when there is a node; deleted after every process stopped.
    network: Option<NodeNetwork>,
    /// The shell command that removes what the node leaves behind its processes.
    node_teardown: Option<String>,
}

/// A node network id no other control plane of this process uses.
fn node_network_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    std::process::id().wrapping_mul(8) + NEXT.fetch_add(1, Ordering::Relaxed) % 8
}

impl ControlPlane {
    /// Starts etcd, kube-apiserver and kube-controller-manager, waits for `/readyz`, and
    /// installs `options.crds`. A failure names the component and shows its log's tail.
    pub async fn start(options: ControlPlaneOptions) -> Result<Self, LaunchError> {
        let launched = Instant::now();
        let bins = controlplane_bin_dir();
        for name in [ETCD, APISERVER, CONTROLLER_MANAGER] {
            let path = bins.join(name);
            if !path.is_file() {
                return Err(LaunchError::MissingBinary { path });
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("okta-rbac-controlplane-")
            .tempdir()
            .map_err(io_error("creating the control plane directory"))?
            .keep();
        let network = if options.node {
            Some(NodeNetwork::create(
                options.node_network_id.unwrap_or_else(node_network_id),
            )?)
        } else {
            None
        };
        let node_teardown = network
            .as_ref()
            .map(|n| teardown_command(&n.netns, &n.netns, &dir));
        let watchdog = Watchdog::start(
            (!options.keep_dir).then_some(dir.as_path()),
            node_teardown.as_deref(),
        )
        .map_err(io_error("starting the watchdog"))?;
        let extra_ips: Vec<_> = network
            .iter()
            .flat_map(|n| [n.host_ip, KUBERNETES_SERVICE_IP])
            .collect();
        let pki = Pki::generate(&extra_ips)?;
        let apiserver_port = free_port().map_err(io_error("picking a port"))?;
        let host = network
            .as_ref()
            .map_or("127.0.0.1".to_string(), |n| n.host_ip.to_string());
        let server_url = format!("https://{host}:{apiserver_port}");
        let kubeconfig_path = dir.join("kubeconfig");
        let mut plane = Self {
            components: Vec::new(),
            watchdog,
            dir,
            server_url,
            pki,
            kubeconfig_path,
            time_to_ready: Duration::ZERO,
            network,
            node_teardown,
        };
        plane.write_files(&options)?;
        plane.launch(&bins, apiserver_port, &options).await?;
        plane.time_to_ready = launched.elapsed();
        tracing::info!(time_to_ready = ?plane.time_to_ready, url = %plane.server_url, "control plane ready");
        plane.install_crds(&options.crds).await?;
        Ok(plane)
    }

    /// One control plane per test binary, started on first use, with the given CRDs.
    /// Tests must keep to their own names and namespaces. It is not dropped; its watchdog
    /// stops it when the test binary exits.
    pub fn shared(crds: fn() -> Vec<CustomResourceDefinition>) -> &'static ControlPlane {
        static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
        let started = SHARED.get_or_init(|| {
            // Started on a runtime of its own: each #[tokio::test] has its own runtime,
            // and nothing the shared control plane keeps may depend on one of them.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime
                    .block_on(ControlPlane::start(ControlPlaneOptions {
                        crds: crds(),
                        ..Default::default()
                    }))
                    .map_err(|e| e.to_string())
            })
            .join()
            .unwrap_or_else(|_| Err("control plane startup panicked".into()))
        });
        match started {
            Ok(plane) => plane,
            Err(message) => panic!("the shared control plane did not start: {message}"),
        }
    }

    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// An admin (`system:masters`) kubeconfig, usable with kubectl.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// From the call to `start` until kube-apiserver answered `/readyz` with ok.
    pub fn time_to_ready(&self) -> Duration {
        self.time_to_ready
    }

    /// Name and pid of each running component.
    pub fn processes(&self) -> Vec<(&'static str, u32)> {
        self.components.iter().map(|c| (c.name, c.pid())).collect()
    }

    /// An admin client. Build one per test (clients belong to the runtime that made them).
    pub async fn client(&self) -> Result<Client, LaunchError> {
        self.client_for(Credentials::ClientCert(&self.pki.admin))
            .await
    }

    /// A client that authenticates with a bearer token (service-account or OIDC ID token).
    pub async fn client_with_token(&self, token: &str) -> Result<Client, LaunchError> {
        self.client_for(Credentials::Token(token)).await
    }

    /// Runs the kubectl built with the control plane, as the admin, with `stdin` fed in,
    /// from the checkout's root: `config/default` means the repository's, from any crate.
    pub fn kubectl(
        &self,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<KubectlOutput, LaunchError> {
        use std::io::Write as _;
        let mut child = std::process::Command::new(controlplane_bin_dir().join("kubectl"))
            .current_dir(checkout())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig_path)
            // A discovery cache of this control plane's own: kubectl keys its cache by
            // host and port, and a port another control plane used before (without the
            // CRD) would answer "no matches for kind" from it.
            .arg("--cache-dir")
            .arg(self.dir().join("kubectl-cache"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(io_error("running kubectl"))?;
        if let Some(mut input) = child.stdin.take() {
            input
                .write_all(stdin.unwrap_or_default().as_bytes())
                .map_err(io_error("writing to kubectl"))?;
        }
        let output = child
            .wait_with_output()
            .map_err(io_error("running kubectl"))?;
        Ok(KubectlOutput {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Writes a kubeconfig that authenticates with a bearer token (a ServiceAccount's, or
    /// an OIDC ID token), for processes such as the operator or kubectl.
    pub fn write_token_kubeconfig(&self, token: &str, path: &Path) -> Result<(), LaunchError> {
        let config = kubeconfig(
            &self.server_url,
            self.pki.ca.cert_pem(),
            Credentials::Token(token),
        );
        std::fs::write(path, config.to_string())
            .map_err(io_error(format!("writing {}", path.display())))
    }

    /// Writes a kubeconfig for a user authenticated by a client certificate with these
    /// groups, for a process that must be told apart in the audit log.
    pub fn write_user_kubeconfig(
        &self,
        user: &str,
        groups: &[&str],
        path: &Path,
    ) -> Result<(), LaunchError> {
        let cert = self.pki.client_cert(user, groups)?;
        let config = kubeconfig(
            &self.server_url,
            self.pki.ca.cert_pem(),
            Credentials::ClientCert(&cert),
        );
        std::fs::write(path, config.to_string())
            .map_err(io_error(format!("writing {}", path.display())))
    }

    /// Stops the kube-apiserver (SIGKILL) and starts it again with the same flags, on the
    /// same port and etcd, as a crash and a restart by the kubelet would; returns once it
    /// is ready again. Clients keep their address and credentials.
    pub async fn restart_apiserver(&mut self) -> Result<Duration, LaunchError> {
        let started = Instant::now();
        let component = self
            .components
            .iter_mut()
            .find(|c| c.name == APISERVER)
            .ok_or_else(|| LaunchError::Client("no kube-apiserver to restart".into()))?;
        component
            .respawn(&mut self.watchdog)
            .map_err(io_error("restarting kube-apiserver"))?;
        self.wait_for_ready().await?;
        Ok(started.elapsed())
    }

    /// A client for a user authenticated by a client certificate with these groups.
    pub async fn client_as_user(&self, user: &str, groups: &[&str]) -> Result<Client, LaunchError> {
        let cert = self.pki.client_cert(user, groups)?;
        self.client_for(Credentials::ClientCert(&cert)).await
    }

    /// Installs (server-side applies) CRDs and waits until each is Established.
    pub async fn install_crds(&self, crds: &[CustomResourceDefinition]) -> Result<(), LaunchError> {
        if crds.is_empty() {
            return Ok(());
        }
        let api: Api<CustomResourceDefinition> = Api::all(self.client().await?);
        let params = PatchParams::apply("okta-rbac-controlplane").force();
        for crd in crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let crd_error = |reason: String| LaunchError::Crd {
                name: name.clone(),
                reason,
            };
            api.patch(&name, &params, &Patch::Apply(crd))
                .await
                .map_err(|e| crd_error(e.to_string()))?;
            let established = await_condition(api.clone(), &name, conditions::is_crd_established());
            tokio::time::timeout(Duration::from_secs(60), established)
                .await
                .map_err(|_| crd_error("not Established within 60s".into()))?
                .map_err(|e| crd_error(e.to_string()))?;
        }
        Ok(())
    }

    async fn client_for(&self, credentials: Credentials<'_>) -> Result<Client, LaunchError> {
        let kubeconfig: Kubeconfig = serde_json::from_value(kubeconfig(
            &self.server_url,
            self.pki.ca.cert_pem(),
            credentials,
        ))
        .map_err(|e| LaunchError::Client(e.to_string()))?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| LaunchError::Client(e.to_string()))?;
        Client::try_from(config).map_err(|e| LaunchError::Client(e.to_string()))
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // Reverse order: the controller manager and apiserver go before etcd.
        for component in self.components.iter_mut().rev() {
            component.stop(&mut self.watchdog);
        }
        if let Some(command) = &self.node_teardown {
            tear_down(command);
        }
        // The watchdog, dropped after this, removes the directory unless it is kept.
    }
}
