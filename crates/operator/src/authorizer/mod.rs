//! The revocation authorizer: a Webhook authorizer for the apiserver's structured
//! authorization configuration, placed before RBAC, that denies what a token still
//! carrying a group grants once Okta no longer has its user ACTIVE in that group (removed,
//! suspended, deactivated, deleted, or the group deleted), and has no opinion on anything
//! else. ID tokens carry the groups of their login for as long as they live; this makes a
//! change in Okta reach the tokens already issued. Answered from memory
//! ([`roster::Roster`]); no Okta request is made on the request path.

pub mod config;
pub mod decide;
pub mod roster;
pub mod server;

use crate::metrics::Metrics;
use roster::Effect;

/// One audit record per change in what the authorizer answers, and its delay after Okta.
pub fn audit(effect: &Effect, metrics: &Metrics) {
    let age = effect
        .published
        .as_deref()
        .and_then(crate::okta::recent::age_seconds);
    if let Some(age) = age {
        metrics.okta_change_took_effect("authorizer", age);
    }
    tracing::info!(
        target: "audit",
        group = %effect.group,
        user_id = %effect.user_id.as_deref().unwrap_or(""),
        change = %effect.what,
        okta_event_id = %effect.event_uuid,
        okta_event_type = %effect.event_type,
        seconds_after_okta = age,
        "the revocation authorizer answers by an Okta change"
    );
}
