//! The bench's own view of the cluster, as a watch shows it: convergence is measured
//! until the bench itself has seen every binding.

use futures::TryStreamExt;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use kube::Client;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};

pub fn reflect<K>(api: Api<K>, config: watcher::Config) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watcher(api, config).default_backoff().reflect(writer);
    tokio::spawn(async move {
        let _ = stream.try_for_each(|_| async { Ok(()) }).await;
    });
    store
}

/// The bench's view of the bindings with these labels, as a watch shows them.
pub async fn watch_bindings(
    client: &Client,
    labels: &str,
) -> (Store<ClusterRoleBinding>, Store<RoleBinding>) {
    let config = watcher::Config::default().labels(labels);
    let crbs = reflect(
        Api::<ClusterRoleBinding>::all(client.clone()),
        config.clone(),
    );
    let rbs = reflect(Api::<RoleBinding>::all(client.clone()), config);
    let ready = crbs.wait_until_ready().await.is_ok() && rbs.wait_until_ready().await.is_ok();
    assert!(ready, "bench watches started");
    (crbs, rbs)
}
