//! A real Kubernetes control plane on loopback: etcd, kube-apiserver and
//! kube-controller-manager built from the official Go modules (`make controlplane`), with
//! freshly generated certificates. Integration tests and the demo start one with
//! [`ControlPlane::start`]; tests in one binary share one through [`ControlPlane::shared`]
//! and stay apart by using their own names ([`unique_name`]).

mod pki;
mod process;

pub use crate::pki::CertAndKey;
pub use pki::Pki;

use base64::Engine as _;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config};
use process::{Component, Watchdog, free_port};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The Kubernetes release the control plane is built from (tests/controlplane/go.mod).
pub const KUBERNETES_VERSION: &str = "v1.37.2";

const ETCD: &str = "etcd";
const APISERVER: &str = "kube-apiserver";
const CONTROLLER_MANAGER: &str = "kube-controller-manager";
const READY_TIMEOUT: Duration = Duration::from_secs(120);
const LOG_TAIL_LINES: usize = 30;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(
        "control plane binary {path} is missing: run `make controlplane` (or set OKTA_RBAC_CONTROLPLANE_BIN)"
    )]
    MissingBinary { path: PathBuf },
    #[error("{component} failed: {reason}\n--- from {log} ---\n{tail}", log = log.display())]
    Component {
        component: &'static str,
        reason: String,
        log: PathBuf,
        tail: String,
    },
    #[error("generating certificates: {0}")]
    Pki(#[from] rcgen::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("building a client for the control plane: {0}")]
    Client(String),
    #[error("installing CRD {name}: {reason}")]
    Crd { name: String, reason: String },
}

fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LaunchError {
    let context = context.into();
    move |source| LaunchError::Io { context, source }
}

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
    /// Appended to the kube-apiserver command line (later flags win).
    pub extra_apiserver_args: Vec<String>,
    /// Keep the working directory (certificates, logs, etcd data) after teardown.
    pub keep_dir: bool,
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
}

/// Where `make controlplane` puts the binaries, unless OKTA_RBAC_CONTROLPLANE_BIN says otherwise.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("OKTA_RBAC_CONTROLPLANE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".build/controlplane/bin"))
}

/// A name no other test in this run uses: `prefix-<pid>-<n>`, a valid DNS label.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

impl ControlPlane {
    /// Starts etcd, kube-apiserver and kube-controller-manager, waits for `/readyz`, and
    /// installs `options.crds`. A failure names the component and shows its log's tail.
    pub async fn start(options: ControlPlaneOptions) -> Result<Self, LaunchError> {
        let launched = Instant::now();
        let bins = bin_dir();
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
        let watchdog = Watchdog::start((!options.keep_dir).then_some(dir.as_path()))
            .map_err(io_error("starting the watchdog"))?;
        let pki = Pki::generate()?;
        let apiserver_port = free_port().map_err(io_error("picking a port"))?;
        let server_url = format!("https://127.0.0.1:{apiserver_port}");
        let kubeconfig_path = dir.join("kubeconfig");
        let mut plane = Self {
            components: Vec::new(),
            watchdog,
            dir,
            server_url,
            pki,
            kubeconfig_path,
            time_to_ready: Duration::ZERO,
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

    /// Runs the kubectl built with the control plane, as the admin, with `stdin` fed in.
    pub fn kubectl(
        &self,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<KubectlOutput, LaunchError> {
        use std::io::Write as _;
        let mut child = std::process::Command::new(bin_dir().join("kubectl"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig_path)
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

    fn write_files(&self, options: &ControlPlaneOptions) -> Result<(), LaunchError> {
        let pki = &self.pki;
        let files = [
            ("ca.crt", pki.ca.cert_pem().to_string()),
            ("apiserver.crt", pki.apiserver.cert_pem.clone()),
            ("apiserver.key", pki.apiserver.key_pem.clone()),
            ("service-account.key", pki.service_account_key_pem.clone()),
            (
                "service-account.pub",
                pki.service_account_public_key_pem.clone(),
            ),
            (
                "kubeconfig",
                kubeconfig(
                    &self.server_url,
                    pki.ca.cert_pem(),
                    Credentials::ClientCert(&pki.admin),
                )
                .to_string(),
            ),
        ];
        for (name, content) in files {
            let path = self.dir.join(name);
            std::fs::write(&path, content)
                .map_err(io_error(format!("writing {}", path.display())))?;
        }
        if let Some(oidc) = &options.oidc {
            let path = self.dir.join("authentication-config.json");
            std::fs::write(&path, authentication_config(oidc).to_string())
                .map_err(io_error(format!("writing {}", path.display())))?;
        }
        Ok(())
    }

    async fn launch(
        &mut self,
        bins: &Path,
        apiserver_port: u16,
        options: &ControlPlaneOptions,
    ) -> Result<(), LaunchError> {
        let etcd_port = free_port().map_err(io_error("picking a port"))?;
        let peer_port = free_port().map_err(io_error("picking a port"))?;
        self.spawn(bins, ETCD, etcd_args(&self.dir, etcd_port, peer_port))?;
        self.wait_for_port(ETCD, etcd_port).await?;

        let mut args = apiserver_args(&self.dir, apiserver_port, etcd_port, options.oidc.is_some());
        args.extend(options.extra_apiserver_args.iter().cloned());
        self.spawn(bins, APISERVER, args)?;
        self.wait_for_port(APISERVER, apiserver_port).await?;
        self.wait_for_ready().await?;

        self.spawn(bins, CONTROLLER_MANAGER, controller_manager_args(&self.dir))?;
        Ok(())
    }

    fn spawn(
        &mut self,
        bins: &Path,
        name: &'static str,
        args: Vec<String>,
    ) -> Result<(), LaunchError> {
        let log = self.dir.join(format!("{name}.log"));
        let component = Component::spawn(name, &bins.join(name), &args, log, &mut self.watchdog)
            .map_err(io_error(format!("starting {name}")))?;
        self.components.push(component);
        Ok(())
    }

    /// Fails with the log tail of any component that has exited.
    fn check_alive(&mut self) -> Result<(), LaunchError> {
        for component in &mut self.components {
            if let Some(status) = component.exit_status() {
                return Err(component_error(component, format!("exited with {status}")));
            }
        }
        Ok(())
    }

    async fn wait_for_port(&mut self, name: &'static str, port: u16) -> Result<(), LaunchError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.check_alive()?;
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.timeout_error(
                    name,
                    format!("port {port} not open after {READY_TIMEOUT:?}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `/readyz`, which RBAC lets anyone read, with a client that trusts our CA.
    async fn wait_for_ready(&mut self) -> Result<(), LaunchError> {
        let tls = crate::pki::client_config_trusting(&[self.pki.ca.cert_pem()])
            .map_err(LaunchError::Client)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| LaunchError::Client(e.to_string()))?;
        let url = format!("{}/readyz", self.server_url);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.check_alive()?;
            let answer = match http.get(&url).send().await {
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    if status.is_success() && body.trim() == "ok" {
                        return Ok(());
                    }
                    format!("{status}: {body}")
                }
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                return Err(self.timeout_error(
                    APISERVER,
                    format!("/readyz not ok after {READY_TIMEOUT:?}; last answer: {answer}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn timeout_error(&self, name: &'static str, reason: String) -> LaunchError {
        match self.components.iter().find(|c| c.name == name) {
            Some(component) => component_error(component, reason),
            None => LaunchError::Client(reason),
        }
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
        // The watchdog, dropped after this, removes the directory unless it is kept.
    }
}

fn component_error(component: &Component, reason: String) -> LaunchError {
    LaunchError::Component {
        component: component.name,
        reason,
        log: component.log_path.clone(),
        tail: component.log_excerpt(LOG_TAIL_LINES),
    }
}

enum Credentials<'a> {
    ClientCert(&'a CertAndKey),
    Token(&'a str),
}

fn base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A kubeconfig as JSON (which kubectl reads like YAML).
fn kubeconfig(server: &str, ca_pem: &str, credentials: Credentials<'_>) -> serde_json::Value {
    let user = match credentials {
        Credentials::ClientCert(cert) => serde_json::json!({
            "client-certificate-data": base64(&cert.cert_pem),
            "client-key-data": base64(&cert.key_pem),
        }),
        Credentials::Token(token) => serde_json::json!({ "token": token }),
    };
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {
            "server": server,
            "certificate-authority-data": base64(ca_pem),
        }}],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "user"}}],
        "current-context": "local",
    })
}

fn authentication_config(oidc: &OidcOptions) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "jwt": [{
            "issuer": {
                "url": oidc.issuer_url,
                "audiences": [oidc.client_id],
                "certificateAuthority": oidc.ca_pem,
            },
            "claimMappings": {
                "username": {"claim": oidc.username_claim, "prefix": oidc.username_prefix},
                "groups": {"claim": oidc.groups_claim, "prefix": oidc.groups_prefix},
            },
        }],
    })
}

fn path_arg(flag: &str, dir: &Path, file: &str) -> String {
    format!("--{flag}={}", dir.join(file).display())
}

fn etcd_args(dir: &Path, client_port: u16, peer_port: u16) -> Vec<String> {
    let client = format!("http://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    vec![
        "--name=etcd".into(),
        path_arg("data-dir", dir, "etcd"),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=etcd={peer}"),
        // A test cluster's data is thrown away; fsync would only make every write slow.
        "--unsafe-no-fsync".into(),
        "--log-level=warn".into(),
    ]
}

fn apiserver_args(dir: &Path, port: u16, etcd_port: u16, oidc: bool) -> Vec<String> {
    let mut args = vec![
        format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
        "--bind-address=127.0.0.1".into(),
        "--advertise-address=127.0.0.1".into(),
        format!("--secure-port={port}"),
        path_arg("tls-cert-file", dir, "apiserver.crt"),
        path_arg("tls-private-key-file", dir, "apiserver.key"),
        path_arg("client-ca-file", dir, "ca.crt"),
        path_arg("cert-dir", dir, "apiserver-certs"),
        "--authorization-mode=RBAC".into(),
        // Service-account tokens (TokenRequest) need an issuer and a signing key.
        format!("--service-account-issuer=https://127.0.0.1:{port}"),
        path_arg("service-account-key-file", dir, "service-account.pub"),
        path_arg(
            "service-account-signing-key-file",
            dir,
            "service-account.key",
        ),
        "--service-cluster-ip-range=10.96.0.0/16".into(),
        // The `kubernetes` Service's endpoints would need a non-loopback address; no
        // client in here uses that Service.
        "--endpoint-reconciler-type=none".into(),
    ];
    if oidc {
        args.push(path_arg(
            "authentication-config",
            dir,
            "authentication-config.json",
        ));
    }
    args
}

fn controller_manager_args(dir: &Path) -> Vec<String> {
    vec![
        path_arg("kubeconfig", dir, "kubeconfig"),
        "--controllers=garbage-collector-controller,namespace-controller".into(),
        "--leader-elect=false".into(),
        "--bind-address=127.0.0.1".into(),
        // Serve nothing: the tests only need its controllers.
        "--secure-port=0".into(),
    ]
}
