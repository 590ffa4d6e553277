//! The true limit: the fastest way this apiserver accepts the same bindings. A direct
//! client creates every binding (no objects, no Okta, no status) at several
//! concurrencies, and the best run counts; the bindings are removed again before the
//! operator runs.

use crate::apiserver::apiserver_writes;
use crate::cpu::CpuMeter;
use crate::results::LimitResult;
use crate::watch::watch_bindings;
use crate::workload::{
    LIMIT_LABEL, NAMESPACES, NAMESPACES_PER_OBJECT, group, namespace, namespaces_of,
};
use futures::StreamExt;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::reflector::Store;
use std::time::{Duration, Instant};

/// Requests in flight at once, swept.
const CONCURRENCIES: [usize; 4] = [16, 32, 64, 128];

fn subject(i: usize) -> Vec<Subject> {
    vec![Subject {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "Group".into(),
        name: group(i),
        namespace: None,
    }]
}

fn view() -> RoleRef {
    RoleRef {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "ClusterRole".into(),
        name: "view".into(),
    }
}

fn limit_meta(name: String, namespace: Option<String>, run: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace,
        labels: Some([(LIMIT_LABEL.to_string(), run.to_string())].into()),
        ..Default::default()
    }
}

/// One binding of the workload: object `i`'s ClusterRoleBinding (`None`) or its
/// RoleBinding in a namespace, labelled `bench=<run>`.
pub async fn create(client: &Client, run: &str, i: usize, namespace: Option<String>) {
    let params = PostParams::default();
    let name = format!("{run}-{i:05}-view");
    match namespace {
        None => {
            let crb = ClusterRoleBinding {
                metadata: limit_meta(name, None, run),
                role_ref: view(),
                subjects: Some(subject(i)),
            };
            Api::<ClusterRoleBinding>::all(client.clone())
                .create(&params, &crb)
                .await
                .expect("create ClusterRoleBinding");
        }
        Some(ns) => {
            let rb = RoleBinding {
                metadata: limit_meta(name, Some(ns.clone()), run),
                role_ref: view(),
                subjects: Some(subject(i)),
            };
            Api::<RoleBinding>::namespaced(client.clone(), &ns)
                .create(&params, &rb)
                .await
                .expect("create RoleBinding");
        }
    }
}

/// Every binding at `concurrency`, until the bench's own watch has seen them all (as for
/// the operator), then removed: the seconds it took and the apiserver's writes.
async fn one_run(
    client: &Client,
    processes: &[(String, u32)],
    objects: usize,
    concurrency: usize,
) -> (f64, u64) {
    let (crbs, rbs) = watch_bindings(client, &format!("{LIMIT_LABEL}=limit")).await;
    let bindings = (0..objects).flat_map(|i| {
        std::iter::once((i, None)).chain(namespaces_of(i).map(move |ns| (i, Some(ns))))
    });
    let before = apiserver_writes(client).await;
    let cpu = CpuMeter::start(processes.iter().cloned());
    let started = Instant::now();
    futures::stream::iter(bindings)
        .map(|(i, ns)| create(client, "limit", i, ns))
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    until_seen((&crbs, &rbs), objects).await;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "   limit at concurrency {concurrency}: {}",
        cpu.report(seconds)
    );
    let writes = apiserver_writes(client).await - before;

    remove(client, "limit", (&crbs, &rbs)).await;
    (seconds, writes)
}

/// Waits until the watch has seen every binding of `objects` objects.
pub async fn until_seen(
    (crbs, rbs): (&Store<ClusterRoleBinding>, &Store<RoleBinding>),
    objects: usize,
) {
    while crbs.len() < objects || rbs.len() < objects * NAMESPACES_PER_OBJECT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Removes the bindings labelled `bench=<run>`, one delete-collection per namespace, and
/// waits until the watch shows none.
pub async fn remove(
    client: &Client,
    run: &str,
    (crbs, rbs): (&Store<ClusterRoleBinding>, &Store<RoleBinding>),
) {
    let selector = ListParams::default().labels(&format!("{LIMIT_LABEL}={run}"));
    Api::<ClusterRoleBinding>::all(client.clone())
        .delete_collection(&DeleteParams::default(), &selector)
        .await
        .expect("delete ClusterRoleBindings");
    for n in 0..NAMESPACES {
        Api::<RoleBinding>::namespaced(client.clone(), &namespace(n))
            .delete_collection(&DeleteParams::default(), &selector)
            .await
            .expect("delete RoleBindings");
    }
    while !crbs.is_empty() || !rbs.is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The limit: the best of the sweep.
pub async fn run_limit(
    client: &Client,
    processes: &[(String, u32)],
    objects: usize,
) -> LimitResult {
    let mut best: Option<LimitResult> = None;
    for concurrency in CONCURRENCIES {
        let (seconds, writes) = one_run(client, processes, objects, concurrency).await;
        eprintln!("   limit at concurrency {concurrency}: {seconds:.2} s");
        if best.as_ref().is_none_or(|b| seconds < b.seconds) {
            best = Some(LimitResult {
                seconds,
                concurrency,
                writes,
            });
        }
    }
    best.expect("a run")
}
