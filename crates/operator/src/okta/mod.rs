//! The operator's side of Okta: a Management API client that respects Okta's rate limits
//! and errors ([`client`]), one shared, batching cache of group answers ([`groups`]), and
//! the member lists of groups bound in Users mode ([`members`]).

pub mod auth;
pub mod client;
mod error;
pub mod groups;
pub mod members;
mod ratelimit;

pub use client::{OktaClient, OktaConfig};
pub use error::OktaError;
pub use groups::{GroupAnswer, GroupDirectory};

use serde::Deserialize;

/// A group as the operator needs it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OktaGroup {
    pub id: String,
    #[serde(rename = "type")]
    pub group_type: String,
    pub profile: GroupProfile,
    #[serde(default)]
    pub last_membership_updated: Option<String>,
    #[serde(default, rename = "_embedded")]
    pub embedded: Option<GroupEmbedded>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct GroupProfile {
    pub name: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct GroupEmbedded {
    pub stats: Option<GroupStats>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GroupStats {
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

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct UserProfile {
    pub login: String,
    #[serde(default)]
    pub email: Option<String>,
}
