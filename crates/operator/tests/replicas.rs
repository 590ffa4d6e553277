//! The operator as it runs in a cluster: its own process, two replicas with leader
//! election, probes and metrics, secrets kept out of the logs, a clean stop on SIGTERM.

mod common;

use common::{apply_binding, view_spec, wait_condition};
use k8s_openapi::api::coordination::v1::Lease;
use kube::CustomResourceExt;
use kube::api::Api;
use okta_rbac_api::OktaGroupBinding;
use okta_rbac_testenv::{ControlPlane, OperatorLaunch, OperatorProcess, unique_name};
use okta_sim::{GroupType, OktaSim, Seed, SimOptions};
use std::path::Path;
use std::time::{Duration, Instant};

const TOKEN: &str = "00replica-secret-token";
const LEASE_SECONDS: u64 = 4;

struct Replica {
    name: String,
    process: OperatorProcess,
}

fn start_replica(
    name: &str,
    plane: &ControlPlane,
    sim: &OktaSim,
    ca: &Path,
    lease: &str,
) -> Replica {
    start_replica_with_lease(name, plane, sim, ca, lease, LEASE_SECONDS)
}

fn start_replica_with_lease(
    name: &str,
    plane: &ControlPlane,
    sim: &OktaSim,
    ca: &Path,
    lease: &str,
    lease_seconds: u64,
) -> Replica {
    let process = OperatorLaunch::new(
        common::operator_binary(),
        plane.kubeconfig_path(),
        sim.base_url(),
    )
    .okta_ca_file(ca)
    .okta_token(TOKEN)
    .identity(name)
    .log_filter("debug")
    .args([
        "--resync-interval",
        "3s",
        "--leader-election",
        "--lease-name",
        lease,
    ])
    .args(["--lease-namespace", "default"])
    .args(["--lease-duration".to_string(), format!("{lease_seconds}s")])
    .start(&plane.dir().join(format!("{}.log", unique_name(name))))
    .expect("start a replica");
    Replica {
        name: name.into(),
        process,
    }
}

async fn holder(leases: &Api<Lease>, lease: &str) -> Option<String> {
    leases.get(lease).await.ok()?.spec?.holder_identity
}

/// SIGTERM (again, if sent already): the replica exits 0 within 10 s.
fn stop_cleanly(replica: &mut Replica) {
    let status = replica
        .process
        .terminate(Duration::from_secs(10))
        .expect("kill")
        .expect("SIGTERM stops the operator within 10 s");
    assert!(status.success(), "a SIGTERM stop exits 0: {status}");
}

/// Waits until `replica` holds the Lease.
async fn wait_for_holder(leases: &Api<Lease>, lease: &str, replica: &str, within: Duration) {
    common::eventually(within, &format!("{replica} holds the Lease"), || async {
        (holder(leases, lease).await? == replica).then_some(())
    })
    .await;
}

/// A control plane, a local Okta and the file of its CA.
async fn world() -> (
    &'static ControlPlane,
    kube::Client,
    OktaSim,
    std::path::PathBuf,
) {
    let plane = ControlPlane::shared(|| vec![OktaGroupBinding::crd()]);
    let client = plane.client().await.expect("client");
    let sim = OktaSim::start(SimOptions::new(Seed::groups_only(TOKEN, [])))
        .await
        .expect("local Okta");
    let ca = plane.dir().join(format!("{}.pem", unique_name("okta-ca")));
    sim.write_ca(&ca).expect("CA");
    (plane, client, sim, ca)
}

#[tokio::test]
async fn two_replicas_elect_one_leader_and_the_standby_takes_over() {
    let (plane, client, sim, ca) = world().await;
    let lease = unique_name("lease");
    let mut replicas = vec![
        start_replica("replica-a", plane, &sim, &ca, &lease),
        start_replica("replica-b", plane, &sim, &ca, &lease),
    ];
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");

    let leader = common::eventually(Duration::from_secs(30), "a leader", || {
        let leases = leases.clone();
        let lease = lease.clone();
        async move { holder(&leases, &lease).await }
    })
    .await;
    for replica in &replicas {
        let ready = common::eventually(Duration::from_secs(30), "every replica is ready", || {
            let process = &replica.process;
            async move { process.get("/readyz").await.filter(|(s, _)| *s == 200) }
        })
        .await;
        assert_eq!(ready.1, "ok");
    }

    let group = unique_name("k8s-replicas");
    sim.create_group(&group, GroupType::OktaGroup)
        .expect("group");
    let first = unique_name("first");
    apply_binding(&client, &first, view_spec(&group)).await;
    wait_condition(&client, &first, "Ready", "True", None).await;

    let index = replicas
        .iter()
        .position(|r| r.name == leader)
        .expect("the leader is a replica");
    let (_, metrics) = replicas[index]
        .process
        .get("/metrics")
        .await
        .expect("metrics");
    assert!(metrics.contains("okta_rbac_reconciles_total"), "{metrics}");
    assert!(
        metrics.contains(r#"okta_rbac_okta_requests_total{bucket="groups",status="200"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"okta_rbac_groups{state="verified"} 1"#),
        "{metrics}"
    );

    // The standby runs no controller: it reconciled nothing and asked Okta nothing.
    let standby_index = 1 - index;
    let (_, standby_metrics) = replicas[standby_index]
        .process
        .get("/metrics")
        .await
        .expect("metrics");
    assert!(
        standby_metrics
            .lines()
            .any(|l| l == "okta_rbac_reconciles_total 0")
            && !standby_metrics.contains("okta_rbac_okta_requests_total{"),
        "the standby wrote nothing: {standby_metrics}"
    );

    // SIGKILL the leader: the standby must take over within the lease duration.
    let killed_at = Instant::now();
    let mut old = replicas.remove(index);
    old.process.kill();
    let standby = replicas[0].name.clone();
    wait_for_holder(
        &leases,
        &lease,
        &standby,
        Duration::from_secs(LEASE_SECONDS * 3),
    )
    .await;
    let handover = killed_at.elapsed();
    println!(
        "leader handover after SIGKILL: {:.1} s (lease {LEASE_SECONDS} s)",
        handover.as_secs_f64()
    );
    assert!(
        handover <= Duration::from_secs(LEASE_SECONDS + 2),
        "handover took {handover:?}"
    );

    let second = unique_name("second");
    apply_binding(&client, &second, view_spec(&group)).await;
    wait_condition(&client, &second, "Ready", "True", None).await;

    for replica in [&old, &replicas[0]] {
        let log = replica.process.log();
        assert!(
            !log.contains(TOKEN),
            "{}: the Okta token is never logged",
            replica.name
        );
    }

    // SIGTERM is a clean stop.
    let mut survivor = replicas.remove(0);
    stop_cleanly(&mut survivor);
}

/// A leader that stops cleanly releases its Lease, and the standby takes it at once, not
/// when the leader's last renewal would have expired (up to the lease duration later:
/// that long, nothing would keep the bindings or end time-bound grants).
#[tokio::test]
async fn a_leader_that_stops_hands_over_at_once_not_when_its_lease_would_expire() {
    const LONG_LEASE: u64 = 30;
    let (plane, client, sim, ca) = world().await;
    let lease = unique_name("lease");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let mut first = start_replica_with_lease("replica-a", plane, &sim, &ca, &lease, LONG_LEASE);
    wait_for_holder(&leases, &lease, "replica-a", Duration::from_secs(30)).await;
    let second = start_replica_with_lease("replica-b", plane, &sim, &ca, &lease, LONG_LEASE);
    common::eventually(Duration::from_secs(30), "replica-b stands by", || {
        let process = &second.process;
        async move { process.get("/readyz").await.filter(|(s, _)| *s == 200) }
    })
    .await;
    // Past the standby's first look at the Lease, so that it sleeps on the leader's expiry.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let stopped_at = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &first.process.pid().to_string()])
        .status()
        .expect("kill");
    wait_for_holder(
        &leases,
        &lease,
        "replica-b",
        Duration::from_secs(LONG_LEASE * 2),
    )
    .await;
    let handover = stopped_at.elapsed();
    stop_cleanly(&mut first);
    let exited = stopped_at.elapsed();
    println!(
        "SIGTERM to the leader: the standby held the Lease after {:.1} s, the old leader exited after {:.1} s (lease {LONG_LEASE} s)",
        handover.as_secs_f64(),
        exited.as_secs_f64()
    );
    assert!(
        handover < Duration::from_secs(5),
        "the standby took {handover:?}, as if it waited for the lease to expire"
    );
    // Nothing held it up: the events still queued were published, not waited on.
    assert!(
        exited < Duration::from_secs(4),
        "the old leader took {exited:?} to exit"
    );

    // And it leads: a new object is reconciled.
    let group = unique_name("k8s-handover");
    sim.create_group(&group, GroupType::OktaGroup)
        .expect("group");
    let name = unique_name("after-handover");
    apply_binding(&client, &name, view_spec(&group)).await;
    wait_condition(&client, &name, "Ready", "True", None).await;
    assert!(
        second.process.log().contains("runtime: leading"),
        "{}",
        second.process.log()
    );
}
