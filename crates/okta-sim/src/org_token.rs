//! The org authorization server's token endpoint (`POST /oauth2/v1/token`): client
//! credentials for service apps that sign a `private_key_jwt` assertion, with DPoP for
//! the apps that require it.
//!
//! Order of checks, as Okta's SDKs expect it: the assertion is checked (and its `jti`
//! used up) first, so a retry after `use_dpop_nonce` needs a new assertion; then, for an
//! app that requires DPoP, the proof and its nonce. An app that does not require DPoP
//! ignores a proof and issues a Bearer token (Okta's Node SDK sends a proof always).

use super::auth::{AccessToken, ServiceApp};
use super::dpop::{Refusal, SIGNING_ALGORITHMS};
use super::errors::{OAuthError, random_id};
use super::limits::lock;
use super::{SimState, epoch_millis};
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jsonwebtoken::Validation;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub fn routes() -> axum::Router<Arc<SimState>> {
    axum::Router::new()
        .route("/oauth2/v1/token", post(org_token))
        .route("/.well-known/oauth-authorization-server", get(discovery))
        .route("/.well-known/openid-configuration", get(discovery))
}

/// The org authorization server's metadata: what a service app needs of it.
async fn discovery(State(state): State<Arc<SimState>>) -> axum::Json<Value> {
    let issuer = &state.base_url;
    axum::Json(json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth2/v1/token"),
        "jwks_uri": format!("{issuer}/oauth2/v1/keys"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384", "RS512", "ES256", "ES384"],
        "dpop_signing_alg_values_supported": SIGNING_ALGORITHMS,
        "scopes_supported": [
            crate::auth::GROUPS_READ, crate::auth::GROUPS_MANAGE, crate::auth::LOGS_READ,
            crate::auth::USERS_READ, crate::auth::USERS_MANAGE,
            crate::auth::AUTHORIZATION_SERVERS_READ, crate::auth::AUTHORIZATION_SERVERS_MANAGE,
        ],
    }))
}

/// Which client and key a token request authenticated with, for the request log.
#[derive(Clone, Debug)]
pub struct TokenCaller(pub String);

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    scope: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

#[derive(Deserialize)]
struct AssertionClaims {
    exp: u64,
    iat: Option<u64>,
    jti: Option<String>,
}

async fn org_token(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, OAuthError> {
    let Form(form) = form.map_err(|e| OAuthError::invalid_request(e.body_text()))?;
    if form.grant_type.as_deref() != Some("client_credentials") {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization server does not support the requested grant type.",
        ));
    }
    if form.client_assertion_type.as_deref() != Some(ASSERTION_TYPE) {
        return Err(OAuthError::invalid_client(
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
        ));
    }
    let assertion = form
        .client_assertion
        .ok_or_else(|| OAuthError::invalid_client("The client_assertion is missing."))?;
    let token_url = format!("{}/oauth2/v1/token", state.base_url);
    let credentials = &state.credentials;
    let client_id = unverified_issuer(&assertion)
        .ok_or_else(|| OAuthError::invalid_client("The client_assertion is not a valid JWT."))?;
    let (granted, dpop_required, kid) = {
        let apps = lock(&credentials.service_apps);
        let app = apps.get(&client_id).ok_or_else(|| {
            OAuthError::invalid_client("The client_assertion token is invalid: unknown client.")
        })?;
        let kid = check_assertion(app, &assertion, &client_id, &token_url)?;
        (app.scopes.clone(), app.dpop_bound_access_tokens, kid)
    };
    let caller = TokenCaller(match &kid {
        Some(kid) => format!("{client_id} kid={kid}"),
        None => client_id.clone(),
    });
    let jti = check_lifetime(&assertion)?;
    if !lock(&credentials.used_assertions).insert(format!("{client_id}/{jti}")) {
        return Err(OAuthError::invalid_client(
            "The client_assertion token has already been used.",
        ));
    }
    let jkt = if dpop_required {
        Some(dpop_binding(&state, &headers, &token_url)?)
    } else {
        None
    };
    let requested = requested_scopes(form.scope.as_deref(), &granted)?;
    let lifetime = lock(&credentials.oauth).access_token_seconds;
    let token = random_id("eyJsimulated.", 64);
    let token_type = if jkt.is_some() { "DPoP" } else { "Bearer" };
    lock(&credentials.access_tokens).insert(
        token.clone(),
        AccessToken {
            client_id,
            scopes: requested.clone(),
            expires_ms: epoch_millis() + lifetime * 1000,
            jkt,
        },
    );
    let mut response = axum::Json(json!({
        "token_type": token_type,
        "expires_in": lifetime,
        "access_token": token,
        "scope": requested.join(" "),
    }))
    .into_response();
    response.extensions_mut().insert(caller);
    Ok(response)
}

/// Checks the assertion's signature against the app's keys (the one its `kid` names, or
/// any when it names none), audience, issuer and subject; returns the key's kid.
fn check_assertion(
    app: &ServiceApp,
    assertion: &str,
    client_id: &str,
    token_url: &str,
) -> Result<Option<String>, OAuthError> {
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| OAuthError::invalid_client("The client_assertion is not a valid JWT."))?;
    let candidates: Vec<_> = app
        .keys
        .iter()
        .filter(|key| header.kid.is_none() || key.kid == header.kid)
        .collect();
    if candidates.is_empty() {
        return Err(OAuthError::invalid_client(
            "The client_assertion token has a kid that matches no key of the client.",
        ));
    }
    let mut problem = None;
    for key in candidates {
        if !key.algorithms.contains(&header.alg) {
            problem.get_or_insert_with(|| {
                "The client_assertion signature algorithm is not allowed.".to_string()
            });
            continue;
        }
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[token_url]);
        validation.set_issuer(&[client_id]);
        validation.sub = Some(client_id.to_string());
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        match jsonwebtoken::decode::<AssertionClaims>(assertion, &key.key, &validation) {
            Ok(_) => return Ok(key.kid.clone()),
            Err(error) => problem = Some(assertion_problem(&error)),
        }
    }
    Err(OAuthError::invalid_client(problem.unwrap_or_default()))
}

/// Okta refuses assertions that live longer than an hour, and those without a `jti`.
fn check_lifetime(assertion: &str) -> Result<String, OAuthError> {
    let claims: AssertionClaims = unverified_claims(assertion)
        .ok_or_else(|| OAuthError::invalid_client("The client_assertion is not a valid JWT."))?;
    let now = epoch_millis() / 1000;
    if claims.exp > now + 3600
        || claims
            .iat
            .is_some_and(|iat| claims.exp.saturating_sub(iat) > 3600)
    {
        return Err(OAuthError::invalid_client(
            "The client_assertion token has an expiration too far into the future.",
        ));
    }
    claims.jti.ok_or_else(|| {
        OAuthError::invalid_client("The client_assertion token must contain a jti claim.")
    })
}

/// The proof of an app that requires DPoP: valid, with a current nonce; the thumbprint
/// the token is bound to.
fn dpop_binding(
    state: &SimState,
    headers: &HeaderMap,
    token_url: &str,
) -> Result<String, OAuthError> {
    let dpop = &state.credentials.dpop;
    let now = epoch_millis();
    let refused = |refusal: Refusal| {
        let mut error =
            OAuthError::new(StatusCode::BAD_REQUEST, refusal.error, refusal.description);
        if refusal.error == "use_dpop_nonce" {
            error.dpop_nonce = Some(dpop.nonce(now));
        }
        error
    };
    let proof = dpop
        .verify(headers, "POST", token_url, None, now)
        .map_err(refused)?;
    dpop.require_nonce(&proof, now).map_err(refused)?;
    Ok(proof.jkt)
}

fn requested_scopes(text: Option<&str>, granted: &[String]) -> Result<Vec<String>, OAuthError> {
    let requested: Vec<String> = text
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if requested.is_empty() {
        return Err(OAuthError::invalid_scope(
            "The client must request at least one scope.",
        ));
    }
    let missing: Vec<&str> = requested
        .iter()
        .filter(|s| !granted.contains(s))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(OAuthError::invalid_scope(format!(
            "The following scopes are not granted to the client: {}.",
            missing.join(" ")
        )));
    }
    Ok(requested)
}

fn unverified_claims<T: serde::de::DeserializeOwned>(jwt: &str) -> Option<T> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The `iss` of a JWT, read before its signature can be checked (it names the key).
fn unverified_issuer(jwt: &str) -> Option<String> {
    let claims: Value = unverified_claims(jwt)?;
    claims.get("iss")?.as_str().map(str::to_string)
}

fn assertion_problem(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "The client_assertion token is expired.".into(),
        ErrorKind::InvalidAudience => {
            "The audience claim for client_assertion must be the endpoint invoked for the request."
                .into()
        }
        ErrorKind::InvalidSignature => "The client_assertion signature is invalid.".into(),
        ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => {
            "The issuer and subject claims of client_assertion must be the client_id.".into()
        }
        ErrorKind::MissingRequiredClaim(claim) => {
            format!("The client_assertion token must contain a {claim} claim.")
        }
        _ => format!("The client_assertion token is invalid: {error}."),
    }
}
