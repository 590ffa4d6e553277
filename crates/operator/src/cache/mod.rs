//! The operator's view of the cluster: one watch-fed cache per kind it reads (its own
//! bindings, namespaces, roles), an index of which object owns which binding, and the
//! bindings it created whose watch events are still on their way.

mod owners;

use crate::binding::BindingRef;
use crate::labels::OWNER_UID_LABEL;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::ResourceExt;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Config};
pub use owners::OwnerIndex;
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
}

/// The cached bindings owned by `uid`. The index and the store are fed by the same watch
/// but not atomically, so each hit is checked against the cached object itself.
fn owned<K>(store: &Store<K>, index: &OwnerIndex<K>, uid: &str) -> Vec<Arc<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    index
        .owned_by(uid)
        .iter()
        .filter_map(|reference| store.get(reference))
        .filter(|b| owned_by_uid(b.as_ref(), uid))
        .collect()
}

impl Stores {
    pub fn owned_cluster_role_bindings(&self, uid: &str) -> Vec<Arc<ClusterRoleBinding>> {
        owned(
            &self.cluster_role_bindings,
            &self.cluster_role_binding_owners,
            uid,
        )
    }

    pub fn owned_role_bindings(&self, uid: &str) -> Vec<Arc<RoleBinding>> {
        owned(&self.role_bindings, &self.role_binding_owners, uid)
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

    /// Every store has its first full list.
    pub async fn wait_until_ready(
        &self,
    ) -> Result<(), kube::runtime::reflector::store::WriterDropped> {
        self.cluster_role_bindings.wait_until_ready().await?;
        self.role_bindings.wait_until_ready().await?;
        self.namespaces.wait_until_ready().await?;
        self.cluster_roles.wait_until_ready().await?;
        self.roles.wait_until_ready().await
    }
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

/// A cache of one kind and the stream of the objects it saw change (applied or deleted),
/// for the controller's triggers. `observe` sees every watch event before the cache does.
pub fn cached<K>(
    api: Api<K>,
    config: Config,
    observe: impl FnMut(&watcher::Event<K>) + Send + 'static,
    what: &'static str,
) -> (
    Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send,
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
    let stream = watcher::watcher(api, config)
        .default_backoff()
        .modify(trim)
        .inspect_ok(observe)
        .reflect(writer)
        .touched_objects();
    (store, without_errors(stream, what))
}
