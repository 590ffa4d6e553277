//! The users endpoints: one user by id or login (`GET /api/v1/users/{idOrLogin}`) and the
//! groups a user is in (`GET /api/v1/users/{idOrLogin}/groups`), with `okta.users.read`;
//! the User Lifecycle API (`POST /api/v1/users/{id}/lifecycle/{operation}`) and
//! `DELETE /api/v1/users/{id}`, with `okta.users.manage`.

use super::SimState;
use super::api::{paged_json, request_url};
use super::auth::{Caller, USERS_MANAGE, USERS_READ};
use super::directory::Lifecycle;
use super::errors::OktaError;
use super::limits::lock;
use super::paging::link_headers;
use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use std::sync::Arc;

pub fn routes() -> axum::Router<Arc<SimState>> {
    axum::Router::new()
        .route("/api/v1/users/{user}", get(get_user).delete(delete_user))
        .route(
            "/api/v1/users/{user}/lifecycle/{operation}",
            post(lifecycle),
        )
        .route("/api/v1/users/{user}/groups", get(user_groups))
}

async fn get_user(
    State(state): State<Arc<SimState>>,
    Path(user): Path<String>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, OktaError> {
    state.authorize(&caller, USERS_READ)?;
    let directory = lock(&state.directory);
    let user = directory
        .find_user(&user)
        .ok_or_else(|| OktaError::not_found(format!("{user} (User)")))?;
    Ok(Json(user.to_json(&state.base_url)))
}

/// Every group of the user, in one page (Okta pages this list only for very large ones).
async fn user_groups(
    State(state): State<Arc<SimState>>,
    OriginalUri(uri): OriginalUri,
    Path(user): Path<String>,
    caller: Caller,
) -> Result<Response, OktaError> {
    state.authorize(&caller, USERS_READ)?;
    let directory = lock(&state.directory);
    let user = directory
        .find_user(&user)
        .ok_or_else(|| OktaError::not_found(format!("{user} (User)")))?;
    let groups = directory
        .groups_of(&user.id)
        .map(|g| g.to_json(&state.base_url, None))
        .collect();
    Ok(paged_json(
        groups,
        link_headers(&request_url(&state, &uri)?, None),
    ))
}

/// A lifecycle operation. Activation answers with the activation link when `sendEmail`
/// is `false` (Okta then sends no email), with `{}` otherwise; the others with no body.
async fn lifecycle(
    State(state): State<Arc<SimState>>,
    OriginalUri(uri): OriginalUri,
    Path((user, operation)): Path<(String, String)>,
    caller: Caller,
) -> Result<Response, OktaError> {
    state.authorize(&caller, USERS_MANAGE)?;
    let operation = Lifecycle::parse(&operation)
        .ok_or_else(|| OktaError::not_found(format!("lifecycle operation {operation}")))?;
    let id = {
        let mut directory = lock(&state.directory);
        directory.user_lifecycle(&user, operation)?;
        directory
            .find_user(&user)
            .map(|u| u.id.clone())
            .unwrap_or(user)
    };
    let send_email = super::api::params(&uri)
        .get("sendEmail")
        .is_none_or(|v| v != "false");
    Ok(match operation {
        Lifecycle::Activate | Lifecycle::Reactivate if !send_email => {
            let token = super::errors::random_id("", 20);
            Json(json!({
                "activationUrl": format!("{}/welcome/{token}", state.base_url),
                "activationToken": token,
                "_links": {"user": {"href": format!("{}/api/v1/users/{id}", state.base_url)}},
            }))
            .into_response()
        }
        Lifecycle::Activate | Lifecycle::Reactivate => Json(json!({})).into_response(),
        _ => StatusCode::OK.into_response(),
    })
}

/// Deactivates a user who is not DEPROVISIONED; deletes one who is.
async fn delete_user(
    State(state): State<Arc<SimState>>,
    Path(user): Path<String>,
    caller: Caller,
) -> Result<StatusCode, OktaError> {
    state.authorize(&caller, USERS_MANAGE)?;
    lock(&state.directory).user_lifecycle(&user, Lifecycle::Delete)?;
    Ok(StatusCode::NO_CONTENT)
}
