//! The authorization endpoint: the login form and the authorization-code grant it starts.

use super::token::scopes;
use super::{CODE_SECONDS, CodeGrant};
use crate::directory::{Directory, User};
use crate::errors::random_id;
use crate::limits::lock;
use crate::seed::UserStatus;
use crate::{SimState, epoch_millis};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
pub(super) struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// Loopback redirect URIs match on any port, as RFC 8252 asks of native-app logins.
fn redirect_allowed(registered: &[String], requested: &str) -> bool {
    let strip_port = |uri: &str| -> Option<String> {
        let url = url::Url::parse(uri).ok()?;
        let host = url.host_str()?;
        (host == "localhost" || host == "127.0.0.1")
            .then(|| format!("{}://{}{}", url.scheme(), host, url.path()))
    };
    registered.iter().any(|r| {
        r == requested
            || matches!((strip_port(r), strip_port(requested)), (Some(a), Some(b)) if a == b)
    })
}

/// Why an authorization request is refused. It is shown to the person, never sent to a
/// redirect URI that may not be the client's.
fn authorize_problem(state: &SimState, id: &str, params: &AuthorizeParams) -> Option<Response> {
    if let Err(error) = state.servers.server(id) {
        return Some(error.into_response());
    }
    let problem = match params
        .client_id
        .as_deref()
        .and_then(|c| state.servers.clients.get(c))
    {
        None => "unknown client_id",
        Some(client) => match params.redirect_uri.as_deref() {
            None => "redirect_uri is required",
            Some(redirect) if !redirect_allowed(&client.redirect_uris, redirect) => {
                "redirect_uri is not registered for this client"
            }
            Some(_) if params.response_type.as_deref() != Some("code") => {
                "response_type must be code"
            }
            Some(_)
                if client.secret.is_none()
                    && (params.code_challenge.is_none()
                        || params.code_challenge_method.as_deref() != Some("S256")) =>
            {
                "PKCE with code_challenge_method=S256 is required for public clients"
            }
            Some(_) => return None,
        },
    };
    Some(
        (
            StatusCode::BAD_REQUEST,
            Html(format!("<h1>Bad request</h1><p>{problem}</p>")),
        )
            .into_response(),
    )
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(super) async fn login_form(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    if let Some(response) = authorize_problem(&state, &id, &params) {
        return response;
    }
    let hidden: String = [
        ("response_type", &params.response_type),
        ("client_id", &params.client_id),
        ("redirect_uri", &params.redirect_uri),
        ("scope", &params.scope),
        ("state", &params.state),
        ("nonce", &params.nonce),
        ("code_challenge", &params.code_challenge),
        ("code_challenge_method", &params.code_challenge_method),
    ]
    .iter()
    .filter_map(|(name, value)| {
        value.as_ref().map(|v| {
            format!(
                r#"<input type="hidden" name="{name}" value="{}">"#,
                html_escape(v)
            )
        })
    })
    .collect();
    Html(format!(
        r#"<!doctype html><html><head><title>Sign in - local Okta</title></head><body>
<h1>Sign in to the local Okta</h1>
<form method="post">{hidden}
<label>Username <input name="username" autofocus></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign in</button></form></body></html>"#
    ))
    .into_response()
}

pub(super) fn authenticate<'a>(
    directory: &'a Directory,
    username: &str,
    password: &str,
) -> Option<&'a User> {
    directory
        .find_user(username)
        .filter(|u| u.status == UserStatus::Active && u.password.as_deref() == Some(password))
}

pub(super) async fn login(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    Form(params): Form<AuthorizeParams>,
) -> Response {
    if let Some(response) = authorize_problem(&state, &id, &params) {
        return response;
    }
    let user_id = {
        let directory = lock(&state.directory);
        authenticate(
            &directory,
            params.username.as_deref().unwrap_or_default(),
            params.password.as_deref().unwrap_or_default(),
        )
        .map(|u| u.id.clone())
    };
    let Some(user_id) = user_id else {
        return (StatusCode::UNAUTHORIZED, Html("<h1>Sign-in failed</h1><p>Unknown user, wrong password, or the user is not active.</p>")).into_response();
    };
    let code = random_id("", 43);
    let redirect_uri = params.redirect_uri.clone().unwrap_or_default();
    lock(&state.servers.codes).insert(
        code.clone(),
        CodeGrant {
            server: id,
            client_id: params.client_id.clone().unwrap_or_default(),
            redirect_uri: redirect_uri.clone(),
            user_id,
            scopes: scopes(params.scope.as_deref()),
            nonce: params.nonce.clone(),
            challenge: params.code_challenge.clone(),
            expires_ms: epoch_millis() + CODE_SECONDS * 1000,
        },
    );
    let mut location = match url::Url::parse(&redirect_uri) {
        Ok(url) => url,
        Err(_) => return (StatusCode::BAD_REQUEST, "invalid redirect_uri").into_response(),
    };
    location.query_pairs_mut().append_pair("code", &code);
    if let Some(state_param) = &params.state {
        location.query_pairs_mut().append_pair("state", state_param);
    }
    (StatusCode::FOUND, [(LOCATION, location.to_string())]).into_response()
}

#[cfg(test)]
mod tests {
    use super::redirect_allowed;

    #[test]
    fn loopback_redirects_match_on_any_port_others_exactly() {
        let registered = vec![
            "http://localhost:8000".to_string(),
            "https://app.example.com/cb".to_string(),
        ];
        assert!(redirect_allowed(&registered, "http://localhost:8000"));
        assert!(redirect_allowed(&registered, "http://localhost:39999"));
        assert!(!redirect_allowed(
            &registered,
            "http://localhost:8000/other"
        ));
        assert!(redirect_allowed(&registered, "https://app.example.com/cb"));
        assert!(!redirect_allowed(
            &registered,
            "https://app.example.com/cb2"
        ));
        assert!(!redirect_allowed(
            &registered,
            "https://evil.example.com/cb"
        ));
    }
}
