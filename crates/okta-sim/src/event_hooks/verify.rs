//! Okta's one-time verification of an event hook: a GET carrying a random
//! `x-okta-verification-challenge`, which the endpoint must echo as
//! `{"verification": "<challenge>"}` in a 200 answer.

use super::client::describe;
use super::hook::Channel;
use crate::errors::random_id;
use axum::http::header::ACCEPT;
use serde_json::Value;
use std::time::Duration;

pub const CHALLENGE_HEADER: &str = "x-okta-verification-challenge";

/// Whether the endpoint answered a fresh challenge; if not, why.
pub async fn challenge(
    client: &reqwest::Client,
    channel: &Channel,
    timeout_ms: u64,
) -> Result<(), String> {
    let challenge = random_id("", 43);
    let mut request = client
        .get(&channel.uri)
        .timeout(Duration::from_millis(timeout_ms))
        .header(ACCEPT, "application/json")
        .header(CHALLENGE_HEADER, &challenge);
    for (key, value) in channel.request_headers() {
        request = request.header(key, value);
    }
    let response = request.send().await.map_err(|e| describe(&e, timeout_ms))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(format!("the endpoint answered HTTP {}", status.as_u16()));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| describe(&e, timeout_ms))?;
    let answer: Value = serde_json::from_slice(&body)
        .map_err(|_| "the endpoint's answer is not a JSON object".to_string())?;
    match answer.get("verification").and_then(Value::as_str) {
        Some(echoed) if echoed == challenge => Ok(()),
        Some(_) => Err("the answer's verification is not the challenge Okta sent".into()),
        None => Err("the answer has no verification field".into()),
    }
}
