//! Okta's System Log on the real control plane and the local Okta: while the operator can
//! read the log, a quiet org costs no group requests however many objects there are, and
//! what changes in Okta reaches the bindings in seconds rather than at the next resync.
//! Where the log is refused, every group is verified each resync as before.

mod common;

use common::{OPERATOR_TOKEN, apply_binding, operator_binary, owned_bindings, view_spec};
use kube::CustomResourceExt;
use okta_rbac_api::OktaGroupBinding;
use okta_rbac_testenv::wait::{eventually, wait_condition};
use okta_rbac_testenv::{ControlPlane, ControlPlaneOptions, OperatorLaunch, OperatorProcess};
use okta_sim::seed::SeedApiToken;
use okta_sim::{GroupType, OktaSim, RequestRecord, Seed, SimOptions};
use std::time::{Duration, Instant};

/// Far longer than any test: whatever happens within a test came through the log.
const LONG_RESYNC: &str = "10m";

struct World {
    plane: ControlPlane,
    sim: OktaSim,
    client: kube::Client,
    operator: OperatorProcess,
}

async fn world(token_scopes: &[&str], resync: &str) -> World {
    let plane = ControlPlane::start(ControlPlaneOptions {
        crds: vec![OktaGroupBinding::crd()],
        ..Default::default()
    })
    .await
    .expect("control plane");
    let seed = Seed {
        api_tokens: vec![SeedApiToken {
            name: "operator".into(),
            token: OPERATOR_TOKEN.into(),
            scopes: Some(token_scopes.iter().map(|s| s.to_string()).collect()),
        }],
        ..Default::default()
    };
    let sim = OktaSim::start(SimOptions::new(seed))
        .await
        .expect("local Okta");
    let ca = plane.dir().join("okta-ca.pem");
    sim.write_ca(&ca).expect("CA");
    let mut operator =
        OperatorLaunch::new(operator_binary(), plane.kubeconfig_path(), sim.base_url())
            .okta_ca_file(&ca)
            .okta_token(OPERATOR_TOKEN)
            .args([
                "--resync-interval",
                resync,
                "--full-resync-interval",
                "1h",
                "--okta-system-log-interval",
                "1s",
            ])
            .start(&plane.dir().join("operator.log"))
            .expect("the operator starts");
    operator
        .wait_ready(Duration::from_secs(60))
        .await
        .expect("ready");
    let client = plane.client().await.expect("client");
    World {
        plane,
        sim,
        client,
        operator,
    }
}

fn group_requests(requests: &[RequestRecord]) -> Vec<&RequestRecord> {
    requests
        .iter()
        .filter(|r| r.path.starts_with("/api/v1/groups"))
        .collect()
}

fn log_requests(requests: &[RequestRecord]) -> usize {
    requests.iter().filter(|r| r.path == "/api/v1/logs").count()
}

/// Waits until the operator has read the System Log past everything logged so far: the
/// second read recorded after this call began after the first one ended.
async fn log_read_past_now(sim: &OktaSim) {
    sim.clear_requests();
    eventually(Duration::from_secs(30), "two System Log reads", || async {
        (log_requests(&sim.requests()) >= 2).then_some(())
    })
    .await;
}

/// The search expressions of group requests, decoded.
fn searched(requests: &[&RequestRecord]) -> String {
    requests
        .iter()
        .filter_map(|r| r.query.as_deref())
        .flat_map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned())
        .filter(|(k, _)| k == "search")
        .map(|(_, v)| v)
        .collect::<Vec<_>>()
        .join(" | ")
}

async fn bound(client: &kube::Client, name: &str) -> usize {
    let api: kube::Api<OktaGroupBinding> = kube::Api::all(client.clone());
    let ogb = api.get(name).await.expect("object");
    owned_bindings(client, &ogb).await.0.len()
}

#[tokio::test]
async fn the_system_log_brings_okta_s_changes_in_seconds_and_quiet_groups_cost_nothing() {
    let world = world(&["okta.groups.read", "okta.logs.read"], LONG_RESYNC).await;
    let (sim, client) = (&world.sim, &world.client);
    let stay = sim
        .create_group("k8s-log-stay", GroupType::OktaGroup)
        .expect("group");
    let gone = sim
        .create_group("k8s-log-gone", GroupType::OktaGroup)
        .expect("group");
    let renamed = sim
        .create_group("k8s-log-renamed", GroupType::OktaGroup)
        .expect("group");
    let quiet: Vec<String> = (0..20).map(|i| format!("k8s-log-quiet-{i:02}")).collect();
    for name in &quiet {
        sim.create_group(name, GroupType::OktaGroup).expect("group");
    }
    // The log is read past these creations before any object is verified: a creation
    // read after a group's first check makes the operator check it again, which would
    // land in the quiet window on a busy machine.
    log_read_past_now(sim).await;
    for name in [
        "k8s-log-stay",
        "k8s-log-gone",
        "k8s-log-renamed",
        "k8s-log-later",
    ]
    .into_iter()
    .chain(quiet.iter().map(String::as_str))
    {
        apply_binding(client, name, view_spec(name)).await;
    }
    // Every object's first check is done before the quiet window, so that none of them
    // can be the request seen in it.
    for name in ["k8s-log-stay", "k8s-log-gone", "k8s-log-renamed"]
        .into_iter()
        .chain(quiet.iter().map(String::as_str))
    {
        wait_condition(client, name, "Ready", "True", None).await;
    }
    wait_condition(
        client,
        "k8s-log-later",
        "GroupVerified",
        "False",
        Some("GroupMissing"),
    )
    .await;

    // Quiet: the log is read every second, and no group is asked about.
    sim.clear_requests();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let requests = sim.requests();
    println!(
        "quiet for 5 s with 24 objects: {} group requests, {} System Log reads",
        group_requests(&requests).len(),
        log_requests(&requests)
    );
    assert!(
        group_requests(&requests).is_empty(),
        "{}",
        searched(&group_requests(&requests))
    );
    assert!(log_requests(&requests) >= 3, "the log is read");

    // Changes in Okta: a deletion, a rename, and the creation of a missing group.
    sim.clear_requests();
    let changed = Instant::now();
    sim.delete_group(&gone).expect("delete");
    sim.rename_group(&renamed, "k8s-log-renamed-2")
        .expect("rename");
    sim.create_group("k8s-log-later", GroupType::OktaGroup)
        .expect("create");
    wait_condition(
        client,
        "k8s-log-gone",
        "GroupVerified",
        "False",
        Some("GroupMissing"),
    )
    .await;
    wait_condition(
        client,
        "k8s-log-renamed",
        "GroupVerified",
        "False",
        Some("GroupMissing"),
    )
    .await;
    wait_condition(client, "k8s-log-later", "Ready", "True", None).await;
    println!(
        "deleted, renamed and created in Okta to every object's status showing it: {:.1}s (resync {LONG_RESYNC})",
        changed.elapsed().as_secs_f64()
    );
    assert!(changed.elapsed() < Duration::from_secs(60));
    assert_eq!(
        bound(client, "k8s-log-gone").await,
        0,
        "a deleted group's binding is revoked"
    );
    assert_eq!(
        bound(client, "k8s-log-renamed").await,
        0,
        "and a renamed one's"
    );
    assert_eq!(
        bound(client, "k8s-log-later").await,
        1,
        "a created group is bound"
    );
    assert_eq!(bound(client, "k8s-log-stay").await, 1);
    let searches = searched(&group_requests(&world.sim.requests()));
    assert!(
        searches.contains("k8s-log-gone")
            && !searches.contains("k8s-log-stay")
            && !searches.contains("quiet"),
        "only the groups the log named were verified again: {searches}"
    );
    let _ = stay;
    drop(world.plane);
}

#[tokio::test]
async fn without_the_log_s_permission_every_group_is_verified_each_resync() {
    let mut world = world(&["okta.groups.read"], "3s").await;
    let (sim, client) = (&world.sim, &world.client);
    let gone = sim
        .create_group("k8s-nolog-gone", GroupType::OktaGroup)
        .expect("group");
    apply_binding(client, "k8s-nolog-gone", view_spec("k8s-nolog-gone")).await;
    wait_condition(client, "k8s-nolog-gone", "Ready", "True", None).await;

    let deleted = Instant::now();
    sim.delete_group(&gone).expect("delete");
    wait_condition(
        client,
        "k8s-nolog-gone",
        "GroupVerified",
        "False",
        Some("GroupMissing"),
    )
    .await;
    println!(
        "without the log, deleted in Okta to revoked: {:.1}s (resync 3s)",
        deleted.elapsed().as_secs_f64()
    );
    assert_eq!(bound(client, "k8s-nolog-gone").await, 0);
    let requests = sim.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.path == "/api/v1/logs" && r.status == 403),
        "the operator asked for the log and was refused"
    );
    let log = eventually(Duration::from_secs(10), "the refusal is logged", || {
        let log = world.operator.log();
        async move { log.contains("Okta refuses the System Log").then_some(log) }
    })
    .await;
    assert!(
        !log.contains("panicked"),
        "a refused log is not a crash: {log}"
    );
    assert!(world.operator.exit_status().is_none(), "still running");
}
