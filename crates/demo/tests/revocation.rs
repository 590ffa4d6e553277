//! The revocation authorizer with real ID tokens issued before each change in Okta: the
//! apiserver calls it before RBAC (the AuthorizationConfiguration that
//! `okta-rbac-operator authorization-config` prints), and a token whose user Okta no
//! longer has ACTIVE in a group it carries loses what that group grants, while what the
//! user's other groups grant stays, and everyone else is untouched.

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{Api, ListParams, PostParams};
use okta_rbac_api::OktaGroupBinding;
use okta_rbac_demo::Demo;
use okta_rbac_testenv::paths::operator_binary;
use okta_rbac_testenv::wait::{eventually, wait_condition};
use okta_sim::{GroupType, Lifecycle};
use std::time::{Duration, Instant};

const PREFIX: &str = "oidc:";
/// Short, so that the test waits for the operator rather than for the poll.
const FAST_LOG: [&str; 2] = ["--okta-system-log-interval", "2s"];

/// Each test runs a whole world; one at a time on two cores.
static ONE_WORLD_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn client_of(demo: &Demo, user: &str) -> kube::Client {
    demo.client_of(user)
        .await
        .expect("a client with the user's ID token")
}

/// The status code and, for a refusal, the apiserver's message.
async fn list_in_default<K>(client: &kube::Client) -> (u16, String)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    match Api::<K>::namespaced(client.clone(), "default")
        .list(&ListParams::default().limit(1))
        .await
    {
        Ok(_) => (200, String::new()),
        Err(kube::Error::Api(status)) => (status.code, status.message),
        Err(other) => panic!("no answer from the apiserver: {other}"),
    }
}

async fn pods(client: &kube::Client) -> (u16, String) {
    list_in_default::<Pod>(client).await
}

async fn namespaces(client: &kube::Client) -> u16 {
    match Api::<Namespace>::all(client.clone())
        .list(&ListParams::default().limit(1))
        .await
    {
        Ok(_) => 200,
        Err(kube::Error::Api(status)) => status.code,
        Err(other) => panic!("no answer from the apiserver: {other}"),
    }
}

/// Waits until listing pods with `client` answers `code`; the time it took and the
/// message of the last answer.
async fn until_pods(client: &kube::Client, code: u16, what: &str) -> (Duration, String) {
    let started = Instant::now();
    let message = eventually(Duration::from_secs(30), what, || async {
        let (seen, message) = pods(client).await;
        (seen == code).then_some(message)
    })
    .await;
    let took = started.elapsed();
    println!("{what}: {:.1}s", took.as_secs_f64());
    (took, message)
}

fn restricted(demo: &Demo) -> String {
    demo.sim
        .group_id("k8s-restricted-users", GroupType::OktaGroup)
        .expect("the example group")
}

#[tokio::test]
async fn tokens_issued_before_okta_took_a_group_away_lose_what_it_granted_and_only_that() {
    let _one = ONE_WORLD_AT_A_TIME.lock().await;
    let binary = operator_binary().expect("the operator binary");
    let demo = Demo::start_with_authorizer(PREFIX, &binary, "no-opinion", &FAST_LOG)
        .await
        .expect("the demo world with the authorizer");
    let admin = demo.plane.client().await.expect("admin");
    let bob = client_of(&demo, "bob@example.com").await;
    let alice = client_of(&demo, "alice@example.com").await;
    until_pods(&bob, 200, "bob, a member, lists pods").await;
    assert_eq!(namespaces(&alice).await, 200, "alice is cluster-admin");

    // Removed from the group in Okta: his token, issued before, is Forbidden, and says why.
    let group = restricted(&demo);
    demo.sim
        .remove_member(&group, "bob@example.com")
        .expect("remove");
    let (took, message) = until_pods(&bob, 403, "removed: bob's old token is Forbidden").await;
    assert!(
        message.contains("bob@example.com left k8s-restricted-users in Okta at"),
        "the denial says who left which group and when: {message}"
    );
    // The audit log has it, with the Okta event, and the delay is measured.
    let (removal, _) = demo
        .sim
        .logged_events()
        .into_iter()
        .rfind(|(_, kind)| kind == "group.user_membership.remove")
        .expect("the removal's event");
    let log = demo.operator_log();
    assert!(
        log.lines().any(|line| line
            .contains("the revocation authorizer answers by an Okta change")
            && line.contains("change=left k8s-restricted-users in Okta")
            && line.contains(&format!("okta_event_id={removal}"))),
        "an audit record names the removal's Okta event {removal}"
    );
    let (_, metrics) =
        okta_rbac_testenv::http_get(&format!("{}/metrics", demo.operator_metrics_url()))
            .await
            .expect("metrics");
    assert!(
        metrics.lines().any(|l| l
            .strip_prefix("okta_rbac_okta_change_to_effect_seconds_count{path=\"authorizer\"} ")
            .is_some_and(|n| n.trim() != "0")),
        "the removal was timed from Okta to the authorizer"
    );
    assert!(
        took < Duration::from_secs(10),
        "within a System Log read or two"
    );
    assert_eq!(namespaces(&alice).await, 200, "alice is untouched");
    assert!(
        Api::<Pod>::namespaced(admin.clone(), "default")
            .list(&ListParams::default())
            .await
            .is_ok(),
        "the admin is untouched"
    );

    // Re-added: the same token works again.
    demo.sim.add_member(&group, "bob@example.com").expect("add");
    until_pods(&bob, 200, "re-added: the same token lists pods again").await;

    // Suspended, then unsuspended.
    demo.sim
        .user_lifecycle("bob@example.com", Lifecycle::Suspend)
        .expect("suspend");
    let (_, message) = until_pods(&bob, 403, "suspended: Forbidden").await;
    assert!(
        message.contains("bob@example.com was suspended in Okta at")
            || message.contains("bob@example.com is SUSPENDED in Okta"),
        "{message}"
    );
    demo.sim
        .user_lifecycle("bob@example.com", Lifecycle::Unsuspend)
        .expect("unsuspend");
    until_pods(&bob, 200, "unsuspended: allowed again").await;

    // Deactivated, then activated again (he has a password: ACTIVE at once).
    demo.sim
        .user_lifecycle("bob@example.com", Lifecycle::Deactivate)
        .expect("deactivate");
    let (_, message) = until_pods(&bob, 403, "deactivated: Forbidden").await;
    assert!(
        message.contains("bob@example.com was deactivated in Okta at")
            || message.contains("bob@example.com is DEPROVISIONED in Okta"),
        "{message}"
    );
    demo.sim
        .user_lifecycle("bob@example.com", Lifecycle::Activate)
        .expect("activate");
    until_pods(&bob, 200, "activated: allowed again").await;

    // In two bound groups, he leaves one: what the other grants (pods) stays, what only
    // the one he left granted (services) goes.
    let readers = demo
        .sim
        .create_group("k8s-pod-readers", GroupType::OktaGroup)
        .expect("group");
    demo.sim
        .add_member(&readers, "bob@example.com")
        .expect("member");
    let role: k8s_openapi::api::rbac::v1::Role = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "pod-reader", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
    }))
    .expect("role");
    Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(admin.clone(), "default")
        .create(&PostParams::default(), &role)
        .await
        .expect("role");
    let ogb: OktaGroupBinding = serde_json::from_value(serde_json::json!({
        "apiVersion": "oktarbac.io/v1alpha1",
        "kind": "OktaGroupBinding",
        "metadata": {"name": "pod-readers"},
        "spec": {
            "group": "k8s-pod-readers",
            "roleBindings": [{"namespace": "default", "role": "pod-reader"}],
        },
    }))
    .expect("object");
    let grantable = demo.plane.kubectl(
        &[
            "patch",
            "clusterrole",
            "okta-rbac-operator-grantable",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/rules/1/resourceNames/-","value":"pod-reader"}]"#,
        ],
        None,
    );
    assert!(grantable.expect("kubectl").success);
    Api::<OktaGroupBinding>::all(admin.clone())
        .create(&PostParams::default(), &ogb)
        .await
        .expect("create");
    wait_condition(&admin, "pod-readers", "Ready", "True", None).await;
    let both = client_of(&demo, "bob@example.com").await;
    assert_eq!(pods(&both).await.0, 200);
    assert_eq!(list_in_default::<Service>(&both).await.0, 200);
    demo.sim
        .remove_member(&group, "bob@example.com")
        .expect("remove");
    let started = Instant::now();
    eventually(
        Duration::from_secs(30),
        "services Forbidden to the token that carries both groups",
        || async { (list_in_default::<Service>(&both).await.0 == 403).then_some(()) },
    )
    .await;
    println!(
        "left one of two groups: services Forbidden after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        pods(&both).await.0,
        200,
        "what the group he kept grants stays his"
    );

    // Group deleted in Okta.
    demo.sim.delete_group(&readers).expect("delete");
    until_pods(&both, 403, "the other group deleted: Forbidden").await;

    // Deleted in Okta (deactivated, then deleted): re-added to the group first, his first
    // token is allowed again, then Forbidden for good.
    demo.sim.add_member(&group, "bob@example.com").expect("add");
    until_pods(&bob, 200, "re-added once more").await;
    for _ in 0..2 {
        demo.sim
            .user_lifecycle("bob@example.com", Lifecycle::Delete)
            .expect("delete");
    }
    let (_, message) = until_pods(&bob, 403, "deleted: Forbidden").await;
    assert!(message.contains("okta-rbac: bob@example.com"), "{message}");
    demo.stop().expect("the operator stops cleanly");
}

/// With the operator down, the failure policy decides: NoOpinion leaves RBAC alone (a
/// member's token, and a token whose user has left but whose binding the stopped operator
/// cannot revoke, keep what RBAC grants); Deny refuses every request that reaches the
/// authorizer (Okta users carrying a group of the prefix) and nobody else's. The
/// apiserver answers such a refusal 500 (an authorizer error), not 403.
/// The apiserver's own metrics count the calls that got no answer, and the shipped
/// alerts on them select what the apiserver serves.
async fn apiserver_reports_the_failed_calls(admin: &kube::Client, policy: &str) {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("request");
    let scrape = admin
        .request_text(request)
        .await
        .expect("the apiserver's /metrics");
    let count = |metric: &str| -> f64 {
        scrape
            .lines()
            .filter(|l| l.starts_with(metric) && l.contains(r#"name="okta-rbac-revocation""#))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let failed = count("apiserver_authorization_webhook_evaluations_total{")
        - count(
            "apiserver_authorization_webhook_evaluations_total{name=\"okta-rbac-revocation\",result=\"success\"}",
        );
    assert!(failed > 0.0, "{policy}: failed calls counted: {failed}");
    let fell_open = count("apiserver_authorization_webhook_evaluations_fail_open_total{");
    if policy == "deny" {
        assert_eq!(fell_open, 0.0, "Deny never falls open");
    } else {
        assert!(fell_open > 0.0, "NoOpinion: RBAC alone decided, counted");
    }
    let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(
            okta_rbac_testenv::paths::checkout().join("config/prometheus/prometheusrule.yaml"),
        )
        .expect("the shipped rules"),
    )
    .expect("yaml");
    let queries: Vec<(String, String)> = rules["spec"]["groups"]
        .as_sequence()
        .expect("groups")
        .iter()
        .filter(|g| g["name"].as_str() == Some("okta-rbac-operator.apiserver"))
        .flat_map(|g| g["rules"].as_sequence().cloned().unwrap_or_default())
        .map(|r| {
            (
                r["alert"].as_str().unwrap_or_default().to_string(),
                r["expr"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(queries.len(), 2, "the authorizer's alerts");
    let answers =
        okta_rbac_testenv::gotools::promql_check(&scrape, "text/plain; version=0.0.4", &queries)
            .expect("promql-check runs");
    for (answer, (name, expr)) in answers.iter().zip(&queries) {
        assert!(
            answer["error"].is_null(),
            "{name}: {expr}: {}",
            answer["error"]
        );
        let unknown = answer["unknownMetrics"].to_string();
        let fail_open_absent = policy == "deny" && name.ends_with("FailingOpen");
        assert!(
            answer["unknownMetrics"].is_null() || fail_open_absent,
            "{name}: {expr} selects what the apiserver does not serve: {unknown}"
        );
    }
}

#[tokio::test]
async fn with_the_operator_down_no_opinion_leaves_rbac_alone_and_deny_fails_closed_for_okta_users_only()
 {
    let _one = ONE_WORLD_AT_A_TIME.lock().await;
    let binary = operator_binary().expect("the operator binary");
    for policy in ["no-opinion", "deny"] {
        let mut demo = Demo::start_with_authorizer(PREFIX, &binary, policy, &FAST_LOG)
            .await
            .expect("the demo world with the authorizer");
        let admin = demo.plane.client().await.expect("admin");
        let bob = client_of(&demo, "bob@example.com").await;
        until_pods(&bob, 200, "bob lists pods while the operator runs").await;
        demo.stop_operator().expect("the operator stops");
        let group = restricted(&demo);
        demo.sim
            .remove_member(&group, "bob@example.com")
            .expect("remove");
        let expected = if policy == "deny" { 500 } else { 200 };
        let (_, message) = until_pods(
            &bob,
            expected,
            &format!("{policy}, operator down: bob's token gets {expected}"),
        )
        .await;
        if policy == "deny" {
            assert!(
                message.contains("/authorize") && message.contains("connection refused"),
                "refused because the authorizer cannot be reached: {message}"
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(pods(&bob).await.0, expected, "and it stays so");
        apiserver_reports_the_failed_calls(&admin, policy).await;
        assert!(
            Api::<Pod>::namespaced(admin.clone(), "default")
                .list(&ListParams::default())
                .await
                .is_ok(),
            "{policy}: the admin (no Okta group) never reaches the authorizer"
        );
        let service_account = demo
            .plane
            .kubectl(
                &[
                    "auth",
                    "can-i",
                    "list",
                    "oktagroupbindings",
                    "--as=system:serviceaccount:okta-rbac-operator:okta-rbac-operator",
                ],
                None,
            )
            .expect("kubectl");
        assert_eq!(
            service_account.stdout.trim(),
            "yes",
            "{policy}: service accounts never reach it"
        );
        drop(demo);
    }
}
