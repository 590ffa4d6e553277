//! Okta's Event Hooks: Okta POSTs System Log events to the operator as they happen, so a
//! change in Okta reaches the cluster in about a second instead of at the next System
//! Log poll. The receiver ([`receiver`]) answers at once and queues the events for the
//! replica that leads ([`Inbox`]), which hands them to the same [`ChangeStream`] the
//! System Log feeds. Hooks promise nothing (late, duplicated, out of order, or never):
//! the System Log stays the safety net.

pub mod config;
pub mod receiver;
pub mod secret;

use crate::https::TlsFiles;
use crate::okta::LogEvent;
use crate::okta::changes::Source;
use crate::okta::stream::ChangeStream;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

pub use crate::okta::changes::HOOK_EVENT_TYPES as EVENT_TYPES;

/// Deliveries waiting for the leader, at most: beyond, the receiver answers 503 and Okta
/// retries once.
const QUEUED_DELIVERIES: usize = 1024;

/// Where and how the receiver serves.
#[derive(Debug)]
pub struct HookConfig {
    pub address: SocketAddr,
    pub files: TlsFiles,
    /// The header Okta sends the secret in (the hook's `authScheme.key`).
    pub header: String,
    pub secret: Arc<secret::HeaderSecret>,
    /// The largest body taken.
    pub body_limit: usize,
    /// The System Log's poll interval while the hook delivers every event first.
    pub system_log_interval: Duration,
    /// The receiver's Service, pointed at the leader.
    pub leader_endpoint: Option<crate::leader_endpoint::LeaderEndpoint>,
}

/// What one delivery carried.
#[derive(Debug)]
pub struct Delivery {
    pub events: Vec<LogEvent>,
    /// Events that could not be read.
    pub unreadable: usize,
}

/// What became of an offered delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Offered {
    Queued,
    /// This replica does not lead: not taken (the receiver answers 503).
    Standby,
    Full,
}

/// The queue from the receiver to the leader. Open only while this replica leads.
#[derive(Default)]
pub struct Inbox {
    sender: Mutex<Option<mpsc::Sender<Delivery>>>,
}

impl Inbox {
    fn sender(&self) -> std::sync::MutexGuard<'_, Option<mpsc::Sender<Delivery>>> {
        self.sender.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens the queue for this replica, which now leads; it closes when the returned
    /// receiver is dropped (the leader stopped).
    pub fn open(&self) -> mpsc::Receiver<Delivery> {
        let (sender, receiver) = mpsc::channel(QUEUED_DELIVERIES);
        *self.sender() = Some(sender);
        receiver
    }

    pub fn offer(&self, delivery: Delivery) -> Offered {
        let mut sender = self.sender();
        let Some(open) = sender.as_ref() else {
            return Offered::Standby;
        };
        match open.try_send(delivery) {
            Ok(()) => Offered::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => Offered::Full,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                *sender = None;
                Offered::Standby
            }
        }
    }
}

/// While leading: takes the queued deliveries down the change stream and hands the names
/// of the groups to verify again to `changed`.
pub async fn deliver(
    queue: mpsc::Receiver<Delivery>,
    stream: Arc<ChangeStream>,
    changed: mpsc::Sender<Vec<String>>,
) {
    let take = move |delivery: Delivery| {
        stream.take(Source::EventHook, delivery.events, delivery.unreadable)
    };
    forward_merged(queue, take, changed).await;
}

/// Takes each delivery as soon as it is queued, whatever the controller is doing: the
/// names a busy controller has not yet taken are merged and handed over as one list
/// when it has room. Waiting on the controller instead would let the queue fill and the
/// receiver refuse Okta's deliveries (503) exactly when changes come fastest, and the
/// System Log would find first what the hook had already delivered.
async fn forward_merged(
    mut queue: mpsc::Receiver<Delivery>,
    mut take: impl FnMut(Delivery) -> Vec<String>,
    changed: mpsc::Sender<Vec<String>>,
) {
    let mut pending = std::collections::BTreeSet::new();
    loop {
        tokio::select! {
            delivery = queue.recv() => {
                let Some(delivery) = delivery else { break };
                let names = take(delivery);
                if !names.is_empty() {
                    tracing::info!(
                        groups = names.len(),
                        "an event hook delivery names groups to verify again"
                    );
                    pending.extend(names);
                }
            }
            room = changed.reserve(), if !pending.is_empty() => {
                let Ok(room) = room else { return };
                room.send(std::mem::take(&mut pending).into_iter().collect());
            }
        }
    }
    if !pending.is_empty() {
        let _ = changed.send(pending.into_iter().collect()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> Delivery {
        Delivery {
            events: Vec::new(),
            unreadable: 0,
        }
    }

    fn naming(group: &str) -> Delivery {
        Delivery {
            events: vec![LogEvent {
                uuid: group.to_string(),
                event_type: "group.lifecycle.delete".into(),
                published: None,
                target: Vec::new(),
            }],
            unreadable: 0,
        }
    }

    #[tokio::test]
    async fn a_busy_controller_never_holds_deliveries_back_and_gets_their_names_merged() {
        let inbox = Arc::new(Inbox::default());
        let queue = inbox.open();
        // Room for one list, and nobody reading it yet.
        let (changed, mut changes) = mpsc::channel(1);
        let forwarding = tokio::spawn(forward_merged(
            queue,
            |delivery: Delivery| delivery.events.into_iter().map(|e| e.uuid).collect(),
            changed,
        ));
        let groups: Vec<String> = (0..QUEUED_DELIVERIES * 3)
            .map(|i| format!("g{:05}", i % 50))
            .collect();
        // The controller reads nothing while three queues' worth of deliveries come: each
        // is still taken once the forwarder has had a turn.
        for group in &groups {
            let mut turns = 0;
            while inbox.offer(naming(group)) == Offered::Full {
                assert!(
                    turns < 100,
                    "the queue stays full: deliveries are held back"
                );
                turns += 1;
                tokio::task::yield_now().await;
            }
        }
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        drop(inbox);
        let mut told = std::collections::BTreeSet::new();
        let mut lists = 0;
        while let Some(names) = changes.recv().await {
            lists += 1;
            told.extend(names);
        }
        forwarding.await.expect("forwarding ends with the queue");
        let expected: std::collections::BTreeSet<_> = groups.into_iter().collect();
        assert_eq!(told, expected, "every group named, none lost");
        assert!(lists <= 2, "merged, not one list per delivery: {lists}");
    }

    #[test]
    fn only_the_leader_takes_deliveries_and_a_full_queue_says_so() {
        let inbox = Inbox::default();
        assert_eq!(inbox.offer(delivery()), Offered::Standby);
        let queue = inbox.open();
        for _ in 0..QUEUED_DELIVERIES {
            assert_eq!(inbox.offer(delivery()), Offered::Queued);
        }
        assert_eq!(inbox.offer(delivery()), Offered::Full);
        drop(queue);
        assert_eq!(
            inbox.offer(delivery()),
            Offered::Standby,
            "no longer leading"
        );
    }
}
