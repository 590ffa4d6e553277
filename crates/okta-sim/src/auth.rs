//! Who may call the Management API: `SSWS` API tokens, and the access tokens service apps
//! get from the org authorization server ([`crate::org_token`]): `Bearer`, or `DPoP` with
//! a proof of the key the token is bound to ([`crate::dpop`]).

use super::dpop::{Dpop, Refusal};
use super::errors::OktaError;
use super::limits::lock;
use super::seed::{OAuthSettings, Seed};
use super::{SimState, epoch_millis};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

pub const GROUPS_READ: &str = "okta.groups.read";
pub const GROUPS_MANAGE: &str = "okta.groups.manage";
pub const LOGS_READ: &str = "okta.logs.read";
pub const USERS_READ: &str = "okta.users.read";
pub const USERS_MANAGE: &str = "okta.users.manage";
pub const AUTHORIZATION_SERVERS_READ: &str = "okta.authorizationServers.read";
pub const AUTHORIZATION_SERVERS_MANAGE: &str = "okta.authorizationServers.manage";
pub const EVENT_HOOKS_READ: &str = "okta.eventHooks.read";
pub const EVENT_HOOKS_MANAGE: &str = "okta.eventHooks.manage";

/// A public key registered with a service app.
pub struct AppKey {
    pub kid: Option<String>,
    pub key: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

impl AppKey {
    pub fn from_pem(kid: Option<String>, pem: &str) -> Result<Self, String> {
        let (key, algorithms) = if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
            (
                key,
                vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512],
            )
        } else if let Ok(key) = DecodingKey::from_ec_pem(pem.as_bytes()) {
            (key, vec![Algorithm::ES256, Algorithm::ES384])
        } else {
            return Err("publicKeyPem is not an RSA or EC public key".into());
        };
        Ok(Self {
            kid,
            key,
            algorithms,
        })
    }
}

pub struct ServiceApp {
    pub keys: Vec<AppKey>,
    pub scopes: Vec<String>,
    pub dpop_bound_access_tokens: bool,
}

pub struct AccessToken {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires_ms: u64,
    /// The thumbprint of the key a DPoP-bound token is bound to (`cnf.jkt`).
    pub jkt: Option<String>,
}

struct ApiToken {
    name: String,
    /// None: a super admin's token, allowed everything.
    scopes: Option<Vec<String>>,
}

pub struct Credentials {
    api_tokens: Mutex<HashMap<String, ApiToken>>,
    pub(crate) service_apps: Mutex<HashMap<String, ServiceApp>>,
    pub(crate) access_tokens: Mutex<HashMap<String, AccessToken>>,
    /// `jti`s of assertions already used: Okta refuses a replayed assertion.
    pub(crate) used_assertions: Mutex<HashSet<String>>,
    pub(crate) dpop: Dpop,
    pub(crate) oauth: Mutex<OAuthSettings>,
}

/// What the Management API needs to know of a request to authorize it.
pub struct Caller {
    method: Method,
    path: String,
    headers: HeaderMap,
}

impl FromRequestParts<Arc<SimState>> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &Arc<SimState>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self {
            method: parts.method.clone(),
            path: parts.uri.path().to_string(),
            headers: parts.headers.clone(),
        })
    }
}

impl Credentials {
    pub fn from_seed(seed: &Seed) -> Result<Self, String> {
        let mut service_apps = HashMap::new();
        for client in &seed.clients {
            let Some(pem) = &client.public_key_pem else {
                continue;
            };
            let key = AppKey::from_pem(client.key_id.clone(), pem)
                .map_err(|e| format!("client {}: {e}", client.client_id))?;
            service_apps.insert(
                client.client_id.clone(),
                ServiceApp {
                    keys: vec![key],
                    scopes: client.scopes.clone(),
                    dpop_bound_access_tokens: client.dpop_bound_access_tokens,
                },
            );
        }
        Ok(Self {
            api_tokens: Mutex::new(
                seed.api_tokens
                    .iter()
                    .map(|t| {
                        (
                            t.token.clone(),
                            ApiToken {
                                name: t.name.clone(),
                                scopes: t.scopes.clone(),
                            },
                        )
                    })
                    .collect(),
            ),
            service_apps: Mutex::new(service_apps),
            access_tokens: Mutex::new(HashMap::new()),
            used_assertions: Mutex::new(HashSet::new()),
            dpop: Dpop::new(seed.oauth.clone()),
            oauth: Mutex::new(seed.oauth.clone()),
        })
    }

    /// Adds (or, with `None`, revokes) an API token at runtime.
    pub fn set_api_token(&self, name: &str, token: &str, scopes: Option<Option<Vec<String>>>) {
        let mut tokens = lock(&self.api_tokens);
        match scopes {
            Some(scopes) => tokens.insert(
                token.to_string(),
                ApiToken {
                    name: name.to_string(),
                    scopes,
                },
            ),
            None => tokens.remove(token),
        };
    }

    pub fn set_oauth_settings(&self, settings: OAuthSettings) {
        self.dpop.set_settings(settings.clone());
        *lock(&self.oauth) = settings;
    }

    /// Registers a key with a service app (replacing one with the same kid); false when
    /// there is no such app.
    pub fn add_key(&self, client_id: &str, key: AppKey) -> bool {
        self.change_app(client_id, |app| {
            app.keys.retain(|k| k.kid != key.kid);
            app.keys.push(key);
        })
    }

    /// Removes a service app's key by kid (`None`: the key registered without one).
    pub fn remove_key(&self, client_id: &str, kid: Option<&str>) -> bool {
        self.change_app(client_id, |app| {
            app.keys.retain(|k| k.kid.as_deref() != kid)
        })
    }

    /// Okta's "Require DPoP" of a service app; tokens issued before keep their kind.
    pub fn require_dpop(&self, client_id: &str, required: bool) -> bool {
        self.change_app(client_id, |app| app.dpop_bound_access_tokens = required)
    }

    fn change_app(&self, client_id: &str, change: impl FnOnce(&mut ServiceApp)) -> bool {
        lock(&self.service_apps)
            .get_mut(client_id)
            .map(change)
            .is_some()
    }

    /// Who a Management API request's `Authorization` names, for the request log: the
    /// scheme and the API token's name or the service app's client id.
    pub fn caller_label(&self, headers: &HeaderMap) -> Option<String> {
        let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
        if let Some(token) = value.strip_prefix("SSWS") {
            let tokens = lock(&self.api_tokens);
            let name = tokens.get(token.trim_start()).map(|t| t.name.as_str());
            return Some(format!("SSWS {}", name.unwrap_or("(unknown token)")));
        }
        let (scheme, token) = value.split_once(' ')?;
        let tokens = lock(&self.access_tokens);
        let client = tokens.get(token.trim()).map(|t| t.client_id.as_str());
        Some(format!("{scheme} {}", client.unwrap_or("(unknown token)")))
    }

    /// Checks a Management API call needing `scope`: its `Authorization` and, for a
    /// DPoP-bound token, its proof.
    pub fn authorize(&self, caller: &Caller, base_url: &str, scope: &str) -> Result<(), OktaError> {
        let value = caller
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(OktaError::invalid_token)?;
        // Okta accepts "SSWS token" and, as one official SDK sends it, "SSWStoken".
        let scopes = if let Some(token) = value.strip_prefix("SSWS") {
            lock(&self.api_tokens)
                .get(token.trim_start())
                .ok_or_else(OktaError::invalid_token)?
                .scopes
                .clone()
        } else if let Some(token) = value.strip_prefix("Bearer ") {
            let tokens = lock(&self.access_tokens);
            let access = live(&tokens, token)?;
            if access.jkt.is_some() {
                return Err(OktaError::dpop(Refusal {
                    error: "invalid_token",
                    description: "The access token is DPoP-bound: send it with the DPoP \
                                  scheme and a DPoP proof."
                        .into(),
                }));
            }
            Some(access.scopes.clone())
        } else if let Some(token) = value.strip_prefix("DPoP ") {
            let (jkt, scopes) = {
                let tokens = lock(&self.access_tokens);
                let access = live(&tokens, token)?;
                let jkt = access.jkt.clone().ok_or_else(|| {
                    OktaError::dpop(Refusal {
                        error: "invalid_token",
                        description: "The access token is not DPoP-bound: send it with the \
                                      Bearer scheme."
                            .into(),
                    })
                })?;
                (jkt, access.scopes.clone())
            };
            let htu = format!("{base_url}{}", caller.path);
            let proof = self
                .dpop
                .verify(
                    &caller.headers,
                    caller.method.as_str(),
                    &htu,
                    Some(token.trim()),
                    epoch_millis(),
                )
                .map_err(OktaError::dpop)?;
            if proof.jkt != jkt {
                return Err(OktaError::dpop(Refusal {
                    error: "invalid_dpop_key_binding",
                    description: "The DPoP proof is signed by a key the access token is not \
                                  bound to."
                        .into(),
                }));
            }
            Some(scopes)
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

fn live<'a>(
    tokens: &'a HashMap<String, AccessToken>,
    token: &str,
) -> Result<&'a AccessToken, OktaError> {
    tokens
        .get(token.trim())
        .filter(|t| t.expires_ms > epoch_millis())
        .ok_or_else(OktaError::invalid_token)
}

/// A manage scope includes reading.
fn implies(granted: &str, needed: &str) -> bool {
    (granted == GROUPS_MANAGE && needed == GROUPS_READ)
        || (granted == USERS_MANAGE && needed == USERS_READ)
        || (granted == AUTHORIZATION_SERVERS_MANAGE && needed == AUTHORIZATION_SERVERS_READ)
        || (granted == EVENT_HOOKS_MANAGE && needed == EVENT_HOOKS_READ)
}
