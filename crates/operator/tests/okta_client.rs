//! The operator's Okta client against the local Okta over HTTPS: the OAuth service-app
//! flow with a cached token, and lists that span pages.

use okta_rbac_operator::okta::auth::Credentials;
use okta_rbac_operator::okta::{OktaClient, OktaConfig, OktaError};
use okta_sim::seed::SeedClient;
use okta_sim::{GroupType, OktaSim, Seed, SimOptions, UserStatus};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use std::time::Duration;

fn client(sim: &OktaSim, credentials: Credentials) -> OktaClient {
    OktaClient::new(OktaConfig {
        org_url: sim.base_url().parse().expect("url"),
        credentials,
        extra_ca_pem: sim.ca_pem().map(str::to_string),
        concurrency: 4,
        request_timeout: Duration::from_secs(5),
        max_attempts: 2,
    })
    .expect("client")
}

#[tokio::test]
async fn a_service_app_authenticates_with_its_private_key_and_reuses_the_token() {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("key");
    let seed = Seed {
        clients: vec![SeedClient {
            client_id: "0oaoperator".into(),
            public_key_pem: Some(
                key.to_public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .expect("spki"),
            ),
            scopes: vec!["okta.groups.read".into()],
            redirect_uris: vec![],
            client_secret: None,
        }],
        ..Default::default()
    };
    let sim = OktaSim::start(SimOptions::new(seed))
        .await
        .expect("local Okta");
    sim.create_group("k8s-oauth", GroupType::OktaGroup)
        .expect("group");
    let pem = key.to_pkcs8_pem(LineEnding::LF).expect("pkcs8");
    let credentials = Credentials::private_key(
        "0oaoperator".into(),
        &pem,
        None,
        vec!["okta.groups.read".into()],
    )
    .expect("credentials");
    assert!(
        !format!("{credentials:?}").contains("PRIVATE KEY"),
        "the key never reaches Debug"
    );
    let okta = client(&sim, credentials);
    for _ in 0..3 {
        let groups = okta
            .search_groups(&["k8s-oauth".into()])
            .await
            .expect("search");
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].profile.name, "k8s-oauth");
    }
    let token_requests = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/oauth2/v1/token")
        .count();
    assert_eq!(token_requests, 1, "the access token is cached");

    let wrong = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("key");
    let wrong_pem = wrong.to_pkcs8_pem(LineEnding::LF).expect("pkcs8");
    let impostor = client(
        &sim,
        Credentials::private_key(
            "0oaoperator".into(),
            &wrong_pem,
            None,
            vec!["okta.groups.read".into()],
        )
        .expect("credentials"),
    );
    let error = impostor
        .search_groups(&["k8s-oauth".into()])
        .await
        .expect_err("wrong key");
    assert!(matches!(error, OktaError::Token(_)), "{error}");
    assert_eq!(error.kind(), "OktaUnauthorized");
}

#[tokio::test]
async fn members_and_searches_follow_next_links_across_pages() {
    let seed = Seed {
        api_tokens: vec![okta_sim::seed::SeedApiToken {
            name: "t".into(),
            token: "00t".into(),
            scopes: None,
        }],
        ..Default::default()
    };
    let sim = OktaSim::start(SimOptions::new(seed))
        .await
        .expect("local Okta");
    let group = sim
        .create_group("k8s-big", GroupType::OktaGroup)
        .expect("group");
    for i in 0..1_234 {
        let login = format!("user{i:04}@example.com");
        sim.create_user(&login, UserStatus::Active, None)
            .expect("user");
        sim.add_member(&group, &login).expect("member");
    }
    let names: Vec<String> = (0..230).map(|i| format!("k8s-g{i:03}")).collect();
    for name in &names {
        sim.create_group(name, GroupType::OktaGroup).expect("group");
    }
    let okta = client(&sim, Credentials::ApiToken("00t".into()));
    let members = okta.group_members(&group).await.expect("members");
    assert_eq!(members.len(), 1_234, "1,000 a page: two pages");
    // The directory asks 50 names at a time; 230 in one search make the answer span pages.
    let found = okta.search_groups(&names).await.expect("search");
    assert_eq!(found.len(), 230, "200 a page: two pages");
    let pages = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/groups")
        .count();
    assert_eq!(pages, 2);
}
