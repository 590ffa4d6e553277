//! Waiting for the world to converge, with failures that say what was last seen.

use kube::api::Api;
use okta_rbac_api::OktaGroupBinding;
use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, or fails after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn condition<'a>(
    ogb: &'a OktaGroupBinding,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    ogb.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

/// The object once a condition has this status (and, if given, reason). A timeout
/// names the conditions last seen.
pub async fn wait_condition(
    client: &kube::Client,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> OktaGroupBinding {
    let api: Api<OktaGroupBinding> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut seen = String::from("nothing");
    loop {
        if let Ok(ogb) = api.get(name).await {
            if let Some(c) = condition(&ogb, type_)
                && c.status == status
                && reason.is_none_or(|r| c.reason == r)
            {
                return ogb;
            }
            let conditions = ogb
                .status
                .as_ref()
                .map(|s| s.conditions.clone())
                .unwrap_or_default();
            seen = conditions
                .iter()
                .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
                .collect::<Vec<_>>()
                .join("; ");
        }
        assert!(
            Instant::now() < deadline,
            "{name}: waited 45s for {type_}={status} {reason:?}; last seen: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
