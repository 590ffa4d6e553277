//! Namespaces as the operator needs them: a name and its labels, nothing else, the
//! labels stored once per distinct set. A cluster holds far more namespaces than objects
//! (tens of thousands, most of them with the same few labels); kept as kube's reflector
//! keeps them, each cost about 1.8 KiB (an `ObjectMeta`, its key, its `Arc`). The label
//! naming the namespace, which every namespace carries and which would make every label
//! set distinct, is not stored: selectors see it through the name. Namespaces being
//! deleted are not kept: nothing is bound into them.

use super::interner::Interner;
use crate::labels::NAMESPACE_NAME_LABEL;
use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::Event;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

pub type Labels = BTreeMap<String, String>;

/// One namespace: its name and its labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceInfo {
    pub name: Arc<str>,
    pub labels: Arc<Labels>,
}

#[derive(Default)]
struct Inner {
    namespaces: HashMap<Arc<str>, Arc<Labels>>,
    /// Filled during a (re)list and swapped in when complete.
    relisting: Option<HashMap<Arc<str>, Arc<Labels>>>,
    labels: Interner<Labels>,
}

#[derive(Default)]
pub struct NamespaceCache {
    inner: Mutex<Inner>,
}

impl Inner {
    /// The entry for a namespace, or None when it is being deleted.
    fn entry(
        &mut self,
        namespace: &PartialObjectMeta<Namespace>,
    ) -> Option<(Arc<str>, Arc<Labels>)> {
        let meta = &namespace.metadata;
        if meta.deletion_timestamp.is_some() {
            return None;
        }
        let name = meta.name.as_deref().unwrap_or_default();
        let mut labels = meta.labels.clone().unwrap_or_default();
        if labels.get(NAMESPACE_NAME_LABEL).map(String::as_str) == Some(name) {
            labels.remove(NAMESPACE_NAME_LABEL);
        }
        Some((Arc::from(name), self.labels.value(labels)))
    }

    fn forget(&mut self, removed: Option<Arc<Labels>>) {
        if let Some(labels) = removed {
            self.labels.release(&labels);
        }
    }
}

impl NamespaceCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follows one watch event.
    pub fn observe(&self, event: &Event<PartialObjectMeta<Namespace>>) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        match event {
            Event::Apply(namespace) => {
                let name = namespace.metadata.name.as_deref().unwrap_or_default();
                let removed = inner.namespaces.remove(name);
                inner.forget(removed);
                if let Some((name, labels)) = inner.entry(namespace) {
                    inner.namespaces.insert(name, labels);
                }
            }
            Event::Delete(namespace) => {
                let name = namespace.metadata.name.as_deref().unwrap_or_default();
                let removed = inner.namespaces.remove(name);
                inner.forget(removed);
            }
            Event::Init => inner.relisting = Some(HashMap::new()),
            Event::InitApply(namespace) => {
                if let Some((name, labels)) = inner.entry(namespace) {
                    match inner.relisting.as_mut() {
                        Some(relisting) => {
                            if let Some(old) = relisting.insert(name, labels) {
                                inner.labels.release(&old);
                            }
                        }
                        None => inner.labels.release(&labels),
                    }
                }
            }
            Event::InitDone => {
                if let Some(listed) = inner.relisting.take() {
                    let old = std::mem::replace(&mut inner.namespaces, listed);
                    for (_, labels) in old {
                        inner.labels.release(&labels);
                    }
                }
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<NamespaceInfo> {
        let inner = self.lock();
        inner
            .namespaces
            .get_key_value(name)
            .map(|(name, labels)| NamespaceInfo {
                name: name.clone(),
                labels: labels.clone(),
            })
    }

    pub fn all(&self) -> Vec<NamespaceInfo> {
        self.lock()
            .namespaces
            .iter()
            .map(|(name, labels)| NamespaceInfo {
                name: name.clone(),
                labels: labels.clone(),
            })
            .collect()
    }

    /// How many namespaces, and how many distinct label sets they use.
    pub fn sizes(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.namespaces.len(), inner.labels.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use kube::core::PartialObjectMetaExt;

    fn namespace(name: &str, team: &str, deleting: bool) -> PartialObjectMeta<Namespace> {
        ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                [
                    ("team".to_string(), team.to_string()),
                    (NAMESPACE_NAME_LABEL.to_string(), name.to_string()),
                ]
                .into(),
            ),
            deletion_timestamp: deleting.then_some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
            ..Default::default()
        }
        .into_response_partial()
    }

    #[test]
    fn namespaces_share_their_labels_and_those_being_deleted_are_not_kept() {
        let cache = NamespaceCache::default();
        cache.observe(&Event::Init);
        for i in 0..100 {
            cache.observe(&Event::InitApply(namespace(
                &format!("ns-{i}"),
                "web",
                false,
            )));
        }
        cache.observe(&Event::InitDone);
        assert_eq!(
            cache.sizes(),
            (100, 1),
            "one label set for a hundred namespaces"
        );
        cache.observe(&Event::Apply(namespace("ns-1", "db", false)));
        assert_eq!(cache.get("ns-1").expect("kept").labels["team"], "db");
        assert_eq!(cache.sizes(), (100, 2));
        cache.observe(&Event::Apply(namespace("ns-1", "db", true)));
        assert!(cache.get("ns-1").is_none(), "being deleted");
        assert_eq!(
            cache.sizes(),
            (99, 1),
            "the label set no one uses is dropped"
        );
        cache.observe(&Event::Delete(namespace("ns-2", "web", false)));
        assert_eq!(cache.all().len(), 98);
        // A relist replaces the whole, and what is gone goes.
        cache.observe(&Event::Init);
        cache.observe(&Event::InitApply(namespace("ns-0", "web", false)));
        assert_eq!(
            cache.all().len(),
            98,
            "the old view until the list is complete"
        );
        cache.observe(&Event::InitDone);
        assert_eq!(cache.sizes(), (1, 1));
    }
}
