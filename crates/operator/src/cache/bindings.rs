//! The operator's own bindings, as their watch shows them, kept small and filed by owner.
//!
//! A cluster with thousands of objects holds tens of thousands of the operator's bindings.
//! Kept as Kubernetes objects (as kube's reflector store keeps them) each costs about
//! 3 KiB: two label and annotation maps whose smallest node is half a KiB, an owner
//! reference, a roleRef and subjects, each string a heap allocation of its own, plus the
//! keys of the store and of an index by owner. Yet the bindings of one object differ only
//! in name, namespace and resourceVersion: their labels, annotations, owner reference,
//! roleRef and subjects are the same. Here those parts are stored once per distinct value
//! and shared, and a binding costs its name, its version and a few pointers. A reconcile
//! gets whole objects back, built from the parts, for its own bindings only.
//!
//! A reconcile asks for its own bindings, so they are filed by owner: its uid, or, for a
//! binding without an owner reference (its object was deleted with `--cascade=orphan`,
//! to keep access while the operator is reinstalled), its former owner's name, so that an
//! object of that name adopts it.

use super::interner::Interner;
use crate::binding::BindingRef;
use crate::labels::{OWNER_ANNOTATION, OWNER_UID_LABEL};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::ResourceExt;
use kube::runtime::watcher::Event;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The two kinds of binding, as the cache takes them apart and puts them together.
pub trait Binding: kube::Resource<DynamicType = ()> + Clone {
    fn role_ref(&self) -> &RoleRef;
    fn subjects(&self) -> Option<&Vec<Subject>>;
    fn assemble(metadata: ObjectMeta, role_ref: RoleRef, subjects: Option<Vec<Subject>>) -> Self;
}

impl Binding for ClusterRoleBinding {
    fn role_ref(&self) -> &RoleRef {
        &self.role_ref
    }
    fn subjects(&self) -> Option<&Vec<Subject>> {
        self.subjects.as_ref()
    }
    fn assemble(metadata: ObjectMeta, role_ref: RoleRef, subjects: Option<Vec<Subject>>) -> Self {
        Self {
            metadata,
            role_ref,
            subjects,
        }
    }
}

impl Binding for RoleBinding {
    fn role_ref(&self) -> &RoleRef {
        &self.role_ref
    }
    fn subjects(&self) -> Option<&Vec<Subject>> {
        self.subjects.as_ref()
    }
    fn assemble(metadata: ObjectMeta, role_ref: RoleRef, subjects: Option<Vec<Subject>>) -> Self {
        Self {
            metadata,
            role_ref,
            subjects,
        }
    }
}

/// The key an orphan is filed under: uids never hold a `/`.
pub fn orphan_key(owner_name: &str) -> String {
    format!("orphaned/{owner_name}")
}

/// Where a binding is filed: under its owner's uid, or as an orphan under its former
/// owner's name.
fn owner_key<K: kube::Resource>(object: &K) -> Option<String> {
    if object.owner_references().is_empty() {
        return object
            .annotations()
            .get(OWNER_ANNOTATION)
            .map(|name| orphan_key(name));
    }
    object.labels().get(OWNER_UID_LABEL).cloned()
}

/// A binding's namespace (`None`: a ClusterRoleBinding) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    namespace: Option<Arc<str>>,
    name: Arc<str>,
}

/// A label or annotation map, as a sorted slice. A `BTreeMap`'s smallest node takes half
/// a KiB, and the bindings of every object have maps of their own (its uid is a label):
/// at 5,000 objects the maps alone were 10 MiB.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Pairs(Box<[(Box<str>, Box<str>)]>);

impl Pairs {
    fn of(map: Option<&BTreeMap<String, String>>) -> Option<Self> {
        map.map(|map| {
            Self(
                map.iter()
                    .map(|(key, value)| (Box::from(key.as_str()), Box::from(value.as_str())))
                    .collect(),
            )
        })
    }

    fn to_map(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }
}

/// What the bindings of one object have in common.
#[derive(Debug, PartialEq)]
struct Shared {
    labels: Option<Pairs>,
    annotations: Option<Pairs>,
    owner_references: Option<Vec<OwnerReference>>,
    finalizers: Option<Vec<String>>,
    role_ref: RoleRef,
    subjects: Option<Vec<Subject>>,
}

// The Kubernetes types compare their fields (all strings, booleans and maps of strings)
// exactly, so equality is total; they derive no Hash, so it is written out here.
impl Eq for Shared {}

impl Hash for Shared {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.labels.hash(state);
        self.annotations.hash(state);
        for owner in self.owner_references.iter().flatten() {
            (&owner.api_version, &owner.kind, &owner.name, &owner.uid).hash(state);
            (owner.controller, owner.block_owner_deletion).hash(state);
        }
        self.finalizers.hash(state);
        let role = &self.role_ref;
        (&role.api_group, &role.kind, &role.name).hash(state);
        for subject in self.subjects.iter().flatten() {
            let Subject {
                api_group,
                kind,
                name,
                namespace,
            } = subject;
            (api_group, kind, name, namespace).hash(state);
        }
    }
}

/// One binding: what is its own, and the parts it shares.
#[derive(Debug)]
struct Record {
    owner: Option<Arc<str>>,
    /// Deletes carry it as a precondition: a binding re-created under the name since is
    /// never deleted by mistake.
    uid: Option<Box<str>>,
    resource_version: Option<Box<str>>,
    /// Boxed: rare, and every record would otherwise carry its full size.
    deletion_timestamp: Option<Box<Time>>,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Contents {
    records: HashMap<Key, Record>,
    by_owner: HashMap<Arc<str>, HashSet<Key>>,
}

#[derive(Debug, Default)]
struct Inner {
    contents: Contents,
    /// Filled during a watch (re)list and swapped in when it is complete, as kube's
    /// reflector does, so that a relist never shows a half-empty cache.
    relisting: Option<Contents>,
    /// Namespaces and owner keys.
    strings: Interner<str>,
    shared: Interner<Shared>,
    /// Bindings removed since `strings` was last swept of the strings no one holds.
    removed_since_sweep: usize,
    /// Bindings just created whose watch event has not arrived yet, with their owner's
    /// uid (the "expectations" of Kubernetes' own controllers): a reconcile that runs in
    /// between must not create them again, which would only earn a 409 and a read.
    expected: HashMap<String, HashMap<BindingRef, Instant>>,
    /// The owner of each expected binding, to find it when its watch event arrives.
    expected_owner: HashMap<BindingRef, String>,
}

/// The fewest removals between two sweeps of the strings.
const SWEEP_AFTER: usize = 1024;

/// How long a created binding is expected before the watch is assumed to have missed it.
const EXPECTATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The bindings of one kind that the operator manages, filed by owner.
pub struct BindingCache<K> {
    inner: Mutex<Inner>,
    kind: std::marker::PhantomData<fn() -> K>,
}

impl<K> Default for BindingCache<K> {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            kind: std::marker::PhantomData,
        }
    }
}

impl<K: Binding> BindingCache<K> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follows one watch event. True when it is the arrival of a binding that this
    /// operator created and was expecting: the reconcile that created it has nothing left
    /// to do about it.
    pub fn observe(&self, event: &Event<K>) -> bool {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let mut expected = false;
        match event {
            Event::Apply(object) => {
                expected = inner.arrived(&reference_of(object));
                let record = inner.record(object);
                let key = inner.key(object);
                inner.contents.remove(&key, &mut inner.shared);
                inner.contents.insert(key, record);
            }
            Event::Delete(object) => {
                // Not an arrival: a binding deleted and then created again (a new roleRef)
                // is expected while the deletion's event may still be on its way.
                let key = inner.key(object);
                if inner.contents.remove(&key, &mut inner.shared) {
                    inner.removed(1);
                }
            }
            Event::Init => inner.relisting = Some(Contents::default()),
            Event::InitApply(object) => {
                inner.arrived(&reference_of(object));
                let record = inner.record(object);
                let key = inner.key(object);
                if let Some(relisting) = inner.relisting.as_mut() {
                    relisting.remove(&key, &mut inner.shared);
                    relisting.insert(key, record);
                } else {
                    inner.shared.release(&record.shared);
                }
            }
            Event::InitDone => {
                if let Some(listed) = inner.relisting.take() {
                    let mut old = std::mem::replace(&mut inner.contents, listed);
                    let keys: Vec<Key> = old.records.keys().cloned().collect();
                    for key in &keys {
                        old.remove(key, &mut inner.shared);
                    }
                    drop(old);
                    inner.removed(keys.len());
                }
            }
        }
        expected
    }

    /// The bindings filed under `owner` (a uid, or an [`orphan_key`]), whole.
    pub fn owned_by(&self, owner: &str) -> Vec<K> {
        let inner = self.lock();
        let Some(keys) = inner.contents.by_owner.get(owner) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|key| Some(assemble(key, inner.contents.records.get(key)?)))
            .collect()
    }

    /// Notes that `uid` just created `reference`, until its watch event arrives.
    pub fn expect(&self, reference: &BindingRef, uid: &str) {
        let mut inner = self.lock();
        inner.arrived(reference);
        inner
            .expected_owner
            .insert(reference.clone(), uid.to_string());
        inner
            .expected
            .entry(uid.to_string())
            .or_default()
            .insert(reference.clone(), Instant::now());
    }

    /// Stops expecting `reference` (its creation failed).
    pub fn unexpect(&self, reference: &BindingRef) {
        self.lock().arrived(reference);
    }

    /// What `uid` created whose watch events are still on their way.
    pub fn expected_for(&self, uid: &str) -> Vec<BindingRef> {
        let mut inner = self.lock();
        let Some(expected) = inner.expected.get(uid) else {
            return Vec::new();
        };
        let (live, lapsed): (Vec<_>, Vec<_>) = expected
            .iter()
            .map(|(reference, since)| (reference.clone(), since.elapsed() < EXPECTATION_TIMEOUT))
            .partition(|(_, live)| *live);
        // The watch missed them (or they were deleted at once): stop expecting them.
        for (reference, _) in lapsed {
            inner.arrived(&reference);
        }
        live.into_iter().map(|(reference, _)| reference).collect()
    }

    /// How many bindings the cache holds, and how many distinct shared parts they use.
    pub fn sizes(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.contents.records.len(), inner.shared.len())
    }
}

fn reference_of<K: kube::Resource>(object: &K) -> BindingRef {
    BindingRef {
        namespace: object.meta().namespace.clone(),
        name: object.meta().name.clone().unwrap_or_default(),
    }
}

fn assemble<K: Binding>(key: &Key, record: &Record) -> K {
    let shared = &record.shared;
    let metadata = ObjectMeta {
        name: Some(key.name.to_string()),
        namespace: key.namespace.as_deref().map(str::to_string),
        uid: record.uid.as_deref().map(str::to_string),
        resource_version: record.resource_version.as_deref().map(str::to_string),
        deletion_timestamp: record.deletion_timestamp.as_deref().cloned(),
        labels: shared.labels.as_ref().map(Pairs::to_map),
        annotations: shared.annotations.as_ref().map(Pairs::to_map),
        owner_references: shared.owner_references.clone(),
        finalizers: shared.finalizers.clone(),
        ..Default::default()
    };
    K::assemble(metadata, shared.role_ref.clone(), shared.subjects.clone())
}

impl Inner {
    fn key<K: kube::Resource>(&mut self, object: &K) -> Key {
        let meta = object.meta();
        Key {
            namespace: meta.namespace.as_deref().map(|ns| self.strings.string(ns)),
            name: Arc::from(meta.name.as_deref().unwrap_or_default()),
        }
    }

    fn record<K: Binding>(&mut self, object: &K) -> Record {
        let meta = object.meta();
        let shared = Shared {
            labels: Pairs::of(meta.labels.as_ref()),
            annotations: Pairs::of(meta.annotations.as_ref()),
            owner_references: meta.owner_references.clone(),
            finalizers: meta.finalizers.clone(),
            role_ref: object.role_ref().clone(),
            subjects: object.subjects().cloned(),
        };
        Record {
            owner: owner_key(object).map(|owner| self.strings.string(&owner)),
            uid: meta.uid.as_deref().map(Box::from),
            resource_version: meta.resource_version.as_deref().map(Box::from),
            deletion_timestamp: meta.deletion_timestamp.clone().map(Box::new),
            shared: self.shared.value(shared),
        }
    }

    /// Bindings were removed: once half as many as the strings interned have gone (and at
    /// least [`SWEEP_AFTER`]), the strings nothing holds any more (deleted objects' uids,
    /// deleted namespaces) are dropped. Amortized, a removal costs O(1).
    fn removed(&mut self, count: usize) {
        self.removed_since_sweep += count;
        if self.removed_since_sweep >= (self.strings.len() / 2).max(SWEEP_AFTER) {
            self.strings.values.retain(|s| Arc::strong_count(s) > 1);
            self.removed_since_sweep = 0;
        }
    }

    /// A binding's watch event arrived: it is no longer expected. Whether it was.
    fn arrived(&mut self, reference: &BindingRef) -> bool {
        let Some(uid) = self.expected_owner.remove(reference) else {
            return false;
        };
        if let Some(expected) = self.expected.get_mut(&uid) {
            expected.remove(reference);
            if expected.is_empty() {
                self.expected.remove(&uid);
            }
        }
        true
    }
}

impl Contents {
    fn insert(&mut self, key: Key, record: Record) {
        if let Some(owner) = &record.owner {
            self.by_owner
                .entry(owner.clone())
                .or_default()
                .insert(key.clone());
        }
        self.records.insert(key, record);
    }

    /// Whether there was such a binding.
    fn remove(&mut self, key: &Key, shared: &mut Interner<Shared>) -> bool {
        let Some(record) = self.records.remove(key) else {
            return false;
        };
        if let Some(owner) = &record.owner
            && let Some(keys) = self.by_owner.get_mut(owner)
        {
            keys.remove(key);
            if keys.is_empty() {
                self.by_owner.remove(owner);
            }
        }
        shared.release(&record.shared);
        true
    }
}

/// Every binding the cache holds, whole, for tests.
#[cfg(test)]
impl<K: Binding> BindingCache<K> {
    fn all(&self) -> Vec<K> {
        let inner = self.lock();
        inner
            .contents
            .records
            .iter()
            .map(|(key, record)| assemble(key, record))
            .collect()
    }
}

#[cfg(test)]
mod tests;
