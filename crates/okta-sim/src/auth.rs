//! Who may call the Management API: `SSWS` API tokens, and Bearer access tokens that
//! service apps get from `POST /oauth2/v1/token` with a `private_key_jwt` assertion.

use super::errors::{OAuthError, OktaError, random_id};
use super::limits::lock;
use super::seed::Seed;
use super::{SimState, epoch_millis};
use axum::Form;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::routing::post;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

pub const GROUPS_READ: &str = "okta.groups.read";
pub const GROUPS_MANAGE: &str = "okta.groups.manage";
pub const LOGS_READ: &str = "okta.logs.read";
pub const AUTHORIZATION_SERVERS_READ: &str = "okta.authorizationServers.read";
pub const AUTHORIZATION_SERVERS_MANAGE: &str = "okta.authorizationServers.manage";
const ACCESS_TOKEN_SECONDS: u64 = 3600;
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub struct ServiceApp {
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
    scopes: Vec<String>,
}

struct AccessToken {
    scopes: Vec<String>,
    expires_ms: u64,
}

pub struct Credentials {
    /// Token -> scopes (None: a super admin's token, allowed everything).
    api_tokens: Mutex<HashMap<String, Option<Vec<String>>>>,
    service_apps: HashMap<String, ServiceApp>,
    access_tokens: Mutex<HashMap<String, AccessToken>>,
    /// `jti`s of assertions already used: Okta refuses a replayed assertion.
    used_assertions: Mutex<HashSet<String>>,
}

impl Credentials {
    pub fn from_seed(seed: &Seed) -> Result<Self, String> {
        let mut service_apps = HashMap::new();
        for client in &seed.clients {
            let Some(pem) = &client.public_key_pem else {
                continue;
            };
            let (key, algorithms) = if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
                (
                    key,
                    vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512],
                )
            } else if let Ok(key) = DecodingKey::from_ec_pem(pem.as_bytes()) {
                (key, vec![Algorithm::ES256, Algorithm::ES384])
            } else {
                return Err(format!(
                    "client {}: publicKeyPem is not an RSA or EC public key",
                    client.client_id
                ));
            };
            service_apps.insert(
                client.client_id.clone(),
                ServiceApp {
                    key,
                    algorithms,
                    scopes: client.scopes.clone(),
                },
            );
        }
        Ok(Self {
            api_tokens: Mutex::new(
                seed.api_tokens
                    .iter()
                    .map(|t| (t.token.clone(), t.scopes.clone()))
                    .collect(),
            ),
            service_apps,
            access_tokens: Mutex::new(HashMap::new()),
            used_assertions: Mutex::new(HashSet::new()),
        })
    }

    /// Adds (or, with `None`, revokes) an API token at runtime.
    pub fn set_api_token(&self, token: &str, scopes: Option<Option<Vec<String>>>) {
        let mut tokens = lock(&self.api_tokens);
        match scopes {
            Some(scopes) => tokens.insert(token.to_string(), scopes),
            None => tokens.remove(token),
        };
    }

    /// Checks the `Authorization` header for a Management API call needing `scope`.
    pub fn authorize(&self, headers: &HeaderMap, scope: &str) -> Result<(), OktaError> {
        let value = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(OktaError::invalid_token)?;
        // Okta accepts "SSWS token" and, as one official SDK sends it, "SSWStoken".
        let scopes = if let Some(token) = value.strip_prefix("SSWS") {
            lock(&self.api_tokens)
                .get(token.trim_start())
                .ok_or_else(OktaError::invalid_token)?
                .clone()
        } else if let Some(token) = value.strip_prefix("Bearer ") {
            let tokens = lock(&self.access_tokens);
            let access = tokens
                .get(token.trim())
                .filter(|t| t.expires_ms > epoch_millis())
                .ok_or_else(OktaError::invalid_token)?;
            Some(access.scopes.clone())
        } else {
            return Err(OktaError::invalid_token());
        };
        match scopes {
            None => Ok(()),
            Some(scopes) if scopes.iter().any(|s| s == scope || implies(s, scope)) => Ok(()),
            Some(_) => Err(OktaError::forbidden()),
        }
    }
}

/// `okta.groups.manage` includes reading.
/// A manage scope includes reading.
fn implies(granted: &str, needed: &str) -> bool {
    (granted == GROUPS_MANAGE && needed == GROUPS_READ)
        || (granted == AUTHORIZATION_SERVERS_MANAGE && needed == AUTHORIZATION_SERVERS_READ)
}

pub fn routes() -> axum::Router<Arc<SimState>> {
    axum::Router::new().route("/oauth2/v1/token", post(org_token))
}

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

/// The org authorization server's token endpoint: client credentials for service apps.
async fn org_token(
    State(state): State<Arc<SimState>>,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Result<Json<Value>, OAuthError> {
    let Form(form) = form.map_err(|e| OAuthError::invalid_request(e.body_text()))?;
    if form.grant_type.as_deref() != Some("client_credentials") {
        return Err(OAuthError::new(
            axum::http::StatusCode::BAD_REQUEST,
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
    let app = credentials.service_apps.get(&client_id).ok_or_else(|| {
        OAuthError::invalid_client("The client_assertion token is invalid: unknown client.")
    })?;
    let header = jsonwebtoken::decode_header(&assertion)
        .map_err(|_| OAuthError::invalid_client("The client_assertion is not a valid JWT."))?;
    if !app.algorithms.contains(&header.alg) {
        return Err(OAuthError::invalid_client(
            "The client_assertion signature algorithm is not allowed.",
        ));
    }
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[&token_url]);
    validation.set_issuer(&[&client_id]);
    validation.sub = Some(client_id.clone());
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let claims = jsonwebtoken::decode::<AssertionClaims>(&assertion, &app.key, &validation)
        .map_err(|e| OAuthError::invalid_client(assertion_problem(&e)))?
        .claims;
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
    let jti = claims.jti.ok_or_else(|| {
        OAuthError::invalid_client("The client_assertion token must contain a jti claim.")
    })?;
    if !lock(&credentials.used_assertions).insert(format!("{client_id}/{jti}")) {
        return Err(OAuthError::invalid_client(
            "The client_assertion token has already been used.",
        ));
    }
    let requested: Vec<String> = form
        .scope
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if requested.is_empty() {
        return Err(OAuthError::invalid_scope(
            "The client must request at least one scope.",
        ));
    }
    let missing: Vec<&String> = requested
        .iter()
        .filter(|s| !app.scopes.contains(s))
        .collect();
    if !missing.is_empty() {
        return Err(OAuthError::invalid_scope(format!(
            "The following scopes are not granted to the client: {}.",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        )));
    }
    let token = random_id("eyJsimulated.", 64);
    lock(&credentials.access_tokens).insert(
        token.clone(),
        AccessToken {
            scopes: requested.clone(),
            expires_ms: epoch_millis() + ACCESS_TOKEN_SECONDS * 1000,
        },
    );
    Ok(Json(json!({
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "access_token": token,
        "scope": requested.join(" "),
    })))
}

/// The `iss` of a JWT, read before its signature can be checked (it names the key).
fn unverified_issuer(jwt: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
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
