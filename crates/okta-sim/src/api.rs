//! The Management API's group endpoints: list (`q`, `search`, `filter`, paging), get,
//! members (paging), and the writes an admin or SDK uses to manage groups.

use super::SimState;
use super::auth::{Caller, GROUPS_MANAGE, GROUPS_READ};
use super::directory::{DirectoryError, Group, User};
use super::errors::OktaError;
use super::limits::lock;
use super::paging::{decode_cursor, link_headers, page};
use super::query::{self, Expr};
use super::seed::GroupType;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::header::LINK;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use url::Url;

const GROUPS_DEFAULT_LIMIT: usize = 10_000;
const MEMBERS_DEFAULT_LIMIT: usize = 1_000;

pub fn routes() -> axum::Router<Arc<SimState>> {
    axum::Router::new()
        .route(
            "/api/v1/groups",
            get(list_groups).post(create_group).fallback(not_allowed),
        )
        .route(
            "/api/v1/groups/{id}",
            get(get_group).delete(delete_group).fallback(not_allowed),
        )
        .route(
            "/api/v1/groups/{id}/users",
            get(list_members).fallback(not_allowed),
        )
        .route(
            "/api/v1/groups/{id}/users/{user}",
            put(add_member).delete(remove_member).fallback(not_allowed),
        )
}

async fn not_allowed() -> OktaError {
    OktaError::method_not_allowed()
}

impl From<DirectoryError> for OktaError {
    fn from(error: DirectoryError) -> Self {
        match error {
            DirectoryError::NotFound(what) => OktaError::not_found(what),
            DirectoryError::Conflict(what) => {
                OktaError::validation(format!("An object with this field already exists: {what}"))
            }
            DirectoryError::Invalid(what) => OktaError::validation(what),
        }
    }
}

/// Query parameters as Okta reads them: the last value wins, unknown ones are ignored.
pub(crate) fn params(uri: &axum::http::Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

pub(crate) fn limit(params: &HashMap<String, String>, default: usize) -> Result<usize, OktaError> {
    match params.get("limit") {
        None => Ok(default),
        Some(text) => match text.trim().parse::<i64>() {
            Ok(n) if n >= 1 => Ok((n as usize).min(default)),
            _ => Err(OktaError::validation(format!(
                "limit: '{text}' is not a positive number"
            ))),
        },
    }
}

fn after(params: &HashMap<String, String>) -> Result<Option<String>, OktaError> {
    match params.get("after") {
        None => Ok(None),
        Some(cursor) => decode_cursor(cursor).map(Some).ok_or_else(|| {
            OktaError::validation(format!("after: '{cursor}' is not a valid cursor"))
        }),
    }
}

/// The URL the client asked for, on the org's base URL. Over HTTP/2 the request line
/// carries an absolute URI, over HTTP/1.1 only the path, so only the path and query count.
pub(crate) fn request_url(state: &SimState, uri: &axum::http::Uri) -> Result<Url, OktaError> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    Url::parse(&format!("{}{path}", state.base_url))
        .map_err(|e| OktaError::validation(e.to_string()))
}

pub(crate) fn paged_json(body: Vec<serde_json::Value>, links: Vec<String>) -> Response {
    let mut response = Json(body).into_response();
    for link in links {
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().append(LINK, value);
        }
    }
    response
}

async fn list_groups(
    State(state): State<Arc<SimState>>,
    OriginalUri(uri): OriginalUri,
    caller: Caller,
) -> Result<Response, OktaError> {
    state.authorize(&caller, GROUPS_READ)?;
    let params = params(&uri);
    let limit = limit(&params, GROUPS_DEFAULT_LIMIT)?;
    let after = after(&params)?;
    let search = parse_param(&params, "search", &query::GROUP_SEARCH)?;
    let filter = parse_param(&params, "filter", &query::GROUP_FILTER)?;
    let name_prefix = params.get("q").map(|q| q.to_lowercase());
    let stats = params
        .get("expand")
        .is_some_and(|e| e.split(',').any(|x| x == "stats"));

    let directory = lock(&state.directory);
    let matching: Vec<&Group> = directory
        .groups
        .values()
        .filter(|g| {
            name_prefix
                .as_ref()
                .is_none_or(|p| g.name.to_lowercase().starts_with(p))
        })
        .filter(|g| {
            search
                .as_ref()
                .is_none_or(|e| e.matches(&|a| g.attribute(a)))
        })
        .filter(|g| {
            filter
                .as_ref()
                .is_none_or(|e| e.matches(&|a| g.attribute(a)))
        })
        .collect();
    let (groups, next) = page(matching, |g| g.id.as_str(), after.as_deref(), limit);
    // `q` is a quick lookup: one page, no next link.
    let next = if name_prefix.is_some() { None } else { next };
    let body = groups
        .iter()
        .map(|g| {
            g.to_json(
                &state.base_url,
                stats.then(|| directory.member_count(&g.id)),
            )
        })
        .collect();
    Ok(paged_json(
        body,
        link_headers(&request_url(&state, &uri)?, next.as_deref()),
    ))
}

pub(crate) fn parse_param(
    params: &HashMap<String, String>,
    name: &str,
    dialect: &query::Dialect,
) -> Result<Option<Expr>, OktaError> {
    params
        .get(name)
        .map(|text| {
            query::parse(text, dialect)
                .map_err(|e| OktaError::invalid_search(format!("{name}: {e}")))
        })
        .transpose()
}

async fn get_group(
    State(state): State<Arc<SimState>>,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, OktaError> {
    state.authorize(&caller, GROUPS_READ)?;
    let stats = params(&uri).get("expand").is_some_and(|e| e == "stats");
    let directory = lock(&state.directory);
    let group = directory
        .groups
        .get(&id)
        .ok_or_else(|| OktaError::not_found(format!("{id} (UserGroup)")))?;
    Ok(Json(group.to_json(
        &state.base_url,
        stats.then(|| directory.member_count(&id)),
    )))
}

async fn list_members(
    State(state): State<Arc<SimState>>,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Response, OktaError> {
    state.authorize(&caller, GROUPS_READ)?;
    let params = params(&uri);
    let limit = limit(&params, MEMBERS_DEFAULT_LIMIT)?;
    let after = after(&params)?;
    let directory = lock(&state.directory);
    let members = directory
        .members
        .get(&id)
        .filter(|_| directory.groups.contains_key(&id))
        .ok_or_else(|| OktaError::not_found(format!("{id} (UserGroup)")))?;
    let users: Vec<&User> = members
        .iter()
        .filter_map(|u| directory.users.get(u))
        .collect();
    let (users, next) = page(users, |u| u.id.as_str(), after.as_deref(), limit);
    let body = users.iter().map(|u| u.to_json(&state.base_url)).collect();
    Ok(paged_json(
        body,
        link_headers(&request_url(&state, &uri)?, next.as_deref()),
    ))
}

#[derive(Deserialize)]
struct NewGroup {
    profile: NewGroupProfile,
}

#[derive(Deserialize)]
struct NewGroupProfile {
    name: String,
    #[serde(default)]
    description: Option<String>,
}

/// Parses a JSON body, answering a malformed one as Okta does.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, OktaError> {
    serde_json::from_slice(body).map_err(|e| OktaError::malformed_body(e.to_string()))
}

async fn create_group(
    State(state): State<Arc<SimState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<serde_json::Value>, OktaError> {
    state.authorize(&caller, GROUPS_MANAGE)?;
    let new: NewGroup = json_body(&body)?;
    if new.profile.name.trim().is_empty() {
        return Err(OktaError::validation(
            "profile.name: The field cannot be left blank",
        ));
    }
    let mut directory = lock(&state.directory);
    let id = directory.create_group(
        &new.profile.name,
        new.profile.description,
        GroupType::OktaGroup,
    )?;
    Ok(Json(directory.groups[&id].to_json(&state.base_url, None)))
}

async fn delete_group(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<StatusCode, OktaError> {
    state.authorize(&caller, GROUPS_MANAGE)?;
    let mut directory = lock(&state.directory);
    if directory
        .groups
        .get(&id)
        .is_some_and(|g| g.group_type != GroupType::OktaGroup)
    {
        return Err(OktaError::forbidden());
    }
    directory.delete_group(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_member(
    State(state): State<Arc<SimState>>,
    Path((id, user)): Path<(String, String)>,
    caller: Caller,
) -> Result<StatusCode, OktaError> {
    state.authorize(&caller, GROUPS_MANAGE)?;
    lock(&state.directory).add_member(&id, &user)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_member(
    State(state): State<Arc<SimState>>,
    Path((id, user)): Path<(String, String)>,
    caller: Caller,
) -> Result<StatusCode, OktaError> {
    state.authorize(&caller, GROUPS_MANAGE)?;
    lock(&state.directory).remove_member(&id, &user)?;
    Ok(StatusCode::NO_CONTENT)
}
