//! OIDC issuers like Okta's custom authorization servers, at `/oauth2/{serverId}`:
//! discovery, JWKS (RS256 with `kid`), a login form with authorization code + PKCE, the
//! password grant (for tests), refresh tokens, and ID tokens whose `groups` claim is
//! filtered like Okta's group claim filter.

use super::directory::{Directory, User};
use super::errors::{OAuthError, OktaError, random_id};
use super::limits::lock;
use super::seed::{GroupsClaim, Seed, UserStatus};
use super::{SimError, SimState, epoch_millis};
use axum::Form;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header::{AUTHORIZATION, LOCATION};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

const TOKEN_SECONDS: u64 = 3600;
const CODE_SECONDS: u64 = 60;

struct Server {
    issuer: String,
    audience: String,
    groups_claim: GroupsClaim,
    kid: String,
    key: EncodingKey,
    jwks: Value,
}

struct OidcClient {
    redirect_uris: Vec<String>,
    secret: Option<String>,
}

struct CodeGrant {
    server: String,
    client_id: String,
    redirect_uri: String,
    user_id: String,
    scopes: Vec<String>,
    nonce: Option<String>,
    challenge: Option<String>,
    expires_ms: u64,
}

struct RefreshGrant {
    server: String,
    client_id: String,
    user_id: String,
    scopes: Vec<String>,
}

pub struct AuthorizationServers {
    servers: BTreeMap<String, Server>,
    clients: HashMap<String, OidcClient>,
    codes: Mutex<HashMap<String, CodeGrant>>,
    refresh_tokens: Mutex<HashMap<String, RefreshGrant>>,
}

impl AuthorizationServers {
    pub fn from_seed(seed: &Seed, base_url: &str) -> Result<Self, SimError> {
        let mut servers = BTreeMap::new();
        for server in &seed.authorization_servers {
            let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
                .map_err(|e| SimError::Key(e.to_string()))?;
            let der = private
                .to_pkcs1_der()
                .map_err(|e| SimError::Key(e.to_string()))?;
            let public = private.to_public_key();
            let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(public.n().to_bytes_be())[..16]);
            let jwks = json!({"keys": [{
                "kty": "RSA",
                "alg": "RS256",
                "kid": kid,
                "use": "sig",
                "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
                "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            }]});
            servers.insert(
                server.id.clone(),
                Server {
                    issuer: format!("{base_url}/oauth2/{}", server.id),
                    audience: server.audience.clone(),
                    groups_claim: server.groups_claim.clone(),
                    kid,
                    key: EncodingKey::from_rsa_der(der.as_bytes()),
                    jwks,
                },
            );
        }
        let clients = seed
            .clients
            .iter()
            .filter(|c| !c.redirect_uris.is_empty() || c.public_key_pem.is_none())
            .map(|c| {
                (
                    c.client_id.clone(),
                    OidcClient {
                        redirect_uris: c.redirect_uris.clone(),
                        secret: c.client_secret.clone(),
                    },
                )
            })
            .collect();
        Ok(Self {
            servers,
            clients,
            codes: Mutex::new(HashMap::new()),
            refresh_tokens: Mutex::new(HashMap::new()),
        })
    }

    fn server(&self, id: &str) -> Result<&Server, OktaError> {
        self.servers
            .get(id)
            .ok_or_else(|| OktaError::not_found(format!("{id} (AuthorizationServer)")))
    }
}

pub fn routes() -> axum::Router<Arc<SimState>> {
    axum::Router::new()
        .route(
            "/oauth2/{server}/.well-known/openid-configuration",
            get(discovery),
        )
        .route(
            "/oauth2/{server}/.well-known/oauth-authorization-server",
            get(discovery),
        )
        .route("/oauth2/{server}/v1/keys", get(keys))
        .route("/oauth2/{server}/v1/authorize", get(login_form).post(login))
        .route("/oauth2/{server}/v1/token", axum::routing::post(token))
}

async fn discovery(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, OktaError> {
    let server = state.servers.server(&id)?;
    let issuer = &server.issuer;
    Ok(Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/v1/authorize"),
        "token_endpoint": format!("{issuer}/v1/token"),
        "jwks_uri": format!("{issuer}/v1/keys"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "password", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email", "groups", "offline_access"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "claims_supported": ["iss", "sub", "aud", "iat", "exp", "jti", "auth_time", "nonce", "email", "preferred_username", "name", server.groups_claim.name],
        "code_challenge_methods_supported": ["S256"],
    })))
}

async fn keys(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, OktaError> {
    Ok(Json(state.servers.server(&id)?.jwks.clone()))
}

#[derive(Deserialize)]
struct AuthorizeParams {
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

async fn login_form(
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

fn authenticate<'a>(directory: &'a Directory, username: &str, password: &str) -> Option<&'a User> {
    directory
        .find_user(username)
        .filter(|u| u.status == UserStatus::Active && u.password.as_deref() == Some(password))
}

async fn login(
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

fn scopes(text: Option<&str>) -> Vec<String> {
    text.unwrap_or("openid")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[derive(Deserialize)]
struct TokenForm {
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
enum TokenError {
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

async fn token(
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
        let groups: Vec<&str> = directory
            .groups_of(&user.id)
            .filter(|g| server.groups_claim.admits(&g.name))
            .map(|g| g.name.as_str())
            .collect();
        // Okta leaves the claim out when no group passes the filter.
        if !groups.is_empty() {
            claims[&server.groups_claim.name] = json!(groups);
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
