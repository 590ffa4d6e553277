//! Every way a request to Okta can fail keeps its cause in the error a person reads (the
//! status message and the log): the DNS failure, the refused connection, the TLS reason,
//! the timeout; and trouble at the token endpoint is told apart from a refusal.

use okta_rbac_operator::okta::credentials::Credentials;
use okta_rbac_operator::okta::dpop::DpopMode;
use okta_rbac_operator::okta::{OktaClient, OktaConfig, OktaError};
use okta_sim::limits::Bucket;
use okta_sim::seed::SeedClient;
use okta_sim::{FaultSettings, OktaSim, Seed, SimOptions};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_millis(800);

fn client(org_url: &str, ca_pem: Option<&str>, credentials: Credentials) -> OktaClient {
    OktaClient::new(OktaConfig {
        org_url: org_url.parse().expect("url"),
        credentials: Arc::new(credentials),
        scopes: vec!["okta.groups.read".into()],
        dpop: DpopMode::Auto,
        dpop_key_rotation: Duration::from_secs(3600),
        extra_ca_pem: ca_pem.map(str::to_string),
        concurrency: 2,
        request_timeout: TIMEOUT,
        max_attempts: 1,
        rate_limit_share: 1.0,
    })
    .expect("client")
}

async fn search_error(okta: &OktaClient) -> OktaError {
    let error = okta
        .search_groups(&["k8s-anything".into()])
        .await
        .expect_err("no answer");
    println!("{}: {error}", error.kind());
    error
}

fn assert_unreachable(error: &OktaError, cause: &str) {
    assert_eq!(error.kind(), "OktaUnreachable", "{error}");
    assert!(error.is_transient(), "{error}");
    assert!(
        error.to_string().contains(cause),
        "the cause '{cause}' is in the message: {error}"
    );
}

#[tokio::test]
async fn a_name_that_does_not_resolve_says_dns() {
    let okta = client(
        "https://okta-rbac-operator-test.invalid",
        None,
        Credentials::api_token("00t"),
    );
    assert_unreachable(&search_error(&okta).await, "dns error");
}

#[tokio::test]
async fn a_closed_port_says_connection_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let okta = client(
        &format!("https://127.0.0.1:{port}"),
        None,
        Credentials::api_token("00t"),
    );
    assert_unreachable(&search_error(&okta).await, "Connection refused");
}

#[tokio::test]
async fn an_unknown_certificate_authority_says_so() {
    let sim = OktaSim::start(SimOptions::new(Seed::default()))
        .await
        .expect("local Okta");
    // The public roots only: the local Okta's CA is unknown, as a corporate proxy's is.
    let okta = client(sim.base_url(), None, Credentials::api_token("00t"));
    assert_unreachable(&search_error(&okta).await, "UnknownIssuer");
}

#[tokio::test]
async fn a_certificate_for_another_name_says_so() {
    // Listening on every address, with a certificate for 127.0.0.1 only; reached as
    // 127.0.0.2.
    let sim = OktaSim::start(SimOptions {
        listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        ..SimOptions::new(Seed::default())
    })
    .await
    .expect("local Okta");
    let okta = client(
        &format!("https://127.0.0.2:{}", sim.addr().port()),
        sim.ca_pem(),
        Credentials::api_token("00t"),
    );
    assert_unreachable(&search_error(&okta).await, "not valid for name");
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout_naming_the_limit() {
    let sim = OktaSim::start(SimOptions::new(Seed::default()))
        .await
        .expect("local Okta");
    sim.set_faults(FaultSettings {
        latency_ms: 3000,
        ..Default::default()
    });
    let okta = client(sim.base_url(), sim.ca_pem(), Credentials::api_token("00t"));
    let error = search_error(&okta).await;
    assert_eq!(error.kind(), "OktaTimeout");
    assert!(error.to_string().contains("800ms"), "{error}");
}

/// Trouble at the token endpoint is Okta's, and transient; a refusal of the app is the
/// credentials', with Okta's own words.
#[tokio::test]
async fn token_endpoint_trouble_is_unavailability_and_a_refusal_keeps_okta_s_words() {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("key");
    let public = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("spki");
    let seed = Seed {
        clients: vec![
            SeedClient::service_app("0oa-app", public.clone(), &["okta.groups.read"]),
            SeedClient::service_app("0oa-no-groups", public, &["okta.users.read"]),
        ],
        ..Default::default()
    };
    let sim = OktaSim::start(SimOptions::new(seed))
        .await
        .expect("local Okta");
    let pem = key.to_pkcs8_pem(LineEnding::LF).expect("pkcs8");
    let app = |client_id| {
        client(
            sim.base_url(),
            sim.ca_pem(),
            Credentials::service_app(client_id, &pem, None).expect("credentials"),
        )
    };
    let okta = app("0oa-app");

    sim.set_faults(FaultSettings {
        outage_seconds: 60,
        buckets: vec!["oauth2-token".into()],
        ..Default::default()
    });
    let error = search_error(&okta).await;
    assert_eq!(error.kind(), "OktaServerError", "{error}");
    assert!(
        error.is_transient() && error.to_string().contains("503"),
        "{error}"
    );
    sim.clear_faults();

    sim.exhaust_bucket(Bucket::OrgToken);
    let error = search_error(&okta).await;
    assert_eq!(error.kind(), "OktaRateLimited", "{error}");
    sim.set_rate_limits(Default::default());

    sim.set_faults(FaultSettings {
        latency_ms: 3000,
        buckets: vec!["oauth2-token".into()],
        ..Default::default()
    });
    assert_eq!(search_error(&okta).await.kind(), "OktaTimeout");
    sim.clear_faults();

    let error = search_error(&app("0oa-no-groups")).await;
    assert_eq!(error.kind(), "OktaUnauthorized", "{error}");
    assert!(
        error.to_string().contains("invalid_scope")
            && error
                .to_string()
                .contains("The following scopes are not granted to the client: okta.groups.read."),
        "{error}"
    );
    assert!(!error.is_transient());

    okta.search_groups(&["k8s-anything".into()])
        .await
        .expect("Okta answers again");
}
