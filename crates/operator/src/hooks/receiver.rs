//! The event hook's HTTPS endpoint, `/okta/event-hook`: the one-time verification GET
//! (`x-okta-verification-challenge`, answered `{"verification": ...}`) and the deliveries
//! (POST, `data.events[]`). Every request must carry the registered header. The handler
//! only reads and queues: Okta waits 3 s, and the work is done by the leader's task.

use super::{Delivery, HookConfig, Inbox, Offered};
use crate::metrics::Metrics;
use crate::okta::LogEvent;
use crate::okta::items::Items;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

pub const PATH: &str = "/okta/event-hook";
const CHALLENGE_HEADER: &str = "x-okta-verification-challenge";

struct Receiver {
    header: String,
    secret: Arc<super::secret::HeaderSecret>,
    inbox: Arc<Inbox>,
    metrics: Arc<Metrics>,
}

impl Receiver {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get(&self.header)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| self.secret.accepts(value))
    }

    fn refuse(&self, result: &str, status: StatusCode, message: &'static str) -> Response {
        self.metrics.changes.hook_request(result);
        (status, message).into_response()
    }
}

async fn verify(State(receiver): State<Arc<Receiver>>, headers: HeaderMap) -> Response {
    if !receiver.authorized(&headers) {
        return receiver.refuse(
            "unauthorized",
            StatusCode::UNAUTHORIZED,
            "the event hook's header is missing or wrong",
        );
    }
    let Some(challenge) = headers
        .get(CHALLENGE_HEADER)
        .and_then(|value| value.to_str().ok())
    else {
        return receiver.refuse(
            "unreadable",
            StatusCode::BAD_REQUEST,
            "no x-okta-verification-challenge header",
        );
    };
    receiver.metrics.changes.hook_request("verification");
    // Okta reaches the receiver: as good a sign that the hook works as a delivery.
    let _ = receiver.inbox.offer(Delivery {
        events: Vec::new(),
        unreadable: 0,
    });
    tracing::info!("answered Okta's event hook verification");
    axum::Json(serde_json::json!({ "verification": challenge })).into_response()
}

/// The events of a delivery body, each read on its own.
pub fn events_of(body: &[u8]) -> Result<Items<LogEvent>, String> {
    let mut value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    match value
        .pointer_mut("/data/events")
        .map(serde_json::Value::take)
    {
        Some(serde_json::Value::Array(events)) => Ok(Items::decode(events)),
        _ => Err("no data.events array".into()),
    }
}

async fn delivered(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !receiver.authorized(&headers) {
        return receiver.refuse(
            "unauthorized",
            StatusCode::UNAUTHORIZED,
            "the event hook's header is missing or wrong",
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return receiver.refuse(
                "too_large",
                StatusCode::PAYLOAD_TOO_LARGE,
                "the delivery is larger than --event-hook-body-limit",
            );
        }
        Err(_) => {
            return receiver.refuse(
                "unreadable",
                StatusCode::BAD_REQUEST,
                "the delivery's body cannot be read",
            );
        }
    };
    let events = match events_of(&body) {
        Ok(events) => events,
        Err(error) => {
            tracing::warn!(%error, "an event hook delivery cannot be read");
            return receiver.refuse(
                "unreadable",
                StatusCode::BAD_REQUEST,
                "not an Okta event hook delivery",
            );
        }
    };
    let count = events.read.len();
    let offered = receiver.inbox.offer(Delivery {
        events: events.read,
        unreadable: events.unreadable.len(),
    });
    let (result, status) = match offered {
        Offered::Queued => ("accepted", StatusCode::OK),
        // Not taken: a standby (or a leader stepping down) is reached only while the
        // Service's routing catches up with a failover. A 5xx has Okta try once more,
        // which may reach the new leader; the System Log brings it otherwise.
        Offered::Standby => ("standby", StatusCode::SERVICE_UNAVAILABLE),
        Offered::Full => ("queue_full", StatusCode::SERVICE_UNAVAILABLE),
    };
    receiver.metrics.changes.hook_request(result);
    tracing::debug!(events = count, result, "event hook delivery");
    status.into_response()
}

/// The receiver's routes, to be served over HTTPS ([`crate::https::serve`]).
pub fn app(config: &HookConfig, inbox: Arc<Inbox>, metrics: Arc<Metrics>) -> Router {
    let receiver = Arc::new(Receiver {
        header: config.header.to_ascii_lowercase(),
        secret: config.secret.clone(),
        inbox,
        metrics,
    });
    Router::new()
        .route(PATH, get(verify).post(delivered))
        .layer(DefaultBodyLimit::max(config.body_limit))
        .with_state(receiver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_s_events_are_read_one_by_one() {
        let body = br#"{"eventType":"com.okta.event_hook","data":{"events":[
            {"uuid":"e1","published":"2026-12-03T10:00:00.000Z","eventType":"group.user_membership.remove","target":[{"id":"00g1","type":"UserGroup"}]},
            {"uuid":"e2","eventType":7},
            {"uuid":"e3","published":"2026-12-03T10:00:01.000Z","eventType":"user.lifecycle.suspend","target":[]}
        ]}}"#;
        let events = events_of(body).expect("a delivery");
        let uuids: Vec<&str> = events.read.iter().map(|e| e.uuid.as_str()).collect();
        assert_eq!(uuids, ["e1", "e3"]);
        assert_eq!(events.unreadable.len(), 1);
        assert_eq!(events.unreadable[0].id.as_deref(), Some("e2"));
    }

    #[test]
    fn what_is_not_a_delivery_is_refused_with_why() {
        assert!(events_of(b"nope").unwrap_err().contains("not JSON"));
        assert!(
            events_of(br#"{"data":{}}"#)
                .unwrap_err()
                .contains("data.events")
        );
    }
}
