//! Deliveries: every event the System Log records goes to the ACTIVE, VERIFIED hooks
//! subscribed to its type. Each hook has a queue and a worker of its own, so deliveries
//! never hold up the request that caused the event and reach each hook in the order the
//! events were recorded (unless a fault reorders them). Events recorded close together
//! share a delivery. An attempt that times out, fails to connect or gets a 5xx is tried
//! once more; a delivery that still fails is logged as `event_hook.delivery`.

use super::client::describe;
use super::hook::EventHook;
use super::{EventHooks, faults::Plan};
use crate::directory::okta_time;
use crate::limits::lock;
use crate::system_log::{EventOutcome, LogEvent, new_uuid};
use crate::{SimState, epoch_millis};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::time::{Instant, timeout, timeout_at};

/// The most events Okta puts in one delivery.
pub const MAX_EVENTS_PER_DELIVERY: usize = 50;
const ATTEMPTS: u32 = 2;

/// What one try to deliver came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AttemptOutcome {
    /// The hook answered with this status.
    Status(u16),
    /// No answer: a timeout, a refused connection, a TLS failure.
    Error(String),
    /// Dropped by an injected fault: never sent.
    Dropped,
}

impl std::fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptOutcome::Status(status) => write!(f, "the endpoint answered HTTP {status}"),
            AttemptOutcome::Error(error) => f.write_str(error),
            AttemptOutcome::Dropped => f.write_str("dropped"),
        }
    }
}

impl AttemptOutcome {
    pub fn delivered(&self) -> bool {
        matches!(self, AttemptOutcome::Status(status) if (200..300).contains(status))
    }

    /// Okta tries once more after a timeout, a connection error or a 5xx, never after a
    /// 4xx.
    fn worth_retrying(&self) -> bool {
        match self {
            AttemptOutcome::Status(status) => *status >= 500,
            AttemptOutcome::Error(_) => true,
            AttemptOutcome::Dropped => false,
        }
    }
}

/// One attempt to deliver, for tests to check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub hook_id: String,
    /// The delivery's `eventId`: the same for its retry and its duplicate.
    pub event_id: String,
    /// The `uuid` of each System Log event it carries, in order.
    pub event_uuids: Vec<String>,
    /// 1, or 2 for the retry.
    pub attempt: u32,
    /// The second copy of a duplicated delivery.
    pub duplicate: bool,
    pub outcome: AttemptOutcome,
    /// When the attempt started and ended, in milliseconds since the epoch.
    pub started_ms: u64,
    pub finished_ms: u64,
}

/// One POST's worth of events.
#[derive(Clone)]
struct Delivery {
    event_id: String,
    event_uuids: Vec<String>,
    body: String,
}

impl Delivery {
    fn new(base_url: &str, hook_id: &str, events: &[LogEvent]) -> Self {
        let event_id = new_uuid();
        let body = json!({
            "eventType": "com.okta.event_hook",
            "eventTypeVersion": "1.0",
            "cloudEventsVersion": "0.1",
            "source": format!("{base_url}/api/v1/eventHooks/{hook_id}"),
            "eventId": event_id,
            "eventTime": okta_time(OffsetDateTime::now_utc()),
            "contentType": "application/json",
            "data": {"events": events.iter().map(LogEvent::to_json).collect::<Vec<_>>()},
        });
        Self {
            event_id,
            event_uuids: events.iter().map(|e| e.uuid.clone()).collect(),
            body: body.to_string(),
        }
    }
}

/// Subscribes the event hooks to the System Log.
pub fn start(state: &Arc<SimState>) {
    let (sender, mut events) = mpsc::unbounded_channel::<LogEvent>();
    lock(&state.directory).system_log.publish_to(sender);
    let dispatcher = state.clone();
    let task = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let receivers = lock(&dispatcher.event_hooks.registry).receivers(event.event_type);
            for hook_id in receivers {
                enqueue(&dispatcher, hook_id, event.clone());
            }
        }
    });
    state.event_hooks.keep(task.abort_handle());
}

/// Hands the event to the hook's worker, starting one if the hook has none.
fn enqueue(state: &Arc<SimState>, hook_id: String, event: LogEvent) {
    let hooks = &state.event_hooks;
    let mut queues = lock(&hooks.queues);
    let event = match queues.get(&hook_id) {
        Some(queue) => match queue.send(event) {
            Ok(()) => return,
            Err(mpsc::error::SendError(event)) => event,
        },
        None => event,
    };
    let (queue, events) = mpsc::unbounded_channel();
    // The receiver is alive: it was made just above.
    let _ = queue.send(event);
    queues.insert(hook_id.clone(), queue);
    drop(queues);
    let task = tokio::spawn(work(state.clone(), hook_id, events));
    hooks.keep(task.abort_handle());
}

/// A hook's worker: batches its events, applies the injected faults, delivers.
async fn work(state: Arc<SimState>, hook_id: String, mut events: UnboundedReceiver<LogEvent>) {
    let hooks = &state.event_hooks;
    // A delivery the reorder fault holds back, with its plan.
    let mut held: Option<(Delivery, Plan)> = None;
    loop {
        let next = if held.is_some() {
            // It waits for the next delivery, but not forever.
            match timeout(hooks.faults.hold_limit(), events.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    release(&state, &hook_id, &mut held).await;
                    continue;
                }
            }
        } else {
            events.recv().await
        };
        let Some(first) = next else { break };
        let window = Duration::from_millis(hooks.settings().batch_window_ms);
        let batch = gather(first, &mut events, window).await;
        let delivery = Delivery::new(&state.base_url, &hook_id, &batch);
        let plan = hooks.faults.plan(&hook_id);
        if plan.drop {
            let dropped = new_record(&hook_id, &delivery, 1, false, AttemptOutcome::Dropped);
            hooks.record(dropped);
        } else if plan.hold && held.is_none() {
            held = Some((delivery, plan));
            continue;
        } else {
            deliver(&state, &hook_id, &delivery, plan).await;
        }
        release(&state, &hook_id, &mut held).await;
    }
    release(&state, &hook_id, &mut held).await;
}

async fn release(state: &SimState, hook_id: &str, held: &mut Option<(Delivery, Plan)>) {
    if let Some((delivery, plan)) = held.take() {
        deliver(state, hook_id, &delivery, plan).await;
    }
}

/// The first event and those that follow it within the window, at most 50.
async fn gather(
    first: LogEvent,
    events: &mut UnboundedReceiver<LogEvent>,
    window: Duration,
) -> Vec<LogEvent> {
    let deadline = Instant::now() + window;
    let mut batch = vec![first];
    while batch.len() < MAX_EVENTS_PER_DELIVERY {
        match timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => batch.push(event),
            Ok(None) | Err(_) => break,
        }
    }
    batch
}

fn new_record(
    hook_id: &str,
    delivery: &Delivery,
    attempt: u32,
    duplicate: bool,
    outcome: AttemptOutcome,
) -> DeliveryRecord {
    let now = epoch_millis();
    DeliveryRecord {
        hook_id: hook_id.to_string(),
        event_id: delivery.event_id.clone(),
        event_uuids: delivery.event_uuids.clone(),
        attempt,
        duplicate,
        outcome,
        started_ms: now,
        finished_ms: now,
    }
}

/// Sends a delivery as its plan says: late, and perhaps twice.
async fn deliver(state: &SimState, hook_id: &str, delivery: &Delivery, plan: Plan) {
    if !plan.delay.is_zero() {
        tokio::time::sleep(plan.delay).await;
    }
    send(state, hook_id, delivery, false).await;
    if plan.duplicate {
        send(state, hook_id, delivery, true).await;
    }
}

/// Tries a delivery, once more if Okta would, and logs it if it fails.
async fn send(state: &SimState, hook_id: &str, delivery: &Delivery, duplicate: bool) {
    let hooks = &state.event_hooks;
    // A hook deleted since the events were recorded gets nothing.
    let Some(hook) = lock(&hooks.registry).get(hook_id).ok().cloned() else {
        return;
    };
    let client = hooks.client.client();
    let mut failure = String::new();
    for attempt in 1..=ATTEMPTS {
        let timeout_ms = hooks.settings().timeout_ms;
        let started_ms = epoch_millis();
        let outcome = post(&client, &hook, &delivery.body, timeout_ms).await;
        hooks.record(DeliveryRecord {
            started_ms,
            finished_ms: epoch_millis(),
            ..new_record(hook_id, delivery, attempt, duplicate, outcome.clone())
        });
        if outcome.delivered() {
            return;
        }
        failure = outcome.to_string();
        if !outcome.worth_retrying() {
            break;
        }
    }
    lock(&state.directory).system_log.record_outcome(
        "event_hook.delivery",
        "Event hook delivery failed",
        vec![hook.target()],
        EventOutcome::failure(format!(
            "Delivery of event {} failed: {failure}",
            delivery.event_id
        )),
    );
}

async fn post(
    client: &reqwest::Client,
    hook: &EventHook,
    body: &str,
    timeout_ms: u64,
) -> AttemptOutcome {
    let channel = &hook.spec.channel;
    let mut request = client
        .post(&channel.uri)
        .timeout(Duration::from_millis(timeout_ms))
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json");
    for (key, value) in channel.request_headers() {
        request = request.header(key, value);
    }
    match request.body(body.to_string()).send().await {
        Ok(response) => AttemptOutcome::Status(response.status().as_u16()),
        Err(error) => AttemptOutcome::Error(describe(&error, timeout_ms)),
    }
}

impl EventHooks {
    fn record(&self, record: DeliveryRecord) {
        lock(&self.deliveries).push(record);
    }
}
