//! The Authorization Server claims API, as Okta documents it: the custom `groups` claim
//! of each authorization server (and a system claim beside it), read with
//! `okta.authorizationServers.read` and changed with `okta.authorizationServers.manage`.
//! A change applies to the ID tokens issued from then on.

use crate::SimState;
use crate::api::json_body;
use crate::auth::{AUTHORIZATION_SERVERS_MANAGE, AUTHORIZATION_SERVERS_READ, Caller};
use crate::errors::OktaError;
use crate::seed::{ClaimFilterType, GroupsClaim};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub fn routes() -> axum::Router<Arc<SimState>> {
    axum::Router::new()
        .route(
            "/api/v1/authorizationServers/{server}/claims",
            get(list_claims).fallback(not_allowed),
        )
        .route(
            "/api/v1/authorizationServers/{server}/claims/{claim}",
            get(get_claim).put(replace_claim).fallback(not_allowed),
        )
}

async fn not_allowed() -> OktaError {
    OktaError::method_not_allowed()
}

fn filter_type_name(filter: ClaimFilterType) -> &'static str {
    match filter {
        ClaimFilterType::StartsWith => "STARTS_WITH",
        ClaimFilterType::Equals => "EQUALS",
        ClaimFilterType::Contains => "CONTAINS",
        ClaimFilterType::Regex => "REGEX",
    }
}

fn claim_url(state: &SimState, server: &str, claim: &str) -> String {
    format!(
        "{}/api/v1/authorizationServers/{server}/claims/{claim}",
        state.base_url
    )
}

/// The groups claim as Okta returns it.
fn groups_claim_json(state: &SimState, server: &str, id: &str, claim: &GroupsClaim) -> Value {
    json!({
        "id": id,
        "name": claim.name,
        "status": "ACTIVE",
        "claimType": "IDENTITY",
        "valueType": "GROUPS",
        "value": claim.filter_value,
        "group_filter_type": filter_type_name(claim.filter_type),
        "alwaysIncludeInToken": claim.always_include_in_token,
        "conditions": {"scopes": claim.scopes},
        "system": false,
        "_links": {"self": {
            "href": claim_url(state, server, id),
            "hints": {"allow": ["GET", "PUT", "DELETE"]},
        }},
    })
}

/// One of the claims Okta adds to every authorization server.
fn system_claim_json(state: &SimState, server: &str) -> Value {
    let id = format!("ocl{server}email");
    json!({
        "id": id,
        "name": "email",
        "status": "ACTIVE",
        "claimType": "IDENTITY",
        "valueType": "SYSTEM",
        "value": "user.email",
        "alwaysIncludeInToken": false,
        "conditions": {"scopes": ["email"]},
        "system": true,
        "_links": {"self": {"href": claim_url(state, server, &id), "hints": {"allow": ["GET"]}}},
    })
}

async fn list_claims(
    State(state): State<Arc<SimState>>,
    Path(server): Path<String>,
    caller: Caller,
) -> Result<Json<Value>, OktaError> {
    state.authorize(&caller, AUTHORIZATION_SERVERS_READ)?;
    let (id, claim) = state.servers.groups_claim(&server)?;
    Ok(Json(json!([
        system_claim_json(&state, &server),
        groups_claim_json(&state, &server, &id, &claim),
    ])))
}

async fn get_claim(
    State(state): State<Arc<SimState>>,
    Path((server, claim_id)): Path<(String, String)>,
    caller: Caller,
) -> Result<Json<Value>, OktaError> {
    state.authorize(&caller, AUTHORIZATION_SERVERS_READ)?;
    let (id, claim) = state.servers.groups_claim(&server)?;
    if claim_id == id {
        return Ok(Json(groups_claim_json(&state, &server, &id, &claim)));
    }
    if claim_id == format!("ocl{server}email") {
        return Ok(Json(system_claim_json(&state, &server)));
    }
    Err(OktaError::not_found(format!("{claim_id} (OAuth2Claim)")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClaimBody {
    name: String,
    value: String,
    #[serde(rename = "group_filter_type")]
    group_filter_type: Option<ClaimFilterType>,
    value_type: Option<String>,
    claim_type: Option<String>,
    #[serde(default = "yes")]
    always_include_in_token: bool,
    #[serde(default)]
    conditions: Option<ClaimConditions>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Default)]
struct ClaimConditions {
    #[serde(default)]
    scopes: Vec<String>,
}

async fn replace_claim(
    State(state): State<Arc<SimState>>,
    Path((server, claim_id)): Path<(String, String)>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, OktaError> {
    state.authorize(&caller, AUTHORIZATION_SERVERS_MANAGE)?;
    let (id, _) = state.servers.groups_claim(&server)?;
    if claim_id != id {
        return Err(OktaError::not_found(format!("{claim_id} (OAuth2Claim)")));
    }
    let body: ClaimBody = json_body(&body)?;
    if body.value_type.as_deref().is_some_and(|t| t != "GROUPS")
        || body.claim_type.as_deref().is_some_and(|t| t != "IDENTITY")
    {
        return Err(OktaError::validation(
            "the local Okta keeps the groups claim an IDENTITY claim of valueType GROUPS",
        ));
    }
    let claim = GroupsClaim {
        name: body.name,
        filter_type: body
            .group_filter_type
            .unwrap_or(ClaimFilterType::StartsWith),
        filter_value: body.value,
        always_include_in_token: body.always_include_in_token,
        scopes: body.conditions.unwrap_or_default().scopes,
    };
    state.servers.set_groups_claim(&server, claim.clone())?;
    Ok(Json(groups_claim_json(&state, &server, &id, &claim)))
}
