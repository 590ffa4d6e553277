//! The operator on a bad day in the cluster: killed again and again while 1,000 objects
//! converge, the kube-apiserver restarted under it, and two replicas handing over without
//! ever writing at the same time. Each test runs the operator as its own process against
//! a control plane of its own, and checks the cluster's final state exactly.

mod common;

use common::{eventually, view_spec};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, CustomResourceExt, ResourceExt};
use okta_rbac_api::{OktaGroupBinding, OktaGroupBindingSpec, RoleBindingSpec};
use okta_rbac_testenv::{ControlPlane, ControlPlaneOptions, OperatorLaunch, OperatorProcess};
use okta_sim::{OktaSim, Seed, SimOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TOKEN: &str = "00faults-token";
const NAMESPACES: [&str; 2] = ["faults-a", "faults-b"];
const MANAGED: &str = "app.kubernetes.io/managed-by=okta-rbac-operator";

/// The heavy tests share two cores: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn group(i: usize) -> String {
    format!("k8s-fault-{i:04}")
}

/// Every object: the group gets `view` cluster-wide and in both namespaces.
fn spec(i: usize) -> OktaGroupBindingSpec {
    let mut spec = view_spec(&group(i));
    spec.role_bindings = NAMESPACES
        .iter()
        .map(|ns| RoleBindingSpec {
            namespace: Some(ns.to_string()),
            namespace_selector: None,
            role: None,
            cluster_role: Some("view".into()),
        })
        .collect();
    spec
}

struct World {
    plane: ControlPlane,
    sim: OktaSim,
    ca: PathBuf,
}

async fn world(groups: usize, extra_apiserver_args: Vec<String>) -> World {
    let plane = ControlPlane::start(ControlPlaneOptions {
        crds: vec![OktaGroupBinding::crd()],
        extra_apiserver_args,
        keep_dir: std::env::var_os("FAULTS_KEEP_DIR").is_some(),
        ..Default::default()
    })
    .await
    .expect("control plane");
    let seed = Seed::groups_only(TOKEN, (0..groups).map(group));
    let sim = OktaSim::start(SimOptions::new(seed))
        .await
        .expect("local Okta");
    let ca = plane.dir().join("okta-ca.pem");
    sim.write_ca(&ca).expect("CA");
    let client = plane.client().await.expect("client");
    for name in NAMESPACES {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace");
    }
    World { plane, sim, ca }
}

struct Launch<'a> {
    kubeconfig: &'a Path,
    identity: &'a str,
    extra: &'a [&'a str],
}

/// The operator as its own process; killed (SIGKILL) when dropped.
fn start_operator(world: &World, launch: &Launch<'_>) -> OperatorProcess {
    OperatorLaunch::new(
        common::operator_binary(),
        launch.kubeconfig,
        world.sim.base_url(),
    )
    .okta_ca_file(&world.ca)
    .okta_token(TOKEN)
    .identity(launch.identity)
    .args(["--resync-interval", "20s"])
    .args(launch.extra.iter().copied())
    .start(&world.plane.dir().join(format!("{}.log", launch.identity)))
    .expect("start the operator")
}

async fn create_objects(client: &Client, range: std::ops::Range<usize>) {
    let api: Api<OktaGroupBinding> = Api::all(client.clone());
    futures::stream::iter(range)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(
                    &PostParams::default(),
                    &OktaGroupBinding::new(&format!("fault-{i:04}"), spec(i)),
                )
                .await
                .expect("create OktaGroupBinding");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

fn is_ready(ogb: &OktaGroupBinding) -> bool {
    ogb.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// The cluster holds exactly the declared bindings: every object Ready, each of its three
/// grants present once with the right subject, and no binding without a live owner.
async fn assert_exact(client: &Client, objects: usize) {
    let all: Vec<OktaGroupBinding> = Api::<OktaGroupBinding>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("list objects")
        .items;
    assert_eq!(all.len(), objects);
    let uids: BTreeMap<String, String> = all
        .iter()
        .map(|o| (o.uid().expect("uid"), o.name_any()))
        .collect();
    let managed = ListParams::default().labels(MANAGED);
    let crbs = Api::<ClusterRoleBinding>::all(client.clone())
        .list(&managed)
        .await
        .expect("list")
        .items;
    let rbs = Api::<RoleBinding>::all(client.clone())
        .list(&managed)
        .await
        .expect("list")
        .items;
    let mut grants = BTreeSet::new();
    let mut check = |meta: &ObjectMeta, namespace: &str, subject: &str| {
        let uid = meta
            .labels
            .as_ref()
            .and_then(|l| l.get("oktarbac.io/owner-uid"))
            .expect("owner label");
        let owner = uids
            .get(uid)
            .unwrap_or_else(|| panic!("orphan binding {:?}", meta.name));
        let index: usize = owner["fault-".len()..].parse().expect("index");
        assert_eq!(
            subject,
            group(index),
            "{:?} names its object's group",
            meta.name
        );
        assert!(
            grants.insert((owner.clone(), namespace.to_string())),
            "duplicate grant for {owner} in {namespace:?}"
        );
    };
    for crb in &crbs {
        let subjects = crb.subjects.as_deref().unwrap_or_default();
        assert_eq!(subjects.len(), 1);
        check(&crb.metadata, "", &subjects[0].name);
    }
    for rb in &rbs {
        let subjects = rb.subjects.as_deref().unwrap_or_default();
        assert_eq!(subjects.len(), 1);
        check(
            &rb.metadata,
            &rb.namespace().expect("namespace"),
            &subjects[0].name,
        );
    }
    assert_eq!(crbs.len(), objects, "one ClusterRoleBinding per object");
    assert_eq!(
        rbs.len(),
        objects * NAMESPACES.len(),
        "one RoleBinding per object and namespace"
    );
}

async fn wait_all_ready(client: &Client, objects: usize, timeout: Duration) {
    let api: Api<OktaGroupBinding> = Api::all(client.clone());
    eventually(timeout, &format!("all {objects} objects Ready"), || {
        let api = api.clone();
        async move {
            let all = api.list(&ListParams::default()).await.ok()?.items;
            (all.len() == objects && all.iter().all(is_ready)).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn killed_again_and_again_while_1000_objects_converge_the_final_state_is_exact() {
    let _one_at_a_time = SERIAL.lock().await;
    const OBJECTS: usize = 1000;
    let world = world(OBJECTS, vec![]).await;
    let client = world.plane.client().await.expect("client");
    let launch = Launch {
        kubeconfig: world.plane.kubeconfig_path(),
        identity: "operator",
        extra: &[],
    };
    let mut operator = start_operator(&world, &launch);
    let creating = tokio::spawn({
        let client = client.clone();
        async move { create_objects(&client, 0..OBJECTS).await }
    });
    let mut kills = 0;
    let started = Instant::now();
    // SIGKILL every 1.5 s, mid-write, ten times; then let the last one finish.
    while kills < 10 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        drop(operator);
        kills += 1;
        operator = start_operator(&world, &launch);
    }
    let killing = started.elapsed();
    let bindings_at_last_kill = Api::<RoleBinding>::all(client.clone())
        .list(&ListParams::default().labels(MANAGED))
        .await
        .expect("list")
        .items
        .len();
    let ready_at_last_kill = Api::<OktaGroupBinding>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .filter(|o| is_ready(o))
        .count();
    creating.await.expect("objects created");
    wait_all_ready(&client, OBJECTS, Duration::from_secs(300)).await;
    println!(
        "{kills} kills over {:.1} s ({bindings_at_last_kill} of {} RoleBindings and \
         {ready_at_last_kill} of {OBJECTS} objects Ready after the last); all {OBJECTS} Ready \
         {:.1} s after the first create",
        killing.as_secs_f64(),
        OBJECTS * NAMESPACES.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        ready_at_last_kill < OBJECTS,
        "the kills happened while the operator was still converging (bindings or statuses)"
    );
    assert_exact(&client, OBJECTS).await;
    drop(operator);
}

#[tokio::test]
async fn after_an_apiserver_restart_the_watches_recover_without_restarting_the_operator() {
    let _one_at_a_time = SERIAL.lock().await;
    const OBJECTS: usize = 200;
    let mut world = world(OBJECTS, vec![]).await;
    let client = world.plane.client().await.expect("client");
    let launch = Launch {
        kubeconfig: world.plane.kubeconfig_path(),
        identity: "operator",
        extra: &[],
    };
    let mut operator = start_operator(&world, &launch);
    let pid = operator.pid();
    create_objects(&client, 0..OBJECTS / 2).await;

    let restart = world.plane.restart_apiserver().await.expect("restart");
    println!(
        "kube-apiserver killed and ready again in {:.1} s",
        restart.as_secs_f64()
    );
    // Work that only watches can see: new objects, and a hand-deleted binding.
    create_objects(&client, OBJECTS / 2..OBJECTS).await;
    wait_all_ready(&client, OBJECTS, Duration::from_secs(120)).await;
    let victim = Api::<ClusterRoleBinding>::all(client.clone())
        .list(&ListParams::default().labels(MANAGED))
        .await
        .expect("list")
        .items
        .into_iter()
        .next()
        .expect("a binding");
    Api::<ClusterRoleBinding>::all(client.clone())
        .delete(&victim.name_any(), &DeleteParams::default())
        .await
        .expect("delete by hand");
    let crbs = Api::<ClusterRoleBinding>::all(client.clone());
    eventually(
        Duration::from_secs(10),
        "the deleted binding is repaired",
        || {
            let crbs = crbs.clone();
            let name = victim.name_any();
            let old_uid = victim.uid();
            async move {
                crbs.get_opt(&name)
                    .await
                    .ok()?
                    .filter(|b| b.uid() != old_uid)
            }
        },
    )
    .await;
    assert_exact(&client, OBJECTS).await;
    assert!(
        operator.exit_status().is_none(),
        "the operator kept running"
    );
    assert_eq!(operator.pid(), pid);
    let health = operator.get("/healthz").await;
    assert_eq!(health.map(|(status, _)| status), Some(200));
    drop(world);
}

/// A write request in the apiserver's audit log.
#[derive(Debug)]
struct Write {
    user: String,
    resource: String,
    at: String,
}

fn audited_writes(log: &Path) -> Vec<Write> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["stage"] == "ResponseComplete")
        .map(|event| Write {
            user: event["user"]["username"]
                .as_str()
                .unwrap_or_default()
                .into(),
            resource: event["objectRef"]["resource"]
                .as_str()
                .unwrap_or_default()
                .into(),
            at: event["stageTimestamp"].as_str().unwrap_or_default().into(),
        })
        .collect()
}

#[tokio::test]
async fn two_replicas_hand_over_within_the_lease_and_never_write_at_the_same_time() {
    let _one_at_a_time = SERIAL.lock().await;
    const OBJECTS: usize = 300;
    const LEASE: Duration = Duration::from_secs(4);
    let audit_dir = std::env::temp_dir().join(okta_rbac_testenv::unique_name("okta-rbac-audit"));
    std::fs::create_dir_all(&audit_dir).expect("audit dir");
    let policy = audit_dir.join("policy.yaml");
    let audit_log = audit_dir.join("audit.log");
    // Every write by either replica, leases included, with its completion time.
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived, ResponseStarted]\n\
         rules:\n- level: Metadata\n  users: [replica-a, replica-b]\n  verbs: [create, update, patch, delete, deletecollection]\n- level: None\n",
    )
    .expect("policy");
    let world = world(
        OBJECTS,
        vec![
            format!("--audit-policy-file={}", policy.display()),
            format!("--audit-log-path={}", audit_log.display()),
        ],
    )
    .await;
    let client = world.plane.client().await.expect("client");
    let kubeconfig = |user: &str| {
        let path = world.plane.dir().join(format!("{user}.kubeconfig"));
        world
            .plane
            .write_user_kubeconfig(user, &["system:masters"], &path)
            .expect("kubeconfig");
        path
    };
    let (config_a, config_b) = (kubeconfig("replica-a"), kubeconfig("replica-b"));
    let lease_args = [
        "--leader-election",
        "--lease-name",
        "faults",
        "--lease-namespace",
        "default",
        "--lease-duration",
        "4s",
    ];
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let holder = || {
        let leases = leases.clone();
        async move { leases.get("faults").await.ok()?.spec?.holder_identity }
    };
    let replica_a = start_operator(
        &world,
        &Launch {
            kubeconfig: &config_a,
            identity: "replica-a",
            extra: &lease_args,
        },
    );
    eventually(Duration::from_secs(30), "replica-a leads", || async {
        (holder().await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let _replica_b = start_operator(
        &world,
        &Launch {
            kubeconfig: &config_b,
            identity: "replica-b",
            extra: &lease_args,
        },
    );
    let creating = tokio::spawn({
        let client = client.clone();
        async move { create_objects(&client, 0..OBJECTS).await }
    });
    // Kill the leader while it is busy writing.
    eventually(
        Duration::from_secs(30),
        "replica-a is writing bindings",
        || {
            let client = client.clone();
            async move {
                let rbs = Api::<RoleBinding>::all(client)
                    .list(&ListParams::default().labels(MANAGED))
                    .await
                    .ok()?;
                (rbs.items.len() > 50).then_some(())
            }
        },
    )
    .await;
    let killed = Instant::now();
    drop(replica_a);
    eventually(LEASE * 3, "replica-b leads", || async {
        (holder().await.as_deref() == Some("replica-b")).then_some(())
    })
    .await;
    let handover = killed.elapsed();
    creating.await.expect("created");
    wait_all_ready(&client, OBJECTS, Duration::from_secs(120)).await;
    assert_exact(&client, OBJECTS).await;

    let writes = audited_writes(&audit_log);
    let work: Vec<&Write> = writes.iter().filter(|w| w.resource != "leases").collect();
    let last_a = work
        .iter()
        .filter(|w| w.user == "replica-a")
        .map(|w| w.at.as_str())
        .max()
        .expect("replica-a wrote");
    let first_b = work
        .iter()
        .filter(|w| w.user == "replica-b")
        .map(|w| w.at.as_str())
        .min()
        .expect("replica-b wrote");
    println!(
        "handover {:.1} s after SIGKILL (lease {}s); {} writes audited: replica-a's last at {last_a}, \
         replica-b's first at {first_b}",
        handover.as_secs_f64(),
        LEASE.as_secs(),
        work.len()
    );
    assert!(
        handover <= LEASE + Duration::from_secs(1),
        "handed over within the lease (and one poll): {handover:?}"
    );
    // RFC 3339 timestamps of one zone order as strings.
    assert!(
        last_a < first_b,
        "the replicas' writes overlap: replica-a wrote at {last_a}, after replica-b began at {first_b}"
    );
    drop(world);
    let _ = std::fs::remove_dir_all(&audit_dir);
}
