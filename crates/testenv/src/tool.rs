//! What the development binaries (the control plane, the demo, the benchmark) share: logs
//! on stderr, an error printed as one line and exit code 1, and Ctrl-C or SIGTERM as a
//! clean stop.

use std::future::Future;
use std::process::ExitCode;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Runs `tool` on a multi-threaded runtime with logs at `RUST_LOG` (default `filter`).
pub fn main<F>(filter: &str, tool: impl FnOnce() -> F) -> ExitCode
where
    F: Future<Output = Result<(), String>>,
{
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = tokio::runtime::Runtime::new()
        .map_err(|e| format!("starting the runtime: {e}"))
        .and_then(|runtime| runtime.block_on(tool()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C and SIGTERM, installed before the tool says it is ready, so that a signal sent
/// right after that is a clean stop and not the default kill.
pub struct Shutdown {
    interrupt: Signal,
    terminate: Signal,
}

impl Shutdown {
    pub fn install() -> Result<Self, String> {
        let install = |kind| signal(kind).map_err(|e| format!("installing a signal handler: {e}"));
        Ok(Self {
            interrupt: install(SignalKind::interrupt())?,
            terminate: install(SignalKind::terminate())?,
        })
    }

    pub async fn received(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
