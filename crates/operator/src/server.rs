//! The operator's HTTP endpoints: `/metrics` (Prometheus), `/healthz` (the controller is
//! making progress, see [`crate::progress`]), `/readyz` (every watch has its first full
//! list, or which has not and why; a standby replica is ready too, so that a rollout can
//! proceed while another replica leads).
//!
//! A watch that cannot list keeps `/readyz` failing but never `/healthz`: a restart
//! cannot mend what stops a list (permissions, a CRD missing, the apiserver away), and
//! what the apiserver stores can no longer stop one (objects are decoded one by one).

use crate::cache::WatchStates;
use crate::metrics::Metrics;
use crate::progress::Progress;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    pub ready: Arc<AtomicBool>,
    pub progress: Arc<Progress>,
    pub watches: Arc<WatchStates>,
}

async fn healthz(State(health): State<Health>) -> impl IntoResponse {
    match health.progress.check() {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(stuck) => {
            tracing::error!(%stuck, "the controller is not making progress");
            (StatusCode::SERVICE_UNAVAILABLE, stuck)
        }
    }
}

async fn metrics(State(health): State<Health>) -> impl IntoResponse {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        health.metrics.encode(),
    )
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    if health.ready.load(Ordering::SeqCst) {
        return (StatusCode::OK, "ok".to_string());
    }
    let unsynced = health.watches.unsynced();
    let why = if unsynced.is_empty() {
        "starting".to_string()
    } else {
        unsynced.join("\n")
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("watches not synced:\n{why}"),
    )
}

/// Binds `address` (port 0 picks one) and returns the bound address and the server,
/// which serves until it fails (it is supervised: see [`crate::tasks`]).
pub async fn serve(
    address: SocketAddr,
    health: Health,
) -> std::io::Result<(
    SocketAddr,
    impl std::future::Future<Output = Result<(), String>>,
)> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health);
    let server = async move {
        axum::serve(listener, app)
            .await
            .map_err(|error| format!("serving /metrics and the probes: {error}"))
    };
    Ok((bound, server))
}
