//! The operator-wide settings that decisions depend on, mirroring the apiserver's OIDC flags.

use okta_rbac_api::UserNameAttribute;

#[derive(Clone, Debug)]
pub struct Policy {
    /// Only groups whose name starts with this (case-insensitively, like Okta's claim
    /// filter) can be bound; empty allows all.
    pub allowed_group_prefix: String,
    /// The apiserver's `--oidc-groups-prefix`, when the object sets none.
    pub groups_prefix: String,
    /// The apiserver's `--oidc-username-prefix`, when the object sets none.
    pub username_prefix: String,
    /// The apiserver's `--oidc-username-claim` (email or login), when the object sets none.
    pub user_name: UserNameAttribute,
    /// Whether ID tokens carry each group, checked when the authorization server is known.
    pub claim_check: Option<ClaimCheck>,
}

/// What the groups-claim check looks at: the operator's `--okta-authorization-server`,
/// `--oidc-groups-claim` and `--oidc-scopes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimCheck {
    pub server_id: String,
    /// The claim the apiserver reads groups from.
    pub claim: String,
    /// The scopes kubectl (kubelogin) requests.
    pub scopes: Vec<String>,
}

impl Policy {
    /// Whether a group of this name can ever be bound: it starts with the allowed prefix,
    /// compared without case like Okta's claim filter. A name that cannot reach a token is
    /// refused before Okta is asked anything.
    pub fn admits(&self, group: &str) -> bool {
        group
            .to_lowercase()
            .starts_with(&self.allowed_group_prefix.to_lowercase())
    }
}
