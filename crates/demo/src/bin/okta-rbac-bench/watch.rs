//! The bench's own view of the cluster, as a watch shows it: convergence is measured
//! until the bench itself has seen every binding. The watches are the operator's own
//! caches (`okta_rbac_operator::cache`), run in the bench's process.

use futures::StreamExt;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use kube::Client;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use okta_rbac_operator::cache::{Keep, WatchStates, cached};

/// A cache of one kind, kept up to date until the bench ends; returned once it has its
/// first full list.
pub async fn reflect<K>(api: Api<K>, config: watcher::Config) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let states = std::sync::Arc::new(WatchStates::new(Default::default(), Default::default()));
    let (report, synced) = states.register("the bench's watch");
    let (store, changes) = cached(api, config, Keep::Object, |_| {}, report);
    tokio::spawn(changes.for_each(|_| async {}));
    assert!(synced.wait().await, "the bench's watch started");
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
    )
    .await;
    let rbs = reflect(Api::<RoleBinding>::all(client.clone()), config).await;
    (crbs, rbs)
}
