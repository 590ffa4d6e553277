//! The token endpoint: password, authorization-code (PKCE) and refresh grants, and the
//! ID tokens they sign.

use super::login::authenticate;
use super::{RefreshGrant, TOKEN_SECONDS};
use crate::errors::{OAuthError, OktaError, random_id};
use crate::limits::lock;
use crate::seed::UserStatus;
use crate::{SimState, epoch_millis};
use axum::Form;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Header};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub(super) fn scopes(text: Option<&str>) -> Vec<String> {
    text.unwrap_or("openid")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[derive(Deserialize)]
pub(super) struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    username: Option<String>,
    password: Option<String>,
    scope: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
}

/// The client, authenticated by HTTP Basic, by `client_secret` in the form, or (public
/// clients) by `client_id` alone.
fn client_id(
    state: &SimState,
    headers: &HeaderMap,
    form: &TokenForm,
) -> Result<String, OAuthError> {
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(id, secret)| (id.to_string(), secret.to_string()))
        });
    let (id, secret) = match basic {
        Some((id, secret)) => (id, Some(secret)),
        None => (
            form.client_id
                .clone()
                .ok_or_else(|| OAuthError::invalid_client("Client authentication failed."))?,
            form.client_secret.clone(),
        ),
    };
    let client = state
        .servers
        .clients
        .get(&id)
        .ok_or_else(|| OAuthError::invalid_client("Client authentication failed."))?;
    match &client.secret {
        Some(expected) if secret.as_deref() != Some(expected.as_str()) => {
            Err(OAuthError::invalid_client("Client authentication failed."))
        }
        _ => Ok(id),
    }
}

/// A token endpoint answers OAuth errors, or Okta's 404 for an unknown server.
pub(super) enum TokenError {
    OAuth(OAuthError),
    Okta(Box<OktaError>),
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        match self {
            TokenError::OAuth(error) => error.into_response(),
            TokenError::Okta(error) => (*error).into_response(),
        }
    }
}

pub(super) async fn token(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Result<Json<Value>, TokenError> {
    let oauth = TokenError::OAuth;
    let Form(form) = form.map_err(|e| oauth(OAuthError::invalid_request(e.body_text())))?;
    let server = state
        .servers
        .server(&id)
        .map_err(|e| TokenError::Okta(Box::new(e)))?;
    let client_id = client_id(&state, &headers, &form).map_err(oauth)?;
    let now_ms = epoch_millis();
    let (user_id, scopes, nonce) = match form.grant_type.as_deref() {
        Some("password") => {
            let directory = lock(&state.directory);
            let user = authenticate(
                &directory,
                form.username.as_deref().unwrap_or_default(),
                form.password.as_deref().unwrap_or_default(),
            )
            .ok_or_else(|| {
                oauth(OAuthError::invalid_grant(
                    "The credentials provided were invalid.",
                ))
            })?;
            (user.id.clone(), scopes(form.scope.as_deref()), None)
        }
        Some("authorization_code") => {
            let code = form.code.as_deref().unwrap_or_default();
            let grant = lock(&state.servers.codes)
                .remove(code)
                .filter(|g| g.expires_ms > now_ms && g.server == id && g.client_id == client_id)
                .ok_or_else(|| {
                    oauth(OAuthError::invalid_grant(
                        "The authorization code is invalid or has expired.",
                    ))
                })?;
            if form.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
                return Err(oauth(OAuthError::invalid_grant(
                    "The redirect_uri does not match the one of the authorization request.",
                )));
            }
            if let Some(challenge) = &grant.challenge {
                let verifier = form.code_verifier.as_deref().unwrap_or_default();
                if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != *challenge {
                    return Err(oauth(OAuthError::invalid_grant(
                        "PKCE verification failed.",
                    )));
                }
            }
            (grant.user_id, grant.scopes, grant.nonce)
        }
        Some("refresh_token") => {
            let token = form.refresh_token.as_deref().unwrap_or_default();
            let refresh = lock(&state.servers.refresh_tokens);
            let grant = refresh
                .get(token)
                .filter(|g| g.server == id && g.client_id == client_id)
                .ok_or_else(|| {
                    oauth(OAuthError::invalid_grant(
                        "The refresh token is invalid or expired.",
                    ))
                })?;
            (grant.user_id.clone(), grant.scopes.clone(), None)
        }
        _ => {
            return Err(oauth(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "The authorization server does not support the requested grant type.",
            )));
        }
    };
    let directory = lock(&state.directory);
    let user = directory
        .users
        .get(&user_id)
        .filter(|u| u.status == UserStatus::Active)
        .ok_or_else(|| oauth(OAuthError::invalid_grant("The user is not active.")))?;
    let sign = |claims: &Value| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(server.kid.clone());
        jsonwebtoken::encode(&header, claims, &server.key).map_err(|e| {
            oauth(OAuthError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                e.to_string(),
            ))
        })
    };
    let now = now_ms / 1000;
    let access = sign(&json!({
        "ver": 1, "jti": random_id("AT.", 40), "iss": server.issuer, "aud": server.audience,
        "iat": now, "exp": now + TOKEN_SECONDS, "cid": client_id, "uid": user.id,
        "scp": scopes, "sub": user.login,
    }))?;
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": TOKEN_SECONDS,
        "access_token": access,
        "scope": scopes.join(" "),
    });
    if scopes.iter().any(|s| s == "openid") {
        let mut claims = json!({
            "sub": user.id, "ver": 1, "iss": server.issuer, "aud": client_id,
            "iat": now, "exp": now + TOKEN_SECONDS, "auth_time": now,
            "jti": random_id("ID.", 40), "amr": ["pwd"], "idp": "00osimulatedidp0000",
            "name": format!("{} {}", user.first_name, user.last_name).trim().to_string(),
            "email": user.email, "preferred_username": user.login,
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        let groups_claim = lock(&server.groups_claim).clone();
        let groups: Vec<&str> = directory
            .groups_of(&user.id)
            .filter(|g| groups_claim.admits(&g.name))
            .map(|g| g.name.as_str())
            .collect();
        // Okta leaves the claim out when no group passes the filter, and when the claim is
        // not for this request's scopes or only for the userinfo endpoint.
        if !groups.is_empty() && groups_claim.in_id_token(&scopes) {
            claims[&groups_claim.name] = json!(groups);
        }
        body["id_token"] = json!(sign(&claims)?);
    }
    if scopes.iter().any(|s| s == "offline_access") {
        let refresh_token = match form.refresh_token {
            Some(existing) if form.grant_type.as_deref() == Some("refresh_token") => existing,
            _ => {
                let token = random_id("", 43);
                lock(&state.servers.refresh_tokens).insert(
                    token.clone(),
                    RefreshGrant {
                        server: id.clone(),
                        client_id: client_id.clone(),
                        user_id: user.id.clone(),
                        scopes: scopes.clone(),
                    },
                );
                token
            }
        };
        body["refresh_token"] = json!(refresh_token);
    }
    Ok(Json(body))
}
