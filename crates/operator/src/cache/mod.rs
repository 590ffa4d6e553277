//! The operator's view of the cluster: one watch-fed cache per kind it reads (its own
//! bindings, filed by owner; namespaces; roles), and the bindings it created whose watch
//! events are still on their way.

mod bindings;
mod interner;
mod namespaces;
pub mod sync;

use crate::binding::BindingRef;
use crate::labels::{OWNER_ANNOTATION, OWNER_UID_LABEL};
pub use bindings::{Binding, BindingCache, orphan_key};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::ResourceExt;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Config};
pub use namespaces::{NamespaceCache, NamespaceInfo};
use std::collections::BTreeSet;
use std::sync::Arc;
pub use sync::{Synced, WatchReport, WatchStates, all_synced};

/// The cluster as the operator's watches see it.
#[derive(Clone)]
pub struct Stores {
    pub cluster_role_bindings: Arc<BindingCache<ClusterRoleBinding>>,
    pub role_bindings: Arc<BindingCache<RoleBinding>>,
    /// Names and labels only, the labels shared: the operator reads nothing else of a
    /// namespace, and clusters hold many more namespaces than objects.
    pub namespaces: Arc<NamespaceCache>,
    pub cluster_roles: Store<PartialObjectMeta<ClusterRole>>,
    pub roles: Store<PartialObjectMeta<Role>>,
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

fn owned<K: Binding>(cache: &BindingCache<K>, uid: &str, name: &str) -> Vec<K> {
    let mut bindings: Vec<K> = cache
        .owned_by(uid)
        .into_iter()
        .filter(|b| owned_by_uid(b, uid))
        .collect();
    bindings.extend(
        cache
            .owned_by(&orphan_key(name))
            .into_iter()
            .filter(|b| orphaned_by(b, name)),
    );
    bindings
}

impl Stores {
    /// The ClusterRoleBindings of the object `uid` named `name`: its own, and those an
    /// object of that name left behind when it was deleted with `--cascade=orphan`.
    pub fn owned_cluster_role_bindings(&self, uid: &str, name: &str) -> Vec<ClusterRoleBinding> {
        owned(&self.cluster_role_bindings, uid, name)
    }

    /// The RoleBindings likewise.
    pub fn owned_role_bindings(&self, uid: &str, name: &str) -> Vec<RoleBinding> {
        owned(&self.role_bindings, uid, name)
    }

    /// Notes that `uid` just created `binding`, until the binding's watch event arrives.
    pub fn expect(&self, binding: &BindingRef, uid: &str) {
        match &binding.namespace {
            None => self.cluster_role_bindings.expect(binding, uid),
            Some(_) => self.role_bindings.expect(binding, uid),
        }
    }

    /// The creation of `binding` failed: its watch event is not to be expected.
    pub fn unexpect(&self, binding: &BindingRef) {
        match &binding.namespace {
            None => self.cluster_role_bindings.unexpect(binding),
            Some(_) => self.role_bindings.unexpect(binding),
        }
    }

    /// The bindings `uid` created whose watch events have not arrived yet.
    pub fn pending_for(&self, uid: &str) -> BTreeSet<BindingRef> {
        let cluster = self.cluster_role_bindings.expected_for(uid);
        let namespaced = self.role_bindings.expected_for(uid);
        cluster.into_iter().chain(namespaced).collect()
    }

    /// How many objects each cache holds, by kind, for the `cached_objects` metric.
    pub fn sizes(&self) -> [(&'static str, usize); 7] {
        let (cluster_role_bindings, cluster_parts) = self.cluster_role_bindings.sizes();
        let (role_bindings, namespaced_parts) = self.role_bindings.sizes();
        let (namespaces, label_sets) = self.namespaces.sizes();
        [
            ("ClusterRoleBinding", cluster_role_bindings),
            ("RoleBinding", role_bindings),
            ("BindingParts", cluster_parts + namespaced_parts),
            ("Namespace", namespaces),
            ("NamespaceLabels", label_sets),
            ("ClusterRole", self.cluster_roles.len()),
            ("Role", self.roles.len()),
        ]
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

/// A watch's objects without its errors, which are logged. Each watch already backs off
/// on its own; an error reaching the controller would also pause every other watch with
/// the controller's trigger backoff, for up to minutes (seen after an apiserver restart).
fn without_errors<K: Send>(
    stream: impl futures::Stream<Item = Result<K, watcher::Error>> + Send,
    report: Arc<WatchReport>,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send {
    stream.filter_map(move |item| {
        std::future::ready(match item {
            Ok(object) => Some(Ok(object)),
            Err(error) => {
                report.failed(&error);
                None
            }
        })
    })
}

/// What a cache keeps of each object.
#[derive(Clone, Copy, Debug)]
pub enum Keep {
    /// All but the managed fields, which are most of a small object's size and which the
    /// operator never reads: its own bindings and objects.
    Object,
    /// Name, labels and deletion mark: namespaces and roles, of which the operator needs
    /// to know only that they exist and what they are labelled. Annotations (a
    /// `kubectl apply` leaves a whole copy of the object there), owner references and
    /// finalizers are dropped, so that objects the operator does not own cost little.
    Identity,
}

impl Keep {
    fn trim<K: kube::Resource>(self, object: &mut K) {
        let meta = object.meta_mut();
        meta.managed_fields = None;
        if let Keep::Identity = self {
            meta.annotations = None;
            meta.owner_references = None;
            meta.finalizers = None;
            meta.generate_name = None;
        }
    }
}

/// The watch events of one kind, trimmed, each shown to `observe`, with whether the
/// first full list has arrived.
fn events<K>(
    api: Api<K>,
    config: Config,
    keep: Keep,
    mut observe: impl FnMut(&watcher::Event<K>) + Send + 'static,
    report: Arc<WatchReport>,
) -> impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    watcher::watcher(api, config)
        .default_backoff()
        .modify(move |object| keep.trim(object))
        .inspect_ok(move |event| {
            observe(event);
            if matches!(event, watcher::Event::InitDone) {
                report.synced();
            }
        })
}

/// Namespaces into `cache`: the stream of those that changed, for the controller's
/// triggers, and whether the first full list has arrived.
pub fn namespaces(
    api: Api<PartialObjectMeta<Namespace>>,
    cache: Arc<NamespaceCache>,
    report: WatchReport,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<Namespace>, watcher::Error>> + Send {
    let report = Arc::new(report);
    let events = events(
        api,
        Config::default(),
        Keep::Identity,
        move |event| cache.observe(event),
        report.clone(),
    );
    without_errors(events.touched_objects(), report)
}

/// The operator's bindings of one kind, in `cache`: the stream of the bindings it saw
/// change (applied or deleted) for the controller's triggers, and whether its first full
/// list has arrived. The arrival of a binding the operator just created triggers nothing:
/// the reconcile that created it already counted it.
pub fn bindings<K>(
    api: Api<K>,
    config: Config,
    cache: Arc<BindingCache<K>>,
    report: WatchReport,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send
where
    K: Binding + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let report = Arc::new(report);
    let synced = report.clone();
    let stream = watcher::watcher(api, config)
        .default_backoff()
        .modify(|object| Keep::Object.trim(object))
        .filter_map(move |item| {
            std::future::ready(match item {
                Err(error) => Some(Err(error)),
                Ok(event) => {
                    let expected = cache.observe(&event);
                    match event {
                        watcher::Event::Apply(binding) if !expected => Some(Ok(binding)),
                        watcher::Event::InitApply(binding) | watcher::Event::Delete(binding) => {
                            Some(Ok(binding))
                        }
                        watcher::Event::InitDone => {
                            synced.synced();
                            None
                        }
                        _ => None,
                    }
                }
            })
        });
    without_errors(stream, report)
}

/// A cache of one kind, the stream of the objects it saw change (applied or deleted) for
/// the controller's triggers, and whether its first full list has arrived. `observe` sees
/// every watch event before the cache does.
pub fn cached<K>(
    api: Api<K>,
    config: Config,
    keep: Keep,
    observe: impl FnMut(&watcher::Event<K>) + Send + 'static,
    report: WatchReport,
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
    let report = Arc::new(report);
    let events = events(api, config, keep, observe, report.clone());
    let stream = events.reflect(writer).touched_objects();
    (store, without_errors(stream, report))
}
