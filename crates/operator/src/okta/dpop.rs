//! DPoP proofs (RFC 9449) for a service app whose tokens Okta binds to a key: an
//! ephemeral P-256 key of the operator's own (never the client-assertion key), a fresh
//! signed proof per request, the nonce Okta hands out, and a new key on a schedule.

use super::OktaError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::Rng;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use url::Url;

/// Whether the operator proves possession of a key when it asks for and uses tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DpopMode {
    /// Send a proof with every token request and use the token as Okta issues it: DPoP
    /// when the app requires it, Bearer otherwise.
    #[default]
    Auto,
    /// As auto, and refuse a Bearer token: the app must require DPoP.
    On,
    /// Never send a proof (an app that requires DPoP then refuses every token request).
    Off,
}

/// One proof key: the signing key and its public JWK.
pub struct DpopKey {
    signing: EncodingKey,
    jwk: Jwk,
    created: Instant,
}

impl DpopKey {
    fn generate() -> Result<Self, OktaError> {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| OktaError::Config("generating a DPoP key failed".into()))?;
        let signing = EncodingKey::from_ec_der(pkcs8.as_ref());
        let jwk = Jwk::from_encoding_key(&signing, Algorithm::ES256)
            .map_err(|e| OktaError::Config(format!("the DPoP key's JWK: {e}")))?;
        Ok(Self {
            signing,
            jwk,
            created: Instant::now(),
        })
    }

    /// A proof for one request: `htm`, `htu` (without query or fragment), `iat`, a unique
    /// `jti`, the nonce if Okta gave one, and `ath` when a token goes with it.
    pub fn proof(
        &self,
        method: &str,
        url: &Url,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<String, OktaError> {
        let mut htu = url.clone();
        htu.set_query(None);
        htu.set_fragment(None);
        let jti: String = rand::thread_rng()
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        let mut claims = serde_json::json!({
            "htm": method,
            "htu": htu.as_str(),
            "iat": super::ratelimit::epoch_seconds(),
            "jti": jti,
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        if let Some(token) = access_token {
            claims["ath"] = URL_SAFE_NO_PAD
                .encode(Sha256::digest(token.as_bytes()))
                .into();
        }
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        jsonwebtoken::encode(&header, &claims, &self.signing)
            .map_err(|e| OktaError::Config(format!("signing a DPoP proof: {e}")))
    }
}

/// The current proof key and the last nonce Okta handed out.
pub struct DpopSigner {
    key: Mutex<Arc<DpopKey>>,
    nonce: Mutex<Option<String>>,
    rotate_after: Duration,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl DpopSigner {
    pub fn new(rotate_after: Duration) -> Result<Self, OktaError> {
        Ok(Self {
            key: Mutex::new(Arc::new(DpopKey::generate()?)),
            nonce: Mutex::new(None),
            rotate_after,
        })
    }

    /// The key for a new token: a new one when the current one has served its time (a
    /// token stays bound to the key it was issued for, so rotation waits for renewal).
    pub fn key_for_new_token(&self) -> Result<Arc<DpopKey>, OktaError> {
        let mut key = lock(&self.key);
        if key.created.elapsed() >= self.rotate_after {
            *key = Arc::new(DpopKey::generate()?);
            *lock(&self.nonce) = None;
            tracing::debug!("rotated the DPoP key");
        }
        Ok(key.clone())
    }

    pub fn nonce(&self) -> Option<String> {
        lock(&self.nonce).clone()
    }

    pub fn set_nonce(&self, nonce: &str) {
        *lock(&self.nonce) = Some(nonce.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::ThumbprintHash;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn a_proof_verifies_with_its_own_jwk_and_carries_the_request() {
        let key = DpopKey::generate().expect("key");
        let url = Url::parse("https://example.okta.com/api/v1/groups?search=x#f").expect("url");
        let proof = key
            .proof("GET", &url, Some("n-1"), Some("token"))
            .expect("proof");
        let header = jsonwebtoken::decode_header(&proof).expect("header");
        assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
        let jwk = header.jwk.expect("jwk");
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &proof,
            &DecodingKey::from_jwk(&jwk).expect("decoding key"),
            &validation,
        )
        .expect("valid signature")
        .claims;
        assert_eq!(claims["htu"], "https://example.okta.com/api/v1/groups");
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["nonce"], "n-1");
        assert_eq!(
            claims["ath"],
            URL_SAFE_NO_PAD.encode(Sha256::digest(b"token"))
        );
        let second = key.proof("GET", &url, None, None).expect("proof");
        assert_ne!(proof, second, "every proof has its own jti");
        assert!(
            serde_json::to_string(&jwk)
                .expect("json")
                .find("\"d\"")
                .is_none(),
            "no private part"
        );
    }

    #[test]
    fn the_key_rotates_on_schedule_and_forgets_the_nonce() {
        let signer = DpopSigner::new(Duration::ZERO).expect("signer");
        signer.set_nonce("n-1");
        let first = signer.key_for_new_token().expect("key");
        let second = signer.key_for_new_token().expect("key");
        let thumbprint = |key: &DpopKey| key.jwk.thumbprint(ThumbprintHash::SHA256).expect("jkt");
        assert_ne!(thumbprint(&first), thumbprint(&second));
        assert_eq!(signer.nonce(), None);
        let kept = DpopSigner::new(Duration::from_secs(3600)).expect("signer");
        let a = kept.key_for_new_token().expect("key");
        let b = kept.key_for_new_token().expect("key");
        assert!(Arc::ptr_eq(&a, &b));
    }
}
