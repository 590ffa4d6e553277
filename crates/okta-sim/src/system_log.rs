//! The System Log: the events the directory records when groups change, and
//! `GET /api/v1/logs` as Okta serves it: `since`, `until`, `filter` (on `eventType`,
//! `outcome.result`, `actor.id`), `sortOrder`, `limit`, `after`, and `Link` paging. A
//! query without `until` in ascending order is a polling query: it always has a `next`
//! link, which a client follows to read what is logged later. Event hooks subscribe to
//! what it records.

use super::SimState;
use super::auth::{Caller, LOGS_READ};
use super::directory::okta_time;
use super::errors::OktaError;
use super::limits::lock;
use super::paging::{decode_cursor, encode_cursor};
use super::query::{Dialect, Op};
use axum::extract::{OriginalUri, State};
use axum::response::Response;
use axum::routing::get;
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc::UnboundedSender;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;
/// Without `since`, Okta answers the last seven days.
const DEFAULT_WINDOW: time::Duration = time::Duration::days(7);

pub const LOG_FILTER: Dialect = Dialect {
    attributes: &[
        "eventType",
        "outcome.result",
        "actor.id",
        "severity",
        "target.id",
        "target.type",
        "target.alternateId",
    ],
    operators: &[Op::Eq, Op::Sw, Op::Co, Op::Pr],
};

/// One thing a log event is about.
#[derive(Clone, Debug)]
pub struct Target {
    pub id: String,
    /// `UserGroup` or `User`.
    pub kind: &'static str,
    pub alternate_id: String,
    pub display_name: String,
}

/// How what the event records turned out: `outcome.result` and `outcome.reason`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventOutcome {
    /// `SUCCESS` or `FAILURE`.
    pub result: &'static str,
    pub reason: Option<String>,
}

impl EventOutcome {
    pub fn success() -> Self {
        Self {
            result: "SUCCESS",
            reason: None,
        }
    }

    pub fn failure(reason: impl Into<String>) -> Self {
        Self {
            result: "FAILURE",
            reason: Some(reason.into()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct LogEvent {
    /// Position in the log; the paging cursor.
    pub seq: u64,
    pub uuid: String,
    pub published: OffsetDateTime,
    pub event_type: &'static str,
    pub display_message: &'static str,
    pub outcome: EventOutcome,
    pub targets: Vec<Target>,
}

impl LogEvent {
    /// An attribute's value; `target.*` as the target `target` has it.
    fn attribute(&self, name: &str, target: Option<&Target>) -> Option<String> {
        match name {
            "eventType" => Some(self.event_type.into()),
            "outcome.result" => Some(self.outcome.result.into()),
            "actor.id" => Some("okta-sim".into()),
            "severity" => Some("INFO".into()),
            "target.id" => target.map(|t| t.id.clone()),
            "target.type" => target.map(|t| t.kind.to_string()),
            "target.alternateId" => target.map(|t| t.alternate_id.clone()),
            _ => None,
        }
    }

    /// Whether the filter holds for the event, as Okta evaluates `target.*` over its
    /// targets: for any one of them.
    fn matches(&self, filter: &super::query::Expr) -> bool {
        if self.targets.is_empty() {
            return filter.matches(&|a| self.attribute(a, None));
        }
        self.targets
            .iter()
            .any(|t| filter.matches(&|a| self.attribute(a, Some(t))))
    }

    /// The event as `GET /api/v1/logs` and event hook deliveries carry it.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let targets: Vec<serde_json::Value> = self
            .targets
            .iter()
            .map(|t| {
                serde_json::json!({
                    "id": t.id,
                    "type": t.kind,
                    "alternateId": t.alternate_id,
                    "displayName": t.display_name,
                    "detailEntry": null,
                })
            })
            .collect();
        serde_json::json!({
            "uuid": self.uuid,
            "published": okta_time(self.published),
            "eventType": self.event_type,
            "version": "0",
            "severity": "INFO",
            "displayMessage": self.display_message,
            "legacyEventType": null,
            "actor": {
                "id": "okta-sim",
                "type": "PublicClientApp",
                "alternateId": "okta-sim",
                "displayName": "okta-sim admin API",
                "detailEntry": null,
            },
            "outcome": {"result": self.outcome.result, "reason": self.outcome.reason},
            "transaction": {"type": "WEB", "id": self.uuid, "detail": {}},
            "target": targets,
        })
    }
}

/// The org's log, oldest first.
#[derive(Debug, Default)]
pub struct SystemLog {
    events: Vec<LogEvent>,
    /// Where each new event is also sent (event hooks), if anywhere.
    subscriber: Option<UnboundedSender<LogEvent>>,
}

impl SystemLog {
    /// Records a successful action.
    pub fn record(
        &mut self,
        event_type: &'static str,
        display_message: &'static str,
        targets: Vec<Target>,
    ) {
        self.record_outcome(
            event_type,
            display_message,
            targets,
            EventOutcome::success(),
        );
    }

    pub fn record_outcome(
        &mut self,
        event_type: &'static str,
        display_message: &'static str,
        targets: Vec<Target>,
        outcome: EventOutcome,
    ) {
        let seq = self.events.len() as u64 + 1;
        let event = LogEvent {
            seq,
            uuid: new_uuid(),
            published: OffsetDateTime::now_utc(),
            event_type,
            display_message,
            outcome,
            targets,
        };
        if let Some(subscriber) = &self.subscriber {
            // A subscriber that has gone away just misses the event.
            let _ = subscriber.send(event.clone());
        }
        self.events.push(event);
    }

    /// Sends every event recorded from now on to `subscriber` too.
    pub(crate) fn publish_to(&mut self, subscriber: UnboundedSender<LogEvent>) {
        self.subscriber = Some(subscriber);
    }

    pub fn events(&self) -> &[LogEvent] {
        &self.events
    }
}

/// A random (version 4) UUID, as Okta gives each event.
pub(crate) fn new_uuid() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-4{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[16..20],
        &hex[20..32]
    )
}

pub(crate) fn routes() -> axum::Router<Arc<SimState>> {
    axum::Router::new().route("/api/v1/logs", get(list_events))
}

fn parse_time(name: &str, value: &str) -> Result<OffsetDateTime, OktaError> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|_| {
        OktaError::validation(format!(
            "{name}: '{value}' is not an ISO 8601 timestamp such as 2026-11-24T10:00:00.000Z"
        ))
    })
}

async fn list_events(
    State(state): State<Arc<SimState>>,
    OriginalUri(uri): OriginalUri,
    caller: Caller,
) -> Result<Response, OktaError> {
    state.authorize(&caller, LOGS_READ)?;
    let params = super::api::params(&uri);
    let now = OffsetDateTime::now_utc();
    let until = params
        .get("until")
        .map(|u| parse_time("until", u))
        .transpose()?;
    let since = match params.get("since") {
        Some(s) => parse_time("since", s)?,
        None => until.unwrap_or(now) - DEFAULT_WINDOW,
    };
    let ascending = match params.get("sortOrder").map(String::as_str) {
        None | Some("ASCENDING") => true,
        Some("DESCENDING") => false,
        Some(other) => {
            return Err(OktaError::validation(format!(
                "sortOrder: '{other}' is not ASCENDING or DESCENDING"
            )));
        }
    };
    let limit = if params.contains_key("limit") {
        super::api::limit(&params, MAX_LIMIT)?
    } else {
        DEFAULT_LIMIT
    };
    let filter = super::api::parse_param(&params, "filter", &LOG_FILTER)?;
    let after: Option<u64> = match params.get("after") {
        None => None,
        Some(cursor) => Some(
            decode_cursor(cursor)
                .and_then(|seq| seq.parse().ok())
                .ok_or_else(|| {
                    OktaError::validation(format!("after: '{cursor}' is not a valid cursor"))
                })?,
        ),
    };
    let polling = until.is_none() && ascending;

    let log = lock(&state.directory);
    let mut matching: Vec<&LogEvent> = log
        .system_log
        .events()
        .iter()
        .filter(|e| e.published >= since && until.is_none_or(|u| e.published < u))
        .filter(|e| filter.as_ref().is_none_or(|f| e.matches(f)))
        .filter(|e| {
            after.is_none_or(|after| {
                if ascending {
                    e.seq > after
                } else {
                    e.seq < after
                }
            })
        })
        .collect();
    if !ascending {
        matching.reverse();
    }
    let more = matching.len() > limit;
    matching.truncate(limit);
    let body: Vec<serde_json::Value> = matching.iter().map(|e| e.to_json()).collect();
    // A polling query keeps its place even when nothing new is logged yet.
    let next = match matching.last() {
        Some(last) if more || polling => Some(encode_cursor(&last.seq.to_string())),
        None if polling => Some(encode_cursor(
            &after
                .unwrap_or_else(|| last_before(log.system_log.events(), since))
                .to_string(),
        )),
        _ => None,
    };
    drop(log);
    let url = super::api::request_url(&state, &uri)?;
    Ok(super::api::paged_json(
        body,
        super::paging::link_headers(&url, next.as_deref()),
    ))
}

/// The cursor of a polling query that has seen nothing yet: the last event before `since`.
fn last_before(events: &[LogEvent], since: OffsetDateTime) -> u64 {
    events
        .iter()
        .take_while(|e| e.published < since)
        .last()
        .map_or(0, |e| e.seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query;

    #[test]
    fn events_are_numbered_in_order() {
        let mut log = SystemLog::default();
        log.record("group.lifecycle.create", "Create Okta group", vec![]);
        log.record("group.lifecycle.delete", "Delete Okta group", vec![]);
        let seqs: Vec<u64> = log.events().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1, 2]);
    }

    #[test]
    fn a_target_filter_holds_when_any_target_matches() {
        let mut log = SystemLog::default();
        let target = |id: &str, kind, name: &str| Target {
            id: id.into(),
            kind,
            alternate_id: name.into(),
            display_name: name.into(),
        };
        log.record(
            "group.user_membership.remove",
            "Remove user from group membership",
            vec![
                target("00u1", "User", "bob@example.com"),
                target("00g1", "UserGroup", "k8s-admins"),
            ],
        );
        let holds =
            |expr: &str| log.events()[0].matches(&query::parse(expr, &LOG_FILTER).expect("filter"));
        assert!(holds(r#"target.id eq "00u1""#));
        assert!(holds(r#"target.id eq "00g1" and eventType sw "group.""#));
        assert!(holds(r#"target.alternateId eq "bob@example.com""#));
        assert!(!holds(r#"target.id eq "00u2""#));
        assert!(!holds(
            r#"target.id eq "00u1" and target.type eq "UserGroup""#
        ));
    }

    #[test]
    fn the_filter_reads_event_types() {
        let mut log = SystemLog::default();
        log.record(
            "group.user_membership.add",
            "Add user to group membership",
            vec![],
        );
        let filter = query::parse(
            r#"eventType sw "group.lifecycle." or eventType eq "group.user_membership.add""#,
            &LOG_FILTER,
        )
        .expect("filter");
        assert!(log.events()[0].matches(&filter));
        let filter =
            query::parse(r#"eventType eq "user.session.start""#, &LOG_FILTER).expect("filter");
        assert!(!log.events()[0].matches(&filter));
    }
}
