//! Which bindings each OktaGroupBinding owns, kept up to date from the binding watches.
//!
//! A reconcile asks for its own bindings. Scanning the whole binding cache for them costs
//! O(bindings) per reconcile, O(objects × bindings) per resync round: at 5,000 objects
//! and 55,000 bindings that is hundreds of millions of label lookups. The index answers in
//! O(own bindings). kube's reflector store has no secondary indexes, hence this.
//!
//! A binding without an owner reference (its object was deleted with
//! `--cascade=orphan`, to keep access while the operator is reinstalled) is filed under
//! its former owner's name instead, so that an object of that name adopts it.

use crate::labels::{OWNER_ANNOTATION, OWNER_UID_LABEL};
use kube::ResourceExt;
use kube::runtime::reflector::{Lookup, ObjectRef};
use kube::runtime::watcher::Event;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct OwnerIndex<K: Lookup>
where
    K::DynamicType: Eq + Hash + Clone,
{
    inner: Mutex<Owners<K>>,
}

struct Owners<K: Lookup>
where
    K::DynamicType: Eq + Hash + Clone,
{
    by_owner: HashMap<String, HashSet<ObjectRef<K>>>,
    owner_of: HashMap<ObjectRef<K>, String>,
    /// Filled during a watch (re)list and swapped in when it is complete, as the reflector
    /// does, so a relist never shows a half-empty index.
    relisting: Option<HashMap<ObjectRef<K>, String>>,
    /// Bindings just created whose watch event has not arrived yet, with their owner's
    /// uid (the "expectations" of Kubernetes' own controllers): a reconcile that runs in
    /// between must not create them again, which would only earn a 409 and a read.
    expected: HashMap<String, HashMap<ObjectRef<K>, Instant>>,
    /// The owner of each expected binding, to find it when its watch event arrives.
    expected_owner: HashMap<ObjectRef<K>, String>,
}

/// How long a created binding is expected before the watch is assumed to have missed it.
const EXPECTATION_TIMEOUT: Duration = Duration::from_secs(30);

impl<K> Default for OwnerIndex<K>
where
    K: Lookup,
    K::DynamicType: Eq + Hash + Clone,
{
    fn default() -> Self {
        Self {
            inner: Mutex::new(Owners {
                by_owner: HashMap::new(),
                owner_of: HashMap::new(),
                relisting: None,
                expected: HashMap::new(),
                expected_owner: HashMap::new(),
            }),
        }
    }
}

/// The key an orphan is filed under: uids never hold a `/`.
pub fn orphan_key(owner_name: &str) -> String {
    format!("orphaned/{owner_name}")
}

/// Where the index files a binding: under its owner's uid, or as an orphan under its
/// former owner's name.
fn owner_uid<K: kube::Resource>(object: &K) -> Option<String> {
    if object.owner_references().is_empty() {
        return object
            .annotations()
            .get(OWNER_ANNOTATION)
            .map(|name| orphan_key(name));
    }
    object.labels().get(OWNER_UID_LABEL).cloned()
}

impl<K> OwnerIndex<K>
where
    K: Lookup<DynamicType = ()> + kube::Resource + Clone,
{
    /// Follows one watch event.
    pub fn observe(&self, event: &Event<K>) {
        let mut owners = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Event::Apply(object) | Event::InitApply(object) | Event::Delete(object) = event {
            owners.arrived(&ObjectRef::from_obj(object));
        }
        match event {
            Event::Apply(object) => {
                let reference = ObjectRef::from_obj(object);
                owners.forget(&reference);
                if let Some(uid) = owner_uid(object) {
                    owners.record(reference, uid);
                }
            }
            Event::Delete(object) => owners.forget(&ObjectRef::from_obj(object)),
            Event::Init => owners.relisting = Some(HashMap::new()),
            Event::InitApply(object) => {
                if let (Some(relisting), Some(uid)) = (owners.relisting.as_mut(), owner_uid(object))
                {
                    relisting.insert(ObjectRef::from_obj(object), uid);
                }
            }
            Event::InitDone => {
                if let Some(listed) = owners.relisting.take() {
                    owners.by_owner.clear();
                    owners.owner_of.clear();
                    for (reference, uid) in listed {
                        owners.record(reference, uid);
                    }
                }
            }
        }
    }

    /// Notes that `uid` just created `reference`, until its watch event arrives.
    pub fn expect(&self, reference: ObjectRef<K>, uid: &str) {
        let mut owners = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        owners.arrived(&reference);
        owners
            .expected_owner
            .insert(reference.clone(), uid.to_string());
        owners
            .expected
            .entry(uid.to_string())
            .or_default()
            .insert(reference, Instant::now());
    }

    /// What `uid` created whose watch events are still on their way.
    pub fn expected_for(&self, uid: &str) -> Vec<ObjectRef<K>> {
        let mut owners = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(expected) = owners.expected.get(uid) else {
            return Vec::new();
        };
        let (live, lapsed): (Vec<_>, Vec<_>) = expected
            .iter()
            .map(|(reference, since)| (reference.clone(), since.elapsed() < EXPECTATION_TIMEOUT))
            .partition(|(_, live)| *live);
        // The watch missed them (or they were deleted at once): stop expecting them.
        for (reference, _) in lapsed {
            owners.arrived(&reference);
        }
        live.into_iter().map(|(reference, _)| reference).collect()
    }

    /// The bindings labelled as owned by `uid` (or, for [`orphan_key`], orphaned by a name).
    pub fn owned_by(&self, uid: &str) -> Vec<ObjectRef<K>> {
        let owners = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        owners
            .by_owner
            .get(uid)
            .map(|refs| refs.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl<K> Owners<K>
where
    K: Lookup,
    K::DynamicType: Eq + Hash + Clone,
{
    fn record(&mut self, reference: ObjectRef<K>, uid: String) {
        self.by_owner
            .entry(uid.clone())
            .or_default()
            .insert(reference.clone());
        self.owner_of.insert(reference, uid);
    }

    /// A binding's watch event arrived: it is no longer expected.
    fn arrived(&mut self, reference: &ObjectRef<K>) {
        if let Some(uid) = self.expected_owner.remove(reference)
            && let Some(expected) = self.expected.get_mut(&uid)
        {
            expected.remove(reference);
            if expected.is_empty() {
                self.expected.remove(&uid);
            }
        }
    }

    fn forget(&mut self, reference: &ObjectRef<K>) {
        if let Some(uid) = self.owner_of.remove(reference)
            && let Some(refs) = self.by_owner.get_mut(&uid)
        {
            refs.remove(reference);
            if refs.is_empty() {
                self.by_owner.remove(&uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::rbac::v1::RoleBinding;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn binding(namespace: &str, name: &str, owner: Option<&str>) -> RoleBinding {
        RoleBinding {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                labels: owner.map(|uid| [(OWNER_UID_LABEL.to_string(), uid.to_string())].into()),
                owner_references: Some(vec![Default::default()]),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn names(index: &OwnerIndex<RoleBinding>, uid: &str) -> Vec<String> {
        let mut names: Vec<String> = index
            .owned_by(uid)
            .into_iter()
            .map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn follows_applies_relabels_and_deletes() {
        let index = OwnerIndex::default();
        index.observe(&Event::Apply(binding("a", "one", Some("u1"))));
        index.observe(&Event::Apply(binding("b", "one", Some("u1"))));
        index.observe(&Event::Apply(binding("a", "two", Some("u2"))));
        assert_eq!(names(&index, "u1"), ["a/one", "b/one"]);

        // Someone moved the label to another owner, then removed it.
        index.observe(&Event::Apply(binding("b", "one", Some("u2"))));
        assert_eq!(names(&index, "u1"), ["a/one"]);
        assert_eq!(names(&index, "u2"), ["a/two", "b/one"]);
        index.observe(&Event::Apply(binding("b", "one", None)));
        assert_eq!(names(&index, "u2"), ["a/two"]);

        index.observe(&Event::Delete(binding("a", "one", Some("u1"))));
        assert!(names(&index, "u1").is_empty());
        assert!(!index.inner.lock().unwrap().by_owner.contains_key("u1"));
    }

    #[test]
    fn a_created_binding_is_expected_until_its_watch_event_arrives() {
        let index = OwnerIndex::default();
        let created = binding("a", "new", Some("u1"));
        let reference = ObjectRef::from_obj(&created);
        assert!(index.expected_for("u1").is_empty());
        index.expect(reference.clone(), "u1");
        assert_eq!(index.expected_for("u1"), vec![reference.clone()]);
        assert!(
            index.expected_for("u2").is_empty(),
            "expected for its owner only"
        );
        index.observe(&Event::Apply(created));
        assert!(index.expected_for("u1").is_empty());
        assert_eq!(names(&index, "u1"), ["a/new"]);
    }

    #[test]
    fn an_orphan_is_filed_under_its_former_owners_name() {
        let index = OwnerIndex::default();
        let mut owned = binding("a", "kept", Some("u1"));
        owned.metadata.annotations =
            Some([(OWNER_ANNOTATION.to_string(), "team".to_string())].into());
        index.observe(&Event::Apply(owned.clone()));
        assert_eq!(names(&index, "u1"), ["a/kept"]);
        // Its object was deleted with --cascade=orphan: the garbage collector drops the
        // owner reference.
        owned.metadata.owner_references = None;
        index.observe(&Event::Apply(owned));
        assert!(names(&index, "u1").is_empty());
        assert_eq!(names(&index, &orphan_key("team")), ["a/kept"]);
    }

    #[test]
    fn a_relist_replaces_the_index_only_when_complete() {
        let index = OwnerIndex::default();
        index.observe(&Event::Apply(binding("a", "gone", Some("u1"))));
        index.observe(&Event::Init);
        index.observe(&Event::InitApply(binding("a", "kept", Some("u1"))));
        // Until the list is complete the old view is served.
        assert_eq!(names(&index, "u1"), ["a/gone"]);
        index.observe(&Event::InitDone);
        assert_eq!(names(&index, "u1"), ["a/kept"]);
    }
}
