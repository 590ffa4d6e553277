//! Large clusters, each on a fresh control plane: one object whose namespaceSelector
//! matches 10,000 namespaces; 20,000 namespaces and 50,000 RoleBindings the operator does
//! not own beside the usual objects; an Okta org of 50,000 groups of which 5,000 are
//! bound; an hour of churn compressed (see `churn`). LARGE_CASES=selector,unowned,org,churn
//! picks them (all by default, none when empty).

use crate::results::Latency;
use crate::watch::watch_bindings;
use crate::workload::{MANAGED, TOKEN, create_namespaces, create_objects, group, spec};
use crate::{launch, ready};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, CustomResourceExt};
use okta_rbac_api::{
    ClusterRoleBindingSpec, NamespaceSelector, OktaGroupBinding, OktaGroupBindingSpec,
    RoleBindingSpec,
};
use okta_rbac_testenv::{ControlPlane, ControlPlaneOptions, OperatorProcess};
use okta_sim::{OktaSim, Seed, SimOptions};
use std::path::Path;
use std::time::{Duration, Instant};

/// Writes the bench makes at once to set a case up.
const SETUP_CONCURRENCY: usize = 64;

pub struct SelectorCase {
    pub namespaces: usize,
    pub seconds: f64,
    pub status_bytes: usize,
    pub listed: usize,
    pub counted: i32,
    pub peak_mib: f64,
}

pub struct UnownedCase {
    pub namespaces: usize,
    pub role_bindings: usize,
    pub objects: usize,
    pub steady_mib_before: f64,
    pub steady_mib_after: f64,
    /// Restarted among the unowned objects: until every object is Ready again.
    pub restart_seconds: f64,
}

pub struct OrgCase {
    pub groups: usize,
    pub objects: usize,
    pub seconds: f64,
    pub okta_requests: usize,
    pub peak_mib: f64,
    pub apply_to_ready: Latency,
}

#[derive(Default)]
pub struct LargeResults {
    pub selector: Option<SelectorCase>,
    pub unowned: Option<UnownedCase>,
    pub org: Option<OrgCase>,
    pub churn: Option<crate::churn::ChurnCase>,
}

pub(crate) async fn plane() -> (ControlPlane, Client) {
    let plane = ControlPlane::start(ControlPlaneOptions {
        crds: vec![OktaGroupBinding::crd()],
        ..Default::default()
    })
    .await
    .expect("control plane");
    let client = plane.client().await.expect("client");
    (plane, client)
}

pub(crate) async fn okta(groups: usize) -> OktaSim {
    OktaSim::start(SimOptions::new(Seed::groups_only(
        TOKEN,
        (0..groups).map(group),
    )))
    .await
    .expect("local Okta")
}

pub(crate) async fn started(
    plane: &ControlPlane,
    sim: &OktaSim,
    operator_bin: &Path,
    name: &str,
) -> OperatorProcess {
    let mut operator = launch(plane, sim, operator_bin, 1000, &[])
        .start(&plane.dir().join(format!("operator-{name}.log")))
        .expect("start the operator");
    operator
        .wait_ready(Duration::from_secs(300))
        .await
        .expect("operator ready");
    operator
}

/// `count` namespaces named `{prefix}-NNNNN` with `labels`, many at a time.
async fn namespaces(client: &Client, prefix: &str, count: usize, labels: &[(&str, &str)]) {
    let api = Api::<Namespace>::all(client.clone());
    let labels: std::collections::BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    futures::stream::iter(0..count)
        .map(|n| {
            let namespace = Namespace {
                metadata: ObjectMeta {
                    name: Some(format!("{prefix}-{n:05}")),
                    labels: Some(labels.clone()),
                    ..Default::default()
                },
                ..Default::default()
            };
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &namespace)
                    .await
                    .expect("create a namespace");
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
}

pub(crate) async fn until_ready(
    objects: &kube::runtime::reflector::Store<OktaGroupBinding>,
    count: usize,
    what: &str,
) {
    let started = Instant::now();
    while objects.state().iter().filter(|o| ready(o)).count() < count {
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "{what}: not every object Ready after 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn objects_store(
    client: &Client,
) -> kube::runtime::reflector::Store<OktaGroupBinding> {
    crate::watch::reflect(
        Api::<OktaGroupBinding>::all(client.clone()),
        Default::default(),
    )
    .await
}

/// One object, one namespaceSelector, 10,000 matching namespaces.
pub async fn selector(operator_bin: &Path) -> SelectorCase {
    const NAMESPACES: usize = 10_000;
    eprintln!(">> large: one namespaceSelector over {NAMESPACES} namespaces");
    let (plane, client) = plane().await;
    let sim = okta(1).await;
    namespaces(
        &client,
        "selected",
        NAMESPACES,
        &[("bench-tier", "selected")],
    )
    .await;
    let operator = started(&plane, &sim, operator_bin, "selector").await;
    let (_, rbs) = watch_bindings(&client, MANAGED).await;
    let objects = objects_store(&client).await;
    let object = OktaGroupBinding::new(
        "every-selected-namespace",
        OktaGroupBindingSpec {
            group: group(0),
            subject: Default::default(),
            cluster_role_bindings: vec![],
            role_bindings: vec![RoleBindingSpec {
                namespace: None,
                namespace_selector: Some(NamespaceSelector {
                    match_labels: Some([("bench-tier".to_string(), "selected".to_string())].into()),
                    match_expressions: None,
                }),
                role: None,
                cluster_role: Some("view".into()),
            }],
            on_group_missing: Default::default(),
            paused: false,
            start_time: None,
            end_time: None,
        },
    );
    let api = Api::<OktaGroupBinding>::all(client.clone());
    let applied = Instant::now();
    api.create(&PostParams::default(), &object)
        .await
        .expect("create the object");
    until_ready(&objects, 1, "selector").await;
    while rbs.len() < NAMESPACES {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = applied.elapsed().as_secs_f64();
    let stored = api
        .get("every-selected-namespace")
        .await
        .expect("get the object");
    let status = stored.status.expect("status");
    let result = SelectorCase {
        namespaces: NAMESPACES,
        seconds,
        status_bytes: serde_json::to_vec(&status).map_or(0, |b| b.len()),
        listed: status.bindings.len(),
        counted: status.binding_count,
        peak_mib: operator.peak_memory_kib().unwrap_or_default() as f64 / 1024.0,
    };
    eprintln!(
        "   {:.1} s to Ready with {} RoleBindings; status {} bytes, {} listed, bindingCount {}",
        result.seconds,
        rbs.len(),
        result.status_bytes,
        result.listed,
        result.counted
    );
    result
}

fn unowned_binding(namespace: String, n: usize) -> RoleBinding {
    RoleBinding {
        metadata: ObjectMeta {
            name: Some(format!("hand-written-{n}")),
            namespace: Some(namespace),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: "view".into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "User".into(),
            name: format!("someone-{n}@example.com"),
            namespace: None,
        }]),
    }
}

/// The workload's objects before and after 20,000 namespaces and 50,000 RoleBindings that
/// are not the operator's arrive: its memory, restarted, must not grow with them.
pub async fn unowned(operator_bin: &Path) -> UnownedCase {
    const NAMESPACES: usize = 20_000;
    const ROLE_BINDINGS: usize = 50_000;
    const OBJECTS: usize = 1_000;
    eprintln!(
        ">> large: {OBJECTS} objects beside {NAMESPACES} namespaces and {ROLE_BINDINGS} RoleBindings not the operator's"
    );
    let (plane, client) = plane().await;
    let sim = okta(OBJECTS).await;
    create_namespaces(&client).await;
    let objects = objects_store(&client).await;
    let api = Api::<OktaGroupBinding>::all(client.clone());
    create_objects(
        api.clone(),
        (0..OBJECTS).map(|i| (format!("team-{i:05}"), spec(i))),
    )
    .await;
    let operator = started(&plane, &sim, operator_bin, "unowned-before").await;
    until_ready(&objects, OBJECTS, "unowned, before").await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let steady_mib_before = operator.memory_kib().unwrap_or_default() as f64 / 1024.0;
    drop(operator);

    namespaces(&client, "unowned", NAMESPACES, &[("team", "someone-else")]).await;
    futures::stream::iter(0..ROLE_BINDINGS)
        .map(|n| {
            let namespace = format!("unowned-{:05}", n % NAMESPACES);
            let binding = unowned_binding(namespace.clone(), n);
            let client = client.clone();
            async move {
                Api::<RoleBinding>::namespaced(client, &namespace)
                    .create(&PostParams::default(), &binding)
                    .await
                    .expect("create a RoleBinding");
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    let restarted = Instant::now();
    let operator = started(&plane, &sim, operator_bin, "unowned-after").await;
    // Ready already; every object is reconciled again after the restart.
    until_ready(&objects, OBJECTS, "unowned, after").await;
    let restart_seconds = restarted.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let steady_mib_after = operator.memory_kib().unwrap_or_default() as f64 / 1024.0;
    eprintln!("   steady {steady_mib_before:.1} MiB before, {steady_mib_after:.1} MiB after");
    UnownedCase {
        namespaces: NAMESPACES,
        role_bindings: ROLE_BINDINGS,
        objects: OBJECTS,
        steady_mib_before,
        steady_mib_after,
        restart_seconds,
    }
}

/// 5,000 objects, each binding one of the org's 50,000 groups cluster-wide.
pub async fn org(operator_bin: &Path) -> OrgCase {
    const GROUPS: usize = 50_000;
    const OBJECTS: usize = 5_000;
    const SAMPLES: usize = 20;
    eprintln!(">> large: {OBJECTS} objects bound to groups of an org of {GROUPS}");
    let (plane, client) = plane().await;
    let sim = okta(GROUPS).await;
    let mut operator = launch(&plane, &sim, operator_bin, OBJECTS, &[])
        .start(&plane.dir().join("operator-org.log"))
        .expect("start the operator");
    operator
        .wait_ready(Duration::from_secs(60))
        .await
        .expect("operator ready");
    let objects = objects_store(&client).await;
    let api = Api::<OktaGroupBinding>::all(client.clone());
    let cluster_wide = |i: usize| OktaGroupBindingSpec {
        group: group(i * (GROUPS / OBJECTS)),
        subject: Default::default(),
        cluster_role_bindings: vec![ClusterRoleBindingSpec {
            cluster_role: "view".into(),
        }],
        role_bindings: vec![],
        on_group_missing: Default::default(),
        paused: false,
        start_time: None,
        end_time: None,
    };
    sim.clear_requests();
    let started = Instant::now();
    create_objects(
        api.clone(),
        (0..OBJECTS).map(|i| (format!("org-{i:05}"), cluster_wide(i))),
    )
    .await;
    until_ready(&objects, OBJECTS, "org").await;
    let seconds = started.elapsed().as_secs_f64();
    let okta_requests = sim.requests().len();
    let mut apply_to_ready = Vec::new();
    for i in 0..SAMPLES {
        // Groups no object binds yet, spread over the org.
        let name = format!("org-sample-{i:02}");
        let mut spec = cluster_wide(i);
        spec.group = group(i * (GROUPS / OBJECTS) + 1);
        let applied = Instant::now();
        api.create(&PostParams::default(), &OktaGroupBinding::new(&name, spec))
            .await
            .expect("create a sample");
        while !objects
            .state()
            .iter()
            .any(|o| o.metadata.name.as_deref() == Some(name.as_str()) && ready(o))
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        apply_to_ready.push(applied.elapsed().as_secs_f64());
    }
    let result = OrgCase {
        groups: GROUPS,
        objects: OBJECTS,
        seconds,
        okta_requests,
        peak_mib: operator.peak_memory_kib().unwrap_or_default() as f64 / 1024.0,
        apply_to_ready: Latency::of(apply_to_ready),
    };
    eprintln!(
        "   {:.1} s, {} Okta requests to converge; apply -> Ready p50 {:.0} ms",
        result.seconds,
        result.okta_requests,
        result.apply_to_ready.p50 * 1000.0
    );
    result
}

pub async fn run(operator_bin: &Path) -> LargeResults {
    let cases =
        std::env::var("LARGE_CASES").unwrap_or_else(|_| "selector,unowned,org,churn".into());
    let wanted = |name: &str| cases.split(',').any(|c| c.trim() == name);
    let mut results = LargeResults::default();
    if wanted("selector") {
        results.selector = Some(selector(operator_bin).await);
    }
    if wanted("unowned") {
        results.unowned = Some(unowned(operator_bin).await);
    }
    if wanted("org") {
        results.org = Some(org(operator_bin).await);
    }
    if wanted("churn") {
        results.churn = Some(crate::churn::churn(operator_bin).await);
    }
    results
}

pub fn table(results: &LargeResults) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if let Some(c) = &results.selector {
        let _ = writeln!(
            out,
            "- **One namespaceSelector over {} namespaces**: Ready with every RoleBinding in {:.1} s; \
             the status is {} bytes ({} bindings listed, bindingCount {}); operator peak {:.1} MiB.",
            c.namespaces, c.seconds, c.status_bytes, c.listed, c.counted, c.peak_mib
        );
    }
    if let Some(c) = &results.unowned {
        let _ = writeln!(
            out,
            "- **{} namespaces and {} RoleBindings not the operator's** beside {} objects: steady \
             memory {:.1} MiB before they existed, {:.1} MiB after (restarted; every object Ready again in {:.1} s).",
            c.namespaces,
            c.role_bindings,
            c.objects,
            c.steady_mib_before,
            c.steady_mib_after,
            c.restart_seconds
        );
    }
    if let Some(c) = &results.churn {
        out.push_str(&crate::churn::line(c));
    }
    if let Some(c) = &results.org {
        let _ = writeln!(
            out,
            "- **An Okta org of {} groups, {} bound** (one ClusterRoleBinding each): converged in {:.1} s \
             with {} Okta requests; operator peak {:.1} MiB; one more object apply → Ready p50 / p99 {:.0} / {:.0} ms.",
            c.groups,
            c.objects,
            c.seconds,
            c.okta_requests,
            c.peak_mib,
            c.apply_to_ready.p50 * 1000.0,
            c.apply_to_ready.p99 * 1000.0
        );
    }
    out
}
