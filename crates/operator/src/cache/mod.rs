//! The operator's view of the cluster: one watch-fed cache per kind it reads (its own
//! bindings, namespaces, roles), an index of which object owns which binding, and the
//! bindings it created whose watch events are still on their way.

mod owners;

use crate::binding::BindingRef;
use crate::labels::{OWNER_ANNOTATION, OWNER_UID_LABEL};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::ResourceExt;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Config};
pub use owners::{OwnerIndex, orphan_key};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The cluster as the operator's watches see it.
#[derive(Clone)]
pub struct Stores {
    pub cluster_role_bindings: Store<ClusterRoleBinding>,
    pub role_bindings: Store<RoleBinding>,
    pub namespaces: Store<Namespace>,
    pub cluster_roles: Store<PartialObjectMeta<ClusterRole>>,
    pub roles: Store<PartialObjectMeta<Role>>,
    pub cluster_role_binding_owners: Arc<OwnerIndex<ClusterRoleBinding>>,
    pub role_binding_owners: Arc<OwnerIndex<RoleBinding>>,
}

fn owned_by_uid<K: kube::Resource>(object: &K, uid: &str) -> bool {
    object.labels().get(OWNER_UID_LABEL).map(String::as_str) == Some(uid)
        && !object.owner_references().is_empty()
}

fn orphaned_by<K: kube::Resource>(object: &K, name: &str) -> bool {
    object.owner_references().is_empty()
        && object
            .annotations()
            .get(OWNER_ANNOTATION)
            .map(String::as_str)
            == Some(name)
}

/// The cached bindings the index files under `key`, each checked against the cached
/// object itself: the index and the store are fed by the same watch, not atomically.
fn filed<K>(
    store: &Store<K>,
    index: &OwnerIndex<K>,
    key: &str,
    check: impl Fn(&K) -> bool,
) -> Vec<Arc<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    index
        .owned_by(key)
        .iter()
        .filter_map(|reference| store.get(reference))
        .filter(|b| check(b.as_ref()))
        .collect()
}

fn owned<K>(store: &Store<K>, index: &OwnerIndex<K>, uid: &str, name: &str) -> Vec<Arc<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let mut bindings = filed(store, index, uid, |b| owned_by_uid(b, uid));
    bindings.extend(filed(store, index, &orphan_key(name), |b| {
        orphaned_by(b, name)
    }));
    bindings
}

impl Stores {
    /// The ClusterRoleBindings of the object `uid` named `name`: its own, and those an
    /// object of that name left behind when it was deleted with `--cascade=orphan`.
    pub fn owned_cluster_role_bindings(
        &self,
        uid: &str,
        name: &str,
    ) -> Vec<Arc<ClusterRoleBinding>> {
        owned(
            &self.cluster_role_bindings,
            &self.cluster_role_binding_owners,
            uid,
            name,
        )
    }

    /// The RoleBindings likewise.
    pub fn owned_role_bindings(&self, uid: &str, name: &str) -> Vec<Arc<RoleBinding>> {
        owned(&self.role_bindings, &self.role_binding_owners, uid, name)
    }

    /// Notes that `uid` just created `binding`, until the binding's watch event arrives.
    pub fn expect(&self, binding: &BindingRef, uid: &str) {
        match &binding.namespace {
            None => self
                .cluster_role_binding_owners
                .expect(ObjectRef::new(&binding.name), uid),
            Some(ns) => self
                .role_binding_owners
                .expect(ObjectRef::new(&binding.name).within(ns), uid),
        }
    }

    /// The bindings `uid` created whose watch events have not arrived yet.
    pub fn pending_for(&self, uid: &str) -> BTreeSet<BindingRef> {
        let cluster = self
            .cluster_role_binding_owners
            .expected_for(uid)
            .into_iter()
            .map(|r| BindingRef {
                namespace: None,
                name: r.name,
            });
        let namespaced = self
            .role_binding_owners
            .expected_for(uid)
            .into_iter()
            .map(|r| BindingRef {
                namespace: r.namespace,
                name: r.name,
            });
        cluster.chain(namespaced).collect()
    }

    pub fn cluster_role_exists(&self, name: &str) -> bool {
        self.cluster_roles.get(&ObjectRef::new(name)).is_some()
    }

    pub fn role_exists(&self, namespace: &str, name: &str) -> bool {
        self.roles
            .get(&ObjectRef::new(name).within(namespace))
            .is_some()
    }
}

/// Whether a watch has delivered its first full list, for any number of waiters.
///
/// Not kube's `Store::wait_until_ready`: its readiness is a oneshot channel that keeps
/// one waker, so of two tasks waiting at once only the last to poll is woken. The
/// controller itself waits on the objects' store, and a readiness check waiting there too
/// could stay unready forever (seen: `/readyz` answering 503 for minutes after every list
/// had arrived).
#[derive(Clone, Debug)]
pub struct Synced(tokio::sync::watch::Receiver<bool>);

impl Synced {
    /// Resolves once the first full list has arrived; `false` if the watch is gone first.
    pub async fn wait(mut self) -> bool {
        self.0.wait_for(|synced| *synced).await.is_ok()
    }
}

/// Waits until every one of `watches` has its first full list.
pub async fn all_synced(watches: Vec<Synced>) -> bool {
    futures::future::join_all(watches.into_iter().map(Synced::wait))
        .await
        .into_iter()
        .all(|synced| synced)
}

/// A watch's objects without its errors, which are logged. Each watch already backs off
/// on its own; an error reaching the controller would also pause every other watch with
/// the controller's trigger backoff, for up to minutes (seen after an apiserver restart).
fn without_errors<K: Send>(
    stream: impl futures::Stream<Item = Result<K, watcher::Error>> + Send,
    what: &'static str,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send {
    stream.filter_map(move |item| {
        std::future::ready(match item {
            Ok(object) => Some(Ok(object)),
            Err(error) => {
                tracing::warn!(%error, "watching {what} failed; retrying with backoff");
                None
            }
        })
    })
}

/// What the caches keep of an object: not its managed fields, which are most of a small
/// object's size and which the operator never reads.
fn trim<K: kube::Resource>(object: &mut K) {
    object.managed_fields_mut().clear();
}

/// Feeds an owner index from its watch's events.
pub fn indexed<K>(index: &Arc<OwnerIndex<K>>) -> impl FnMut(&watcher::Event<K>) + use<K>
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    let index = Arc::clone(index);
    move |event| index.observe(event)
}

/// A cache of one kind, the stream of the objects it saw change (applied or deleted) for
/// the controller's triggers, and whether its first full list has arrived. `observe` sees
/// every watch event before the cache does.
pub fn cached<K>(
    api: Api<K>,
    config: Config,
    mut observe: impl FnMut(&watcher::Event<K>) + Send + 'static,
    what: &'static str,
) -> (
    Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send,
    Synced,
)
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
    let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
    let stream = watcher::watcher(api, config)
        .default_backoff()
        .modify(trim)
        .inspect_ok(move |event| {
            observe(event);
            if matches!(event, watcher::Event::InitDone) {
                synced_tx.send_replace(true);
            }
        })
        .reflect(writer)
        .touched_objects();
    (store, without_errors(stream, what), Synced(synced_rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_waiter_learns_that_the_watch_synced() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let waiters: Vec<_> = (0..3)
            .map(|_| tokio::spawn(Synced(rx.clone()).wait()))
            .collect();
        tokio::task::yield_now().await;
        tx.send_replace(true);
        for waiter in waiters {
            let synced = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
                .await
                .expect("woken")
                .expect("task");
            assert!(synced);
        }
        drop(tx);
        assert!(Synced(rx).wait().await, "a late waiter sees it too");
    }
}
