//! The simulator's own admin API under `/_sim`: change the directory at runtime, inject
//! faults, set or use up rate limits, and read the request log. Not rate limited, not
//! logged, no authentication (the simulator listens on loopback).

use super::api::json_body;
use super::auth::AppKey;
use super::directory::{DirectoryError, Lifecycle};
use super::errors::OktaError;
use super::faults::FaultSettings;
use super::limits::{Bucket, lock};
use super::seed::{GroupType, GroupsClaim, RateLimitSettings, UserStatus};
use super::{SimState, epoch_millis};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub fn routes() -> axum::Router<Arc<SimState>> {
    axum::Router::new()
        .route("/_sim/groups", post(create_group))
        .route(
            "/_sim/groups/{id}",
            axum::routing::patch(update_group).delete(delete_group),
        )
        .route(
            "/_sim/groups/{id}/members/{user}",
            put(add_member).delete(remove_member),
        )
        .route("/_sim/users", post(create_user))
        .route("/_sim/users/{user}", delete(delete_user))
        .route("/_sim/users/{user}/lifecycle/{operation}", post(lifecycle))
        .route(
            "/_sim/faults",
            get(get_faults).put(set_faults).delete(clear_faults),
        )
        .route("/_sim/rate-limits", get(get_limits).put(set_limits))
        .route("/_sim/rate-limits/exhaust", post(exhaust))
        .route("/_sim/requests", get(requests).delete(clear_requests))
        .route("/_sim/clients/{id}/keys", post(add_client_key))
        .route(
            "/_sim/clients/{id}/keys/{kid}",
            axum::routing::delete(remove_client_key),
        )
        .route("/_sim/clients/{id}/dpop", put(require_dpop))
        .route(
            "/_sim/authorization-servers/{id}/groups-claim",
            get(get_groups_claim).put(set_groups_claim),
        )
}

async fn get_groups_claim(State(state): State<Arc<SimState>>, Path(id): Path<String>) -> Answer {
    let (_, claim) = state.servers.groups_claim(&id)?;
    ok(json!(claim))
}

async fn set_groups_claim(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let claim: GroupsClaim = json_body(&body)?;
    state.servers.set_groups_claim(&id, claim)?;
    done()
}

type Answer = Result<(StatusCode, Json<Value>), OktaError>;

fn ok(value: Value) -> Answer {
    Ok((StatusCode::OK, Json(value)))
}

fn done() -> Answer {
    ok(json!({"ok": true}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewGroup {
    name: String,
    #[serde(default, rename = "type")]
    group_type: Option<GroupType>,
    #[serde(default)]
    description: Option<String>,
}

async fn create_group(State(state): State<Arc<SimState>>, body: Bytes) -> Answer {
    let new: NewGroup = json_body(&body)?;
    let mut directory = lock(&state.directory);
    let id = directory.create_group(
        &new.name,
        new.description,
        new.group_type.unwrap_or(GroupType::OktaGroup),
    )?;
    Ok((
        StatusCode::CREATED,
        Json(directory.groups[&id].to_json(&state.base_url, None)),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GroupChange {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<Option<String>>,
}

async fn update_group(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let change: GroupChange = json_body(&body)?;
    let mut directory = lock(&state.directory);
    directory.update_group(&id, change.name, change.description)?;
    ok(directory.groups[&id].to_json(&state.base_url, None))
}

async fn delete_group(State(state): State<Arc<SimState>>, Path(id): Path<String>) -> Answer {
    lock(&state.directory).delete_group(&id)?;
    done()
}

async fn add_member(
    State(state): State<Arc<SimState>>,
    Path((id, user)): Path<(String, String)>,
) -> Answer {
    lock(&state.directory).add_member(&id, &user)?;
    done()
}

async fn remove_member(
    State(state): State<Arc<SimState>>,
    Path((id, user)): Path<(String, String)>,
) -> Answer {
    lock(&state.directory).remove_member(&id, &user)?;
    done()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewUser {
    login: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    status: Option<UserStatus>,
    #[serde(default)]
    password: Option<String>,
}

async fn create_user(State(state): State<Arc<SimState>>, body: Bytes) -> Answer {
    let new: NewUser = json_body(&body)?;
    let mut directory = lock(&state.directory);
    let id = directory.create_user(
        &new.login,
        new.email,
        new.first_name,
        new.last_name,
        new.status.unwrap_or(UserStatus::Active),
        new.password,
    )?;
    Ok((
        StatusCode::CREATED,
        Json(directory.users[&id].to_json(&state.base_url)),
    ))
}

/// A lifecycle operation without credentials, as an Okta admin does it in the console:
/// the user as it is after it.
async fn lifecycle(
    State(state): State<Arc<SimState>>,
    Path((user, operation)): Path<(String, String)>,
) -> Answer {
    let operation = Lifecycle::parse(&operation).ok_or_else(|| {
        OktaError::not_found(format!(
            "lifecycle operation {operation} (suspend, unsuspend, deactivate, activate, reactivate)"
        ))
    })?;
    let mut directory = lock(&state.directory);
    directory.user_lifecycle(&user, operation)?;
    let user = directory
        .find_user(&user)
        .ok_or_else(|| OktaError::from(DirectoryError::NotFound(user.clone())))?;
    ok(user.to_json(&state.base_url))
}

/// Deactivates the user, or deletes one already deactivated.
async fn delete_user(State(state): State<Arc<SimState>>, Path(user): Path<String>) -> Answer {
    lock(&state.directory).user_lifecycle(&user, Lifecycle::Delete)?;
    done()
}

async fn get_faults(State(state): State<Arc<SimState>>) -> Answer {
    ok(json!(state.faults.get()))
}

async fn set_faults(State(state): State<Arc<SimState>>, body: Bytes) -> Answer {
    let settings: FaultSettings = json_body(&body)?;
    if !(0.0..=1.0).contains(&settings.error_rate) || !(0.0..=1.0).contains(&settings.hang_rate) {
        return Err(OktaError::validation(
            "errorRate and hangRate are shares between 0 and 1",
        ));
    }
    if let Some(unknown) = settings
        .buckets
        .iter()
        .find(|b| Bucket::from_name(b).is_none())
    {
        return Err(OktaError::validation(format!("unknown bucket {unknown}")));
    }
    state.faults.set(settings);
    ok(json!(state.faults.get()))
}

async fn clear_faults(State(state): State<Arc<SimState>>) -> Answer {
    state.faults.set(FaultSettings::default());
    done()
}

async fn get_limits(State(state): State<Arc<SimState>>) -> Answer {
    ok(json!(state.limits.settings()))
}

async fn set_limits(State(state): State<Arc<SimState>>, body: Bytes) -> Answer {
    let settings: RateLimitSettings = json_body(&body)?;
    if let Some(unknown) = settings
        .per_minute
        .keys()
        .find(|k| Bucket::from_name(k).is_none())
    {
        return Err(OktaError::validation(format!("unknown bucket {unknown}")));
    }
    state.limits.set_settings(settings);
    ok(json!(state.limits.settings()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Exhaust {
    /// A bucket name, or "all".
    bucket: String,
}

async fn exhaust(State(state): State<Arc<SimState>>, body: Bytes) -> Answer {
    let request: Exhaust = json_body(&body)?;
    let buckets: Vec<Bucket> =
        if request.bucket == "all" {
            Bucket::ALL.to_vec()
        } else {
            vec![Bucket::from_name(&request.bucket).ok_or_else(|| {
                OktaError::validation(format!("unknown bucket {}", request.bucket))
            })?]
        };
    let now = epoch_millis() / 1000;
    for bucket in buckets {
        state.limits.exhaust(bucket, now);
    }
    done()
}

async fn requests(State(state): State<Arc<SimState>>) -> Answer {
    ok(json!(*lock(&state.log)))
}

async fn clear_requests(State(state): State<Arc<SimState>>) -> Answer {
    lock(&state.log).clear();
    done()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewKey {
    kid: String,
    public_key_pem: String,
}

async fn add_client_key(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let new: NewKey = json_body(&body)?;
    let key =
        AppKey::from_pem(Some(new.kid), &new.public_key_pem).map_err(OktaError::validation)?;
    app_found(&id, state.credentials.add_key(&id, key))
}

async fn remove_client_key(
    State(state): State<Arc<SimState>>,
    Path((id, kid)): Path<(String, String)>,
) -> Answer {
    app_found(&id, state.credentials.remove_key(&id, Some(&kid)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DpopRequirement {
    required: bool,
}

async fn require_dpop(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let change: DpopRequirement = json_body(&body)?;
    app_found(&id, state.credentials.require_dpop(&id, change.required))
}

fn app_found(id: &str, found: bool) -> Answer {
    if !found {
        return Err(OktaError::not_found(format!("{id} (Application)")));
    }
    done()
}
