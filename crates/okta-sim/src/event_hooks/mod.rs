//! Okta's Event Hooks: the Management API that registers them (`/api/v1/eventHooks`),
//! the one-time verification of an endpoint, and the deliveries of System Log events to
//! the ACTIVE, VERIFIED hooks subscribed to them, over HTTPS only, with Okta's 3 s
//! timeout and single retry; plus the admin calls that set delivery faults and settings
//! and show what was delivered.

mod admin;
mod client;
mod delivery;
mod faults;
mod hook;
mod register;
mod registry;
mod routes;
mod verify;

pub(crate) use delivery::start;
pub use delivery::{AttemptOutcome, DeliveryRecord, MAX_EVENTS_PER_DELIVERY};
pub use faults::EventHookFaults;
pub use hook::ELIGIBLE_EVENT_TYPES;
pub use register::HookRegistration;
pub use registry::MAX_ACTIVE;

use crate::SimState;
use crate::limits::lock;
use crate::system_log::LogEvent;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;

/// How deliveries are made.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EventHookSettings {
    /// How long a delivery attempt or a verification waits for an answer: 3 s, as Okta.
    pub timeout_ms: u64,
    /// Events recorded within this long of a delivery's first event go in it too (at
    /// most 50).
    pub batch_window_ms: u64,
}

impl Default for EventHookSettings {
    fn default() -> Self {
        Self {
            timeout_ms: 3_000,
            batch_window_ms: 50,
        }
    }
}

pub(crate) struct EventHooks {
    registry: Mutex<registry::Registry>,
    client: client::HookClient,
    settings: Mutex<EventHookSettings>,
    faults: faults::DeliveryFaults,
    deliveries: Mutex<Vec<DeliveryRecord>>,
    /// Each hook's worker's queue.
    queues: Mutex<HashMap<String, UnboundedSender<LogEvent>>>,
    /// The dispatcher and the workers, stopped with the simulator.
    tasks: Mutex<Vec<AbortHandle>>,
}

impl EventHooks {
    /// Deliveries trust `ca_pem` (the simulator's own CA), and roots added later.
    pub fn new(ca_pem: Option<&str>) -> Result<Self, String> {
        Ok(Self {
            registry: Mutex::default(),
            client: client::HookClient::new(ca_pem)?,
            settings: Mutex::default(),
            faults: faults::DeliveryFaults::default(),
            deliveries: Mutex::default(),
            queues: Mutex::default(),
            tasks: Mutex::default(),
        })
    }

    pub fn settings(&self) -> EventHookSettings {
        lock(&self.settings).clone()
    }

    pub fn set_settings(&self, settings: EventHookSettings) {
        *lock(&self.settings) = settings;
    }

    pub fn faults(&self) -> EventHookFaults {
        self.faults.get()
    }

    pub fn set_faults(&self, faults: EventHookFaults) {
        self.faults.set(faults);
    }

    pub fn trust(&self, pem: &str) -> Result<(), String> {
        self.client.trust(pem)
    }

    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        lock(&self.deliveries).clone()
    }

    pub fn clear_deliveries(&self) {
        lock(&self.deliveries).clear();
    }

    /// Stops the deleted hook's worker once its queue is empty.
    fn forget(&self, hook_id: &str) {
        lock(&self.queues).remove(hook_id);
    }

    fn keep(&self, task: AbortHandle) {
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    pub fn stop(&self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

pub(crate) fn routes() -> axum::Router<Arc<SimState>> {
    routes::routes().merge(admin::routes())
}
