//! Time-bound grants on the real apiserver: bindings created within a second of
//! `startTime` and deleted within a second of `endTime` (a timer, not the resync), a grant
//! over when applied creates nothing ever, and the end holds through an operator restart,
//! a failover to the standby and an apiserver restart.
//!
//! Each test has a control plane of its own (one restarts its apiserver), one at a time so
//! that timings are those of one world.

mod common;

use common::world::World;
use common::{GARBAGE_COLLECTOR_WAIT, condition, eventually, wait_condition};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Namespace};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Resource;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use okta_rbac_api::{
    ClusterRoleBindingSpec, NamespaceSelector, OktaGroupBinding, OktaGroupBindingSpec,
    RoleBindingSpec, SubjectKind,
};
use okta_rbac_testenv::OperatorProcess;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

static ONE_WORLD_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const MANAGED: &str = "app.kubernetes.io/managed-by=okta-rbac-operator";
/// Longer than any test: every boundary met is the timer's doing, not the resync's.
const RESYNC: &str = "--resync-interval=30m";

/// A time `offset` from now, to the second: Kubernetes keeps times (metav1.Time) to the
/// second, and so does the grant.
fn at(offset: SignedDuration) -> Time {
    let precise = Timestamp::now() + offset;
    Time(Timestamp::from_second(precise.as_second()).expect("time"))
}

fn millis(ms: i64) -> SignedDuration {
    SignedDuration::from_millis(ms)
}

fn view_of(group: &str) -> OktaGroupBindingSpec {
    OktaGroupBindingSpec {
        group: group.into(),
        subject: Default::default(),
        cluster_role_bindings: vec![ClusterRoleBindingSpec {
            cluster_role: "view".into(),
        }],
        role_bindings: vec![],
        on_group_missing: Default::default(),
        paused: false,
        start_time: None,
        end_time: None,
    }
}

/// When each object's first binding appeared and its last one went, as a watch of the
/// operator's bindings saw them (by the owner annotation).
#[derive(Default)]
struct Seen {
    live: HashMap<String, BTreeSet<String>>,
    granted: HashMap<String, Timestamp>,
    revoked: HashMap<String, Timestamp>,
}

struct BindingClock {
    seen: Arc<Mutex<Seen>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for BindingClock {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn record(seen: &Mutex<Seen>, meta: &ObjectMeta, kind: &str, present: bool) {
    let Some(owner) = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get("oktarbac.io/owner"))
    else {
        return;
    };
    let key = format!(
        "{kind}/{}/{}",
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default()
    );
    let now = Timestamp::now();
    let mut seen = seen.lock().expect("lock");
    let seen = &mut *seen;
    let live = seen.live.entry(owner.clone()).or_default();
    if present {
        if live.is_empty() {
            seen.granted.entry(owner.clone()).or_insert(now);
        }
        live.insert(key);
    } else if live.remove(&key) && live.is_empty() {
        seen.revoked.insert(owner.clone(), now);
    }
}

fn watch<K>(api: Api<K>, seen: Arc<Mutex<Seen>>, kind: &'static str) -> tokio::task::JoinHandle<()>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default().labels(MANAGED));
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(b) | watcher::Event::InitApply(b)) => {
                    record(&seen, b.meta(), kind, b.meta().deletion_timestamp.is_none())
                }
                Ok(watcher::Event::Delete(b)) => record(&seen, b.meta(), kind, false),
                _ => {}
            }
        }
    })
}

impl BindingClock {
    fn start(client: &kube::Client) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let tasks = vec![
            watch(
                Api::<ClusterRoleBinding>::all(client.clone()),
                seen.clone(),
                "ClusterRoleBinding",
            ),
            watch(
                Api::<RoleBinding>::all(client.clone()),
                seen.clone(),
                "RoleBinding",
            ),
        ];
        Self { seen, tasks }
    }

    fn granted(&self, name: &str) -> Option<Timestamp> {
        self.seen.lock().expect("lock").granted.get(name).copied()
    }

    fn revoked(&self, name: &str) -> Option<Timestamp> {
        self.seen.lock().expect("lock").revoked.get(name).copied()
    }
}

/// p50 and worst of delays, in milliseconds.
fn summary(mut delays: Vec<i64>) -> (i64, i64) {
    delays.sort();
    (delays[delays.len() / 2], delays[delays.len() - 1])
}

async fn metric(operator: &OperatorProcess, name: &str) -> Option<String> {
    let (_, text) = operator.get("/metrics").await?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_string))
}

#[tokio::test]
async fn fifty_grants_start_and_end_within_a_second_of_their_times() {
    const GRANTS: usize = 50;
    let _one = ONE_WORLD_AT_A_TIME.lock().await;
    let world = World::start().await;
    let operator = world.operator(&[RESYNC]).await;
    let clock = BindingClock::start(&world.client);
    let selected = "time-bound-selected";
    Api::<Namespace>::all(world.client.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(selected.into()),
                    labels: Some(BTreeMap::from([("time-bound".into(), "yes".into())])),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("namespace");
    let groups: Vec<String> = (0..5)
        .map(|i| world.group(&format!("k8s-tb-{i}")))
        .collect();

    // Starts from 12 s from now, over five seconds; each lasts 5 s. Group, a named
    // namespace, a namespace selector, and Users mode all take part.
    let first_start = 12_000;
    let mut grants = Vec::new();
    for i in 0..GRANTS {
        let name = format!("grant-{i:02}");
        let start = at(millis(first_start + 1000 * (i % 5) as i64));
        let end = Time(start.0 + SignedDuration::from_secs(5));
        let mut spec = view_of(&groups[i % groups.len()]);
        match i % 4 {
            1 => {
                spec.cluster_role_bindings.clear();
                spec.role_bindings = vec![RoleBindingSpec {
                    namespace: Some("default".into()),
                    namespace_selector: None,
                    role: None,
                    cluster_role: Some("view".into()),
                }];
            }
            2 => {
                spec.cluster_role_bindings.clear();
                spec.role_bindings = vec![RoleBindingSpec {
                    namespace: None,
                    namespace_selector: Some(NamespaceSelector {
                        match_labels: Some(BTreeMap::from([("time-bound".into(), "yes".into())])),
                        match_expressions: None,
                    }),
                    role: None,
                    cluster_role: Some("view".into()),
                }];
            }
            3 => spec.subject.kind = SubjectKind::Users,
            _ => {}
        }
        spec.start_time = Some(start.clone());
        spec.end_time = Some(end.clone());
        world.create(&name, spec).await;
        grants.push((name, start.0, end.0));
    }

    // Ahead of the start: verified, nothing bound, Ready (the declared state: nothing yet).
    for (name, _, _) in grants.iter().step_by(7) {
        let object =
            wait_condition(&world.client, name, "Active", "False", Some("NotYetActive")).await;
        assert_eq!(
            condition(&object, "Ready").map(|c| (c.status.as_str(), c.reason.as_str())),
            Some(("True", "NotYetActive"))
        );
        assert_eq!(
            condition(&object, "GroupVerified").map(|c| c.status.as_str()),
            Some("True"),
            "verified before the start"
        );
        assert_eq!(
            world.bindings_of(name).await,
            0,
            "{name}: nothing before the start"
        );
    }
    assert!(
        Timestamp::now() < grants[0].1,
        "the objects were applied and checked before the first start"
    );
    assert_eq!(
        metric(&operator, "okta_rbac_grants_ending_within_hour")
            .await
            .as_deref(),
        Some(GRANTS.to_string().as_str())
    );

    // Until the last end, and a little more.
    let last_end = grants.iter().map(|g| g.2).max().expect("grants");
    let mut checked_active = false;
    while Timestamp::now() < last_end + SignedDuration::from_secs(3) {
        if !checked_active && Timestamp::now() > grants[0].1 + SignedDuration::from_secs(2) {
            let object = world.objects().get(&grants[0].0).await.expect("get");
            let status = object.status.expect("status");
            assert_eq!(status.active_since.map(|t| t.0), Some(grants[0].1));
            assert_eq!(status.active_until.map(|t| t.0), Some(grants[0].2));
            checked_active = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(checked_active);
    let (mut starts, mut ends) = (Vec::new(), Vec::new());
    for (name, start, end) in &grants {
        let granted = clock
            .granted(name)
            .unwrap_or_else(|| panic!("{name} was never granted"));
        let revoked = clock
            .revoked(name)
            .unwrap_or_else(|| panic!("{name} was never revoked"));
        assert!(granted >= *start, "{name}: granted before its start");
        assert!(revoked >= *end, "{name}: revoked before its end");
        starts.push(granted.duration_since(*start).as_millis() as i64);
        ends.push(revoked.duration_since(*end).as_millis() as i64);
    }
    let (start_p50, start_worst) = summary(starts);
    let (end_p50, end_worst) = summary(ends);
    println!(
        "{GRANTS} grants: bindings seen {start_p50} ms after the start (p50), {start_worst} ms worst; \
         gone {end_p50} ms after the end (p50), {end_worst} ms worst"
    );
    assert!(
        start_worst <= 1000,
        "every grant starts within a second: {start_worst} ms"
    );
    assert!(
        end_worst <= 1000,
        "every grant ends within a second: {end_worst} ms"
    );
    assert_eq!(
        metric(&operator, "okta_rbac_grants_ending_within_hour")
            .await
            .as_deref(),
        Some("0")
    );
    for reason in ["NotYetActive", "Active", "Expired"] {
        let events = Api::<Event>::all(world.client.clone())
            .list(&ListParams::default().fields(&format!("involvedObject.name={}", grants[0].0)))
            .await
            .expect("events");
        assert!(
            events
                .items
                .iter()
                .any(|e| e.reason.as_deref() == Some(reason)),
            "an event {reason}: {:?}",
            events
                .items
                .iter()
                .map(|e| e.reason.clone())
                .collect::<Vec<_>>()
        );
    }
    let expired = world.objects().get(&grants[0].0).await.expect("get");
    assert_eq!(
        condition(&expired, "Ready").map(|c| (c.status.as_str(), c.reason.as_str())),
        Some(("True", "Expired"))
    );
}

#[tokio::test]
async fn a_grant_over_when_applied_creates_nothing_ever_and_adopts_no_orphan() {
    let _one = ONE_WORLD_AT_A_TIME.lock().await;
    let world = World::start().await;
    let _operator = world.operator(&[RESYNC]).await;
    let group = world.group("k8s-tb-late");

    // An object deleted with --cascade=orphan leaves its binding behind...
    let name = "late-grant";
    world.create(name, view_of(&group)).await;
    wait_condition(&world.client, name, "Ready", "True", Some("Ready")).await;
    world
        .objects()
        .delete(name, &DeleteParams::orphan())
        .await
        .expect("delete, orphaning the bindings");
    eventually(GARBAGE_COLLECTOR_WAIT, "the object is gone", || async {
        world
            .objects()
            .get_opt(name)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(
        world.bindings_of(name).await,
        1,
        "the orphan is left behind"
    );
    world.sim.clear_requests();

    // ... and the same object applied again, already over, deletes it rather than adopt it.
    let mut over = view_of(&group);
    over.start_time = Some(at(SignedDuration::from_secs(-7200)));
    over.end_time = Some(at(SignedDuration::from_secs(-3600)));
    world.create(name, over).await;
    let expired = wait_condition(&world.client, name, "Active", "False", Some("Expired")).await;
    assert_eq!(
        condition(&expired, "Ready").map(|c| (c.status.as_str(), c.reason.as_str())),
        Some(("True", "Expired"))
    );
    eventually(Duration::from_secs(10), "the orphan is deleted", || async {
        (world.bindings_of(name).await == 0).then_some(())
    })
    .await;
    // What a person sees at a glance.
    let table = world
        .plane
        .kubectl(&["get", "ogb", name], None)
        .expect("kubectl get");
    // Columns by their header's position: an empty cell (VERIFIED, for a grant that was
    // never verified) must not shift the others.
    let mut lines = table.stdout.lines();
    let header = lines.next().expect("header");
    let row = lines.next().expect("row");
    let column = |title: &str| {
        let start = header.find(title)?;
        let rest = &row[start.min(row.len())..];
        Some(rest.split_whitespace().next().unwrap_or(""))
    };
    assert_eq!(column("READY"), Some("True"), "{}", table.stdout);
    assert_eq!(column("ACTIVE"), Some("False"), "{}", table.stdout);
    let ends = expired.spec.end_time.as_ref().expect("end").0.to_string();
    assert_eq!(column("ENDS"), Some(ends.as_str()), "{}", table.stdout);
    // A change to the object makes the operator look again: still nothing.
    world
        .objects()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .expect("touch");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(world.bindings_of(name).await, 0, "created nothing, ever");
    assert!(
        world.sim.requests().iter().all(|r| !r
            .query
            .as_deref()
            .unwrap_or_default()
            .contains("k8s-tb-late")),
        "a grant that is over asks Okta nothing"
    );

    // Paused does not keep a grant past its end.
    let paused = "paused-grant";
    let mut spec = view_of(&group);
    spec.paused = false;
    spec.end_time = Some(at(SignedDuration::from_secs(6)));
    world.create(paused, spec).await;
    wait_condition(&world.client, paused, "Active", "True", Some("Active")).await;
    world
        .objects()
        .patch(
            paused,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"paused": true}})),
        )
        .await
        .expect("pause");
    wait_condition(&world.client, paused, "Paused", "True", None).await;
    assert_eq!(world.bindings_of(paused).await, 1);
    wait_condition(&world.client, paused, "Active", "False", Some("Expired")).await;
    assert_eq!(
        world.bindings_of(paused).await,
        0,
        "the end holds while paused"
    );
}

#[tokio::test]
async fn admission_refuses_an_end_before_the_start_and_a_time_that_is_not_one() {
    let _one = ONE_WORLD_AT_A_TIME.lock().await;
    let world = World::start().await;
    let mut backwards = view_of("k8s-anything");
    backwards.start_time = Some(at(SignedDuration::from_secs(3600)));
    backwards.end_time = Some(at(SignedDuration::from_secs(60)));
    let error = world
        .objects()
        .create(
            &PostParams::default(),
            &OktaGroupBinding::new("backwards", backwards),
        )
        .await
        .expect_err("an end before the start");
    assert!(
        error
            .to_string()
            .contains("endTime must be after startTime"),
        "{error}"
    );

    let mut not_a_time =
        serde_json::to_value(OktaGroupBinding::new("not-a-time", view_of("k8s-a"))).expect("json");
    not_a_time["spec"]["endTime"] = "tomorrow at six".into();
    let output = world
        .plane
        .kubectl(&["apply", "-f", "-"], Some(&not_a_time.to_string()))
        .expect("kubectl");
    assert!(!output.success);
    assert!(
        output.stderr.contains("spec.endTime")
            && output
                .stderr
                .contains("must be an RFC 3339 time such as 2026-12-01T09:00:00Z"),
        "{}",
        output.stderr
    );
}

/// How long after `end` the object's bindings were gone, waiting up to `within`.
async fn gone_after(world: &World, name: &str, end: Timestamp, within: Duration) -> SignedDuration {
    eventually(
        within,
        &format!("{name}'s bindings are deleted"),
        || async {
            (world.bindings_of(name).await == 0).then(|| Timestamp::now().duration_since(end))
        },
    )
    .await
}

#[tokio::test]
async fn the_end_holds_through_an_operator_restart_a_failover_and_an_apiserver_restart() {
    let _one = ONE_WORLD_AT_A_TIME.lock().await;
    let mut world = World::start().await;
    let group = world.group("k8s-tb-restarts");

    // The operator is down at the end: the grant ends as soon as it starts again.
    let mut operator = world.operator(&[RESYNC]).await;
    let name = "restart-grant";
    let mut spec = view_of(&group);
    spec.end_time = Some(at(SignedDuration::from_secs(8)));
    let end = spec.end_time.clone().expect("end").0;
    world.create(name, spec).await;
    wait_condition(&world.client, name, "Active", "True", Some("Active")).await;
    tokio::time::sleep(
        Duration::try_from(end.duration_since(Timestamp::now()) - SignedDuration::from_secs(3))
            .unwrap_or_default(),
    )
    .await;
    operator.kill();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(world.bindings_of(name).await, 1, "no operator, no deletion");
    let restarted = Timestamp::now();
    let operator = world.operator(&[RESYNC]).await;
    let after = gone_after(&world, name, end, Duration::from_secs(20)).await;
    let since_restart = Timestamp::now().duration_since(restarted);
    println!(
        "operator down across the end: deleted {:.1} s after the restart ({:.1} s after the end)",
        since_restart.as_secs_f64(),
        after.as_secs_f64()
    );
    assert!(
        since_restart <= SignedDuration::from_secs(5),
        "ended as soon as an operator started: {since_restart:?}"
    );
    drop(operator);

    // The leader dies just before the end: the standby ends the grant once it leads.
    let lease = "time-bound-lease";
    let replica = |identity: &str| {
        world
            .launch(identity, &[RESYNC])
            .args([
                "--leader-election",
                "--lease-namespace",
                "default",
                "--lease-name",
                lease,
            ])
            .args(["--lease-duration", "4s"])
            .start(&world.plane.dir().join(format!("{identity}.log")))
            .expect("replica")
    };
    let mut a = replica("replica-a");
    let mut b = replica("replica-b");
    let name = "failover-grant";
    let mut spec = view_of(&group);
    spec.end_time = Some(at(SignedDuration::from_secs(10)));
    let end = spec.end_time.clone().expect("end").0;
    world.create(name, spec).await;
    wait_condition(&world.client, name, "Active", "True", Some("Active")).await;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(world.client.clone(), "default");
    let leader = leases
        .get(lease)
        .await
        .expect("lease")
        .spec
        .and_then(|s| s.holder_identity)
        .expect("a leader");
    tokio::time::sleep(
        Duration::try_from(end.duration_since(Timestamp::now()) - SignedDuration::from_secs(1))
            .unwrap_or_default(),
    )
    .await;
    if leader == "replica-a" {
        a.kill();
    } else {
        b.kill();
    }
    let after = gone_after(&world, name, end, Duration::from_secs(30)).await;
    println!(
        "leader killed 1 s before the end: deleted {:.1} s after the end by the standby (lease 4 s)",
        after.as_secs_f64()
    );
    assert!(
        after <= SignedDuration::from_secs(8),
        "the standby ends the grant once it leads: {after:?}"
    );
    drop((a, b));

    // The apiserver restarts across the end: the deletion is retried until it is back.
    let operator = world.operator(&[RESYNC]).await;
    let name = "apiserver-grant";
    let mut spec = view_of(&group);
    spec.end_time = Some(at(SignedDuration::from_secs(8)));
    let end = spec.end_time.clone().expect("end").0;
    world.create(name, spec).await;
    wait_condition(&world.client, name, "Active", "True", Some("Active")).await;
    tokio::time::sleep(
        Duration::try_from(end.duration_since(Timestamp::now()) - SignedDuration::from_millis(500))
            .unwrap_or_default(),
    )
    .await;
    let took = world
        .plane
        .restart_apiserver()
        .await
        .expect("apiserver restart");
    let back = Timestamp::now();
    let after = gone_after(&world, name, end, Duration::from_secs(30)).await;
    println!(
        "apiserver restarted across the end (down {:.1} s): deleted {:.1} s after the end, {:.1} s after it was back",
        took.as_secs_f64(),
        after.as_secs_f64(),
        Timestamp::now().duration_since(back).as_secs_f64()
    );
    assert!(
        Timestamp::now().duration_since(back) <= SignedDuration::from_secs(10),
        "deleted within the retry backoff of the apiserver's return"
    );
    drop(operator);
}
