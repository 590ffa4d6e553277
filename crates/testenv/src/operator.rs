//! The operator as its own process, the way a cluster runs it: its binary, a kubeconfig,
//! the Okta org's URL, CA and token, a pod name and namespace, and its log in a file. One
//! launcher for every test, the demo and the benchmark.

use crate::LaunchError;
use crate::error::io_error;
use crate::process::{Watchdog, free_port};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How to start the operator. `run` with the given Okta org; everything else is optional.
#[derive(Clone, Debug)]
pub struct OperatorLaunch {
    binary: PathBuf,
    kubeconfig: PathBuf,
    okta_url: String,
    okta_ca_file: Option<PathBuf>,
    okta_token: Option<String>,
    identity: String,
    namespace: Option<String>,
    args: Vec<String>,
    log_filter: String,
}

impl OperatorLaunch {
    /// `binary run --okta-org-url okta_url`, with `kubeconfig` as its cluster.
    pub fn new(binary: impl Into<PathBuf>, kubeconfig: &Path, okta_url: &str) -> Self {
        Self {
            binary: binary.into(),
            kubeconfig: kubeconfig.to_path_buf(),
            okta_url: okta_url.to_string(),
            okta_ca_file: None,
            okta_token: None,
            identity: "operator-0".into(),
            namespace: None,
            args: Vec::new(),
            // OPERATOR_LOG sets the level of every operator a test run starts.
            log_filter: std::env::var("OPERATOR_LOG").unwrap_or_else(|_| "info".into()),
        }
    }

    /// Trusts this CA for Okta (`--okta-ca-file`).
    pub fn okta_ca_file(mut self, path: &Path) -> Self {
        self.okta_ca_file = Some(path.to_path_buf());
        self
    }

    /// An SSWS API token, passed as `OKTA_API_TOKEN` (never on the command line).
    pub fn okta_token(mut self, token: &str) -> Self {
        self.okta_token = Some(token.to_string());
        self
    }

    /// The pod name (`POD_NAME`): the replica's identity in the lease and in events.
    pub fn identity(mut self, name: &str) -> Self {
        self.identity = name.to_string();
        self
    }

    /// The pod namespace (`POD_NAMESPACE`): where its lease lives.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_string());
        self
    }

    /// More flags of `run`.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// `RUST_LOG` of the process (default: `$OPERATOR_LOG`, else `info`).
    pub fn log_filter(mut self, filter: &str) -> Self {
        self.log_filter = filter.to_string();
        self
    }

    /// Starts the process, its log appended to `log` (a restarted replica's log follows
    /// its first life's). It is killed when the returned handle is dropped, and by a
    /// watchdog if this process dies first.
    pub fn start(&self, log: &Path) -> Result<OperatorProcess, LaunchError> {
        if !self.binary.is_file() {
            return Err(LaunchError::MissingOperator {
                looked_in: self.binary.display().to_string(),
            });
        }
        let port = free_port().map_err(io_error("picking a port"))?;
        let output = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(io_error(format!("opening {}", log.display())))?;
        let mut command = Command::new(&self.binary);
        command
            .args(["run", "--okta-org-url", &self.okta_url])
            .args(["--metrics-address", &format!("127.0.0.1:{port}")]);
        if let Some(ca) = &self.okta_ca_file {
            command.arg("--okta-ca-file").arg(ca);
        }
        command
            .args(&self.args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("POD_NAME", &self.identity)
            .env("RUST_LOG", &self.log_filter)
            .env_remove("OKTA_API_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(output);
        if let Some(token) = &self.okta_token {
            command.env("OKTA_API_TOKEN", token);
        }
        if let Some(namespace) = &self.namespace {
            command.env("POD_NAMESPACE", namespace);
        }
        let mut watchdog =
            Watchdog::start(None, None).map_err(io_error("starting the watchdog"))?;
        let child = command
            .spawn()
            .map_err(io_error(format!("starting {}", self.binary.display())))?;
        watchdog.watch(child.id());
        Ok(OperatorProcess {
            child,
            watchdog,
            metrics_url: format!("http://127.0.0.1:{port}"),
            log: log.to_path_buf(),
        })
    }
}

/// A plain GET: the status and body, or `None` when nothing answered.
pub async fn http_get(url: &str) -> Option<(u16, String)> {
    // A client with the project's TLS provider: reqwest has no process default here, and
    // `reqwest::get` fails unless something else happened to install one.
    let tls = okta_rbac_pki::client_config_trusting(&[]).ok()?;
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let response = http.get(url).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// A running operator. Dropping it kills it (SIGKILL).
pub struct OperatorProcess {
    child: Child,
    watchdog: Watchdog,
    metrics_url: String,
    log: PathBuf,
}

impl OperatorProcess {
    /// `http://127.0.0.1:PORT`, serving `/metrics`, `/healthz` and `/readyz`.
    pub fn metrics_url(&self) -> &str {
        &self.metrics_url
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET of one of its endpoints (`/metrics`, `/healthz`, `/readyz`): the status and
    /// body, or `None` when it did not answer.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(&format!("{}{path}", self.metrics_url)).await
    }

    /// Waits until `/readyz` answers 200 (caches synced, or a standby replica).
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<(), LaunchError> {
        let deadline = Instant::now() + timeout;
        loop {
            let answer = self.get("/readyz").await;
            if answer.as_ref().is_some_and(|(status, _)| *status == 200) {
                return Ok(());
            }
            if Instant::now() > deadline || self.exit_status().is_some() {
                let log = self.log();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                return Err(LaunchError::OperatorNotReady {
                    seconds: timeout.as_secs(),
                    answer: format!("{answer:?}"),
                    log: self.log.clone(),
                    tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `Some` once the process has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL, as an OOM kill or a node failure would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        self.forget();
    }

    /// SIGTERM, as the kubelet sends on a rollout; then waits up to `grace` for the
    /// process to exit (`None`: it did not, and is still running).
    pub fn terminate(&mut self, grace: Duration) -> std::io::Result<Option<ExitStatus>> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                self.watchdog.forget(self.child.id());
                return Ok(Some(status));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(None)
    }

    /// Peak resident memory (VmHWM) in KiB, while the process lives.
    pub fn peak_memory_kib(&self) -> Option<u64> {
        crate::procstat::peak_memory_kib(self.pid())
    }

    /// Resident memory now (VmRSS) in KiB.
    pub fn memory_kib(&self) -> Option<u64> {
        crate::procstat::memory_kib(self.pid())
    }

    /// User plus system CPU seconds so far.
    pub fn cpu_seconds(&self) -> f64 {
        crate::procstat::cpu_seconds(self.pid())
    }

    fn forget(&mut self) {
        // Forgotten before it is reaped, so the watchdog can never kill a reused pid.
        self.watchdog.forget(self.child.id());
        let _ = self.child.wait();
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        if self.exit_status().is_none() {
            let _ = self.child.kill();
        }
        self.forget();
    }
}
