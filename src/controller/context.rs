//! What every reconcile shares: the Kubernetes client, the Okta directory, the operator's
//! policy, the caches of the cluster, events and metrics.

use super::desired::Policy;
use super::owners::OwnerIndex;
use crate::crd::{OktaGroupBinding, OktaGroupBindingStatus};
use crate::metrics::Metrics;
use crate::okta::GroupDirectory;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef};
use kube::Client;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const MANAGER: &str = "okta-rbac-operator";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Label values are at most 63 characters; an object's uid fits, its name may not.
pub const OWNER_UID_LABEL: &str = "oktarbac.io/owner-uid";
pub const OWNER_ANNOTATION: &str = "oktarbac.io/owner";

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

    pub fn namespace_exists(&self, name: &str) -> bool {
        self.namespaces
            .get(&ObjectRef::new(name))
            .is_some_and(|ns| ns.metadata.deletion_timestamp.is_none())
    }

    pub fn role_exists(&self, role_ref: &RoleRef, namespace: Option<&str>) -> bool {
        match (role_ref.kind.as_str(), namespace) {
            ("Role", Some(ns)) => self
                .roles
                .get(&ObjectRef::new(&role_ref.name).within(ns))
                .is_some(),
            _ => self
                .cluster_roles
                .get(&ObjectRef::new(&role_ref.name))
                .is_some(),
        }
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Context {
    pub client: Client,
    pub okta: Arc<GroupDirectory>,
    pub policy: Policy,
    pub resync: Duration,
    pub stores: Stores,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Consecutive Okta failures per object uid, for backoff.
    pub failures: Mutex<HashMap<String, u32>>,
    /// The last status written per object uid, with the resourceVersion it was written
    /// over. A reconcile that runs before the watch delivers that write sees the older
    /// object; it must compare with what was written, or it would write again.
    pub written_status: Mutex<HashMap<String, (String, OktaGroupBindingStatus)>>,
}

impl Context {
    /// The object's status as last known: what this operator wrote, while the cache still
    /// holds the version it was written over; otherwise the cached object's.
    pub fn current_status(&self, ogb: &OktaGroupBinding) -> OktaGroupBindingStatus {
        let uid = ogb.uid().unwrap_or_default();
        let written = lock(&self.written_status);
        match (written.get(&uid), &ogb.metadata.resource_version) {
            (Some((over, status)), Some(version)) if over == version => status.clone(),
            _ => ogb.status.clone().unwrap_or_default(),
        }
    }

    pub fn record_status(&self, ogb: &OktaGroupBinding, status: OktaGroupBindingStatus) {
        let (Some(uid), Some(version)) = (ogb.uid(), ogb.metadata.resource_version.clone()) else {
            return;
        };
        lock(&self.written_status).insert(uid, (version, status));
    }

    /// Drops what is kept about a deleted object.
    pub fn forget(&self, uid: &str) {
        lock(&self.written_status).remove(uid);
        self.clear_failures(uid);
        self.metrics.object(uid, None);
    }

    /// The delay before the next try after another Okta failure: 2 s doubling up to the
    /// resync interval.
    pub fn backoff_after_failure(&self, uid: &str) -> Duration {
        let mut failures = lock(&self.failures);
        let count = failures.entry(uid.to_string()).or_default();
        *count = (*count + 1).min(16);
        Duration::from_secs(2u64.saturating_pow(*count)).min(self.resync)
    }

    pub fn clear_failures(&self, uid: &str) {
        lock(&self.failures).remove(uid);
    }
}
