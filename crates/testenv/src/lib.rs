//! The test world: a real control plane built from Kubernetes' own Go modules
//! (`make controlplane`), and the operator started as its own process the way a cluster
//! runs it. For tests, the demo and the benchmark; never a dependency of the operator.
//! Depends on kube-rs as a client, the API types and the test PKI; never on the operator's
//! code, which it runs as a binary.

pub mod controlplane;
mod error;
pub mod gotools;
pub mod node;
pub mod operator;
pub mod paths;
pub mod peer;
mod process;
pub mod procstat;
pub mod schema_fuzz;
pub mod testrun;
pub mod tool;
pub mod wait;

pub use controlplane::{
    ControlPlane, ControlPlaneOptions, KUBERNETES_VERSION, KubectlOutput, OidcOptions, PAUSE_IMAGE,
};
pub use error::LaunchError;
pub use operator::{OperatorLaunch, OperatorProcess, http_get};
pub use process::free_port;

use std::sync::atomic::{AtomicU32, Ordering};

/// A name no other test in this run uses: `prefix-<pid>-<n>`, a valid DNS label.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}
