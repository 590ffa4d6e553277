//! DPoP as the local Okta applies it (RFC 9449, Okta's service-app flow): the token
//! endpoint of an app that requires it, the Management API with DPoP-bound tokens, and
//! every refusal, each with the error code Okta's SDKs know.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use okta_sim::seed::{SeedApiToken, SeedAuthorizationServer, SeedClient, SeedGroup};
use okta_sim::{GroupType, OAuthSettings, OktaSim, Seed, SimOptions};
use reqwest::StatusCode;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DPOP_APP: &str = "0oa-dpop";
const BEARER_APP: &str = "0oa-bearer";

struct Key {
    encoding: EncodingKey,
    public_pem: String,
    jwk: Jwk,
}

fn rsa_key() -> Key {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key");
    let pem = key.to_pkcs8_pem(LineEnding::LF).expect("pkcs8");
    let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("encoding key");
    let jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).expect("jwk");
    Key {
        encoding,
        public_pem: key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("spki"),
        jwk,
    }
}

fn epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn unique() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("id-{}", NEXT.fetch_add(1, Ordering::SeqCst))
}

/// The pieces of a DPoP proof a test may get wrong.
struct ProofSpec<'a> {
    htm: &'a str,
    htu: String,
    iat: u64,
    jti: String,
    nonce: Option<String>,
    ath: Option<String>,
    typ: &'a str,
}

impl<'a> ProofSpec<'a> {
    fn new(htm: &'a str, htu: String) -> Self {
        Self {
            htm,
            htu,
            iat: epoch(),
            jti: unique(),
            nonce: None,
            ath: None,
            typ: "dpop+jwt",
        }
    }

    fn for_token(mut self, token: &str) -> Self {
        self.ath = Some(URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())));
        self
    }

    fn claims(&self) -> Value {
        let mut claims =
            json!({"htm": self.htm, "htu": self.htu, "iat": self.iat, "jti": self.jti});
        if let Some(nonce) = &self.nonce {
            claims["nonce"] = json!(nonce);
        }
        if let Some(ath) = &self.ath {
            claims["ath"] = json!(ath);
        }
        claims
    }

    /// Signed by `signer`, naming `named`'s public key in its header.
    fn signed(&self, signer: &Key, named: &Key) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some(self.typ.into());
        header.jwk = Some(named.jwk.clone());
        jsonwebtoken::encode(&header, &self.claims(), &signer.encoding).expect("sign")
    }

    fn sign(&self, key: &Key) -> String {
        self.signed(key, key)
    }
}

struct World {
    sim: OktaSim,
    http: reqwest::Client,
    app_key: Key,
}

async fn world() -> World {
    let app_key = rsa_key();
    let seed = Seed {
        groups: vec![SeedGroup {
            name: "k8s-admins".into(),
            group_type: GroupType::OktaGroup,
            description: None,
            members: vec![],
        }],
        api_tokens: vec![SeedApiToken {
            name: "admin".into(),
            token: "00admin".into(),
            scopes: None,
        }],
        clients: vec![
            SeedClient {
                dpop_bound_access_tokens: true,
                ..SeedClient::service_app(
                    DPOP_APP,
                    app_key.public_pem.clone(),
                    &["okta.groups.read"],
                )
            },
            SeedClient::service_app(
                BEARER_APP,
                app_key.public_pem.clone(),
                &["okta.groups.read"],
            ),
        ],
        authorization_servers: vec![SeedAuthorizationServer {
            id: "default".into(),
            audience: "api://default".into(),
            groups_claim: Default::default(),
        }],
        ..Default::default()
    };
    let sim = OktaSim::start(SimOptions::new(seed))
        .await
        .expect("local Okta");
    let config =
        okta_rbac_pki::client_config_trusting(&[sim.ca_pem().expect("https")]).expect("TLS config");
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .expect("client");
    World { sim, http, app_key }
}

impl World {
    fn token_url(&self) -> String {
        format!("{}/oauth2/v1/token", self.sim.base_url())
    }

    fn groups_url(&self) -> String {
        format!("{}/api/v1/groups", self.sim.base_url())
    }

    fn assertion(&self, client_id: &str) -> String {
        let now = epoch();
        let claims = json!({
            "iss": client_id, "sub": client_id, "aud": self.token_url(),
            "iat": now, "exp": now + 300, "jti": unique(),
        });
        jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &self.app_key.encoding,
        )
        .expect("assertion")
    }

    async fn token_request(&self, client_id: &str, proof: Option<String>) -> reqwest::Response {
        let mut request = self.http.post(self.token_url()).form(&[
            ("grant_type", "client_credentials"),
            ("scope", "okta.groups.read"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &self.assertion(client_id)),
        ]);
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        request.send().await.expect("token request")
    }

    /// The nonce a first proof is answered with.
    async fn nonce(&self, key: &Key) -> String {
        let proof = ProofSpec::new("POST", self.token_url()).sign(key);
        let answer = self.token_request(DPOP_APP, Some(proof)).await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
        let nonce = answer
            .headers()
            .get("dpop-nonce")
            .expect("DPoP-Nonce")
            .to_str()
            .expect("ascii")
            .to_string();
        assert_eq!(oauth_error(answer).await.0, "use_dpop_nonce");
        nonce
    }

    /// A DPoP-bound access token for `key`, the nonce dance included.
    async fn dpop_token(&self, key: &Key) -> String {
        let nonce = self.nonce(key).await;
        let mut spec = ProofSpec::new("POST", self.token_url());
        spec.nonce = Some(nonce);
        let answer = self.token_request(DPOP_APP, Some(spec.sign(key))).await;
        assert_eq!(answer.status(), StatusCode::OK);
        let body: Value = answer.json().await.expect("json");
        assert_eq!(body["token_type"], "DPoP", "{body}");
        body["access_token"].as_str().expect("token").to_string()
    }

    async fn groups(&self, authorization: &str, proof: Option<String>) -> reqwest::Response {
        let mut request = self
            .http
            .get(format!("{}?q=k8s", self.groups_url()))
            .header("Authorization", authorization);
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        request.send().await.expect("groups")
    }
}

/// The OAuth error and its description.
async fn oauth_error(response: reqwest::Response) -> (String, String) {
    let body: Value = response.json().await.expect("json");
    (
        body["error"].as_str().unwrap_or_default().to_string(),
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// A Management API refusal: 401, a DPoP challenge naming the error, and the error.
async fn refused(response: reqwest::Response) -> (String, String) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response
        .headers()
        .get("www-authenticate")
        .expect("a challenge")
        .to_str()
        .expect("ascii")
        .to_string();
    let (error, description) = oauth_error(response).await;
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(
        challenge.contains(&format!("error=\"{error}\"")),
        "{challenge}"
    );
    (error, description)
}

#[tokio::test]
async fn an_app_that_requires_dpop_gets_a_bound_token_after_the_nonce_challenge() {
    let world = world().await;
    let key = rsa_key();

    let (error, description) = oauth_error(world.token_request(DPOP_APP, None).await).await;
    assert_eq!(
        (error.as_str(), description.as_str()),
        (
            "invalid_dpop_proof",
            "The DPoP proof JWT header is missing."
        )
    );
    let token = world.dpop_token(&key).await;
    let answer = world
        .groups(
            &format!("DPoP {token}"),
            Some(
                ProofSpec::new("GET", world.groups_url())
                    .for_token(&token)
                    .sign(&key),
            ),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let log = world.sim.requests();
    let token_answers: Vec<u16> = log
        .iter()
        .filter(|r| r.path == "/oauth2/v1/token")
        .map(|r| r.status)
        .collect();
    assert_eq!(token_answers, [400, 400, 200]);
    assert_eq!(
        log.last().and_then(|r| r.caller.as_deref()),
        Some("DPoP 0oa-dpop"),
        "the request log names the scheme and the app"
    );
}

#[tokio::test]
async fn nonces_expire_and_rotate() {
    let world = world().await;
    world.sim.set_oauth_settings(OAuthSettings {
        dpop_nonce_seconds: 2,
        ..Default::default()
    });
    let key = rsa_key();
    let first = world.nonce(&key).await;
    assert_eq!(
        world.nonce(&key).await,
        first,
        "a fresh nonce is handed out again"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut stale = ProofSpec::new("POST", world.token_url());
    stale.nonce = Some(first.clone());
    let answer = world.token_request(DPOP_APP, Some(stale.sign(&key))).await;
    let fresh = answer
        .headers()
        .get("dpop-nonce")
        .expect("a new nonce")
        .to_str()
        .expect("ascii")
        .to_string();
    assert_eq!(oauth_error(answer).await.0, "use_dpop_nonce");
    assert_ne!(fresh, first, "an expired nonce is replaced");
    let mut current = ProofSpec::new("POST", world.token_url());
    current.nonce = Some(fresh);
    let answer = world
        .token_request(DPOP_APP, Some(current.sign(&key)))
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_token_endpoint_refuses_every_bad_proof() {
    let world = world().await;
    let key = rsa_key();
    let other = rsa_key();
    let nonce = world.nonce(&key).await;
    let spec = |change: &dyn Fn(&mut ProofSpec)| {
        let mut spec = ProofSpec::new("POST", world.token_url());
        spec.nonce = Some(nonce.clone());
        change(&mut spec);
        spec
    };
    let replayed = spec(&|_| {});
    assert_eq!(
        world
            .token_request(DPOP_APP, Some(replayed.sign(&key)))
            .await
            .status(),
        StatusCode::OK
    );
    let with_private_part = {
        let mut header = serde_json::to_value(Header {
            typ: Some("dpop+jwt".into()),
            jwk: Some(key.jwk.clone()),
            ..Header::new(Algorithm::RS256)
        })
        .expect("header");
        header["jwk"]["d"] = json!("c2VjcmV0");
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(spec(&|_| {}).claims().to_string())
        );
        let signature =
            jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key.encoding, Algorithm::RS256)
                .expect("sign");
        format!("{signing_input}.{signature}")
    };
    let without_jwk = {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("dpop+jwt".into());
        jsonwebtoken::encode(&header, &spec(&|_| {}).claims(), &key.encoding).expect("sign")
    };
    let symmetric = {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(key.jwk.clone());
        jsonwebtoken::encode(
            &header,
            &spec(&|_| {}).claims(),
            &EncodingKey::from_secret(b"shared"),
        )
        .expect("sign")
    };
    let without = |claim: &str| {
        let mut claims = spec(&|_| {}).claims();
        claims.as_object_mut().expect("object").remove(claim);
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(key.jwk.clone());
        jsonwebtoken::encode(&header, &claims, &key.encoding).expect("sign")
    };
    let twice = world
        .http
        .post(world.token_url())
        .header("DPoP", spec(&|_| {}).sign(&key))
        .header("DPoP", spec(&|_| {}).sign(&key))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "okta.groups.read"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &world.assertion(DPOP_APP)),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(
        oauth_error(twice).await,
        (
            "invalid_dpop_proof".to_string(),
            "Only one DPoP proof JWT header is allowed.".to_string()
        )
    );
    let cases: Vec<(String, &str)> = vec![
        (
            spec(&|s| s.typ = "JWT").sign(&key),
            "'typ' must be 'dpop+jwt'",
        ),
        (without_jwk, "must contain a 'jwk'"),
        (symmetric, "asymmetric algorithm"),
        (without("iat"), "must contain 'iat'"),
        (without("jti"), "must contain 'jti'"),
        (without("htu"), "'htu' claim must be"),
        (
            spec(&|s| s.htm = "GET").sign(&key),
            "'htm' claim must be 'POST'",
        ),
        (
            spec(&|s| s.htu = format!("{}?x=1", world.token_url())).sign(&key),
            "'htu' claim must be",
        ),
        (spec(&|s| s.iat = epoch() - 600).sign(&key), "has expired"),
        (spec(&|s| s.iat = epoch() + 600).sign(&key), "in the future"),
        (replayed.sign(&key), "already been used"),
        (spec(&|_| {}).signed(&other, &key), "signature is invalid"),
        (with_private_part, "must not contain a private key"),
        ("not-a-jwt".into(), "not a valid JWT"),
    ];
    for (proof, why) in cases {
        let answer = world.token_request(DPOP_APP, Some(proof)).await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{why}");
        let (error, description) = oauth_error(answer).await;
        assert_eq!(error, "invalid_dpop_proof", "{why}: {description}");
        assert!(description.contains(why), "{why}: {description}");
    }
}

#[tokio::test]
async fn the_management_api_refuses_a_bound_token_without_its_proof() {
    let world = world().await;
    let key = rsa_key();
    let other = rsa_key();
    let token = world.dpop_token(&key).await;
    let good = || ProofSpec::new("GET", world.groups_url()).for_token(&token);

    let (error, _) = refused(world.groups(&format!("Bearer {token}"), None).await).await;
    assert_eq!(
        error, "invalid_token",
        "a DPoP token used as a Bearer token"
    );
    let (error, description) = refused(world.groups(&format!("DPoP {token}"), None).await).await;
    assert_eq!(
        (error.as_str(), description.as_str()),
        (
            "invalid_dpop_proof",
            "The DPoP proof JWT header is missing."
        )
    );
    let used = good().sign(&key);
    assert_eq!(
        world
            .groups(&format!("DPoP {token}"), Some(used.clone()))
            .await
            .status(),
        StatusCode::OK
    );
    let mut wrong_ath = good();
    wrong_ath.ath = Some(URL_SAFE_NO_PAD.encode(Sha256::digest(b"another token")));
    let mut no_ath = good();
    no_ath.ath = None;
    let mut wrong_method = good();
    wrong_method.htm = "POST";
    let cases = [
        (used, "invalid_dpop_proof", "already been used"),
        (wrong_ath.sign(&key), "invalid_dpop_proof", "'ath' claim"),
        (no_ath.sign(&key), "invalid_dpop_proof", "'ath' claim"),
        (wrong_method.sign(&key), "invalid_dpop_proof", "'htm'"),
        (
            good().sign(&other),
            "invalid_dpop_key_binding",
            "not bound to",
        ),
    ];
    for (proof, code, why) in cases {
        let (error, description) =
            refused(world.groups(&format!("DPoP {token}"), Some(proof)).await).await;
        assert_eq!(error, code, "{why}: {description}");
        assert!(description.contains(why), "{why}: {description}");
    }

    let bearer = world.token_request(BEARER_APP, None).await;
    let bearer: Value = bearer.json().await.expect("json");
    let bearer = bearer["access_token"].as_str().expect("token").to_string();
    let (error, _) = refused(
        world
            .groups(
                &format!("DPoP {bearer}"),
                Some(good().for_token(&bearer).sign(&key)),
            )
            .await,
    )
    .await;
    assert_eq!(error, "invalid_token", "a Bearer token sent as DPoP");
}

#[tokio::test]
async fn an_app_without_dpop_ignores_a_proof_and_issues_a_bearer_token() {
    let world = world().await;
    let key = rsa_key();
    let answer = world
        .token_request(
            BEARER_APP,
            Some(ProofSpec::new("POST", world.token_url()).sign(&key)),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(
        world
            .groups(&format!("Bearer {token}"), None)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn discovery_lists_the_dpop_algorithms_and_a_rotated_key_is_named_by_kid() {
    let world = world().await;
    for url in [
        format!(
            "{}/.well-known/oauth-authorization-server",
            world.sim.base_url()
        ),
        format!(
            "{}/.well-known/openid-configuration",
            world.sim.issuer("default")
        ),
    ] {
        let doc: Value = world
            .http
            .get(&url)
            .send()
            .await
            .expect("discovery")
            .json()
            .await
            .expect("json");
        let algorithms = doc["dpop_signing_alg_values_supported"]
            .as_array()
            .expect("dpop_signing_alg_values_supported");
        assert!(algorithms.contains(&json!("ES256")) && algorithms.contains(&json!("RS256")));
    }
    let org: Value = world
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            world.sim.base_url()
        ))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(org["token_endpoint"], world.token_url());
    assert_eq!(
        org["token_endpoint_auth_methods_supported"],
        json!(["private_key_jwt"])
    );

    let rotated = rsa_key();
    world
        .sim
        .add_client_key(BEARER_APP, "key-2", &rotated.public_pem)
        .expect("new key");
    let now = epoch();
    let claims = json!({
        "iss": BEARER_APP, "sub": BEARER_APP, "aud": world.token_url(),
        "iat": now, "exp": now + 300, "jti": unique(),
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("key-2".into());
    let signed = jsonwebtoken::encode(&header, &claims, &rotated.encoding).expect("sign");
    let answer = world
        .http
        .post(world.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "okta.groups.read"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &signed),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        world.sim.requests().last().and_then(|r| r.caller.clone()),
        Some(format!("{BEARER_APP} kid=key-2"))
    );
    world
        .sim
        .remove_client_key(BEARER_APP, None)
        .expect("old key removed");
    let answer = world.token_request(BEARER_APP, None).await;
    assert_eq!(
        answer.status(),
        StatusCode::UNAUTHORIZED,
        "the removed key signs nothing"
    );
}
