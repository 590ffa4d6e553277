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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Print the OktaGroupBinding CustomResourceDefinition as YAML (committed in crds/).
    Crd,
    /// Run the local Okta (Management API, OAuth service apps, OIDC issuer) until Ctrl-C.
    Sim(SimArgs),
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
