//! The true limit: the fastest way this apiserver accepts the same bindings. A direct
//! client creates every binding (no objects, no Okta, no status) at several
//! concurrencies, and the best run counts; the bindings are removed again before the
//! operator runs. At the best concurrency the same bindings are then written once more
//! by server-side apply, the other way an operator can write them, to compare the two.

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
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
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

/// How the bindings are written.
#[derive(Clone, Copy, Debug)]
pub enum Write {
    /// A create (POST), as the operator writes a binding that is not there.
    Create,
    /// A server-side apply (PATCH, `application/apply-patch+yaml`, forced).
    Apply,
}

async fn write<K>(api: Api<K>, how: Write, object: &K, name: &str)
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match how {
        Write::Create => {
            api.create(&PostParams::default(), object)
                .await
                .expect("create a binding");
        }
        Write::Apply => {
            let params = PatchParams::apply("okta-rbac-bench").force();
            api.patch(name, &params, &Patch::Apply(object))
                .await
                .expect("apply a binding");
        }
    }
}

/// One binding of the workload: object `i`'s ClusterRoleBinding (`None`) or its
/// RoleBinding in a namespace, labelled `bench=<run>`.
pub async fn create(client: &Client, run: &str, i: usize, namespace: Option<String>) {
    write_binding(client, Write::Create, run, i, namespace).await
}

async fn write_binding(
    client: &Client,
    how: Write,
    run: &str,
    i: usize,
    namespace: Option<String>,
) {
    let name = format!("{run}-{i:05}-view");
    match namespace {
        None => {
            let crb = ClusterRoleBinding {
                metadata: limit_meta(name.clone(), None, run),
                role_ref: view(),
                subjects: Some(subject(i)),
            };
            write(Api::all(client.clone()), how, &crb, &name).await
        }
        Some(ns) => {
            let rb = RoleBinding {
                metadata: limit_meta(name.clone(), Some(ns.clone()), run),
                role_ref: view(),
                subjects: Some(subject(i)),
            };
            write(Api::namespaced(client.clone(), &ns), how, &rb, &name).await
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
    how: Write,
) -> (f64, u64) {
    let (crbs, rbs) = watch_bindings(client, &format!("{LIMIT_LABEL}=limit")).await;
    let bindings = (0..objects).flat_map(|i| {
        std::iter::once((i, None)).chain(namespaces_of(i).map(move |ns| (i, Some(ns))))
    });
    let before = apiserver_writes(client).await;
    let cpu = CpuMeter::start(processes.iter().cloned());
    let started = Instant::now();
    futures::stream::iter(bindings)
        .map(|(i, ns)| write_binding(client, how, "limit", i, ns))
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    until_seen((&crbs, &rbs), objects).await;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "   limit ({how:?}) at concurrency {concurrency}: {}",
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

/// The limit: the best of the sweep of creates, then server-side apply at its concurrency.
pub async fn run_limit(
    client: &Client,
    processes: &[(String, u32)],
    objects: usize,
) -> LimitResult {
    let mut best: Option<(f64, usize, u64)> = None;
    for concurrency in CONCURRENCIES {
        let (seconds, writes) =
            one_run(client, processes, objects, concurrency, Write::Create).await;
        eprintln!("   limit at concurrency {concurrency}: {seconds:.2} s");
        if best.is_none_or(|(best_seconds, ..)| seconds < best_seconds) {
            best = Some((seconds, concurrency, writes));
        }
    }
    let (seconds, concurrency, writes) = best.expect("a run");
    let (apply_seconds, _) = one_run(client, processes, objects, concurrency, Write::Apply).await;
    eprintln!("   server-side apply at concurrency {concurrency}: {apply_seconds:.2} s");
    LimitResult {
        seconds,
        concurrency,
        writes,
        apply_seconds,
    }
}
