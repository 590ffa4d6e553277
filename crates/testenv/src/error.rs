//! What can go wrong while starting the test world, said so that the fix is obvious.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(
        "{path} is missing: run `make controlplane tools` (or set OKTA_RBAC_CONTROLPLANE_BIN, OKTA_RBAC_TOOLS_BIN)"
    )]
    MissingBinary { path: PathBuf },
    #[error("{path} is missing: run `make third-party-crds` (or set OKTA_RBAC_THIRD_PARTY_CRDS)")]
    MissingThirdPartyCrds { path: PathBuf },
    #[error(
        "the operator binary is missing ({looked_in}): build it with `cargo build -p okta-rbac-operator`, or set OKTA_RBAC_OPERATOR_BIN"
    )]
    MissingOperator { looked_in: String },
    #[error(
        "{name} is not built ({looked_in}): build it with `cargo build --workspace --bins` (make rust-test does)"
    )]
    NotBuilt { name: String, looked_in: String },
    #[error("the operator did not become ready within {seconds}s (last /readyz answer: {answer})\n--- from {log} ---\n{tail}", log = log.display())]
    OperatorNotReady {
        seconds: u64,
        answer: String,
        log: PathBuf,
        tail: String,
    },
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
    #[error("setting up the node: {0}")]
    Network(String),
    #[error("installing CRD {name}: {reason}")]
    Crd { name: String, reason: String },
}

pub(crate) fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LaunchError {
    let context = context.into();
    move |source| LaunchError::Io { context, source }
}
