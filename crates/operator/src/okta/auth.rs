//! How the operator proves itself to Okta: an SSWS API token, or a service app's OAuth
//! client credentials with a `private_key_jwt` assertion (Okta's recommendation), the
//! access token cached until shortly before it expires. Secrets never reach `Debug`.

use super::OktaError;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::Rng;
use serde::Deserialize;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Renew an access token this long before Okta says it expires.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(60);
const ASSERTION_LIFETIME_SECONDS: u64 = 300;

pub enum Credentials {
    ApiToken(String),
    PrivateKey(ServiceApp),
}

/// An Okta service app that signs its client assertions with a private key.
pub struct ServiceApp {
    pub client_id: String,
    key: EncodingKey,
    algorithm: Algorithm,
    /// The `kid` of the key registered with the app, if it has several.
    pub key_id: Option<String>,
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::ApiToken(_) => f.write_str("ApiToken(<redacted>)"),
            Credentials::PrivateKey(app) => f
                .debug_struct("PrivateKey")
                .field("client_id", &app.client_id)
                .field("key", &"<redacted>")
                .field("scopes", &app.scopes)
                .finish(),
        }
    }
}

impl Credentials {
    /// The same credentials asking for other scopes: a service app's access token carries
    /// only the scopes it was asked for, and asking for one the app was not granted fails
    /// the whole request, so an optional scope gets a token of its own.
    pub fn with_scopes(&self, scopes: Vec<String>) -> Self {
        match self {
            Credentials::ApiToken(token) => Credentials::ApiToken(token.clone()),
            Credentials::PrivateKey(app) => Credentials::PrivateKey(ServiceApp {
                client_id: app.client_id.clone(),
                key: app.key.clone(),
                algorithm: app.algorithm,
                key_id: app.key_id.clone(),
                scopes,
            }),
        }
    }

    /// A service app's credentials from its PEM private key (RSA or EC).
    pub fn private_key(
        client_id: String,
        pem: &str,
        key_id: Option<String>,
        scopes: Vec<String>,
    ) -> Result<Self, OktaError> {
        let (key, algorithm) = if let Ok(key) = EncodingKey::from_rsa_pem(pem.as_bytes()) {
            (key, Algorithm::RS256)
        } else if let Ok(key) = EncodingKey::from_ec_pem(pem.as_bytes()) {
            (key, Algorithm::ES256)
        } else {
            return Err(OktaError::Config(
                "the private key is neither an RSA nor an EC PEM key".into(),
            ));
        };
        Ok(Credentials::PrivateKey(ServiceApp {
            client_id,
            key,
            algorithm,
            key_id,
            scopes,
        }))
    }
}

struct CachedToken {
    value: String,
    renew_at: Instant,
}

/// The `Authorization` header values the client sends.
pub struct Authenticator {
    credentials: Credentials,
    token_url: String,
    cached: Mutex<Option<CachedToken>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

impl Authenticator {
    pub fn new(credentials: Credentials, org_url: &str) -> Self {
        Self {
            credentials,
            token_url: format!("{}/oauth2/v1/token", org_url.trim_end_matches('/')),
            cached: Mutex::new(None),
        }
    }

    /// The header for the next request, fetching an access token when needed.
    pub async fn header(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<String, OktaError> {
        match &self.credentials {
            Credentials::ApiToken(token) => Ok(format!("SSWS {token}")),
            Credentials::PrivateKey(app) => self.bearer(http, timeout, app).await,
        }
    }

    async fn bearer(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
        app: &ServiceApp,
    ) -> Result<String, OktaError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(format!("Bearer {}", token.value));
        }
        let now = super::ratelimit::epoch_seconds();
        let jti: String = rand::thread_rng()
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        let claims = serde_json::json!({
            "iss": app.client_id, "sub": app.client_id, "aud": self.token_url,
            "iat": now, "exp": now + ASSERTION_LIFETIME_SECONDS, "jti": jti,
        });
        let mut header = Header::new(app.algorithm);
        header.kid = app.key_id.clone();
        let assertion = jsonwebtoken::encode(&header, &claims, &app.key)
            .map_err(|e| OktaError::Token(e.to_string()))?;
        let response = http
            .post(&self.token_url)
            .timeout(timeout)
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", &app.scopes.join(" ")),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
            ])
            .send()
            .await
            .map_err(|e| OktaError::Token(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(OktaError::Token(format!("{status}: {body}")));
        }
        let answer: TokenAnswer = response
            .json()
            .await
            .map_err(|e| OktaError::Token(e.to_string()))?;
        let lifetime = Duration::from_secs(answer.expires_in);
        *cached = Some(CachedToken {
            renew_at: Instant::now() + lifetime.saturating_sub(RENEW_BEFORE_EXPIRY),
            value: answer.access_token.clone(),
        });
        Ok(format!("Bearer {}", answer.access_token))
    }

    /// Forget a token Okta refused, so the next request gets a new one.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_secret() {
        let token = Credentials::ApiToken("00very-secret".into());
        assert!(!format!("{token:?}").contains("very-secret"));
    }
}
