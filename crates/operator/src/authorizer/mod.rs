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
