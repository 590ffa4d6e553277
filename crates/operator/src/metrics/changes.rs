//! The metrics of the stream of Okta's changes: which source told the operator of each
//! event first, the copies it dropped, and the event hook's deliveries.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

/// The sources of Okta's changes, as `source` names them.
pub const SOURCES: [&str; 2] = ["system_log", "event_hook"];

/// What became of an event hook request, as `result` names it.
pub const DELIVERY_RESULTS: [&str; 7] = [
    "accepted",
    "verification",
    "unauthorized",
    "too_large",
    "unreadable",
    "standby",
    "queue_full",
];

pub struct ChangeMetrics {
    first_told: Family<SourceLabel, Counter>,
    duplicates: Family<SourceLabel, Counter>,
    deliveries: Family<ResultLabel, Counter>,
    last_delivery: Gauge<f64, AtomicU64>,
    log_interval: Gauge<f64, AtomicU64>,
}

impl ChangeMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let first_told = Family::<SourceLabel, Counter>::default();
        let duplicates = Family::<SourceLabel, Counter>::default();
        for source in SOURCES {
            let label = SourceLabel {
                source: source.into(),
            };
            drop(first_told.get_or_create(&label));
            drop(duplicates.get_or_create(&label));
        }
        registry.register(
            "okta_events_first_told",
            "Okta events (group changes, user lifecycle) by the source that told the operator \
             of them first: system_log or event_hook",
            first_told.clone(),
        );
        registry.register(
            "okta_events_duplicate",
            "Okta events dropped because they were already taken, by the source of the copy \
             (an event hook delivers at least once, and the System Log reads them again)",
            duplicates.clone(),
        );
        let deliveries = Family::<ResultLabel, Counter>::default();
        for result in DELIVERY_RESULTS {
            drop(deliveries.get_or_create(&ResultLabel {
                result: result.into(),
            }));
        }
        registry.register(
            "event_hook_requests",
            "Requests to the event hook receiver by result: accepted (queued), verification \
             (Okta's one-time challenge answered), unauthorized (wrong or missing header), \
             too_large, unreadable (not an event hook body), standby (a replica that does \
             not lead answered 503; Okta retries once), queue_full (answered 503, Okta \
             retries once)",
            deliveries.clone(),
        );
        let last_delivery = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "event_hook_last_delivery_timestamp_seconds",
            "When the last event hook delivery was accepted (Unix seconds; 0: none yet)",
            last_delivery.clone(),
        );
        let log_interval = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "okta_system_log_poll_interval_seconds",
            "The System Log's current poll interval: longer while the event hook delivers \
             every event first",
            log_interval.clone(),
        );
        Self {
            first_told,
            duplicates,
            deliveries,
            last_delivery,
            log_interval,
        }
    }

    /// An event was taken: first from `source`, or (`duplicate`) again from it.
    pub fn event(&self, source: &str, duplicate: bool) {
        let family = if duplicate {
            &self.duplicates
        } else {
            &self.first_told
        };
        family
            .get_or_create(&SourceLabel {
                source: source.into(),
            })
            .inc();
    }

    /// An event hook request ended with `result` (one of [`DELIVERY_RESULTS`]).
    pub fn hook_request(&self, result: &str) {
        self.deliveries
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
        if result == "accepted" {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.last_delivery.set(now);
        }
    }

    pub fn log_interval(&self, interval: std::time::Duration) {
        self.log_interval.set(interval.as_secs_f64());
    }
}
