//! Offboarding in Users mode, with a real ID token issued before each change: a member who
//! stops being ACTIVE in Okta (suspended, deactivated, deleted) loses their User subject
//! within a System Log read, and so does the token they already hold; one who becomes
//! ACTIVE again gets it back, and the same token works again.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use okta_rbac_api::OktaGroupBinding;
use okta_rbac_demo::{Demo, id_token};
use okta_rbac_testenv::paths::operator_binary;
use okta_rbac_testenv::unique_name;
use okta_rbac_testenv::wait::{eventually, wait_condition};
use okta_sim::{GroupType, Lifecycle, UserStatus};
use std::time::{Duration, Instant};

const GINA: &str = "gina@example.com";
const PASSWORD: &str = "gina-password";
/// Short, so that the test waits for the operator rather than for the poll.
const LOG_INTERVAL: &str = "2s";

/// What gina's token gets when it creates a ConfigMap in default: 201 or 403.
async fn creates_configmap(client: &kube::Client) -> u16 {
    let configmap = ConfigMap {
        metadata: ObjectMeta {
            name: Some(unique_name("gina")),
            ..Default::default()
        },
        ..Default::default()
    };
    match Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &configmap)
        .await
    {
        Ok(_) => 201,
        Err(kube::Error::Api(status)) => status.code,
        Err(other) => panic!("no answer from the apiserver: {other}"),
    }
}

/// The User subjects of the object's RoleBindings.
async fn bound_users(client: &kube::Client) -> Vec<String> {
    let bindings = Api::<RoleBinding>::namespaced(client.clone(), "default")
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=okta-rbac-operator"))
        .await
        .expect("RoleBindings");
    let mut users: Vec<String> = bindings
        .items
        .into_iter()
        .flat_map(|b| b.subjects.unwrap_or_default())
        .filter(|s| s.kind == "User")
        .map(|s| s.name)
        .collect();
    users.sort();
    users
}

/// Waits until the old token gets `expected` and the bindings hold `users`; the time it
/// took.
async fn until(
    demo: &Demo,
    token: &kube::Client,
    expected: u16,
    users: &[&str],
    what: &str,
) -> Duration {
    let started = Instant::now();
    let admin = demo.plane.client().await.expect("admin client");
    eventually(Duration::from_secs(30), what, || async {
        let bound = bound_users(&admin).await;
        (creates_configmap(token).await == expected && bound == users).then_some(())
    })
    .await;
    let took = started.elapsed();
    println!("{what}: {:.1}s", took.as_secs_f64());
    took
}

/// Waits for the audit record of gina's User subject being `change`d (granted, revoked),
/// naming one of the Okta `events` (uuid, eventType) that caused it.
async fn audited(demo: &Demo, change: &str, events: &[(String, String)]) {
    let found = |log: &str| {
        log.lines().any(|line| {
            line.contains(&format!("access {change}"))
                && line.contains("subject=User/gina@example.com")
                && events.iter().any(|(uuid, event_type)| {
                    line.contains(&format!("okta_event_id={uuid}"))
                        && line.contains(&format!("okta_event_type={event_type}"))
                })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !found(&demo.operator_log()) {
        let log = demo.operator_log();
        let records: Vec<&str> = log.lines().filter(|l| l.contains("audit")).collect();
        assert!(
            Instant::now() < deadline,
            "no audit record of gina's access {change} by one of {events:?}; the records:\n{}",
            records.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_user_who_is_not_active_loses_the_user_subject_and_the_old_token_its_access() {
    let binary = operator_binary().expect("the operator binary");
    let demo = Demo::start_with("", &binary, &["--okta-system-log-interval", LOG_INTERVAL])
        .await
        .expect("the demo world");
    let sim = &demo.sim;
    let client = demo.plane.client().await.expect("client");
    let group = sim
        .create_group("k8s-config-writers", GroupType::OktaGroup)
        .expect("group");
    sim.create_user(GINA, UserStatus::Active, Some(PASSWORD))
        .expect("gina");
    sim.create_user("hal@example.com", UserStatus::Active, None)
        .expect("hal");
    for user in [GINA, "hal@example.com"] {
        sim.add_member(&group, user).expect("member");
    }
    let ogb: OktaGroupBinding = serde_json::from_value(serde_json::json!({
        "apiVersion": "oktarbac.io/v1alpha1",
        "kind": "OktaGroupBinding",
        "metadata": {"name": "config-writers"},
        "spec": {
            "group": "k8s-config-writers",
            "subject": {"kind": "Users"},
            "roleBindings": [{"namespace": "default", "clusterRole": "edit"}],
        },
    }))
    .expect("object");
    Api::<OktaGroupBinding>::all(client.clone())
        .create(&PostParams::default(), &ogb)
        .await
        .expect("create");
    wait_condition(&client, "config-writers", "Ready", "True", None).await;

    let token = id_token(sim, "default", GINA, PASSWORD)
        .await
        .expect("gina's ID token");
    let gina = demo
        .plane
        .client_with_token(&token)
        .await
        .expect("gina's client");
    let both = [GINA, "hal@example.com"];
    let hal_only = ["hal@example.com"];
    until(&demo, &gina, 201, &both, "an ACTIVE member's token writes").await;

    let mut took = Vec::new();
    let mut previous = both.len();
    for (operation, expected, users, what) in [
        (
            Lifecycle::Suspend,
            403,
            &hal_only[..],
            "suspended: the old token is Forbidden",
        ),
        (
            Lifecycle::Unsuspend,
            201,
            &both[..],
            "unsuspended: the same token writes again",
        ),
        (
            Lifecycle::Deactivate,
            403,
            &hal_only[..],
            "deactivated: Forbidden",
        ),
        (
            Lifecycle::Activate,
            201,
            &both[..],
            "activated again: the same token writes again",
        ),
        (
            Lifecycle::Delete,
            403,
            &hal_only[..],
            "deleted (deactivated first): Forbidden",
        ),
        (
            Lifecycle::Delete,
            403,
            &hal_only[..],
            "deleted for good: still Forbidden",
        ),
    ] {
        let logged_before = sim.logged_events().len();
        sim.user_lifecycle(GINA, operation).expect("lifecycle");
        took.push(until(&demo, &gina, expected, users, what).await);
        if users.len() != previous {
            let events = sim.logged_events().split_off(logged_before);
            let change = if expected == 201 {
                "granted"
            } else {
                "revoked"
            };
            audited(&demo, change, &events).await;
        }
        previous = users.len();
    }
    let (_, metrics) =
        okta_rbac_testenv::http_get(&format!("{}/metrics", demo.operator_metrics_url()))
            .await
            .expect("metrics");
    let timed = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("okta_rbac_okta_change_to_effect_seconds_count{path=\"binding\"} ")
        })
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or_default();
    assert!(
        timed >= 5,
        "each change timed from Okta to the binding: {timed}"
    );
    let worst = took.iter().max().copied().unwrap_or_default();
    assert!(
        worst < Duration::from_secs(15),
        "each change reached the bindings within a few System Log reads ({LOG_INTERVAL}): worst {worst:?}"
    );
    demo.stop().expect("the operator stops cleanly");
}
