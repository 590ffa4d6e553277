//! The command line: each subcommand is one thing the binary really does.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "okta-rbac-operator",
    version,
    about = "Turns Okta groups into Kubernetes RBAC"
)]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "plain",
        env = "LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    Plain,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the operator: verify OktaGroupBindings with Okta and keep their bindings.
    Run(Box<RunArgs>),
    /// Print the version and the Kubernetes release it is built and tested against.
    Version,
    /// Run a local control plane (etcd, kube-apiserver, kube-controller-manager from
    /// `make controlplane`) until Ctrl-C, and print its admin kubeconfig.
    Controlplane {
        /// Also copy the admin kubeconfig to this file.
        #[arg(long)]
        kubeconfig_out: Option<PathBuf>,
        /// Keep the working directory (certificates, logs, etcd data) after exit.
        #[arg(long)]
        keep_dir: bool,
    },
    /// Run the whole thing locally: the local Okta with the example org, a control plane
    /// trusting it for OIDC, the operator and the samples; show what each user may do.
    Demo {
        /// Exit after showing the table instead of running until Ctrl-C.
        #[arg(long)]
        once: bool,
        /// The apiserver's OIDC username and groups prefix (and the operator's).
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Print the OktaGroupBinding CustomResourceDefinition as YAML (committed in crds/).
    Crd,
    /// Run the local Okta (Management API, OAuth service apps, OIDC issuer) until Ctrl-C.
    Sim(SimArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The Okta org, such as https://example.okta.com.
    #[arg(long, env = "OKTA_ORG_URL")]
    pub okta_org_url: url::Url,
    /// File holding an Okta API token (SSWS). Or set OKTA_API_TOKEN.
    #[arg(long, env = "OKTA_API_TOKEN_FILE", conflicts_with = "okta_client_id")]
    pub okta_token_file: Option<PathBuf>,
    /// Service app client id, for OAuth client credentials with a private key.
    #[arg(long, env = "OKTA_CLIENT_ID", requires = "okta_private_key_file")]
    pub okta_client_id: Option<String>,
    /// PEM private key (RSA or EC) registered with the service app.
    #[arg(long, env = "OKTA_PRIVATE_KEY_FILE")]
    pub okta_private_key_file: Option<PathBuf>,
    /// The key's id (kid) in the app's JWKS, when it has several keys.
    #[arg(long, env = "OKTA_PRIVATE_KEY_ID")]
    pub okta_private_key_id: Option<String>,
    /// Extra PEM CA certificates to trust for Okta (a private CA or the local Okta).
    #[arg(long, env = "OKTA_CA_FILE")]
    pub okta_ca_file: Option<PathBuf>,
    /// Concurrent requests to Okta at most.
    #[arg(long, env = "OKTA_CONCURRENCY", default_value_t = 8)]
    pub okta_concurrency: usize,
    /// Time allowed for one Okta request.
    #[arg(long, env = "OKTA_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub okta_timeout: std::time::Duration,
    /// Prefix of group subjects: the same as the apiserver's --oidc-groups-prefix.
    #[arg(long, env = "GROUPS_PREFIX", default_value = "")]
    pub groups_prefix: String,
    /// Prefix of user subjects (Users mode): the apiserver's --oidc-username-prefix.
    #[arg(long, env = "USERNAME_PREFIX", default_value = "")]
    pub username_prefix: String,
    /// The Okta profile attribute that is the user name (the apiserver's --oidc-username-claim).
    #[arg(long, env = "USERNAME_ATTRIBUTE", value_enum, default_value = "email")]
    pub username_attribute: UserNameArg,
    /// Only groups starting with this (case-insensitively) can be bound; Okta's groups
    /// claim filter keeps the others out of tokens anyway.
    #[arg(long, env = "ALLOWED_GROUP_PREFIX", default_value = "k8s-")]
    pub allowed_group_prefix: String,
    /// How long an answer from Okta is trusted before the group is verified again.
    #[arg(long, env = "RESYNC_INTERVAL", default_value = "5m", value_parser = humantime::parse_duration)]
    pub resync_interval: std::time::Duration,
    /// OktaGroupBindings reconciled at once.
    #[arg(long, env = "RECONCILE_CONCURRENCY", default_value_t = 16)]
    pub reconcile_concurrency: u16,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_address: SocketAddr,
    /// Elect a leader among replicas with a Lease; only the leader writes.
    #[arg(long, env = "LEADER_ELECTION")]
    pub leader_election: bool,
    #[arg(long, env = "LEASE_NAME", default_value = "okta-rbac-operator")]
    pub lease_name: String,
    /// Defaults to the pod's namespace (POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "okta-rbac-operator")]
    pub lease_namespace: String,
    /// How long a leader's lease lasts without renewal: the longest hand-over.
    #[arg(long, env = "LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_duration: std::time::Duration,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum UserNameArg {
    Email,
    Login,
}

#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// The org to start with: users, groups, tokens, clients, authorization servers.
    #[arg(long, default_value = "examples/okta-org.yaml")]
    pub seed: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Write the CA that signed the HTTPS certificate here (for --oidc-ca-file or the
    /// operator's --okta-ca-file).
    #[arg(long)]
    pub ca_out: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS (the kube-apiserver will not trust it).
    #[arg(long)]
    pub plain_http: bool,
    /// Turn rate limits off (benchmarks).
    #[arg(long)]
    pub unlimited: bool,
}

/// What `version` prints.
pub fn version_text() -> String {
    format!(
        "okta-rbac-operator {} (Kubernetes {})",
        env!("CARGO_PKG_VERSION"),
        crate::controlplane::KUBERNETES_VERSION
    )
}
