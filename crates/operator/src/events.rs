//! Events for people (`kubectl describe`, `kubectl events`), in the events.k8s.io/v1 API.
//!
//! Not kube's `Recorder`: it keeps every event it published for six minutes, to count
//! repeats in a series, and sweeps that cache on every publish. A GitOps sync of 5,000
//! objects then holds 5,000 events (about 4 KiB each with the table) and sweeps them
//! 5,000 times. This operator publishes an event only when something changed (a grant,
//! a revocation, a condition turning bad with a new reason), so repeats are rare and a
//! repeat as a new event is what a person reading them expects anyway.

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// An event for people about one object.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    pub type_: EventType,
    pub reason: &'static str,
    pub note: String,
}

/// Publishes events as one controller instance.
#[derive(Clone)]
pub struct Publisher {
    client: Client,
    controller: String,
    instance: String,
}

impl Publisher {
    /// `instance` defaults to the controller's name (outside a Pod).
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Self {
            client,
            controller: controller.into(),
            instance: instance.unwrap_or_else(|| controller.into()),
        }
    }

    /// The event as the API takes it, as of `now`; named like client-go's: the object's
    /// name and the time in nanoseconds, in hex.
    fn event(&self, note: &Note, regarding: &ObjectReference, now: Timestamp) -> Event {
        let name = regarding.name.as_deref().unwrap_or(&self.controller);
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                namespace: Some(event_namespace(regarding).into()),
                ..Default::default()
            },
            action: Some("Reconcile".into()),
            reason: Some(note.reason.into()),
            note: Some(note.note.clone()),
            type_: Some(note.type_.as_str().into()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        }
    }

    /// Publishes the note about `regarding`, as something that happened at `at`.
    pub async fn publish(
        &self,
        note: &Note,
        regarding: &ObjectReference,
        at: Timestamp,
    ) -> Result<(), kube::Error> {
        let event = self.event(note, regarding, at);
        Api::<Event>::namespaced(self.client.clone(), event_namespace(regarding))
            .create(&PostParams::default(), &event)
            .await
            .map(drop)
    }
}

/// Events waiting to be published, at most this many: a burst beyond it (the apiserver
/// slow, thousands of objects changing at once) drops events rather than memory.
pub const QUEUE: usize = 1024;

/// Events published at once. One at a time could not keep up with a sync of thousands of
/// objects (each a Granted event): at 5,000 objects the queue filled and most of them
/// were dropped.
pub const PUBLISHING: usize = 4;

/// An event as queued: the note, its object, and when it happened.
type Queued = (Note, ObjectReference, Timestamp);

/// Where a reconcile leaves its events: published off the reconcile's path by a worker,
/// [`PUBLISHING`] at a time, with a bound on what waits.
#[derive(Clone)]
pub struct EventQueue {
    sender: tokio::sync::mpsc::Sender<Queued>,
    dropped: prometheus_client::metrics::counter::Counter,
    clock: std::sync::Arc<UniqueClock>,
}

/// Times that never repeat: an event's name is its object's name and its time, so two
/// notes of one reconcile (say Granted and Active) stamped with the same instant would
/// share a name, and the second would be refused as already existing.
#[derive(Debug, Default)]
struct UniqueClock {
    last_nanos: std::sync::atomic::AtomicI64,
}

impl UniqueClock {
    /// Now, or a nanosecond after the last time given if that is not earlier.
    fn now(&self) -> Timestamp {
        use std::sync::atomic::Ordering;
        let now = Timestamp::now();
        let wanted = i64::try_from(now.as_nanosecond()).unwrap_or(i64::MAX);
        let previous = self
            .last_nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(wanted.max(last.saturating_add(1)))
            })
            .unwrap_or(wanted);
        Timestamp::from_nanosecond(i128::from(wanted.max(previous.saturating_add(1))))
            .unwrap_or(now)
    }
}

/// The queue takes events while this lives; dropped, the queue takes no more and its
/// worker ends once it has published what is queued. Handles to the queue may outlive
/// the controller (a reconcile task still being cancelled), so the worker does not wait
/// for every one of them to be dropped.
pub struct QueueOpen {
    _open: tokio::sync::oneshot::Sender<()>,
}

impl EventQueue {
    /// The queue, its worker, and what keeps it open: the worker publishes until the queue
    /// is closed (every handle dropped, or [`QueueOpen`] dropped) and empty, so awaiting
    /// it at shutdown flushes what is left.
    pub fn new(
        publisher: Publisher,
        capacity: usize,
        dropped: prometheus_client::metrics::counter::Counter,
    ) -> (
        Self,
        impl std::future::Future<Output = ()> + Send + 'static,
        QueueOpen,
    ) {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Queued>(capacity);
        let (open, mut closed) = tokio::sync::oneshot::channel::<()>();
        let worker = async move {
            let mut closing = false;
            let queued = futures::stream::poll_fn(move |cx| {
                if !closing && closed.poll_unpin(cx).is_ready() {
                    closing = true;
                    receiver.close();
                }
                receiver.poll_recv(cx)
            });
            queued
                .for_each_concurrent(PUBLISHING, |(note, regarding, at)| {
                    let publisher = &publisher;
                    async move {
                        if let Err(error) = publisher.publish(&note, &regarding, at).await {
                            tracing::warn!(%error, "publishing an event failed");
                        }
                    }
                })
                .await;
        };
        let clock = std::sync::Arc::new(UniqueClock::default());
        (
            Self {
                sender,
                dropped,
                clock,
            },
            worker,
            QueueOpen { _open: open },
        )
    }

    /// Queues the notes about `regarding`, dropping (and counting) what does not fit.
    pub fn publish(&self, notes: Vec<Note>, regarding: &ObjectReference) {
        for note in notes {
            if self
                .sender
                .try_send((note, regarding.clone(), self.clock.now()))
                .is_err()
                && self.dropped.inc() == 0
            {
                tracing::warn!(
                    "the event queue is full; events are dropped (okta_rbac_events_dropped_total)"
                );
            }
        }
    }
}

/// Events about cluster-scoped objects live in `default`, as kubectl looks for them.
fn event_namespace(regarding: &ObjectReference) -> &str {
    regarding.namespace.as_deref().unwrap_or("default")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publisher() -> Publisher {
        // A client that is never called: building an event needs no server.
        let config = kube::Config::new("https://127.0.0.1:1".parse().expect("url"));
        let client = Client::try_from(config).expect("client");
        Publisher::new(client, "okta-rbac-operator", None)
    }

    #[tokio::test]
    async fn notes_queued_together_get_times_and_names_of_their_own() {
        let clock = UniqueClock::default();
        let publisher = publisher();
        let regarding = ObjectReference {
            name: Some("grant".into()),
            ..Default::default()
        };
        let note = Note {
            type_: EventType::Normal,
            reason: "Granted",
            note: String::new(),
        };
        let times: Vec<Timestamp> = (0..1000).map(|_| clock.now()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
        let names: std::collections::BTreeSet<Option<String>> = times
            .iter()
            .map(|at| publisher.event(&note, &regarding, *at).metadata.name)
            .collect();
        assert_eq!(names.len(), 1000, "every event its own name");
    }

    fn granted() -> Note {
        Note {
            type_: EventType::Normal,
            reason: "Granted",
            note: "1 binding created".into(),
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_rather_than_grows() {
        let dropped = prometheus_client::metrics::counter::Counter::default();
        let (queue, worker, _open) = EventQueue::new(publisher(), 2, dropped.clone());
        let note = granted();
        queue.publish(
            vec![note.clone(), note.clone(), note],
            &ObjectReference::default(),
        );
        assert_eq!(dropped.get(), 1, "two fit, the third is dropped");
        drop(queue);
        // Publishing fails (nothing listens there), but the worker drains and ends.
        tokio::time::timeout(std::time::Duration::from_secs(30), worker)
            .await
            .expect("the worker ends once the queue is closed and empty");
    }

    #[tokio::test]
    async fn closed_the_worker_publishes_what_is_queued_and_ends_though_a_handle_lives_on() {
        let dropped = prometheus_client::metrics::counter::Counter::default();
        let (queue, worker, open) = EventQueue::new(publisher(), 4, dropped.clone());
        let note = granted();
        queue.publish(vec![note.clone()], &ObjectReference::default());
        let worker = tokio::spawn(worker);
        drop(open);
        tokio::time::timeout(std::time::Duration::from_secs(30), worker)
            .await
            .expect("the worker ends once closed and empty, with a handle still held")
            .expect("worker");
        // Closed: what comes later is not taken (and counted as dropped).
        queue.publish(vec![note], &ObjectReference::default());
        assert_eq!(dropped.get(), 1);
    }

    #[tokio::test]
    async fn an_event_about_a_cluster_scoped_object_names_it_and_lives_in_default() {
        let regarding = ObjectReference {
            api_version: Some("oktarbac.io/v1alpha1".into()),
            kind: Some("OktaGroupBinding".into()),
            name: Some("admins".into()),
            uid: Some("u-1".into()),
            ..Default::default()
        };
        let note = Note {
            type_: EventType::Warning,
            reason: "GroupNotFound",
            note: "no such group".into(),
        };
        let at = Timestamp::now();
        let event = publisher().event(&note, &regarding, at);
        assert_eq!(event.event_time, Some(MicroTime(at)), "when it happened");
        assert_eq!(event.metadata.namespace.as_deref(), Some("default"));
        assert!(
            event
                .metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("admins."))
        );
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(event.reason.as_deref(), Some("GroupNotFound"));
        assert_eq!(event.regarding, Some(regarding));
        assert_eq!(
            event.reporting_instance.as_deref(),
            Some("okta-rbac-operator"),
            "outside a Pod the instance is the controller"
        );
    }
}
