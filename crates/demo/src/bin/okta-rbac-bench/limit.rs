//! The limit: a tight client that creates the same bindings directly, with the operator's
//! concurrency, and removes them again before the operator runs.

use crate::apiserver::apiserver_writes;
use crate::results::LimitResult;
use crate::watch::watch_bindings;
use crate::workload::{
    CONCURRENCY, LIMIT_LABEL, NAMESPACES, NAMESPACES_PER_OBJECT, group, namespace, namespaces_of,
};
use futures::StreamExt;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use std::time::{Duration, Instant};

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

fn limit_meta(name: String, namespace: Option<String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace,
        labels: Some([(LIMIT_LABEL.to_string(), "limit".to_string())].into()),
        ..Default::default()
    }
}

/// The limit: the same bindings, created directly.
pub async fn run_limit(client: &Client, objects: usize) -> LimitResult {
    let (crbs, rbs) = watch_bindings(client, &format!("{LIMIT_LABEL}=limit")).await;
    let before = apiserver_writes(client).await;
    let started = Instant::now();
    futures::stream::iter(0..objects)
        .map(|i| {
            let client = client.clone();
            async move {
                let params = PostParams::default();
                let crb = ClusterRoleBinding {
                    metadata: limit_meta(format!("limit-{i:05}-view"), None),
                    role_ref: view(),
                    subjects: Some(subject(i)),
                };
                Api::<ClusterRoleBinding>::all(client.clone())
                    .create(&params, &crb)
                    .await
                    .expect("create ClusterRoleBinding");
                for ns in namespaces_of(i) {
                    let rb = RoleBinding {
                        metadata: limit_meta(format!("limit-{i:05}-view"), Some(ns.clone())),
                        role_ref: view(),
                        subjects: Some(subject(i)),
                    };
                    Api::<RoleBinding>::namespaced(client.clone(), &ns)
                        .create(&params, &rb)
                        .await
                        .expect("create RoleBinding");
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    // Measured as for the operator: until the bench's own watch has seen every binding.
    while crbs.len() < objects || rbs.len() < objects * NAMESPACES_PER_OBJECT {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let writes = apiserver_writes(client).await - before;

    // Clean up before the operator runs: one delete-collection per namespace.
    let selector = ListParams::default().labels(&format!("{LIMIT_LABEL}=limit"));
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
    LimitResult { seconds, writes }
}
