//! DPoP (RFC 9449) as Okta's org authorization server and Management API apply it.
//!
//! What is modelled, and why (Okta's guides and the SDKs' `dpop` modules are the
//! sources; where they are silent, the RFC decides):
//!
//! - A proof is a JWT with `typ: dpop+jwt`, an asymmetric `alg` (RS*, ES*), the public
//!   `jwk` in its header and no private part in it, and the claims `htm`, `htu` (the URL
//!   without query or fragment), `iat` and `jti`. A proof older than the proof window or
//!   from the future (a little clock skew allowed), or whose `jti` was seen before, is
//!   refused with `invalid_dpop_proof`.
//! - The token endpoint asks for a nonce: a proof without one, or with one that has
//!   expired, gets `400 use_dpop_nonce` and a fresh nonce in `DPoP-Nonce` (the SDKs retry
//!   with it). Nonces live for the configured lifetime; a new one is minted when the
//!   current one is half spent, and every unexpired one is accepted.
//! - Okta's guide for its own resources says the nonce "isn't currently required" on
//!   Management API calls, so it is not asked for there; the proof must carry `ath`, the
//!   base64url SHA-256 of the access token, and its key must be the one the token is
//!   bound to (`cnf.jkt`, the RFC 7638 thumbprint), or the call gets
//!   `invalid_dpop_key_binding`.
//! - Refusals on the Management API follow RFC 9449 section 7.1: `401` with a
//!   `WWW-Authenticate: DPoP error=...` challenge and the OAuth error in the body.

use crate::errors::random_id;
use crate::limits::lock;
use crate::seed::OAuthSettings;
use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// How far in the future a proof's `iat` may be (the client's clock running ahead).
const CLOCK_SKEW_SECONDS: u64 = 5;
const ALGORITHMS: [Algorithm; 5] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// The `alg` values the discovery documents list as `dpop_signing_alg_values_supported`.
pub const SIGNING_ALGORITHMS: [&str; 5] = ["RS256", "RS384", "RS512", "ES256", "ES384"];

/// Why a request's DPoP was refused: the OAuth error code and its description.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub error: &'static str,
    pub description: String,
}

impl Refusal {
    pub fn proof(description: impl Into<String>) -> Self {
        Self {
            error: "invalid_dpop_proof",
            description: description.into(),
        }
    }

    pub fn missing() -> Self {
        Self::proof("The DPoP proof JWT header is missing.")
    }
}

/// A proof that passed: the thumbprint of its key and the nonce it carried.
pub struct Proof {
    pub jkt: String,
    pub nonce: Option<String>,
}

#[derive(Deserialize)]
struct ProofClaims {
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<u64>,
    jti: Option<String>,
    nonce: Option<String>,
    ath: Option<String>,
}

pub struct Dpop {
    settings: Mutex<OAuthSettings>,
    /// Nonces handed out, oldest first, with when each expires (ms).
    nonces: Mutex<VecDeque<(String, u64)>>,
    /// `jkt/jti` of proofs seen, with when they may be forgotten (ms): a replay is refused.
    seen: Mutex<HashMap<String, u64>>,
}

impl Dpop {
    pub fn new(settings: OAuthSettings) -> Self {
        Self {
            settings: Mutex::new(settings),
            nonces: Mutex::new(VecDeque::new()),
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub fn set_settings(&self, settings: OAuthSettings) {
        *lock(&self.settings) = settings;
        lock(&self.nonces).clear();
    }

    /// The nonce to hand out now: the newest, or a new one when it is half spent.
    pub fn nonce(&self, now_ms: u64) -> String {
        let lifetime_ms = lock(&self.settings).dpop_nonce_seconds * 1000;
        let mut nonces = lock(&self.nonces);
        nonces.retain(|(_, expires)| *expires > now_ms);
        match nonces.back() {
            Some((nonce, expires)) if expires - now_ms > lifetime_ms / 2 => nonce.clone(),
            _ => {
                let nonce = random_id("", 32);
                nonces.push_back((nonce.clone(), now_ms + lifetime_ms));
                nonce
            }
        }
    }

    fn nonce_is_current(&self, nonce: &str, now_ms: u64) -> bool {
        lock(&self.nonces)
            .iter()
            .any(|(known, expires)| known == nonce && *expires > now_ms)
    }

    /// Checks the `DPoP` header of a request to `htu` with method `htm`: its form, key,
    /// signature, `htm`, `htu`, `iat`, a `jti` not seen before and, for a resource
    /// request, `ath` for `access_token`.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        htm: &str,
        htu: &str,
        access_token: Option<&str>,
        now_ms: u64,
    ) -> Result<Proof, Refusal> {
        let mut values = headers.get_all("dpop").iter();
        let proof = match (values.next(), values.next()) {
            (None, _) => return Err(Refusal::missing()),
            (Some(_), Some(_)) => {
                return Err(Refusal::proof("Only one DPoP proof JWT header is allowed."));
            }
            (Some(value), None) => value
                .to_str()
                .map_err(|_| Refusal::proof("The DPoP proof JWT is not a valid JWT."))?,
        };
        let header = jsonwebtoken::decode_header(proof)
            .map_err(|_| Refusal::proof("The DPoP proof JWT is not a valid JWT."))?;
        if header.typ.as_deref() != Some("dpop+jwt") {
            return Err(Refusal::proof(
                "The DPoP proof JWT header 'typ' must be 'dpop+jwt'.",
            ));
        }
        if !ALGORITHMS.contains(&header.alg) {
            return Err(Refusal::proof(
                "The DPoP proof JWT must be signed with an asymmetric algorithm.",
            ));
        }
        if carries_private_key(proof) {
            return Err(Refusal::proof(
                "The DPoP proof JWT header 'jwk' must not contain a private key.",
            ));
        }
        let jwk: Jwk = header.jwk.ok_or_else(|| {
            Refusal::proof("The DPoP proof JWT header must contain a 'jwk' public key.")
        })?;
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|_| Refusal::proof("The DPoP proof JWT header 'jwk' is not a valid key."))?;
        let mut validation = Validation::new(header.alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<ProofClaims>(proof, &key, &validation)
            .map_err(|_| Refusal::proof("The DPoP proof JWT signature is invalid."))?
            .claims;
        if claims.htm.as_deref() != Some(htm) {
            return Err(Refusal::proof(format!(
                "The DPoP proof JWT 'htm' claim must be '{htm}'."
            )));
        }
        if claims.htu.as_deref() != Some(htu) {
            return Err(Refusal::proof(format!(
                "The DPoP proof JWT 'htu' claim must be '{htu}'."
            )));
        }
        let now = now_ms / 1000;
        let window = lock(&self.settings).dpop_proof_seconds;
        match claims.iat {
            None => return Err(Refusal::proof("The DPoP proof JWT must contain 'iat'.")),
            Some(iat) if iat > now + CLOCK_SKEW_SECONDS => {
                return Err(Refusal::proof("The DPoP proof JWT 'iat' is in the future."));
            }
            Some(iat) if iat + window < now => {
                return Err(Refusal::proof("The DPoP proof JWT has expired ('iat')."));
            }
            Some(_) => {}
        }
        if let Some(token) = access_token {
            let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
            if claims.ath.as_deref() != Some(expected.as_str()) {
                return Err(Refusal::proof(
                    "The DPoP proof JWT 'ath' claim does not match the access token.",
                ));
            }
        }
        let jkt = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| Refusal::proof("The DPoP proof JWT header 'jwk' is not a valid key."))?;
        let jti = claims
            .jti
            .ok_or_else(|| Refusal::proof("The DPoP proof JWT must contain 'jti'."))?;
        let mut seen = lock(&self.seen);
        seen.retain(|_, forget_at| *forget_at > now_ms);
        let forget_at = now_ms + (window + CLOCK_SKEW_SECONDS + 1) * 1000;
        if seen.insert(format!("{jkt}/{jti}"), forget_at).is_some() {
            return Err(Refusal::proof(
                "The DPoP proof JWT has already been used ('jti').",
            ));
        }
        Ok(Proof {
            jkt,
            nonce: claims.nonce,
        })
    }

    /// A token request's proof must carry a nonce this server handed out and that has
    /// not expired; otherwise the answer is `use_dpop_nonce` with a fresh one.
    pub fn require_nonce(&self, proof: &Proof, now_ms: u64) -> Result<(), Refusal> {
        match &proof.nonce {
            Some(nonce) if self.nonce_is_current(nonce, now_ms) => Ok(()),
            _ => Err(Refusal {
                error: "use_dpop_nonce",
                description: "Authorization server requires nonce in DPoP proof.".into(),
            }),
        }
    }
}

/// Whether the proof's `jwk` header holds a private key part (`d`, or RSA's primes).
fn carries_private_key(jwt: &str) -> bool {
    let Some(header) = jwt
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
    else {
        return false;
    };
    ["d", "p", "q", "dp", "dq", "qi"]
        .iter()
        .any(|part| header["jwk"].get(part).is_some())
}
