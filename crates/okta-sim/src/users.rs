//! The users endpoints a read-only client needs: one user by id or login
//! (`GET /api/v1/users/{idOrLogin}`), and the groups a user is in
//! (`GET /api/v1/users/{idOrLogin}/groups`). Both need `okta.users.read`.

use super::SimState;
use super::api::{paged_json, request_url};
use super::auth::{Caller, USERS_READ};
use super::errors::OktaError;
use super::limits::lock;
use super::paging::link_headers;
use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::response::Response;
use axum::routing::get;
use std::sync::Arc;

pub fn routes() -> axum::Router<Arc<SimState>> {
    axum::Router::new()
        .route("/api/v1/users/{user}", get(get_user))
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
