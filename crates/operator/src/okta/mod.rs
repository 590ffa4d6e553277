//! The operator's side of Okta: a Management API client that respects Okta's rate limits
//! and errors ([`client`]), one shared, batching cache of group answers ([`groups`]), and
//! the member lists of groups bound in Users mode ([`members`]), and one stream of Okta's
//! changes ([`stream`]) fed by the System Log ([`system_log`]) and the event hook
//! ([`crate::hooks`]).

pub mod auth;
mod batching;
pub mod changes;
pub mod claims;
pub mod client;
pub mod credentials;
pub mod dpop;
mod error;
pub mod groups;
pub mod items;
pub mod members;
mod ratelimit;
pub mod recent;
pub mod stream;
pub mod system_log;

pub use client::{OktaClient, OktaConfig};
pub use error::OktaError;
pub use groups::{GroupAnswer, GroupDirectory};
pub use items::UNREADABLE_KINDS;

use items::{Item, or_none};
use serde::Deserialize;
use serde_json::Value;

fn text_at(value: &Value, pointer: &str) -> Option<String> {
    value.pointer(pointer)?.as_str().map(str::to_string)
}

/// A group as the operator needs it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OktaGroup {
    pub id: String,
    #[serde(rename = "type")]
    pub group_type: String,
    pub profile: GroupProfile,
    #[serde(default, deserialize_with = "or_none")]
    pub last_membership_updated: Option<String>,
    #[serde(default, rename = "_embedded", deserialize_with = "or_none")]
    pub embedded: Option<GroupEmbedded>,
}

impl Item for OktaGroup {
    const KIND: &'static str = "group";

    fn label(value: &Value) -> Option<String> {
        text_at(value, "/profile/name")
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct GroupProfile {
    pub name: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct GroupEmbedded {
    #[serde(default, deserialize_with = "or_none")]
    pub stats: Option<GroupStats>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GroupStats {
    #[serde(default, deserialize_with = "or_none")]
    pub users_count: Option<u32>,
}

impl OktaGroup {
    pub fn member_count(&self) -> Option<u32> {
        self.embedded.as_ref()?.stats.as_ref()?.users_count
    }
}

/// A group member as the operator needs it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct OktaUser {
    pub id: String,
    pub status: String,
    pub profile: UserProfile,
}

impl Item for OktaUser {
    const KIND: &'static str = "user";

    fn label(value: &Value) -> Option<String> {
        text_at(value, "/profile/login")
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct UserProfile {
    pub login: String,
    #[serde(default, deserialize_with = "or_none")]
    pub email: Option<String>,
}

/// An event of Okta's System Log, as the operator needs it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogEvent {
    pub uuid: String,
    pub event_type: String,
    /// When Okta logged it, as Okta writes it (RFC 3339, UTC).
    #[serde(default, deserialize_with = "or_none")]
    pub published: Option<String>,
    #[serde(default)]
    pub target: Vec<LogTarget>,
}

impl Item for LogEvent {
    const KIND: &'static str = "event";

    fn label(value: &Value) -> Option<String> {
        text_at(value, "/eventType")
    }
}

/// A System Log event's target.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogTarget {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "or_none")]
    pub display_name: Option<String>,
    /// A user's login; a group's name.
    #[serde(default, deserialize_with = "or_none")]
    pub alternate_id: Option<String>,
}

/// A claim of a custom authorization server, as the Authorization Server API returns it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OktaClaim {
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    /// IDENTITY (ID tokens) or RESOURCE (access tokens).
    pub claim_type: String,
    /// GROUPS, EXPRESSION or SYSTEM.
    pub value_type: String,
    /// For GROUPS: the filter's value.
    #[serde(default)]
    pub value: Option<String>,
    /// STARTS_WITH, EQUALS, CONTAINS or REGEX (GROUPS claims only).
    #[serde(default, rename = "group_filter_type")]
    pub group_filter_type: Option<String>,
    #[serde(default)]
    pub always_include_in_token: Option<bool>,
    #[serde(default)]
    pub conditions: Option<ClaimConditions>,
}

impl Item for OktaClaim {
    const KIND: &'static str = "claim";

    fn label(value: &Value) -> Option<String> {
        text_at(value, "/name")
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct ClaimConditions {
    /// The scopes the claim is issued for; empty: any scope.
    #[serde(default)]
    pub scopes: Vec<String>,
}
