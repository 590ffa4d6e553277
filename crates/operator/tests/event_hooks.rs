//! Okta's event hook on the real control plane and the local Okta: a hook registered,
//! verified and delivering as Okta's do (late, duplicated, out of order or dropped, as
//! injected) brings Okta's changes to the bindings in about a second, with the System Log
//! far too slow to explain it; the log catches what the hook drops, and is read less
//! often only while the hook delivers. The receiver refuses what Okta would not send and
//! a standby answers 200 without acting.

mod common;

use common::{OPERATOR_TOKEN, apply_binding, metric, operator_binary, view_spec};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::CustomResourceExt;
use kube::api::{Api, ListParams, PostParams};
use okta_rbac_api::{OktaGroupBinding, OktaGroupBindingSpec, SubjectKind, SubjectSpec};
use okta_rbac_operator::hooks::EVENT_TYPES;
use okta_rbac_pki::CertificateAuthority;
use okta_rbac_testenv::wait::eventually;
use okta_rbac_testenv::{
    ControlPlane, ControlPlaneOptions, OperatorLaunch, OperatorProcess, free_port,
};
use okta_sim::seed::SeedApiToken;
use okta_sim::{
    EventHookFaults, GroupType, HookRegistration, OktaSim, Seed, SimOptions, UserStatus,
};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const SECRET: &str = "Bearer 8f2d-hook-secret";

struct HookWorld {
    plane: ControlPlane,
    sim: OktaSim,
    client: kube::Client,
    operator: OperatorProcess,
    /// The receiver's URL, as registered with Okta.
    receiver: String,
    receiver_ca: String,
    secret_file: PathBuf,
}

/// The control plane, the local Okta and the operator with its receiver on a free port
/// (certificate of a CA of its own, which the local Okta is told to trust), and `args`.
async fn hook_world(args: &[&str]) -> HookWorld {
    let plane = ControlPlane::start(ControlPlaneOptions {
        crds: vec![OktaGroupBinding::crd()],
        ..Default::default()
    })
    .await
    .expect("control plane");
    if args.contains(&"--leader-election") {
        hold_lease_elsewhere(&plane).await;
    }
    let seed = Seed {
        api_tokens: vec![SeedApiToken {
            name: "operator".into(),
            token: OPERATOR_TOKEN.into(),
            scopes: Some(vec!["okta.groups.read".into(), "okta.logs.read".into()]),
        }],
        ..Default::default()
    };
    let sim = OktaSim::start(SimOptions::new(seed))
        .await
        .expect("local Okta");
    let dir = plane.dir().to_path_buf();
    let okta_ca = dir.join("okta-ca.pem");
    sim.write_ca(&okta_ca).expect("CA");
    let ca = CertificateAuthority::new("event hook test CA").expect("CA");
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let serving = ca
        .serving_cert("okta-rbac-event-hook", &["localhost"], &[localhost])
        .expect("serving certificate");
    let (cert, key, secret_file) = (
        dir.join("hook.crt"),
        dir.join("hook.key"),
        dir.join("hook-secret"),
    );
    std::fs::write(&cert, &serving.cert_pem).expect("cert");
    std::fs::write(&key, &serving.key_pem).expect("key");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("secret");
    let port = free_port().expect("port");
    let address = format!("127.0.0.1:{port}");
    let mut operator =
        OperatorLaunch::new(operator_binary(), plane.kubeconfig_path(), sim.base_url())
            .okta_ca_file(&okta_ca)
            .okta_token(OPERATOR_TOKEN)
            .args([
                "--resync-interval",
                "10m",
                "--full-resync-interval",
                "1h",
                "--event-hook-address",
                &address,
                "--event-hook-tls-cert-file",
                &cert.display().to_string(),
                "--event-hook-tls-key-file",
                &key.display().to_string(),
                "--event-hook-secret-file",
                &secret_file.display().to_string(),
            ])
            .args(args.iter().copied())
            .start(&dir.join("operator.log"))
            .expect("the operator starts");
    operator
        .wait_ready(Duration::from_secs(60))
        .await
        .expect("ready");
    sim.trust_hook_roots(ca.cert_pem()).expect("trust");
    let client = plane.client().await.expect("client");
    HookWorld {
        receiver: format!("https://{address}/okta/event-hook"),
        receiver_ca: ca.cert_pem().to_string(),
        plane,
        sim,
        client,
        operator,
        secret_file,
    }
}

/// Registers the hook through the Management API, as the docs tell an admin to, and
/// verifies it (Okta's challenge, answered by the receiver); returns its id.
async fn register_hook(world: &HookWorld) -> String {
    let verified = world
        .sim
        .register_event_hook(HookRegistration {
            name: "okta-rbac-operator",
            uri: &world.receiver,
            header: "Authorization",
            secret: SECRET,
            event_types: &EVENT_TYPES,
        })
        .await
        .expect("the receiver answers Okta's challenge");
    assert_eq!(verified["verificationStatus"], "VERIFIED");
    assert_eq!(verified["status"], "ACTIVE");
    verified["id"].as_str().expect("id").to_string()
}

fn users_spec(group: &str) -> OktaGroupBindingSpec {
    OktaGroupBindingSpec {
        subject: SubjectSpec {
            kind: SubjectKind::Users,
            ..Default::default()
        },
        ..view_spec(group)
    }
}

/// The user names bound by the object's ClusterRoleBinding (none when it has none).
async fn bound_users(client: &kube::Client, object: &str) -> Vec<String> {
    let api: Api<OktaGroupBinding> = Api::all(client.clone());
    let Ok(ogb) = api.get(object).await else {
        return Vec::new();
    };
    let selector = format!(
        "oktarbac.io/owner-uid={}",
        ogb.metadata.uid.as_deref().expect("uid")
    );
    let crbs = Api::<ClusterRoleBinding>::all(client.clone())
        .list(&ListParams::default().labels(&selector))
        .await
        .expect("list");
    let mut users: Vec<String> = crbs
        .items
        .iter()
        .flat_map(|crb| crb.subjects.iter().flatten())
        .map(|s| s.name.clone())
        .collect();
    users.sort();
    users
}

/// Waits until `fits` holds for the object's bound users; returns how long it took.
async fn until_bound(
    client: &kube::Client,
    object: &str,
    what: &str,
    fits: impl Fn(&[String]) -> bool,
) -> Duration {
    let started = Instant::now();
    eventually(Duration::from_secs(60), what, || async {
        fits(&bound_users(client, object).await).then_some(())
    })
    .await;
    started.elapsed()
}

fn has(users: &[String], name: &str) -> bool {
    users.iter().any(|u| u == name)
}

#[tokio::test]
async fn an_event_hook_brings_okta_s_changes_in_about_a_second_however_okta_delivers() {
    // The System Log is read at start and then every ten minutes: anything that reaches
    // the cluster within the test came through the hook.
    let world = hook_world(&[
        "--okta-system-log-interval",
        "10m",
        "--event-hook-system-log-interval",
        "10m",
    ])
    .await;
    let (sim, client, metrics) = (&world.sim, &world.client, world.operator.metrics_url());
    let group = sim
        .create_group("k8s-hook-users", GroupType::OktaGroup)
        .expect("group");
    for login in ["alice", "bob", "carol", "dave"] {
        sim.create_user(&format!("{login}@example.com"), UserStatus::Active, None)
            .expect("user");
    }
    for login in ["alice", "bob"] {
        sim.add_member(&group, &format!("{login}@example.com"))
            .expect("member");
    }
    let doomed = sim
        .create_group("k8s-hook-doomed", GroupType::OktaGroup)
        .expect("group");
    apply_binding(client, "hook-users", users_spec("k8s-hook-users")).await;
    apply_binding(client, "hook-doomed", view_spec("k8s-hook-doomed")).await;
    until_bound(client, "hook-users", "alice and bob bound", |u| {
        u == ["alice@example.com", "bob@example.com"]
    })
    .await;
    until_bound(client, "hook-doomed", "the group bound", |u| u.len() == 1).await;
    let hook = register_hook(&world).await;
    assert_eq!(
        metric(
            metrics,
            "okta_rbac_event_hook_requests_total{result=\"verification\"}"
        )
        .await,
        1.0
    );

    sim.remove_member(&group, "bob@example.com")
        .expect("remove");
    let removal = until_bound(client, "hook-users", "bob's subject gone", |u| {
        !has(u, "bob@example.com")
    })
    .await;
    println!("member removed -> subject gone: {removal:?}");
    assert!(removal < Duration::from_secs(5), "took {removal:?}");

    // Every delivery twice: each event is taken once.
    sim.set_event_hook_faults(EventHookFaults {
        duplicate_every: 1,
        ..Default::default()
    });
    sim.add_member(&group, "carol@example.com").expect("add");
    until_bound(client, "hook-users", "carol bound", |u| {
        has(u, "carol@example.com")
    })
    .await;
    eventually(Duration::from_secs(10), "the copy dropped", || async {
        (metric(
            metrics,
            "okta_rbac_okta_events_duplicate_total{source=\"event_hook\"}",
        )
        .await
            >= 1.0)
            .then_some(())
    })
    .await;

    // Late and out of order: a delivery held back and sent after the next one.
    sim.set_event_hook_faults(EventHookFaults {
        reorder_every: 1,
        reorder_hold_ms: 2_000,
        delay_ms: 300,
        ..Default::default()
    });
    sim.add_member(&group, "dave@example.com").expect("add");
    sim.remove_member(&group, "alice@example.com")
        .expect("remove");
    until_bound(client, "hook-users", "dave in, alice out", |u| {
        u == ["carol@example.com", "dave@example.com"]
    })
    .await;
    sim.clear_event_hook_faults();

    sim.delete_group(&doomed).expect("delete");
    let deletion = until_bound(
        client,
        "hook-doomed",
        "the deleted group's binding gone",
        |u| u.is_empty(),
    )
    .await;
    println!("group deleted -> binding gone: {deletion:?}");
    assert!(deletion < Duration::from_secs(5), "took {deletion:?}");

    let by_hook = metric(
        metrics,
        "okta_rbac_okta_events_first_told_total{source=\"event_hook\"}",
    )
    .await;
    assert!(by_hook >= 5.0, "events first told by the hook: {by_hook}");
    // A burst of deliveries: each answered at once (Okta waits 3 s), the work queued.
    let receiver = receiver_client(&world);
    let burst = futures::future::join_all((0..200).map(|i| {
        let request = receiver
            .post(&world.receiver)
            .header("Authorization", SECRET)
            .header("Content-Type", "application/json")
            .body(delivery(&format!("burst-{i}")).to_string());
        async move {
            let sent = Instant::now();
            let status = request.send().await.map(|r| r.status().as_u16());
            (status, sent.elapsed())
        }
    }))
    .await;
    let slowest = burst
        .iter()
        .map(|(_, took)| *took)
        .max()
        .unwrap_or_default();
    println!("200 deliveries at once: the slowest answered in {slowest:?}");
    assert!(
        burst.iter().all(|(status, _)| matches!(status, Ok(200))),
        "{burst:?}"
    );
    assert!(slowest < Duration::from_secs(3), "{slowest:?}");
    let deliveries = sim.hook_deliveries();
    assert!(deliveries.iter().all(|d| d.hook_id == hook));
    assert!(
        deliveries.iter().all(|d| d.outcome.delivered()),
        "the receiver took every delivery: {deliveries:?}"
    );
    drop(world.plane);
}

#[tokio::test]
async fn the_system_log_catches_what_the_hook_drops_and_is_read_less_often_only_while_it_delivers()
{
    let world = hook_world(&[
        "--okta-system-log-interval",
        "2s",
        "--event-hook-system-log-interval",
        "15s",
    ])
    .await;
    let (sim, client, metrics) = (&world.sim, &world.client, world.operator.metrics_url());
    let interval = || metric(metrics, "okta_rbac_okta_system_log_poll_interval_seconds");
    let group = sim
        .create_group("k8s-hook-net", GroupType::OktaGroup)
        .expect("group");
    for login in ["erin", "frank"] {
        let user = format!("{login}@example.com");
        sim.create_user(&user, UserStatus::Active, None)
            .expect("user");
        sim.add_member(&group, &user).expect("member");
    }
    apply_binding(client, "hook-net", users_spec("k8s-hook-net")).await;
    until_bound(client, "hook-net", "both bound", |u| u.len() == 2).await;
    eventually(
        Duration::from_secs(10),
        "the log read every 2 s",
        || async { (interval().await == 2.0).then_some(()) },
    )
    .await;
    register_hook(&world).await;
    sim.create_user("gus@example.com", UserStatus::Active, None)
        .expect("user");
    sim.add_member(&group, "gus@example.com").expect("member");
    until_bound(client, "hook-net", "gus bound", |u| {
        has(u, "gus@example.com")
    })
    .await;
    eventually(
        Duration::from_secs(30),
        "the log read every 15 s while the hook delivers",
        || async { (interval().await == 15.0).then_some(()) },
    )
    .await;

    // Okta drops the next delivery: the log, the safety net, brings the change, and is
    // read at its own pace again.
    sim.set_event_hook_faults(EventHookFaults {
        drop_next: 1,
        ..Default::default()
    });
    sim.remove_member(&group, "erin@example.com")
        .expect("remove");
    let caught = until_bound(client, "hook-net", "erin gone through the log", |u| {
        !has(u, "erin@example.com")
    })
    .await;
    println!("a dropped delivery's change, through the System Log: {caught:?}");
    assert!(caught <= Duration::from_secs(15 + 5), "took {caught:?}");
    eventually(
        Duration::from_secs(45),
        "the log read every 2 s again",
        || async { (interval().await == 2.0).then_some(()) },
    )
    .await;
    assert!(
        metric(
            metrics,
            "okta_rbac_okta_events_first_told_total{source=\"system_log\"}"
        )
        .await
            >= 1.0
    );
    drop(world.plane);
}

async fn requests(metrics: &str, result: &str) -> f64 {
    metric(
        metrics,
        &format!("okta_rbac_event_hook_requests_total{{result=\"{result}\"}}"),
    )
    .await
}

/// Another replica holds the operator's lease for an hour.
async fn hold_lease_elsewhere(plane: &ControlPlane) {
    let client = plane.client().await.expect("client");
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    Api::<Lease>::namespaced(client, "default")
        .create(
            &PostParams::default(),
            &Lease {
                metadata: kube::api::ObjectMeta {
                    name: Some("okta-rbac-operator".into()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some("another-replica".into()),
                    lease_duration_seconds: Some(3600),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    ..Default::default()
                }),
            },
        )
        .await
        .expect("lease");
}

/// A client of the receiver, trusting its CA, as Okta is.
fn receiver_client(world: &HookWorld) -> reqwest::Client {
    let config = okta_rbac_pki::client_config_trusting(&[world.receiver_ca.as_str()]).expect("TLS");
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .expect("client")
}

fn delivery(uuid: &str) -> Value {
    json!({
        "eventType": "com.okta.event_hook",
        "eventTypeVersion": "1.0",
        "data": {"events": [{
            "uuid": uuid,
            "published": "2026-12-03T10:00:00.000Z",
            "eventType": "group.profile.update",
            "target": [{"id": "00gnone", "type": "UserGroup", "displayName": "k8s-none"}],
        }]},
    })
}

async fn post(world: &HookWorld, header: Option<&str>, body: String) -> u16 {
    let mut request = receiver_client(world)
        .post(&world.receiver)
        .header("Content-Type", "application/json")
        .body(body);
    if let Some(value) = header {
        request = request.header("Authorization", value);
    }
    request.send().await.expect("answer").status().as_u16()
}

#[tokio::test]
async fn the_receiver_refuses_what_okta_would_not_send_follows_a_rotated_secret_and_a_standby_refuses()
 {
    // Another replica holds the lease for an hour: this one stands by (see hook_world).
    let world = hook_world(&[
        "--leader-election",
        "--lease-namespace",
        "default",
        "--event-hook-body-limit",
        "4096",
    ])
    .await;
    let metrics = world.operator.metrics_url();
    let body = delivery("e-standby").to_string();
    assert_eq!(post(&world, None, body.clone()).await, 401, "no header");
    assert_eq!(
        post(&world, Some("Bearer wrong"), body.clone()).await,
        401,
        "a wrong value"
    );
    assert_eq!(requests(metrics, "unauthorized").await, 2.0);
    let huge = json!({"data": {"events": [], "padding": "x".repeat(8192)}}).to_string();
    assert_eq!(post(&world, Some(SECRET), huge).await, 413, "too large");
    assert_eq!(requests(metrics, "too_large").await, 1.0);
    assert_eq!(
        post(&world, Some(SECRET), "{\"data\": 7}".into()).await,
        400,
        "not a delivery"
    );
    assert_eq!(requests(metrics, "unreadable").await, 1.0);
    // Okta's one-time challenge, which needs the header too.
    let challenge = receiver_client(&world)
        .get(&world.receiver)
        .header("Authorization", SECRET)
        .header("x-okta-verification-challenge", "abc-123")
        .send()
        .await
        .expect("answer");
    assert_eq!(challenge.status(), 200);
    let answer: Value = challenge.json().await.expect("JSON");
    assert_eq!(answer, json!({"verification": "abc-123"}));
    let unchallenged = receiver_client(&world)
        .get(&world.receiver)
        .header("Authorization", SECRET)
        .send()
        .await
        .expect("answer");
    assert_eq!(unchallenged.status(), 400);

    // Not leading (the lease is another's): 503, so that Okta tries once more (and
    // reaches the leader once the Service follows it).
    assert_eq!(post(&world, Some(SECRET), body.clone()).await, 503);
    assert_eq!(requests(metrics, "standby").await, 1.0);
    assert_eq!(requests(metrics, "accepted").await, 0.0);

    // A rotation: both values for a while, then only the new one (a value taken gets
    // past the header check to the standby's 503, a value refused gets 401).
    std::fs::write(&world.secret_file, format!("{SECRET}\nBearer rotated\n")).expect("secret");
    eventually(Duration::from_secs(15), "the new value taken", || async {
        (post(&world, Some("Bearer rotated"), body.clone()).await == 503).then_some(())
    })
    .await;
    assert_eq!(
        post(&world, Some(SECRET), body.clone()).await,
        503,
        "the old one too"
    );
    std::fs::write(&world.secret_file, "Bearer rotated\n").expect("secret");
    eventually(Duration::from_secs(15), "the old value refused", || async {
        (post(&world, Some(SECRET), body.clone()).await == 401).then_some(())
    })
    .await;
}
