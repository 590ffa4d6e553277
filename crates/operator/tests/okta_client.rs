//! The operator's Okta client against the local Okta over HTTPS: the OAuth service-app
//! flow with a cached token, lists that span pages, and member lists of several groups
//! fetched side by side.

use okta_rbac_operator::okta::credentials::Credentials;
use okta_rbac_operator::okta::dpop::DpopMode;
use okta_rbac_operator::okta::groups::Freshness;
use okta_rbac_operator::okta::{GroupDirectory, OktaClient, OktaConfig, OktaError};
use okta_sim::FaultSettings;
use okta_sim::RateLimitSettings;
use okta_sim::seed::SeedClient;
use okta_sim::{GroupType, OktaSim, Seed, SimOptions, UserStatus};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

fn client(sim: &OktaSim, credentials: Credentials) -> OktaClient {
    client_with_share(sim, credentials, 1.0)
}

fn client_with_share(sim: &OktaSim, credentials: Credentials, share: f64) -> OktaClient {
    OktaClient::new(OktaConfig {
        org_url: sim.base_url().parse().expect("url"),
        credentials: Arc::new(credentials),
        scopes: vec!["okta.groups.read".into()],
        dpop: DpopMode::Auto,
        dpop_key_rotation: Duration::from_secs(3600),
        extra_ca_pem: sim.ca_pem().map(str::to_string),
        concurrency: 4,
        request_timeout: Duration::from_secs(5),
        max_attempts: 2,
        rate_limit_share: share,
    })
    .expect("client")
}

#[tokio::test]
async fn a_service_app_authenticates_with_its_private_key_and_reuses_the_token() {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("key");
    let seed = Seed {
        clients: vec![SeedClient::service_app(
            "0oaoperator",
            key.to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("spki"),
            &["okta.groups.read"],
        )],
        ..Default::default()
    };
    let sim = OktaSim::start(SimOptions::new(seed))
        .await
        .expect("local Okta");
    sim.create_group("k8s-oauth", GroupType::OktaGroup)
        .expect("group");
    let pem = key.to_pkcs8_pem(LineEnding::LF).expect("pkcs8");
    let credentials = Credentials::service_app("0oaoperator", &pem, None).expect("credentials");
    assert!(
        !format!("{credentials:?}").contains("PRIVATE KEY"),
        "the key never reaches Debug"
    );
    let okta = client(&sim, credentials);
    for _ in 0..3 {
        let groups = okta
            .search_groups(&["k8s-oauth".into()])
            .await
            .expect("search")
            .read;
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
        Credentials::service_app("0oaoperator", &wrong_pem, None).expect("credentials"),
    );
    let error = impostor
        .search_groups(&["k8s-oauth".into()])
        .await
        .expect_err("wrong key");
    assert!(
        matches!(&error, OktaError::TokenRefused { error: code, description, .. }
            if code == "invalid_client" && description.contains("signature is invalid")),
        "{error}"
    );
    assert_eq!(error.kind(), "OktaUnauthorized");
}

#[tokio::test]
async fn members_and_searches_follow_next_links_across_pages() {
    let sim = OktaSim::start(SimOptions::new(Seed::groups_only("00t", [])))
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
    let okta = client(&sim, Credentials::api_token("00t"));
    let members = okta.group_members(&group).await.expect("members");
    assert_eq!(members.len(), 1_234, "1,000 a page: two pages");
    // The directory asks 50 names at a time; 230 in one search make the answer span pages.
    let found = okta.search_groups(&names).await.expect("search").read;
    assert_eq!(found.len(), 230, "200 a page: two pages");
    let pages = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/groups")
        .count();
    assert_eq!(pages, 2);
}

/// The most member-list requests the local Okta had in flight at one moment.
fn most_in_flight(sim: &OktaSim) -> usize {
    let requests = sim.requests();
    okta_sim::most_in_flight(requests.iter().filter(|r| r.path.ends_with("/users")))
}

#[tokio::test]
async fn members_of_different_groups_are_listed_side_by_side_and_each_once() {
    const GROUPS: usize = 4;
    const LATENCY_MS: u64 = 400;
    let sim = OktaSim::start(SimOptions::new(Seed::groups_only("00t", [])))
        .await
        .expect("local Okta");
    let names: Vec<String> = (0..GROUPS).map(|i| format!("k8s-members-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let id = sim.create_group(name, GroupType::OktaGroup).expect("group");
        let login = format!("member{i}@example.com");
        sim.create_user(&login, UserStatus::Active, None)
            .expect("user");
        sim.add_member(&id, &login).expect("member");
    }
    let okta = Arc::new(client(&sim, Credentials::api_token("00t")));
    let directory = GroupDirectory::new(okta, Freshness::resync_only(Duration::from_secs(60)), 4);
    tokio::spawn(directory.clone().run());
    let mut groups = Vec::new();
    for name in &names {
        let answer = directory.lookup(name).await.expect("lookup");
        groups.push(answer.groups[0].clone());
    }

    sim.set_faults(FaultSettings {
        latency_ms: LATENCY_MS,
        ..Default::default()
    });
    sim.clear_requests();
    let started = Instant::now();
    // Every group asked for twice at once, as two objects bound to it would.
    let lists = futures::future::join_all(
        groups
            .iter()
            .chain(groups.iter())
            .map(|group| directory.members(group)),
    )
    .await;
    let elapsed = started.elapsed();
    for (list, group) in lists.iter().zip(groups.iter().chain(groups.iter())) {
        let users = list.as_ref().expect("members");
        assert_eq!(users.len(), 1, "{}", group.profile.name);
    }
    let requests = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/users"))
        .count();
    println!(
        "{GROUPS} groups' members with {LATENCY_MS} ms per request: {:.2} s, {requests} requests, \
         {} in flight at once",
        elapsed.as_secs_f64(),
        most_in_flight(&sim)
    );
    assert_eq!(requests, GROUPS, "one request per group, however many ask");
    assert_eq!(
        most_in_flight(&sim),
        GROUPS,
        "the groups' lists are fetched side by side, not one after another"
    );

    // Unchanged groups (same lastMembershipUpdated) are answered from the cache.
    sim.clear_requests();
    for group in &groups {
        directory.members(group).await.expect("members");
    }
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    sim.clear_faults();
}

#[tokio::test]
async fn a_rate_limit_share_leaves_the_rest_of_each_window_to_the_org_s_other_clients() {
    let mut seed = Seed::groups_only("00t", []);
    seed.rate_limits = RateLimitSettings {
        window_seconds: 60,
        per_minute: [("groups".to_string(), 20)].into(),
        ..Default::default()
    };
    let sim = OktaSim::start(SimOptions::new(seed))
        .await
        .expect("local Okta");
    let quarter = client_with_share(&sim, Credentials::api_token("00t"), 0.25);
    let mut answered = 0;
    let refusal = loop {
        match quarter.search_groups(&[format!("k8s-{answered}")]).await {
            Ok(_) => answered += 1,
            Err(error) => break error,
        }
        assert!(answered <= 20, "the share never stopped the client");
    };
    assert!(
        matches!(refusal, OktaError::RateLimited { .. }),
        "the client stops itself, as for a spent window: {refusal}"
    );
    let sent = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/groups")
        .count();
    println!("share 0.25 of a 20-request window: {answered} answered, {sent} sent");
    assert_eq!(
        (answered, sent),
        (5, 5),
        "a quarter of 20, and nothing sent past it"
    );
    // What it left is there for another client of the same org.
    let other = client(&sim, Credentials::api_token("00t"));
    for i in 0..15 {
        other
            .search_groups(&[format!("k8s-other-{i}")])
            .await
            .expect("room left for the org's other clients");
    }
}

/// A service app asks for the System Log's scope with a token of its own: granted, the log
/// is read; not granted, only that token fails and the groups' requests go on.
#[tokio::test]
async fn the_system_log_gets_a_token_of_its_own_so_a_missing_grant_harms_nothing_else() {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("key");
    let public_key_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("spki");
    let app = |client_id: &str, scopes: &[&str]| {
        SeedClient::service_app(client_id, public_key_pem.clone(), scopes)
    };
    let seed = Seed {
        clients: vec![
            app("0oa-with-log", &["okta.groups.read", "okta.logs.read"]),
            app("0oa-groups-only", &["okta.groups.read"]),
        ],
        ..Default::default()
    };
    let sim = OktaSim::start(SimOptions::new(seed))
        .await
        .expect("local Okta");
    sim.create_group("k8s-logged", GroupType::OktaGroup)
        .expect("group");
    let pem = key.to_pkcs8_pem(LineEnding::LF).expect("pkcs8");
    let since = std::time::SystemTime::now() - Duration::from_secs(60);
    for (client_id, log_granted) in [("0oa-with-log", true), ("0oa-groups-only", false)] {
        let credentials = Credentials::service_app(client_id, &pem, None).expect("credentials");
        let groups = client(&sim, credentials);
        let log = groups
            .with_scopes(vec!["okta.logs.read".into()])
            .expect("the log's client");
        let query = log
            .system_log_query(since, okta_rbac_operator::okta::system_log::WATCHED_EVENTS)
            .expect("query");
        let read = log.system_log_page(&query).await;
        if log_granted {
            let (events, next) = read.expect("the log");
            assert!(
                events
                    .read
                    .iter()
                    .any(|e| e.event_type == "group.lifecycle.create"
                        && e.target
                            .iter()
                            .any(|t| t.display_name.as_deref() == Some("k8s-logged"))),
                "the group's creation: {events:?}"
            );
            assert!(next.is_some(), "a polling query goes on");
        } else {
            let error = read.expect_err("no grant");
            assert!(
                matches!(&error, OktaError::TokenRefused { error: code, .. } if code == "invalid_scope"),
                "{error}"
            );
        }
        let found = groups
            .search_groups(&["k8s-logged".into()])
            .await
            .expect("the groups' token is unaffected")
            .read;
        assert_eq!(found.len(), 1, "{client_id}");
    }
}

/// How the names of a burst arrive over time (clumps, gaps) is the batching's timing
/// policy, tested on tokio's paused clock beside it; here a burst asked all at once goes
/// to the local Okta in full requests, whatever the machine's speed.
#[tokio::test]
async fn a_burst_of_names_goes_out_in_full_requests() {
    use okta_rbac_operator::okta::client::NAMES_PER_SEARCH;
    const NAMES: usize = 500;
    let names: Vec<String> = (0..NAMES).map(|i| format!("k8s-burst-{i:03}")).collect();
    let sim = OktaSim::start(SimOptions::new(Seed::groups_only("00t", names.clone())))
        .await
        .expect("local Okta");
    let okta = Arc::new(client(&sim, Credentials::api_token("00t")));
    let directory = GroupDirectory::new(okta, Freshness::resync_only(Duration::from_secs(600)), 4);
    // Asked before the batcher runs: it finds them all pending at once.
    for name in &names {
        directory.prefetch(name);
    }
    tokio::spawn(directory.clone().run());
    for name in &names {
        let answer = directory.lookup(name).await.expect("lookup");
        assert_eq!(answer.groups.len(), 1, "{name}");
    }
    let sizes: Vec<usize> = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/groups")
        .map(|r| {
            r.query
                .as_deref()
                .unwrap_or("")
                .matches("profile.name")
                .count()
        })
        .collect();
    println!(
        "{NAMES} names asked at once: {} searches {sizes:?}",
        sizes.len()
    );
    assert_eq!(
        sizes,
        vec![NAMES_PER_SEARCH; NAMES / NAMES_PER_SEARCH],
        "every request full, and each name asked once"
    );
}
