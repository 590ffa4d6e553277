//! What every reconcile shares: the Kubernetes client, the Okta directory, the operator's
//! policy, the caches of the cluster, events and metrics.

use crate::cache::Stores;
use crate::metrics::Metrics;
use crate::okta::GroupDirectory;
use crate::okta::claims::ClaimsCache;
use crate::policy::Policy;
use kube::Client;
use kube::ResourceExt;
use okta_rbac_api::{OktaGroupBinding, OktaGroupBindingStatus};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Context {
    pub client: Client,
    pub okta: Arc<GroupDirectory>,
    /// The authorization server's claims, when the groups-claim check is on.
    pub claims: Option<Arc<ClaimsCache>>,
    pub policy: Policy,
    pub resync: Duration,
    pub stores: Stores,
    pub events: crate::events::EventQueue,
    pub metrics: Arc<Metrics>,
    /// Consecutive Okta failures per object uid, for backoff.
    pub failures: Mutex<HashMap<String, u32>>,
    /// The last status written per object uid, with the resourceVersion it was written
    /// over. A reconcile that runs before the watch delivers that write sees the older
    /// object; it must compare with what was written, or it would write again.
    pub written_status: Mutex<HashMap<String, (String, OktaGroupBindingStatus)>>,
    /// The objects that cannot be read, and what was last reported of each.
    pub unreadable: super::unreadable::Reported,
    /// The revocation authorizer's memory: told which group each object grants through
    /// a Group subject, and (through the directory) those groups' members.
    pub roster: Option<Arc<crate::authorizer::roster::Roster>>,
    /// The Okta events read lately: an audit record names the one that caused a change.
    pub recent: Arc<crate::okta::recent::RecentEvents>,
}

impl Context {
    /// The object's status as last known: what this operator wrote, while the cache still
    /// holds the version it was written over; otherwise the cached object's.
    pub fn current_status(&self, ogb: &OktaGroupBinding) -> OktaGroupBindingStatus {
        let uid = ogb.uid().unwrap_or_default();
        let mut written = lock(&self.written_status);
        match (written.get(&uid), &ogb.metadata.resource_version) {
            (Some((over, status)), Some(version)) if over == version => status.clone(),
            (written_over, _) => {
                // The cache has moved past the version the status was written over: it
                // holds that write (or a later one), so the copy is no longer needed.
                if written_over.is_some() {
                    written.remove(&uid);
                }
                ogb.status.clone().unwrap_or_default()
            }
        }
    }

    pub fn record_status(&self, ogb: &OktaGroupBinding, status: OktaGroupBindingStatus) {
        let (Some(uid), Some(version)) = (ogb.uid(), ogb.metadata.resource_version.clone()) else {
            return;
        };
        lock(&self.written_status).insert(uid, (version, status));
    }

    /// The cache now holds `ogb` as the watch delivered it: a status written over an older
    /// version is in it (or was overwritten since), so the copy kept of it goes. Without
    /// this, every object's last status stayed twice in memory until its next reconcile.
    pub fn cached_version(&self, ogb: &OktaGroupBinding) {
        let uid = ogb.uid().unwrap_or_default();
        let mut written = lock(&self.written_status);
        if written
            .get(&uid)
            .is_some_and(|(over, _)| ogb.metadata.resource_version.as_ref() != Some(over))
        {
            written.remove(&uid);
        }
    }

    /// Drops what is kept about a deleted object.
    pub fn forget(&self, uid: &str) {
        if let Some(roster) = &self.roster {
            roster.track(uid, None);
        }
        lock(&self.written_status).remove(uid);
        self.clear_failures(uid);
        self.metrics.object(uid, None);
        self.unreadable.readable_again(uid, &self.metrics);
    }

    /// Of `total` objects in the cache, how many can be read: those the controller keeps
    /// reconciling (one that cannot be read waits for a change).
    pub fn readable_objects(&self, total: usize) -> usize {
        total.saturating_sub(self.unreadable.count())
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
