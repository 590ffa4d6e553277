//! `okta-rbac-controlplane`: a local control plane (etcd, kube-apiserver,
//! kube-controller-manager from `make controlplane`, and with `--node` a node from
//! `make node`) until Ctrl-C, to poke at by hand.

use clap::Parser;
use okta_rbac_testenv::tool::{self, Shutdown};
use okta_rbac_testenv::{ControlPlane, ControlPlaneOptions};
use std::path::PathBuf;
use std::process::ExitCode;

/// Runs a local control plane until Ctrl-C and prints its admin kubeconfig.
#[derive(Debug, Parser)]
#[command(name = "okta-rbac-controlplane", version)]
struct Args {
    /// Also copy the admin kubeconfig to this file.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// Keep the working directory (certificates, logs, etcd data) after exit.
    #[arg(long)]
    keep_dir: bool,
    /// Also run a node (`make node`): scheduler, containerd, kubelet and kube-proxy in a
    /// network namespace, so that Pods run.
    #[arg(long)]
    node: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tool::main("info", || run(args))
}

async fn run(args: Args) -> Result<(), String> {
    let shutdown = Shutdown::install()?;
    let plane = ControlPlane::start(ControlPlaneOptions {
        keep_dir: args.keep_dir,
        node: args.node,
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    if let Some(out) = &args.kubeconfig_out {
        std::fs::copy(plane.kubeconfig_path(), out)
            .map_err(|e| format!("copying the kubeconfig to {}: {e}", out.display()))?;
    }
    println!("server: {}", plane.server_url());
    println!("readyz after: {:.2}s", plane.time_to_ready().as_secs_f64());
    println!("kubeconfig: {}", plane.kubeconfig_path().display());
    println!("directory: {}", plane.dir().display());
    for (name, pid) in plane.processes() {
        println!("process: {name} {pid}");
    }
    println!("ready: press Ctrl-C to stop");
    shutdown.received().await;
    drop(plane);
    Ok(())
}
