//! Okta's front door: request ids, injected faults, rate-limit buckets, the concurrency
//! limit and the request log, in front of every API and OAuth route.

use crate::errors::{OktaError, random_id};
use crate::limits::{Bucket, Standing, lock};
use crate::org_token::TokenCaller;
use crate::{RequestRecord, SimState, epoch_millis};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-okta-request-id");
const HANG: Duration = Duration::from_secs(600);

/// Okta's front door: every request gets an id; API and OAuth requests go through the
/// injected faults, the rate-limit bucket and the concurrency limit, and are logged.
pub(crate) async fn edge(
    State(state): State<Arc<SimState>>,
    request: Request,
    next: Next,
) -> Response {
    let bucket = Bucket::of(request.method(), request.uri().path());
    // Logged even when the client gives up first (a timeout drops this future): the log
    // then shows every request the client had in flight, with status 499.
    let mut record = bucket.map(|bucket| Logged {
        state: state.clone(),
        record: Some(RequestRecord {
            method: request.method().to_string(),
            path: request.uri().path().to_string(),
            query: request.uri().query().map(str::to_string),
            status: CLIENT_CLOSED_REQUEST,
            bucket: Some(bucket.name()),
            started_ms: epoch_millis(),
            finished_ms: 0,
            rate_limit_reset: None,
            caller: state.credentials.caller_label(request.headers()),
        }),
    });
    let mut response = match bucket {
        Some(bucket) => guarded(&state, bucket, request, next).await,
        None => next.run(request).await,
    };
    if let Ok(id) = HeaderValue::from_str(&random_id("", 27)) {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    if let Some(entry) = record.as_mut().and_then(|logged| logged.record.as_mut()) {
        entry.status = response.status().as_u16();
        if let Some(TokenCaller(caller)) = response.extensions().get::<TokenCaller>() {
            entry.caller = Some(caller.clone());
        }
        entry.rate_limit_reset = response
            .headers()
            .get("x-rate-limit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
    }
    response
}

/// nginx's status for a request whose client closed the connection before the answer.
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// Appends its record to the request log when dropped: after the answer, or when the
/// client went away.
struct Logged {
    state: Arc<SimState>,
    record: Option<RequestRecord>,
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.finished_ms = epoch_millis();
            lock(&self.state.log).push(record);
        }
    }
}

async fn guarded(state: &SimState, bucket: Bucket, request: Request, next: Next) -> Response {
    let fault = state.faults.draw(bucket.name());
    if fault.outage {
        return OktaError::unavailable().into_response();
    }
    let now = epoch_millis() / 1000;
    let standing = match state.limits.admit(bucket, now) {
        Ok(standing) => standing,
        Err(standing) => {
            return with_rate_headers(OktaError::rate_limited().into_response(), standing);
        }
    };
    // A slow or hanging request keeps its slot, so clients that pile up hit the limit.
    let Some(_slot) = state.limits.enter() else {
        // Okta reports a concurrency refusal with a limit and remaining of zero.
        let standing = Standing {
            limit: 0,
            remaining: 0,
            reset: now + 1,
        };
        return with_rate_headers(OktaError::rate_limited().into_response(), standing);
    };
    if !fault.latency.is_zero() {
        tokio::time::sleep(fault.latency).await;
    }
    if fault.hang {
        tokio::time::sleep(HANG).await;
        return OktaError::unavailable().into_response();
    }
    if fault.server_error {
        return with_rate_headers(OktaError::internal().into_response(), standing);
    }
    with_rate_headers(next.run(request).await, standing)
}

fn with_rate_headers(mut response: Response, standing: Standing) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-rate-limit-limit", standing.limit as u64),
        ("x-rate-limit-remaining", standing.remaining as u64),
        ("x-rate-limit-reset", standing.reset),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
    response
}
