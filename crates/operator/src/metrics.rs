//! Prometheus metrics. Every label comes from a small fixed set (results, error kinds,
//! Okta buckets, HTTP status codes, verification states), never from free text.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

mod changes;
mod labels;
pub use changes::{ChangeMetrics, DELIVERY_RESULTS, SOURCES};
pub use labels::*;

/// Where one object stands, as the gauges count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectState {
    /// One of [`STATES`].
    pub verification: &'static str,
    /// One of [`READY_STATUSES`].
    pub ready: &'static str,
    pub bindings: i64,
}

pub struct Metrics {
    registry: Registry,
    pub reconciles: Counter,
    pub reconcile_failures: Family<KindLabel, Counter>,
    binding_write_failures: Family<KindLabel, Counter>,
    pub reconcile_duration: Histogram,
    pub okta_requests: Family<OktaRequestLabels, Counter>,
    pub okta_rate_limit_remaining: Family<BucketLabel, Gauge>,
    pub system_log_events: Counter,
    okta_change_to_effect: Family<PathLabel, Histogram, fn() -> Histogram>,
    pub events_dropped: Counter,
    okta_credentials_refused: Gauge,
    okta_credential_changes: Counter,
    managed_bindings: Gauge,
    groups: Family<StateLabel, Gauge>,
    objects_by_readiness: Family<ReadyLabel, Gauge>,
    pub cached_objects: Family<KindLabel, Gauge>,
    pub watch_synced: Family<WatchLabel, Gauge>,
    pub watch_failures: Family<WatchLabel, Counter>,
    unreadable_objects: Gauge,
    okta_unreadable_items: Family<KindLabel, Counter>,
    /// The revocation authorizer's answers, by decision (`Deny`, `NoOpinion`).
    pub authorizer_decisions: Family<DecisionLabel, Counter>,
    pub authorizer_duration: Histogram,
    /// The stream of Okta's changes and the event hook.
    pub changes: ChangeMetrics,
    /// uid -> where it stands, to keep the gauges exact.
    objects: Mutex<HashMap<String, ObjectState>>,
    leader: Gauge,
    last_successful_reconcile: Gauge<f64, AtomicU64>,
    grants_ending_soon: Gauge,
    bindings_terminating: Gauge,
    /// uid -> its bindings being deleted but kept by finalizers.
    terminating: Mutex<HashMap<String, i64>>,
    /// uid -> when its time-bound grant ends, for objects whose grant has not ended.
    grant_ends: Mutex<HashMap<String, Timestamp>>,
}

/// How far ahead `grants_ending_within_hour` looks.
const ENDING_SOON: SignedDuration = SignedDuration::from_secs(3600);

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("okta_rbac");
        let reconciles = Counter::default();
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        let reconcile_failures = Family::<KindLabel, Counter>::default();
        registry.register(
            "reconcile_failures",
            "Reconciles that failed, by error kind",
            reconcile_failures.clone(),
        );
        let binding_write_failures = Family::<KindLabel, Counter>::default();
        registry.register(
            "binding_write_failures",
            "ClusterRoleBinding and RoleBinding writes that failed, by kind",
            binding_write_failures.clone(),
        );
        let reconcile_duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            reconcile_duration.clone(),
        );
        let okta_requests = Family::<OktaRequestLabels, Counter>::default();
        registry.register(
            "okta_requests",
            "Requests to Okta by rate-limit bucket and HTTP status (0: no answer)",
            okta_requests.clone(),
        );
        let okta_rate_limit_remaining = Family::<BucketLabel, Gauge>::default();
        registry.register(
            "okta_rate_limit_remaining",
            "X-Rate-Limit-Remaining of Okta's last answer, by bucket",
            okta_rate_limit_remaining.clone(),
        );
        let system_log_events = Counter::default();
        registry.register(
            "okta_system_log_events",
            "Events read from Okta's System Log (group changes and user lifecycle; those that could not be read count in okta_unreadable_items)",
            system_log_events.clone(),
        );
        let okta_change_to_effect: Family<PathLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.25, 2.0, 12)));
        registry.register(
            "okta_change_to_effect_seconds",
            "From an Okta event's publication to the change taking effect: path=\"binding\" when \
             a binding written for it succeeded, path=\"authorizer\" when the revocation \
             authorizer began answering by it",
            okta_change_to_effect.clone(),
        );
        for path in ["binding", "authorizer"] {
            drop(okta_change_to_effect.get_or_create(&PathLabel { path: path.into() }));
        }
        let okta_credentials_refused = Gauge::default();
        registry.register(
            "okta_credentials_refused",
            "1 while Okta refuses the credentials in use (an API token revoked, a key \
             removed), 0 once it accepts them",
            okta_credentials_refused.clone(),
        );
        let okta_credential_changes = Counter::default();
        registry.register(
            "okta_credential_changes",
            "Times the Okta credentials changed on disk (a rotated Secret) and were taken up",
            okta_credential_changes.clone(),
        );
        let events_dropped = Counter::default();
        registry.register(
            "events_dropped",
            "Events not published because the event queue was full",
            events_dropped.clone(),
        );
        let managed_bindings = Gauge::default();
        registry.register(
            "managed_bindings",
            "ClusterRoleBindings and RoleBindings the operator keeps",
            managed_bindings.clone(),
        );
        let groups = Family::<StateLabel, Gauge>::default();
        // Every state shows from the start, at zero.
        for state in STATES {
            drop(groups.get_or_create(&StateLabel {
                state: state.to_string(),
            }));
        }
        registry.register(
            "groups",
            "OktaGroupBindings by verification state",
            groups.clone(),
        );
        let objects_by_readiness = Family::<ReadyLabel, Gauge>::default();
        for ready in READY_STATUSES {
            drop(objects_by_readiness.get_or_create(&ReadyLabel {
                ready: ready.to_string(),
            }));
        }
        registry.register(
            "objects",
            "OktaGroupBindings by the status of their Ready condition",
            objects_by_readiness.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica runs the controller (it holds the Lease, or runs without \
             leader election), 0 while it stands by",
            leader.clone(),
        );
        let last_successful_reconcile = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "last_successful_reconcile_timestamp_seconds",
            "When a reconcile last finished without error (Unix time; 0: none yet)",
            last_successful_reconcile.clone(),
        );
        let grants_ending_soon = Gauge::default();
        registry.register(
            "grants_ending_within_hour",
            "Time-bound OktaGroupBindings whose grant (spec.endTime) ends within the next hour",
            grants_ending_soon.clone(),
        );
        let bindings_terminating = Gauge::default();
        registry.register(
            "bindings_terminating",
            "Bindings the operator deleted (or would delete) that finalizers keep: they still \
             grant until the finalizers are removed",
            bindings_terminating.clone(),
        );
        let cached_objects = Family::<KindLabel, Gauge>::default();
        registry.register(
            "cached_objects",
            "Objects in the operator's caches, by kind (BindingParts: the distinct labels, \
             owner, roleRef and subjects its bindings share)",
            cached_objects.clone(),
        );
        let watch_synced = Family::<WatchLabel, Gauge>::default();
        registry.register(
            "watch_synced",
            "1 once a watch of the running controller has its first full list, 0 until then \
             (readiness waits for all of them; /readyz says why one has not)",
            watch_synced.clone(),
        );
        let watch_failures = Family::<WatchLabel, Counter>::default();
        registry.register(
            "watch_failures",
            "Failed lists and watches, by watch (each is retried with backoff)",
            watch_failures.clone(),
        );
        let unreadable_objects = Gauge::default();
        registry.register(
            "unreadable_objects",
            "OktaGroupBindings the operator cannot read (a field its version does not \
             understand): their bindings are left as they are",
            unreadable_objects.clone(),
        );
        let okta_unreadable_items = Family::<KindLabel, Counter>::default();
        for kind in crate::okta::UNREADABLE_KINDS {
            drop(okta_unreadable_items.get_or_create(&KindLabel { kind: kind.into() }));
        }
        registry.register(
            "okta_unreadable_items",
            "Items of Okta's answers that could not be read and were skipped, by kind \
             (the rest of their page was used)",
            okta_unreadable_items.clone(),
        );
        let authorizer_decisions = Family::<DecisionLabel, Counter>::default();
        for decision in ["Deny", "NoOpinion"] {
            drop(authorizer_decisions.get_or_create(&DecisionLabel {
                decision: decision.into(),
            }));
        }
        registry.register(
            "authorizer_decisions",
            "The revocation authorizer's answers to the apiserver, by decision (it never allows)",
            authorizer_decisions.clone(),
        );
        let authorizer_duration = Histogram::new(exponential_buckets(0.00005, 2.0, 16));
        registry.register(
            "authorizer_duration_seconds",
            "Time the revocation authorizer took to answer, from the request read to the answer",
            authorizer_duration.clone(),
        );
        let changes = ChangeMetrics::register(&mut registry);
        Self {
            registry,
            changes,
            authorizer_decisions,
            authorizer_duration,
            cached_objects,
            watch_synced,
            watch_failures,
            unreadable_objects,
            okta_unreadable_items,
            reconciles,
            reconcile_failures,
            binding_write_failures,
            reconcile_duration,
            okta_requests,
            okta_rate_limit_remaining,
            system_log_events,
            okta_change_to_effect,
            events_dropped,
            okta_credentials_refused,
            okta_credential_changes,
            managed_bindings,
            groups,
            objects_by_readiness,
            objects: Mutex::new(HashMap::new()),
            leader,
            last_successful_reconcile,
            grants_ending_soon,
            grant_ends: Mutex::new(HashMap::new()),
            bindings_terminating,
            terminating: Mutex::new(HashMap::new()),
        }
    }
}

impl Metrics {
    /// Shows each failure kind at 0 from the start: `rate()` and `increase()` then
    /// answer 0, not "no data". The kinds are the reconciler's to name.
    /// An Okta change took effect (`path`: "binding" or "authorizer") `seconds` after
    /// Okta published it.
    pub fn okta_change_took_effect(&self, path: &str, seconds: f64) {
        self.okta_change_to_effect
            .get_or_create(&PathLabel { path: path.into() })
            .observe(seconds.max(0.0));
    }

    pub fn show_failure_kinds(&self, reconcile: &[&str], binding_writes: &[&str]) {
        for kind in reconcile {
            drop(self.reconcile_failures.get_or_create(&KindLabel {
                kind: (*kind).into(),
            }));
        }
        for kind in binding_writes {
            drop(self.binding_write_failures.get_or_create(&KindLabel {
                kind: (*kind).into(),
            }));
        }
    }

    /// What the Okta client observed: an answer, or a verdict on the credentials.
    pub fn okta(&self, event: crate::okta::client::Observed) {
        use crate::okta::client::Observed;
        match event {
            Observed::Answer {
                bucket,
                status,
                remaining,
            } => {
                self.okta_request(bucket, status);
                if let Some(remaining) = remaining {
                    self.okta_rate_limit_remaining
                        .get_or_create(&BucketLabel {
                            bucket: bucket.into(),
                        })
                        .set(remaining as i64);
                }
            }
            Observed::Credentials { refused, changes } => self.okta_credentials(refused, changes),
            Observed::Unreadable { kind, count } => self.okta_unreadable(kind, count),
        }
    }

    /// Okta's latest verdict on the credentials, and how often they changed so far.
    pub fn okta_credentials(&self, refused: bool, changes: u64) {
        self.okta_credentials_refused.set(i64::from(refused));
        let counted = self.okta_credential_changes.get();
        if changes > counted {
            self.okta_credential_changes.inc_by(changes - counted);
        }
    }

    pub fn okta_request(&self, bucket: &str, status: u16) {
        self.okta_requests
            .get_or_create(&OktaRequestLabels {
                bucket: bucket.to_string(),
                status: status.to_string(),
            })
            .inc();
    }

    /// Counts a failed binding write of this kind (a bounded set, see `WriteFailure::kind`).
    pub fn binding_write_failed(&self, kind: &'static str) {
        self.binding_write_failures
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// When an object's time-bound grant ends (None: it has no end ahead of it).
    pub fn grant_ends(&self, uid: &str, ends: Option<Timestamp>) {
        let mut grant_ends = self.grant_ends.lock().unwrap_or_else(|e| e.into_inner());
        match ends {
            Some(ends) => grant_ends.insert(uid.to_string(), ends),
            None => grant_ends.remove(uid),
        };
    }

    /// How many of an object's bindings are being deleted but kept by finalizers.
    pub fn terminating(&self, uid: &str, count: usize) {
        let mut terminating = self.terminating.lock().unwrap_or_else(|e| e.into_inner());
        let previous = if count == 0 {
            terminating.remove(uid)
        } else {
            terminating.insert(uid.to_string(), count as i64)
        };
        self.bindings_terminating
            .inc_by(count as i64 - previous.unwrap_or(0));
    }

    /// Records an object's state; `None` when it is gone.
    pub fn object(&self, uid: &str, state: Option<ObjectState>) {
        if state.is_none() {
            self.grant_ends(uid, None);
            self.terminating(uid, 0);
        }
        let mut objects = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        // Kept by difference, not recounted: a recount per reconcile would cost
        // O(objects) each time, O(objects²) per resync.
        let previous = match state {
            Some(state) => objects.insert(uid.to_string(), state),
            None => objects.remove(uid),
        };
        let group = |state: &str| {
            self.groups.get_or_create(&StateLabel {
                state: state.to_string(),
            })
        };
        let readiness = |ready: &str| {
            self.objects_by_readiness.get_or_create(&ReadyLabel {
                ready: ready.to_string(),
            })
        };
        if let Some(previous) = previous {
            self.managed_bindings.dec_by(previous.bindings);
            group(previous.verification).dec();
            readiness(previous.ready).dec();
        }
        if let Some(state) = state {
            self.managed_bindings.inc_by(state.bindings);
            group(state.verification).inc();
            readiness(state.ready).inc();
        }
    }

    /// Whether this replica runs the controller.
    pub fn leading(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// A reconcile finished without error now.
    pub fn reconciled(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs_f64())
            .unwrap_or_default();
        self.last_successful_reconcile.set(now);
    }

    /// How many OktaGroupBindings cannot be read.
    pub fn unreadable_objects(&self, count: usize) {
        self.unreadable_objects.set(count as i64);
    }

    /// Counts items of one kind that could not be read in Okta's answers.
    pub fn okta_unreadable(&self, kind: &'static str, count: usize) {
        self.okta_unreadable_items
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc_by(count as u64);
    }

    /// Sets how many objects the caches hold of one kind.
    pub fn cached(&self, kind: &str, count: usize) {
        self.cached_objects
            .get_or_create(&KindLabel { kind: kind.into() })
            .set(count as i64);
    }

    pub fn encode(&self) -> String {
        let now = Timestamp::now();
        let ending = self
            .grant_ends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|ends| **ends > now && **ends <= now + ENDING_SOON)
            .count();
        self.grants_ending_soon.set(ending as i64);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests;
