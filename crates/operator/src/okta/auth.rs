//! How each request proves itself to Okta: `SSWS` with an API token, or an access token
//! from the org authorization server, got with a `private_key_jwt` assertion and cached
//! until shortly before it expires. When Okta binds the token to a key (DPoP), every
//! request carries a fresh proof of that key.
//!
//! Token-endpoint trouble is told apart from a refusal: no answer, a timeout, 5xx and 429
//! are transient ([`OktaError::Unreachable`], `Timeout`, `Api`, `RateLimited`); only
//! Okta's refusal of the client itself is [`OktaError::TokenRefused`].

use super::OktaError;
use super::credentials::{Credentials, Secret, ServiceAppKey};
use super::dpop::{DpopKey, DpopMode, DpopSigner};
use super::ratelimit::epoch_seconds;
use jsonwebtoken::Header;
use rand::Rng;
use reqwest::StatusCode;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use url::Url;

/// Renew an access token this long before Okta says it expires (at most a fifth of its
/// life, for short-lived tokens).
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(60);
const ASSERTION_LIFETIME_SECONDS: u64 = 300;
/// `use_dpop_nonce` answers followed in a row before giving up.
const NONCE_CHALLENGES: usize = 2;

/// What a request sends: the `Authorization` value and, for a DPoP-bound token, the
/// `DPoP` proof.
pub struct Authorization {
    pub header: String,
    pub dpop: Option<String>,
}

struct CachedToken {
    value: String,
    /// The key a DPoP-bound token is bound to; None for a Bearer token.
    bound_to: Option<Arc<DpopKey>>,
    renew_at: Instant,
    /// The credentials' generation it was got with: a rotated key gets a new token.
    generation: u64,
}

/// The org authorization server's answer.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
    #[serde(default)]
    token_type: Option<String>,
}

#[derive(Deserialize, Default)]
struct OAuthErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default, rename = "errorCode")]
    error_code: String,
    #[serde(default, rename = "errorSummary")]
    error_summary: String,
}

pub struct Authenticator {
    credentials: Arc<Credentials>,
    scopes: Vec<String>,
    token_url: Url,
    dpop: DpopMode,
    dpop_key_rotation: Duration,
    signer: DpopSigner,
    cached: Mutex<Option<CachedToken>>,
}

impl Authenticator {
    pub fn new(
        credentials: Arc<Credentials>,
        scopes: Vec<String>,
        org_url: &Url,
        dpop: DpopMode,
        dpop_key_rotation: Duration,
    ) -> Result<Self, OktaError> {
        Ok(Self {
            credentials,
            scopes,
            token_url: org_url
                .join("/oauth2/v1/token")
                .map_err(|e| OktaError::Config(e.to_string()))?,
            dpop,
            dpop_key_rotation,
            signer: DpopSigner::new(dpop_key_rotation)?,
            cached: Mutex::new(None),
        })
    }

    /// The same credentials and DPoP settings asking for other scopes, with a token (and
    /// proof key) of their own.
    pub fn with_scopes(&self, scopes: Vec<String>) -> Result<Self, OktaError> {
        Ok(Self {
            credentials: self.credentials.clone(),
            scopes,
            token_url: self.token_url.clone(),
            dpop: self.dpop,
            dpop_key_rotation: self.dpop_key_rotation,
            signer: DpopSigner::new(self.dpop_key_rotation)?,
            cached: Mutex::new(None),
        })
    }

    pub fn credentials(&self) -> &Arc<Credentials> {
        &self.credentials
    }

    /// What a `method` request to `url` sends, getting an access token when needed.
    /// `on_token_answer` hears the status of every token-endpoint answer (0: none).
    pub async fn authorize(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
        method: &str,
        url: &Url,
        on_token_answer: impl Fn(u16),
    ) -> Result<Authorization, OktaError> {
        let (secret, generation) = self.credentials.current();
        let app = match &*secret {
            Secret::ApiToken(token) => {
                return Ok(Authorization {
                    header: format!("SSWS {token}"),
                    dpop: None,
                });
            }
            Secret::ServiceApp(app) => app,
        };
        let mut cached = self.cached.lock().await;
        let usable = cached
            .as_ref()
            .is_some_and(|t| Instant::now() < t.renew_at && t.generation == generation);
        if !usable {
            *cached = Some(
                self.fetch_token(http, timeout, app, generation, &on_token_answer)
                    .await?,
            );
        }
        let token = cached
            .as_ref()
            .ok_or_else(|| OktaError::Config("no access token".into()))?;
        Ok(match &token.bound_to {
            Some(key) => Authorization {
                header: format!("DPoP {}", token.value),
                dpop: Some(key.proof(
                    method,
                    url,
                    self.signer.nonce().as_deref(),
                    Some(&token.value),
                )?),
            },
            None => Authorization {
                header: format!("Bearer {}", token.value),
                dpop: None,
            },
        })
    }

    /// Okta refused a request's credentials: forget the token and look at the files
    /// again. True when they changed (the request is worth sending again at once).
    pub async fn refused(&self) -> bool {
        *self.cached.lock().await = None;
        self.credentials.reread_now()
    }

    /// A resource answered with a `DPoP-Nonce`: later proofs carry it.
    pub fn dpop_nonce(&self, nonce: &str) {
        self.signer.set_nonce(nonce);
    }

    async fn fetch_token(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
        app: &ServiceAppKey,
        generation: u64,
        on_token_answer: &impl Fn(u16),
    ) -> Result<CachedToken, OktaError> {
        let key = match self.dpop {
            DpopMode::Off => None,
            DpopMode::Auto | DpopMode::On => Some(self.signer.key_for_new_token()?),
        };
        let mut challenges = 0;
        loop {
            let proof = key
                .as_ref()
                .map(|key| {
                    key.proof(
                        "POST",
                        &self.token_url,
                        self.signer.nonce().as_deref(),
                        None,
                    )
                })
                .transpose()?;
            let mut request = http.post(self.token_url.clone()).timeout(timeout).form(&[
                ("grant_type", "client_credentials"),
                ("scope", &self.scopes.join(" ")),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                // Okta uses up an assertion even when it asks for a nonce: one per try.
                ("client_assertion", &self.assertion(app)?),
            ]);
            if let Some(proof) = proof {
                request = request.header("DPoP", proof);
            }
            let response = request.send().await.map_err(|e| {
                on_token_answer(0);
                OktaError::transport(&e, timeout)
            })?;
            let status = response.status();
            on_token_answer(status.as_u16());
            let nonce = response
                .headers()
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if status.is_success() {
                if let Some(nonce) = &nonce {
                    self.signer.set_nonce(nonce);
                }
                let answer: TokenAnswer = response
                    .json()
                    .await
                    .map_err(|e| OktaError::Decode(super::error::cause_chain(&e)))?;
                return self.cache(answer, key, generation);
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                let reset = response
                    .headers()
                    .get("x-rate-limit-reset")
                    .and_then(|v| v.to_str().ok()?.trim().parse().ok())
                    .unwrap_or_else(|| epoch_seconds().saturating_add(1));
                return Err(OktaError::RateLimited { reset });
            }
            let body: OAuthErrorBody = response.json().await.unwrap_or_default();
            if status.is_server_error() {
                return Err(OktaError::Api {
                    status: status.as_u16(),
                    code: body.error_code,
                    summary: non_empty(body.error_summary, "the token endpoint failed"),
                });
            }
            if body.error == "use_dpop_nonce"
                && challenges < NONCE_CHALLENGES
                && let Some(nonce) = nonce.filter(|_| key.is_some())
            {
                challenges += 1;
                self.signer.set_nonce(&nonce);
                continue;
            }
            return Err(OktaError::TokenRefused {
                status: status.as_u16(),
                error: non_empty(body.error, &body.error_code),
                description: non_empty(body.error_description, &body.error_summary),
            });
        }
    }

    fn cache(
        &self,
        answer: TokenAnswer,
        key: Option<Arc<DpopKey>>,
        generation: u64,
    ) -> Result<CachedToken, OktaError> {
        let bound = answer
            .token_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("DPoP"));
        if !bound && self.dpop == DpopMode::On {
            return Err(OktaError::Config(
                "Okta issued a Bearer token although --okta-dpop=on: turn on \"Require \
                 Demonstrating Proof of Possession (DPoP) header in token requests\" for the \
                 service app, or run with --okta-dpop=auto"
                    .into(),
            ));
        }
        let lifetime = Duration::from_secs(answer.expires_in);
        Ok(CachedToken {
            value: answer.access_token,
            bound_to: if bound { key } else { None },
            renew_at: Instant::now() + lifetime - RENEW_BEFORE_EXPIRY.min(lifetime / 5),
            generation,
        })
    }

    fn assertion(&self, app: &ServiceAppKey) -> Result<String, OktaError> {
        let now = epoch_seconds();
        let jti: String = rand::thread_rng()
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        let claims = serde_json::json!({
            "iss": app.client_id, "sub": app.client_id, "aud": self.token_url.as_str(),
            "iat": now, "exp": now + ASSERTION_LIFETIME_SECONDS, "jti": jti,
        });
        let mut header = Header::new(app.algorithm);
        header.kid = app.key_id.clone();
        jsonwebtoken::encode(&header, &claims, &app.key)
            .map_err(|e| OktaError::Config(format!("signing the client assertion: {e}")))
    }
}

fn non_empty(text: String, otherwise: &str) -> String {
    if text.is_empty() {
        otherwise.to_string()
    } else {
        text
    }
}
