//! OIDC issuers like Okta's custom authorization servers, at `/oauth2/{serverId}`:
//! discovery, JWKS (RS256 with `kid`), a login form with authorization code + PKCE, the
//! password grant (for tests), refresh tokens, and ID tokens whose `groups` claim is
//! filtered like Okta's group claim filter.

use crate::errors::{OktaError, random_id};
use crate::limits::lock;
use crate::seed::{GroupsClaim, Seed};
use crate::{SimError, SimState};
use axum::Json;
use axum::extract::{Path, State};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

mod login;
mod token;

pub(super) const TOKEN_SECONDS: u64 = 3600;
pub(super) const CODE_SECONDS: u64 = 60;

pub(super) struct Server {
    pub(super) issuer: String,
    pub(super) audience: String,
    /// Changed at run time through the claims API or the admin API.
    pub(super) groups_claim: Mutex<GroupsClaim>,
    /// The claim's id in `/api/v1/authorizationServers/{id}/claims/{claimId}`.
    pub(super) groups_claim_id: String,
    pub(super) kid: String,
    pub(super) key: EncodingKey,
    pub(super) jwks: Value,
}

pub(super) struct OidcClient {
    pub(super) redirect_uris: Vec<String>,
    pub(super) secret: Option<String>,
}

pub(super) struct CodeGrant {
    pub(super) server: String,
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) user_id: String,
    pub(super) scopes: Vec<String>,
    pub(super) nonce: Option<String>,
    pub(super) challenge: Option<String>,
    pub(super) expires_ms: u64,
}

pub(super) struct RefreshGrant {
    pub(super) server: String,
    pub(super) client_id: String,
    pub(super) user_id: String,
    pub(super) scopes: Vec<String>,
}

pub struct AuthorizationServers {
    pub(super) servers: BTreeMap<String, Server>,
    pub(super) clients: HashMap<String, OidcClient>,
    pub(super) codes: Mutex<HashMap<String, CodeGrant>>,
    pub(super) refresh_tokens: Mutex<HashMap<String, RefreshGrant>>,
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
                    groups_claim: Mutex::new(server.groups_claim.clone()),
                    groups_claim_id: random_id("ocl", 17),
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

    /// The groups claim of an authorization server as it is now, and its id.
    pub fn groups_claim(&self, server_id: &str) -> Result<(String, GroupsClaim), OktaError> {
        let server = self.server(server_id)?;
        Ok((
            server.groups_claim_id.clone(),
            lock(&server.groups_claim).clone(),
        ))
    }

    pub fn set_groups_claim(&self, server_id: &str, claim: GroupsClaim) -> Result<(), OktaError> {
        *lock(&self.server(server_id)?.groups_claim) = claim;
        Ok(())
    }

    pub(super) fn server(&self, id: &str) -> Result<&Server, OktaError> {
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
        .route(
            "/oauth2/{server}/v1/authorize",
            get(login::login_form).post(login::login),
        )
        .route(
            "/oauth2/{server}/v1/token",
            axum::routing::post(token::token),
        )
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
        "claims_supported": ["iss", "sub", "aud", "iat", "exp", "jti", "auth_time", "nonce", "email", "preferred_username", "name", lock(&server.groups_claim).name],
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": crate::dpop::SIGNING_ALGORITHMS,
    })))
}

async fn keys(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, OktaError> {
    Ok(Json(state.servers.server(&id)?.jwks.clone()))
}
