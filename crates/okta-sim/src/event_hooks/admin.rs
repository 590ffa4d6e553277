//! The admin API's event hook calls under `/_sim/eventHooks`: delivery settings, faults,
//! the roots deliveries trust, and the deliveries attempted.

use super::{EventHookFaults, EventHookSettings};
use crate::SimState;
use crate::api::json_body;
use crate::errors::OktaError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;

pub fn routes() -> axum::Router<Arc<SimState>> {
    axum::Router::new()
        .route(
            "/_sim/eventHooks/settings",
            get(get_settings).put(set_settings),
        )
        .route(
            "/_sim/eventHooks/faults",
            get(get_faults).put(set_faults).delete(clear_faults),
        )
        .route("/_sim/eventHooks/trust", post(trust))
        .route(
            "/_sim/eventHooks/deliveries",
            get(deliveries).delete(clear_deliveries),
        )
}

type Answer = Result<Json<Value>, OktaError>;

fn done() -> Answer {
    Ok(Json(json!({"ok": true})))
}

async fn get_settings(State(state): State<Arc<SimState>>) -> Answer {
    Ok(Json(json!(state.event_hooks.settings())))
}

async fn set_settings(State(state): State<Arc<SimState>>, body: Bytes) -> Answer {
    let settings: EventHookSettings = json_body(&body)?;
    if settings.timeout_ms == 0 {
        return Err(OktaError::validation("timeoutMs: must be at least 1"));
    }
    state.event_hooks.set_settings(settings);
    get_settings(State(state)).await
}

async fn get_faults(State(state): State<Arc<SimState>>) -> Answer {
    Ok(Json(json!(state.event_hooks.faults())))
}

async fn set_faults(State(state): State<Arc<SimState>>, body: Bytes) -> Answer {
    let faults: EventHookFaults = json_body(&body)?;
    state.event_hooks.set_faults(faults);
    get_faults(State(state)).await
}

async fn clear_faults(State(state): State<Arc<SimState>>) -> Answer {
    state.event_hooks.set_faults(EventHookFaults::default());
    done()
}

/// Trusts the PEM body's certificates for deliveries and verifications.
async fn trust(State(state): State<Arc<SimState>>, body: Bytes) -> Answer {
    let pem = std::str::from_utf8(&body)
        .map_err(|_| OktaError::malformed_body("the body is not a PEM text"))?;
    state
        .event_hooks
        .trust(pem)
        .map_err(OktaError::validation)?;
    done()
}

async fn deliveries(State(state): State<Arc<SimState>>) -> Answer {
    Ok(Json(json!(state.event_hooks.deliveries())))
}

async fn clear_deliveries(State(state): State<Arc<SimState>>) -> Answer {
    state.event_hooks.clear_deliveries();
    done()
}
