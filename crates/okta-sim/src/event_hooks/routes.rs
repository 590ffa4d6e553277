//! The Management API's `/api/v1/eventHooks`: create, list, get, replace, delete, and
//! the lifecycle operations activate, deactivate and verify. Needs
//! `okta.eventHooks.manage` to change and `okta.eventHooks.read` to read; each change is
//! in the System Log as Okta logs it (`event_hook.created`, ...).

use super::hook::{EventHook, HookBody, Status};
use super::verify;
use crate::SimState;
use crate::api::json_body;
use crate::auth::{Caller, EVENT_HOOKS_MANAGE, EVENT_HOOKS_READ};
use crate::errors::OktaError;
use crate::limits::lock;
use crate::system_log::EventOutcome;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::Value;
use std::sync::Arc;

pub fn routes() -> axum::Router<Arc<SimState>> {
    axum::Router::new()
        .route(
            "/api/v1/eventHooks",
            get(list).post(create).fallback(not_allowed),
        )
        .route(
            "/api/v1/eventHooks/{id}",
            get(read).put(replace).delete(delete).fallback(not_allowed),
        )
        .route(
            "/api/v1/eventHooks/{id}/lifecycle/{operation}",
            post(lifecycle).fallback(not_allowed),
        )
}

async fn not_allowed() -> OktaError {
    OktaError::method_not_allowed()
}

type Answer = Result<Json<Value>, OktaError>;

/// Logs a change to a hook as Okta's System Log does.
fn audit(
    state: &SimState,
    event_type: &'static str,
    message: &'static str,
    hook: &EventHook,
    outcome: EventOutcome,
) {
    lock(&state.directory).system_log.record_outcome(
        event_type,
        message,
        vec![hook.target()],
        outcome,
    );
}

/// Answers the hook, after logging the change made to it.
fn changed(
    state: &SimState,
    event_type: &'static str,
    message: &'static str,
    hook: EventHook,
) -> Answer {
    audit(state, event_type, message, &hook, EventOutcome::success());
    Ok(Json(hook.to_json(&state.base_url)))
}

async fn list(State(state): State<Arc<SimState>>, caller: Caller) -> Answer {
    state.authorize(&caller, EVENT_HOOKS_READ)?;
    let registry = lock(&state.event_hooks.registry);
    let hooks = registry
        .list()
        .iter()
        .map(|h| h.to_json(&state.base_url))
        .collect();
    Ok(Json(Value::Array(hooks)))
}

async fn read(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> Answer {
    state.authorize(&caller, EVENT_HOOKS_READ)?;
    let registry = lock(&state.event_hooks.registry);
    Ok(Json(registry.get(&id)?.to_json(&state.base_url)))
}

async fn create(State(state): State<Arc<SimState>>, caller: Caller, body: Bytes) -> Answer {
    state.authorize(&caller, EVENT_HOOKS_MANAGE)?;
    let spec = json_body::<HookBody>(&body)?.validate(None)?;
    let hook = lock(&state.event_hooks.registry).create(spec)?.clone();
    changed(&state, "event_hook.created", "Create event hook", hook)
}

async fn replace(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    caller: Caller,
    body: Bytes,
) -> Answer {
    state.authorize(&caller, EVENT_HOOKS_MANAGE)?;
    let request: HookBody = json_body(&body)?;
    let hook = {
        let mut registry = lock(&state.event_hooks.registry);
        let previous_auth = registry.get(&id)?.spec.channel.auth.clone();
        let spec = request.validate(previous_auth.as_ref())?;
        registry.replace(&id, spec)?.clone()
    };
    changed(&state, "event_hook.updated", "Update event hook", hook)
}

async fn delete(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<StatusCode, OktaError> {
    state.authorize(&caller, EVENT_HOOKS_MANAGE)?;
    let hook = lock(&state.event_hooks.registry).delete(&id)?;
    state.event_hooks.forget(&id);
    audit(
        &state,
        "event_hook.deleted",
        "Delete event hook",
        &hook,
        EventOutcome::success(),
    );
    Ok(StatusCode::NO_CONTENT)
}

async fn lifecycle(
    State(state): State<Arc<SimState>>,
    Path((id, operation)): Path<(String, String)>,
    caller: Caller,
) -> Answer {
    state.authorize(&caller, EVENT_HOOKS_MANAGE)?;
    let (status, event_type, message) = match operation.as_str() {
        "activate" => (
            Status::Active,
            "event_hook.activated",
            "Activate event hook",
        ),
        "deactivate" => (
            Status::Inactive,
            "event_hook.deactivated",
            "Deactivate event hook",
        ),
        "verify" => return verify_hook(&state, &id).await,
        _ => {
            return Err(OktaError::not_found(format!(
                "lifecycle operation {operation} (activate, deactivate, verify)"
            )));
        }
    };
    let hook = lock(&state.event_hooks.registry)
        .set_status(&id, status)?
        .clone();
    changed(&state, event_type, message, hook)
}

/// Sends the verification challenge; the hook is VERIFIED if the endpoint answers it,
/// UNVERIFIED otherwise.
async fn verify_hook(state: &SimState, id: &str) -> Answer {
    let channel = lock(&state.event_hooks.registry)
        .get(id)?
        .spec
        .channel
        .clone();
    let client = state.event_hooks.client.client();
    let timeout_ms = state.event_hooks.settings().timeout_ms;
    let result = verify::challenge(&client, &channel, timeout_ms).await;
    let hook = lock(&state.event_hooks.registry)
        .verified(id, &channel, result.is_ok())
        .cloned()
        .ok_or_else(|| OktaError::not_found(format!("{id} (EventHook)")))?;
    match result {
        Ok(()) => changed(state, "event_hook.verified", "Verify event hook", hook),
        Err(why) => {
            let cause = format!(
                "Verification of event hook {id} failed: {} did not answer the \
                 verification challenge: {why}",
                channel.uri
            );
            audit(
                state,
                "event_hook.verified",
                "Verify event hook",
                &hook,
                EventOutcome::failure(cause.clone()),
            );
            Err(OktaError::validation(cause))
        }
    }
}
