//! The command line: each subcommand is one thing the binary really does.

use clap::{Parser, Subcommand};
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
}

/// What `version` prints.
pub fn version_text() -> String {
    format!(
        "okta-rbac-operator {} (Kubernetes {})",
        env!("CARGO_PKG_VERSION"),
        crate::controlplane::KUBERNETES_VERSION
    )
}
