//! The local Okta answers like Okta: contract tests per endpoint over real HTTPS.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use okta_sim::limits::Bucket;
use okta_sim::seed::{SeedApiToken, SeedAuthorizationServer, SeedClient, SeedGroup, SeedUser};
use okta_sim::{
    FaultSettings, GroupType, OktaSim, RateLimitSettings, Seed, SimOptions, UserStatus,
};
use reqwest::StatusCode;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// An HTTP client that trusts only the simulator's CA, as a client configured with a CA
/// file would.
fn https_client(sim: &OktaSim) -> reqwest::Client {
    client_builder(sim).build().expect("HTTP client")
}

/// The same, speaking only HTTP/2, whose requests carry absolute URIs.
fn http2_client(sim: &OktaSim) -> reqwest::Client {
    client_builder(sim)
        .http2_prior_knowledge()
        .build()
        .expect("HTTP/2 client")
}

fn client_builder(sim: &OktaSim) -> reqwest::ClientBuilder {
    let pem = sim.ca_pem().expect("the simulator serves HTTPS");
    let config = okta_rbac_pki::client_config_trusting(&[pem]).expect("TLS config");
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .redirect(reqwest::redirect::Policy::none())
}

const TOKEN: &str = "00test-token";
const READ_NOTHING_TOKEN: &str = "00no-scope-token";

struct ServiceKey {
    private_pem: String,
    public_pem: String,
}

fn service_key() -> ServiceKey {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key");
    ServiceKey {
        private_pem: key.to_pkcs8_pem(LineEnding::LF).expect("pkcs8").to_string(),
        public_pem: key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("spki"),
    }
}

fn user(login: &str, status: UserStatus) -> SeedUser {
    SeedUser {
        login: login.into(),
        email: None,
        first_name: None,
        last_name: None,
        status,
        password: Some(format!("{login}-pw")),
    }
}

fn group(name: &str, members: &[&str]) -> SeedGroup {
    SeedGroup {
        name: name.into(),
        group_type: GroupType::OktaGroup,
        description: Some(format!("about {name}")),
        members: members.iter().map(|m| m.to_string()).collect(),
    }
}

fn seed(service_public_pem: Option<String>) -> Seed {
    let mut groups: Vec<SeedGroup> = (0..11)
        .map(|i| group(&format!("k8s-team-{i:02}"), &[]))
        .collect();
    groups.push(group("k8s-admins", &["alice@example.com"]));
    groups.push(group(
        "engineering",
        &["alice@example.com", "bob@example.com"],
    ));
    groups.push(SeedGroup {
        group_type: GroupType::AppGroup,
        ..group("k8s-admins", &[])
    });
    Seed {
        users: vec![
            user("alice@example.com", UserStatus::Active),
            user("bob@example.com", UserStatus::Active),
            user("sam@example.com", UserStatus::Suspended),
        ],
        groups,
        api_tokens: vec![
            SeedApiToken {
                name: "admin".into(),
                token: TOKEN.into(),
                scopes: None,
            },
            SeedApiToken {
                name: "no rights".into(),
                token: READ_NOTHING_TOKEN.into(),
                scopes: Some(vec!["okta.users.read".into()]),
            },
        ],
        clients: vec![
            SeedClient {
                public_key_pem: service_public_pem,
                ..SeedClient::service_app("0oaservice", String::new(), &["okta.groups.read"])
            },
            SeedClient {
                public_key_pem: None,
                scopes: vec![],
                redirect_uris: vec!["http://localhost:8000".into()],
                ..SeedClient::service_app("kubernetes", String::new(), &[])
            },
        ],
        authorization_servers: vec![SeedAuthorizationServer {
            id: "default".into(),
            audience: "api://default".into(),
            groups_claim: Default::default(),
        }],
        rate_limits: RateLimitSettings::default(),
        oauth: Default::default(),
    }
}

async fn start(seed: Seed) -> (OktaSim, reqwest::Client) {
    let sim = OktaSim::start(SimOptions::new(seed))
        .await
        .expect("simulator");
    let http = https_client(&sim);
    (sim, http)
}

async fn get(http: &reqwest::Client, url: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = http.get(url);
    if let Some(token) = token {
        request = request.header("Authorization", token);
    }
    request.send().await.expect("request")
}

fn links(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("link")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .collect()
}

fn next_url(links: &[String]) -> Option<String> {
    links.iter().find(|l| l.ends_with("rel=\"next\"")).map(|l| {
        l.trim_start_matches('<')
            .split('>')
            .next()
            .expect("url")
            .to_string()
    })
}

async fn okta_error(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert!(
        response.headers().contains_key("x-okta-request-id"),
        "every answer has a request id"
    );
    let body: Value = response.json().await.expect("error body is JSON");
    assert_eq!(body["errorCode"], code, "{body}");
    assert_eq!(body["errorLink"], code);
    assert!(body["errorSummary"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(
        body["errorId"]
            .as_str()
            .is_some_and(|s| s.starts_with("oae"))
    );
    assert!(body["errorCauses"].is_array());
    body
}

#[tokio::test]
async fn lists_walk_more_than_three_pages_by_link_headers() {
    let (sim, _) = start(seed(None)).await;
    let http = http2_client(&sim);
    let mut url = format!("{}/api/v1/groups?limit=3", sim.base_url());
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let response = get(&http, &url, Some(&format!("SSWS {TOKEN}"))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.version(),
            reqwest::Version::HTTP_2,
            "absolute request URIs too"
        );
        let links = links(&response);
        assert!(
            links[0].ends_with("rel=\"self\""),
            "self comes first: {links:?}"
        );
        let page: Vec<Value> = response.json().await.expect("groups");
        assert!(page.len() <= 3);
        names.extend(
            page.iter()
                .map(|g| g["profile"]["name"].as_str().expect("name").to_string()),
        );
        pages += 1;
        match next_url(&links) {
            Some(next) => url = next,
            None => break,
        }
    }
    // Everyone + 11 teams + k8s-admins + engineering + the app group k8s-admins.
    assert_eq!(names.len(), 15, "{names:?}");
    assert!(pages > 3);
    assert_eq!(names[0], "Everyone");
}

#[tokio::test]
async fn group_objects_have_every_field_okta_returns() {
    let (sim, http) = start(seed(None)).await;
    let url = format!(
        "{}/api/v1/groups?search={}",
        sim.base_url(),
        urlencode(r#"profile.name eq "k8s-admins""#)
    );
    let groups: Vec<Value> = get(&http, &url, Some(&format!("SSWS {TOKEN}")))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        groups.len(),
        2,
        "an OKTA_GROUP and an APP_GROUP share the name"
    );
    let okta = groups
        .iter()
        .find(|g| g["type"] == "OKTA_GROUP")
        .expect("okta group");
    for field in [
        "id",
        "created",
        "lastUpdated",
        "lastMembershipUpdated",
        "objectClass",
        "type",
        "profile",
        "_links",
    ] {
        assert!(okta.get(field).is_some(), "missing {field}: {okta}");
    }
    assert_eq!(okta["objectClass"], json!(["okta:user_group"]));
    assert!(
        okta["_links"]["users"]["href"]
            .as_str()
            .expect("href")
            .ends_with("/users")
    );
    let app = groups
        .iter()
        .find(|g| g["type"] == "APP_GROUP")
        .expect("app group");
    assert!(
        app["source"]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("0oa"))
    );

    let everyone_url = format!("{}/api/v1/groups?q=Every&expand=stats", sim.base_url());
    let everyone: Vec<Value> = get(&http, &everyone_url, Some(&format!("SSWS {TOKEN}")))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(everyone[0]["type"], "BUILT_IN");
    assert_eq!(
        everyone[0]["profile"]["description"],
        "All users in your organization"
    );
    assert_eq!(everyone[0]["_embedded"]["stats"]["usersCount"], 3);

    let members_url = format!(
        "{}/api/v1/groups/{}/users",
        sim.base_url(),
        okta["id"].as_str().expect("id")
    );
    let members: Vec<Value> = get(&http, &members_url, Some(&format!("SSWS {TOKEN}")))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(members.len(), 1);
    let alice = &members[0];
    assert_eq!(alice["status"], "ACTIVE");
    assert_eq!(alice["profile"]["login"], "alice@example.com");
    assert!(
        alice["lastLogin"].is_null(),
        "nulls are present, not omitted"
    );
    assert!(alice["profile"]["mobilePhone"].is_null());
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn search_filter_and_q_select_groups() {
    let (sim, http) = start(seed(None)).await;
    let auth = format!("SSWS {TOKEN}");
    let names = |groups: Vec<Value>| -> Vec<String> {
        groups
            .iter()
            .map(|g| g["profile"]["name"].as_str().expect("name").to_string())
            .collect()
    };
    let search = |expr: &str| {
        format!(
            "{}/api/v1/groups?search={}",
            sim.base_url(),
            urlencode(expr)
        )
    };
    let or_joined = r#"(profile.name eq "k8s-team-01" or profile.name eq "k8s-team-02") and type eq "OKTA_GROUP""#;
    let found = names(
        get(&http, &search(or_joined), Some(&auth))
            .await
            .json()
            .await
            .expect("json"),
    );
    assert_eq!(found, ["k8s-team-01", "k8s-team-02"]);
    let found = names(
        get(
            &http,
            &search(r#"profile.name sw "k8s-team-1""#),
            Some(&auth),
        )
        .await
        .json()
        .await
        .expect("json"),
    );
    assert_eq!(found, ["k8s-team-10"]);
    let found = names(
        get(
            &http,
            &search(r#"profile.description co "ENGINEER""#),
            Some(&auth),
        )
        .await
        .json()
        .await
        .expect("json"),
    );
    assert_eq!(found, ["engineering"]);
    let filter = format!(
        "{}/api/v1/groups?filter={}",
        sim.base_url(),
        urlencode(r#"type eq "APP_GROUP""#)
    );
    assert_eq!(
        names(
            get(&http, &filter, Some(&auth))
                .await
                .json()
                .await
                .expect("json")
        ),
        ["k8s-admins"]
    );
    let q = format!("{}/api/v1/groups?q=k8s-team&limit=2", sim.base_url());
    let response = get(&http, &q, Some(&auth)).await;
    assert_eq!(
        links(&response).len(),
        1,
        "q answers one page without a next link"
    );
    assert_eq!(names(response.json().await.expect("json")).len(), 2);
}

#[tokio::test]
async fn every_error_is_shaped_like_okta() {
    let (sim, http) = start(seed(None)).await;
    let base = sim.base_url();
    let auth = format!("SSWS {TOKEN}");
    let unknown = get(&http, &format!("{base}/api/v1/groups/00gnope"), Some(&auth)).await;
    okta_error(unknown, StatusCode::NOT_FOUND, "E0000007").await;
    let members_of_unknown = get(
        &http,
        &format!("{base}/api/v1/groups/00gnope/users"),
        Some(&auth),
    )
    .await;
    okta_error(members_of_unknown, StatusCode::NOT_FOUND, "E0000007").await;
    for credentials in [
        None,
        Some("SSWS wrong"),
        Some("Bearer nope"),
        Some("Basic x"),
    ] {
        let response = get(&http, &format!("{base}/api/v1/groups"), credentials).await;
        okta_error(response, StatusCode::UNAUTHORIZED, "E0000011").await;
    }
    let no_scope = get(
        &http,
        &format!("{base}/api/v1/groups"),
        Some(&format!("SSWS {READ_NOTHING_TOKEN}")),
    )
    .await;
    okta_error(no_scope, StatusCode::FORBIDDEN, "E0000006").await;
    let glued = get(
        &http,
        &format!("{base}/api/v1/groups?limit=1"),
        Some(&format!("SSWS{TOKEN}")),
    )
    .await;
    assert_eq!(
        glued.status(),
        StatusCode::OK,
        "SSWS without a space is accepted"
    );

    sim.exhaust_bucket(Bucket::Groups);
    let limited = get(&http, &format!("{base}/api/v1/groups"), Some(&auth)).await;
    assert_eq!(limited.headers()["x-rate-limit-remaining"], "0");
    assert!(limited.headers().contains_key("date"));
    okta_error(limited, StatusCode::TOO_MANY_REQUESTS, "E0000047").await;
}

#[tokio::test]
async fn bad_input_gets_okta_answers_never_a_crash() {
    let (sim, http) = start(seed(None)).await;
    let base = sim.base_url();
    let auth = format!("SSWS {TOKEN}");
    for expr in [
        "",
        "profile.name",
        r#"profile.name eq "unterminated"#,
        r#"profile.name like "x""#,
        r#"(profile.name eq "a""#,
        r#"profile.secret eq "a""#,
        "))((",
        r#"lastUpdated gt "not a date""#,
    ] {
        let response = get(
            &http,
            &format!("{base}/api/v1/groups?search={}", urlencode(expr)),
            Some(&auth),
        )
        .await;
        okta_error(response, StatusCode::BAD_REQUEST, "E0000031").await;
    }
    for limit in ["0", "-3", "abc", "1.5"] {
        let response = get(
            &http,
            &format!("{base}/api/v1/groups?limit={limit}"),
            Some(&auth),
        )
        .await;
        okta_error(response, StatusCode::BAD_REQUEST, "E0000001").await;
    }
    let huge = get(
        &http,
        &format!("{base}/api/v1/groups?limit=999999999999"),
        Some(&auth),
    )
    .await;
    assert_eq!(huge.status(), StatusCode::OK, "an absurd limit is capped");
    let unknown_param = get(
        &http,
        &format!("{base}/api/v1/groups?color=blue&limit=2"),
        Some(&auth),
    )
    .await;
    assert_eq!(
        unknown_param.status(),
        StatusCode::OK,
        "unknown parameters are ignored"
    );
    for cursor in ["garbage", "00gsomething", &URL_SAFE_NO_PAD.encode("v2:x")] {
        let response = get(
            &http,
            &format!("{base}/api/v1/groups?after={cursor}"),
            Some(&auth),
        )
        .await;
        okta_error(response, StatusCode::BAD_REQUEST, "E0000001").await;
    }
    for body in ["not json", "{\"profile\": 3}", ""] {
        let response = http
            .post(format!("{base}/api/v1/groups"))
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("post");
        okta_error(response, StatusCode::BAD_REQUEST, "E0000003").await;
    }
    let wrong_method = http
        .patch(format!("{base}/api/v1/groups"))
        .header("Authorization", &auth)
        .send()
        .await
        .expect("patch");
    okta_error(wrong_method, StatusCode::METHOD_NOT_ALLOWED, "E0000022").await;
    // Still serving after all of that.
    assert_eq!(
        get(&http, &format!("{base}/api/v1/groups?limit=1"), Some(&auth))
            .await
            .status(),
        StatusCode::OK
    );
}

fn epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test]
async fn rate_limit_headers_count_down_and_the_429_names_the_reset() {
    let mut limited = seed(None);
    limited.rate_limits.per_minute = BTreeMap::from([("groups".into(), 3)]);
    let (sim, http) = start(limited).await;
    let url = format!("{}/api/v1/groups?limit=1", sim.base_url());
    let auth = format!("SSWS {TOKEN}");
    let before = epoch();
    let mut remaining = Vec::new();
    let mut resets = Vec::new();
    for _ in 0..4 {
        let response = get(&http, &url, Some(&auth)).await;
        let header = |name: &str| {
            response.headers()[name]
                .to_str()
                .expect("ascii")
                .parse::<u64>()
                .expect("number")
        };
        assert_eq!(header("x-rate-limit-limit"), 3);
        remaining.push(header("x-rate-limit-remaining"));
        resets.push(header("x-rate-limit-reset"));
        if remaining.len() == 4 {
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        }
    }
    assert_eq!(remaining, [2, 1, 0, 0]);
    assert!(
        resets.iter().all(|r| *r == resets[0]),
        "one window: {resets:?}"
    );
    assert!(
        (before + 59..=before + 61).contains(&resets[0]),
        "reset a minute after the window opened"
    );
    let other_bucket = get(
        &http,
        &format!("{}/api/v1/groups/00gnope", sim.base_url()),
        Some(&auth),
    )
    .await;
    assert_eq!(
        other_bucket.status(),
        StatusCode::NOT_FOUND,
        "other endpoints have their own bucket"
    );
    let log = sim.requests();
    assert_eq!(log.iter().filter(|r| r.status == 429).count(), 1);
    assert_eq!(log.last().map(|r| r.bucket), Some(Some("group")));
}

#[tokio::test]
async fn the_concurrency_limit_refuses_with_zero_limit_and_remaining() {
    let mut seed = seed(None);
    seed.rate_limits.concurrency = 1;
    let (sim, http) = start(seed).await;
    // A slow Okta: each request holds its slot for 500 ms.
    sim.set_faults(FaultSettings {
        latency_ms: 500,
        ..Default::default()
    });
    let url = format!("{}/api/v1/groups?limit=1", sim.base_url());
    let auth = format!("SSWS {TOKEN}");
    let (first, second) = tokio::join!(get(&http, &url, Some(&auth)), async {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        get(&http, &url, Some(&auth)).await
    });
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.headers()["x-rate-limit-limit"], "0");
    assert_eq!(second.headers()["x-rate-limit-remaining"], "0");
    okta_error(second, StatusCode::TOO_MANY_REQUESTS, "E0000047").await;
    sim.clear_faults();
    assert_eq!(
        get(&http, &url, Some(&auth)).await.status(),
        StatusCode::OK,
        "the slot was returned"
    );
}

#[tokio::test]
async fn injected_faults_outage_errors_and_latency() {
    let (sim, http) = start(seed(None)).await;
    let url = format!("{}/api/v1/groups?limit=1", sim.base_url());
    let auth = format!("SSWS {TOKEN}");
    sim.set_faults(FaultSettings {
        outage_seconds: 1,
        ..Default::default()
    });
    okta_error(
        get(&http, &url, Some(&auth)).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "E0000010",
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        get(&http, &url, Some(&auth)).await.status(),
        StatusCode::OK,
        "the outage window ended"
    );
    sim.set_faults(FaultSettings {
        error_rate: 1.0,
        ..Default::default()
    });
    okta_error(
        get(&http, &url, Some(&auth)).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "E0000009",
    )
    .await;
    sim.set_faults(FaultSettings {
        latency_ms: 300,
        ..Default::default()
    });
    let started = std::time::Instant::now();
    assert_eq!(get(&http, &url, Some(&auth)).await.status(), StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    sim.set_faults(FaultSettings {
        hang_rate: 1.0,
        ..Default::default()
    });
    let hung = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        get(&http, &url, Some(&auth)),
    )
    .await;
    assert!(hung.is_err(), "a hanging request gets no answer");
    sim.clear_faults();
    let log = sim.requests();
    assert!(log.iter().any(|r| r.status == 503) && log.iter().any(|r| r.status == 500));
}

fn assertion(key_pem: &str, audience: &str, issued: u64, expires: u64, jti: &str) -> String {
    let claims = json!({
        "iss": "0oaservice", "sub": "0oaservice", "aud": audience,
        "iat": issued, "exp": expires, "jti": jti,
    });
    let key = EncodingKey::from_rsa_pem(key_pem.as_bytes()).expect("private key");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).expect("sign")
}

async fn token_request(
    http: &reqwest::Client,
    sim: &OktaSim,
    assertion: &str,
    scope: &str,
) -> reqwest::Response {
    http.post(format!("{}/oauth2/v1/token", sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .expect("token request")
}

async fn oauth_error(response: reqwest::Response, status: StatusCode, error: &str) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], error, "{body}");
    body["error_description"]
        .as_str()
        .expect("description")
        .to_string()
}

#[tokio::test]
async fn private_key_jwt_service_apps_get_a_bearer_token_and_bad_assertions_do_not() {
    let key = service_key();
    let other_key = service_key();
    let (sim, http) = start(seed(Some(key.public_pem.clone()))).await;
    let audience = format!("{}/oauth2/v1/token", sim.base_url());
    let now = epoch();

    let granted = token_request(
        &http,
        &sim,
        &assertion(&key.private_pem, &audience, now, now + 300, "a"),
        "okta.groups.read",
    )
    .await;
    assert_eq!(granted.status(), StatusCode::OK);
    let body: Value = granted.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "okta.groups.read");
    let bearer = format!("Bearer {}", body["access_token"].as_str().expect("token"));
    let groups = get(
        &http,
        &format!("{}/api/v1/groups?limit=1", sim.base_url()),
        Some(&bearer),
    )
    .await;
    assert_eq!(groups.status(), StatusCode::OK);

    let cases = [
        (
            assertion(
                &key.private_pem,
                "https://elsewhere/oauth2/v1/token",
                now,
                now + 300,
                "b",
            ),
            "audience",
        ),
        (
            assertion(&key.private_pem, &audience, now - 600, now - 300, "c"),
            "expired",
        ),
        (
            assertion(&other_key.private_pem, &audience, now, now + 300, "d"),
            "signature",
        ),
        (
            assertion(&key.private_pem, &audience, now, now + 7200, "e"),
            "too far",
        ),
        (
            assertion(&key.private_pem, &audience, now, now + 300, "a"),
            "already been used",
        ),
    ];
    for (bad, why) in cases {
        let description = oauth_error(
            token_request(&http, &sim, &bad, "okta.groups.read").await,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        )
        .await;
        assert!(description.contains(why), "{why}: {description}");
    }
    let not_granted = token_request(
        &http,
        &sim,
        &assertion(&key.private_pem, &audience, now, now + 300, "f"),
        "okta.users.manage",
    )
    .await;
    oauth_error(not_granted, StatusCode::BAD_REQUEST, "invalid_scope").await;
}

async fn discovery(http: &reqwest::Client, sim: &OktaSim) -> Value {
    let url = format!("{}/.well-known/openid-configuration", sim.issuer("default"));
    http.get(url)
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json")
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("claims")
}

#[tokio::test]
async fn the_authorization_server_publishes_discovery_and_keys_and_signs_id_tokens() {
    let (sim, http) = start(seed(None)).await;
    let doc = discovery(&http, &sim).await;
    assert_eq!(doc["issuer"], sim.issuer("default"));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    let jwks: Value = http
        .get(doc["jwks_uri"].as_str().expect("jwks"))
        .send()
        .await
        .expect("keys")
        .json()
        .await
        .expect("json");
    let jwk = &jwks["keys"][0];
    assert_eq!(
        (
            jwk["kty"].as_str(),
            jwk["alg"].as_str(),
            jwk["use"].as_str()
        ),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );

    let password = |user: &str, scope: &str| {
        http.post(doc["token_endpoint"].as_str().expect("token endpoint"))
            .form(&[
                ("grant_type", "password".to_string()),
                ("client_id", "kubernetes".to_string()),
                ("username", user.to_string()),
                ("password", format!("{user}-pw")),
                ("scope", scope.to_string()),
            ])
    };
    let body: Value = password("alice@example.com", "openid email groups")
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let id_token = body["id_token"].as_str().expect("id token");
    let header = jsonwebtoken::decode_header(id_token).expect("header");
    assert_eq!(header.kid.as_deref(), jwk["kid"].as_str());
    let decoding =
        jsonwebtoken::DecodingKey::from_jwk(&serde_json::from_value(jwk.clone()).expect("jwk"))
            .expect("key");
    let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
    validation.set_audience(&["kubernetes"]);
    validation.set_issuer(&[sim.issuer("default")]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &decoding, &validation)
        .expect("valid ID token")
        .claims;
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(
        claims["groups"],
        json!(["k8s-admins"]),
        "only k8s- groups pass the claim filter"
    );
    for claim in ["sub", "iat", "exp", "jti", "preferred_username"] {
        assert!(claims.get(claim).is_some(), "missing {claim}");
    }

    let suspended = password("sam@example.com", "openid")
        .send()
        .await
        .expect("token");
    oauth_error(suspended, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn authorization_code_with_pkce_then_refresh_reflects_directory_changes() {
    let (sim, http) = start(seed(None)).await;
    let issuer = sim.issuer("default");
    let verifier = "a-long-random-verifier-string-for-pkce-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let params = [
        ("response_type", "code"),
        ("client_id", "kubernetes"),
        ("redirect_uri", "http://localhost:8000"),
        ("scope", "openid email groups offline_access"),
        ("state", "st4te"),
        ("nonce", "n0nce"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let form = http
        .get(format!("{issuer}/v1/authorize"))
        .query(&params)
        .send()
        .await
        .expect("authorize");
    assert_eq!(form.status(), StatusCode::OK);
    assert!(form.text().await.expect("html").contains("<form"));
    let no_pkce = http
        .get(format!("{issuer}/v1/authorize"))
        .query(&params[..6])
        .send()
        .await
        .expect("authorize");
    assert_eq!(
        no_pkce.status(),
        StatusCode::BAD_REQUEST,
        "public clients must use PKCE"
    );

    let login = |password: &'static str| {
        let mut fields: Vec<(&str, &str)> = params.to_vec();
        fields.push(("username", "alice@example.com"));
        fields.push(("password", password));
        http.post(format!("{issuer}/v1/authorize"))
            .form(&fields)
            .send()
    };
    assert_eq!(
        login("wrong").await.expect("login").status(),
        StatusCode::UNAUTHORIZED
    );
    let redirect = login("alice@example.com-pw").await.expect("login");
    assert_eq!(redirect.status(), StatusCode::FOUND);
    let location =
        url::Url::parse(redirect.headers()["location"].to_str().expect("location")).expect("url");
    let query: BTreeMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(query["state"], "st4te");

    let exchange = |code: String, verifier: &'static str| {
        http.post(format!("{issuer}/v1/token")).form(&[
            ("grant_type", "authorization_code".to_string()),
            ("client_id", "kubernetes".to_string()),
            ("redirect_uri", "http://localhost:8000".to_string()),
            ("code", code),
            ("code_verifier", verifier.to_string()),
        ])
    };
    let wrong = exchange(query["code"].clone(), "not-the-verifier")
        .send()
        .await
        .expect("token");
    oauth_error(wrong, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // A code is single-use, so a failed exchange spends it; log in again.
    let redirect = login("alice@example.com-pw").await.expect("login");
    let location =
        url::Url::parse(redirect.headers()["location"].to_str().expect("location")).expect("url");
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .expect("code")
        .1
        .into_owned();
    let tokens: Value = exchange(code, verifier)
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let claims = claims_of(tokens["id_token"].as_str().expect("id token"));
    assert_eq!(claims["nonce"], "n0nce");
    assert_eq!(claims["groups"], json!(["k8s-admins"]));

    let admins = sim
        .group_id("k8s-admins", GroupType::OktaGroup)
        .expect("group");
    sim.remove_member(&admins, "alice@example.com")
        .expect("remove");
    let refreshed: Value = http
        .post(format!("{issuer}/v1/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "kubernetes"),
            (
                "refresh_token",
                tokens["refresh_token"].as_str().expect("refresh token"),
            ),
        ])
        .send()
        .await
        .expect("refresh")
        .json()
        .await
        .expect("json");
    let claims = claims_of(refreshed["id_token"].as_str().expect("id token"));
    assert!(
        claims.get("groups").is_none(),
        "a refreshed token has the groups of now: {claims}"
    );
}

#[tokio::test]
async fn the_admin_api_changes_the_directory_and_reads_the_log() {
    let (sim, http) = start(seed(None)).await;
    let base = sim.base_url();
    let auth = format!("SSWS {TOKEN}");
    let created: Value = http
        .post(format!("{base}/_sim/groups"))
        .json(&json!({"name": "k8s-new", "description": "made at runtime"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id");
    let renamed = http
        .patch(format!("{base}/_sim/groups/{id}"))
        .json(&json!({"name": "k8s-renamed"}))
        .send()
        .await
        .expect("rename");
    assert_eq!(renamed.status(), StatusCode::OK);
    let put = http
        .put(format!("{base}/_sim/groups/{id}/members/bob@example.com"))
        .send()
        .await
        .expect("add");
    assert_eq!(put.status(), StatusCode::OK);
    let status = http
        .post(format!(
            "{base}/_sim/users/bob@example.com/lifecycle/deactivate"
        ))
        .send()
        .await
        .expect("status");
    assert_eq!(status.status(), StatusCode::OK);

    let group: Value = get(&http, &format!("{base}/api/v1/groups/{id}"), Some(&auth))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(group["profile"]["name"], "k8s-renamed");
    let members: Vec<Value> = get(
        &http,
        &format!("{base}/api/v1/groups/{id}/users"),
        Some(&auth),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(members[0]["status"], "DEPROVISIONED");

    let bad = http
        .post(format!("{base}/_sim/groups"))
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .expect("bad");
    okta_error(bad, StatusCode::BAD_REQUEST, "E0000003").await;
    let bad_fault = http
        .put(format!("{base}/_sim/faults"))
        .json(&json!({"errorRate": 7}))
        .send()
        .await
        .expect("bad fault");
    okta_error(bad_fault, StatusCode::BAD_REQUEST, "E0000001").await;

    let deleted = http
        .delete(format!("{base}/_sim/groups/{id}"))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), StatusCode::OK);
    okta_error(
        get(&http, &format!("{base}/api/v1/groups/{id}"), Some(&auth)).await,
        StatusCode::NOT_FOUND,
        "E0000007",
    )
    .await;

    let log: Vec<Value> = http
        .get(format!("{base}/_sim/requests"))
        .send()
        .await
        .expect("log")
        .json()
        .await
        .expect("json");
    assert_eq!(
        log.len(),
        3,
        "API calls are logged, admin calls are not: {log:?}"
    );
    assert_eq!(log[2]["status"], 404);
    assert_eq!(log[2]["path"], format!("/api/v1/groups/{id}"));
}

#[tokio::test]
async fn the_claims_api_shows_the_groups_claim_and_id_tokens_follow_its_changes() {
    let (sim, http) = start(seed(None)).await;
    let claims_url = format!(
        "{}/api/v1/authorizationServers/default/claims",
        sim.base_url()
    );
    let response = get(
        &http,
        &claims_url,
        Some(&format!("SSWS {READ_NOTHING_TOKEN}")),
    )
    .await;
    okta_error(response, StatusCode::FORBIDDEN, "E0000006").await;
    let missing = get(
        &http,
        &format!("{}/api/v1/authorizationServers/nope/claims", sim.base_url()),
        Some(&format!("SSWS {TOKEN}")),
    )
    .await;
    okta_error(missing, StatusCode::NOT_FOUND, "E0000007").await;

    let claims: Value = get(&http, &claims_url, Some(&format!("SSWS {TOKEN}")))
        .await
        .json()
        .await
        .expect("json");
    let groups = claims
        .as_array()
        .expect("a list")
        .iter()
        .find(|c| c["name"] == "groups")
        .expect("the groups claim")
        .clone();
    assert_eq!(groups["valueType"], "GROUPS");
    assert_eq!(groups["claimType"], "IDENTITY");
    assert_eq!(groups["group_filter_type"], "STARTS_WITH");
    assert_eq!(groups["value"], "k8s-");
    assert_eq!(groups["alwaysIncludeInToken"], true);
    assert_eq!(groups["conditions"]["scopes"], json!([]));
    assert!(
        claims
            .as_array()
            .expect("list")
            .iter()
            .any(|c| c["system"] == true),
        "Okta lists its system claims too"
    );
    let claim_url = groups["_links"]["self"]["href"]
        .as_str()
        .expect("self link")
        .to_string();

    let token_endpoint = format!("{}/v1/token", sim.issuer("default"));
    let groups_of_alice = |scope: &'static str| {
        let http = http.clone();
        let token_endpoint = token_endpoint.clone();
        async move {
            let body: Value = http
                .post(token_endpoint)
                .form(&[
                    ("grant_type", "password"),
                    ("client_id", "kubernetes"),
                    ("username", "alice@example.com"),
                    ("password", "alice@example.com-pw"),
                    ("scope", scope),
                ])
                .send()
                .await
                .expect("token")
                .json()
                .await
                .expect("json");
            claims_of(body["id_token"].as_str().expect("id token"))["groups"].clone()
        }
    };
    assert_eq!(groups_of_alice("openid").await, json!(["k8s-admins"]));

    // An admin narrows the claim: only for the groups scope, only names equal to "k8s-ops".
    let mut changed = groups.clone();
    changed["group_filter_type"] = json!("EQUALS");
    changed["value"] = json!("k8s-ops");
    changed["conditions"] = json!({"scopes": ["groups"]});
    let refused = http
        .put(&claim_url)
        .header("Authorization", format!("SSWS {READ_NOTHING_TOKEN}"))
        .json(&changed)
        .send()
        .await
        .expect("put");
    okta_error(refused, StatusCode::FORBIDDEN, "E0000006").await;
    let saved: Value = http
        .put(&claim_url)
        .header("Authorization", format!("SSWS {TOKEN}"))
        .json(&changed)
        .send()
        .await
        .expect("put")
        .json()
        .await
        .expect("json");
    assert_eq!(saved["group_filter_type"], "EQUALS");
    assert_eq!(
        groups_of_alice("openid groups").await,
        Value::Null,
        "k8s-admins no longer passes the filter"
    );
    changed["value"] = json!("k8s-admins");
    http.put(&claim_url)
        .header("Authorization", format!("SSWS {TOKEN}"))
        .json(&changed)
        .send()
        .await
        .expect("put");
    assert_eq!(
        groups_of_alice("openid groups").await,
        json!(["k8s-admins"])
    );
    assert_eq!(
        groups_of_alice("openid").await,
        Value::Null,
        "not requested with a scope the claim is for"
    );
}

#[tokio::test]
async fn the_system_log_records_group_changes_and_a_polling_query_follows_them() {
    let (sim, http) = start(seed(None)).await;
    let ssws = format!("SSWS {TOKEN}");
    let filter = urlencode(
        r#"eventType sw "group.lifecycle." or eventType eq "group.profile.update" or eventType sw "group.user_membership.""#,
    );
    let since = "2020-01-01T00:00:00.000Z";
    // The seed's own groups are in the log: a bounded walk of every page, three at a time.
    let mut url = format!(
        "{}/api/v1/logs?since={since}&until=2100-01-01T00:00:00.000Z&limit=3&filter={filter}",
        sim.base_url()
    );
    let mut seeded = Vec::new();
    loop {
        let response = get(&http, &url, Some(&ssws)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let links = links(&response);
        let page: Vec<Value> = response.json().await.expect("events");
        seeded.extend(page);
        match next_url(&links) {
            Some(next) => url = next,
            None => break,
        }
    }
    let created: Vec<&str> = seeded
        .iter()
        .filter(|e| e["eventType"] == "group.lifecycle.create")
        .filter_map(|e| e["target"][0]["displayName"].as_str())
        .collect();
    assert!(created.contains(&"k8s-admins"), "{created:?}");
    assert_eq!(
        seeded
            .iter()
            .filter(|e| e["eventType"] == "group.user_membership.add")
            .count(),
        3,
        "alice in k8s-admins, alice and bob in engineering"
    );

    // A polling query (no `until`, ascending) starting now sees nothing, yet has a next link.
    let now = okta_sim::directory::now();
    let first = get(
        &http,
        &format!("{}/api/v1/logs?since={now}&filter={filter}", sim.base_url()),
        Some(&ssws),
    )
    .await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        first.headers()["x-rate-limit-limit"]
            .to_str()
            .expect("ascii"),
        "60",
        "the System Log has a bucket of its own"
    );
    let mut next = next_url(&links(&first)).expect("a polling query always has a next link");
    let events: Vec<Value> = first.json().await.expect("events");
    assert!(events.is_empty(), "{events:?}");

    let admins = sim
        .group_id("k8s-admins", GroupType::OktaGroup)
        .expect("k8s-admins");
    sim.rename_group(&admins, "k8s-admins-old").expect("rename");
    sim.remove_member(&admins, "alice@example.com")
        .expect("remove");
    sim.delete_group(&admins).expect("delete");
    let response = get(&http, &next, Some(&ssws)).await;
    next = next_url(&links(&response)).expect("still polling");
    let events: Vec<Value> = response.json().await.expect("events");
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            let group = e["target"]
                .as_array()
                .and_then(|t| t.iter().find(|t| t["type"] == "UserGroup"))
                .expect("a group target");
            (
                e["eventType"].as_str().expect("type"),
                group["id"].as_str().expect("id"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("group.profile.update", admins.as_str()),
            ("group.user_membership.remove", admins.as_str()),
            ("group.lifecycle.delete", admins.as_str()),
        ]
    );
    assert_eq!(events[0]["target"][0]["displayName"], "k8s-admins-old");
    assert!(
        events
            .iter()
            .all(|e| e["uuid"].as_str().is_some_and(|u| u.len() == 36)
                && e["published"].as_str().is_some_and(|p| p.ends_with('Z')))
    );
    // Followed again, the same cursor yields nothing new.
    let response = get(&http, &next, Some(&ssws)).await;
    let events: Vec<Value> = response.json().await.expect("events");
    assert!(events.is_empty(), "{events:?}");

    // Bad input gets Okta's answers; a token without okta.logs.read gets 403.
    let bad = get(
        &http,
        &format!("{}/api/v1/logs?since=yesterday", sim.base_url()),
        Some(&ssws),
    )
    .await;
    okta_error(bad, StatusCode::BAD_REQUEST, "E0000001").await;
    let bad = get(
        &http,
        &format!(
            "{}/api/v1/logs?filter={}",
            sim.base_url(),
            urlencode("displayMessage eq \"x\"")
        ),
        Some(&ssws),
    )
    .await;
    okta_error(bad, StatusCode::BAD_REQUEST, "E0000031").await;
    let forbidden = get(
        &http,
        &format!("{}/api/v1/logs", sim.base_url()),
        Some(&format!("SSWS {READ_NOTHING_TOKEN}")),
    )
    .await;
    okta_error(forbidden, StatusCode::FORBIDDEN, "E0000006").await;
}
