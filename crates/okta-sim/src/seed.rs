//! The simulator's starting directory, as YAML: users, groups and memberships, API
//! tokens, OAuth clients, authorization servers, and rate limits.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub users: Vec<SeedUser>,
    #[serde(default)]
    pub groups: Vec<SeedGroup>,
    #[serde(default)]
    pub api_tokens: Vec<SeedApiToken>,
    #[serde(default)]
    pub clients: Vec<SeedClient>,
    #[serde(default)]
    pub authorization_servers: Vec<SeedAuthorizationServer>,
    #[serde(default)]
    pub rate_limits: RateLimitSettings,
    #[serde(default)]
    pub oauth: OAuthSettings,
}

/// The org authorization server's token lifetimes and DPoP windows.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuthSettings {
    /// How long a service app's access token lasts (Okta: an hour).
    #[serde(default = "default_access_token_seconds")]
    pub access_token_seconds: u64,
    /// How long a DPoP nonce the token endpoint hands out stays valid.
    #[serde(default = "default_dpop_nonce_seconds")]
    pub dpop_nonce_seconds: u64,
    /// How old a DPoP proof (its `iat`) may be.
    #[serde(default = "default_dpop_proof_seconds")]
    pub dpop_proof_seconds: u64,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        Self {
            access_token_seconds: default_access_token_seconds(),
            dpop_nonce_seconds: default_dpop_nonce_seconds(),
            dpop_proof_seconds: default_dpop_proof_seconds(),
        }
    }
}

fn default_access_token_seconds() -> u64 {
    3600
}

fn default_dpop_nonce_seconds() -> u64 {
    300
}

fn default_dpop_proof_seconds() -> u64 {
    60
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedUser {
    pub login: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default = "default_status")]
    pub status: UserStatus,
    /// For the password grant and the login form.
    #[serde(default)]
    pub password: Option<String>,
}

fn default_status() -> UserStatus {
    UserStatus::Active
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserStatus {
    Staged,
    Provisioned,
    Active,
    Recovery,
    PasswordExpired,
    LockedOut,
    Suspended,
    Deprovisioned,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Staged => "STAGED",
            UserStatus::Provisioned => "PROVISIONED",
            UserStatus::Active => "ACTIVE",
            UserStatus::Recovery => "RECOVERY",
            UserStatus::PasswordExpired => "PASSWORD_EXPIRED",
            UserStatus::LockedOut => "LOCKED_OUT",
            UserStatus::Suspended => "SUSPENDED",
            UserStatus::Deprovisioned => "DEPROVISIONED",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GroupType {
    OktaGroup,
    AppGroup,
    BuiltIn,
}

impl GroupType {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupType::OktaGroup => "OKTA_GROUP",
            GroupType::AppGroup => "APP_GROUP",
            GroupType::BuiltIn => "BUILT_IN",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedGroup {
    pub name: String,
    #[serde(default = "default_group_type", rename = "type")]
    pub group_type: GroupType,
    #[serde(default)]
    pub description: Option<String>,
    /// Logins of the members.
    #[serde(default)]
    pub members: Vec<String>,
}

fn default_group_type() -> GroupType {
    GroupType::OktaGroup
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedApiToken {
    pub name: String,
    pub token: String,
    /// What the token's admin may do; absent means everything (a super admin's token).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedClient {
    pub client_id: String,
    /// Service apps authenticate with a `private_key_jwt` assertion signed by this key.
    #[serde(default)]
    pub public_key_pem: Option<String>,
    /// The key's `kid` in the app's JWKS (an assertion naming another kid is refused).
    #[serde(default)]
    pub key_id: Option<String>,
    /// Okta's "Require Demonstrating Proof of Possession (DPoP) header in token
    /// requests" (`settings.oauthClient.dpop_bound_access_tokens`).
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// Okta API scopes granted to a service app (`okta.groups.read`, ...).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// OIDC apps: where the authorization code may be sent.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Confidential OIDC apps; public ones (PKCE) have none.
    #[serde(default)]
    pub client_secret: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedAuthorizationServer {
    /// The id in `/oauth2/{id}`, such as `default`.
    pub id: String,
    #[serde(default = "default_audience")]
    pub audience: String,
    #[serde(default)]
    pub groups_claim: GroupsClaim,
}

fn default_audience() -> String {
    "api://default".into()
}

/// The `groups` claim of ID tokens, filtered like Okta's group claim filter.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupsClaim {
    #[serde(default = "default_claim_name")]
    pub name: String,
    #[serde(default = "default_filter_type")]
    pub filter_type: ClaimFilterType,
    #[serde(default = "default_filter_value")]
    pub filter_value: String,
    /// Okta's "Include in token type: ID Token, Always". When false, an ID token issued
    /// with an access token (every token endpoint answer) leaves the claim out.
    #[serde(default = "default_true")]
    pub always_include_in_token: bool,
    /// Okta's "Include in: the following scopes"; empty means any scope.
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl Default for GroupsClaim {
    fn default() -> Self {
        Self {
            name: default_claim_name(),
            filter_type: default_filter_type(),
            filter_value: default_filter_value(),
            always_include_in_token: true,
            scopes: Vec::new(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_claim_name() -> String {
    "groups".into()
}

fn default_filter_type() -> ClaimFilterType {
    ClaimFilterType::StartsWith
}

fn default_filter_value() -> String {
    "k8s-".into()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClaimFilterType {
    StartsWith,
    Equals,
    Contains,
    /// The whole name matches the regular expression.
    Regex,
}

impl GroupsClaim {
    /// Whether a group passes the filter. Okta compares names without regard to case for
    /// STARTS_WITH, EQUALS and CONTAINS; a REGEX must match the whole name.
    pub fn admits(&self, group_name: &str) -> bool {
        let name = group_name.to_lowercase();
        let value = self.filter_value.to_lowercase();
        match self.filter_type {
            ClaimFilterType::StartsWith => name.starts_with(&value),
            ClaimFilterType::Equals => name == value,
            ClaimFilterType::Contains => name.contains(&value),
            ClaimFilterType::Regex => regex::Regex::new(&format!("^(?:{})$", self.filter_value))
                .is_ok_and(|pattern| pattern.is_match(group_name)),
        }
    }

    /// Whether an ID token answering a request for these scopes carries the claim.
    pub fn in_id_token(&self, scopes: &[String]) -> bool {
        self.always_include_in_token
            && (self.scopes.is_empty() || self.scopes.iter().any(|s| scopes.contains(s)))
    }
}

/// Requests per minute per endpoint bucket, and concurrent requests per org.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitSettings {
    /// No limits at all (benchmarks); the headers still report a large limit.
    #[serde(default)]
    pub unlimited: bool,
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Okta's windows are a minute; tests shorten them to see a refill quickly.
    #[serde(default = "default_window_seconds")]
    pub window_seconds: u64,
    /// Requests per window, by bucket name; see [`crate::limits::Bucket`].
    #[serde(default)]
    pub per_minute: BTreeMap<String, u32>,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            unlimited: false,
            concurrency: default_concurrency(),
            window_seconds: default_window_seconds(),
            per_minute: BTreeMap::new(),
        }
    }
}

fn default_concurrency() -> u32 {
    15
}

fn default_window_seconds() -> u64 {
    60
}

impl SeedClient {
    /// A service app (API Services) that signs its assertions with this key.
    pub fn service_app(client_id: &str, public_key_pem: String, scopes: &[&str]) -> Self {
        Self {
            client_id: client_id.into(),
            public_key_pem: Some(public_key_pem),
            key_id: None,
            dpop_bound_access_tokens: false,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            redirect_uris: vec![],
            client_secret: None,
        }
    }
}

impl Seed {
    /// An org of OKTA_GROUPs without members and one super admin's API token: what
    /// scale tests and benchmarks need.
    pub fn groups_only(token: &str, names: impl IntoIterator<Item = String>) -> Self {
        Self {
            api_tokens: vec![SeedApiToken {
                name: "operator".into(),
                token: token.into(),
                scopes: None,
            }],
            groups: names
                .into_iter()
                .map(|name| SeedGroup {
                    name,
                    group_type: GroupType::OktaGroup,
                    description: None,
                    members: vec![],
                })
                .collect(),
            ..Default::default()
        }
    }

    pub fn from_yaml(text: &str) -> Result<Self, serde_yaml_ng::Error> {
        serde_yaml_ng::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_org_parses() {
        let seed =
            Seed::from_yaml(include_str!("../../../examples/okta-org.yaml")).expect("example seed");
        assert!(seed.users.iter().any(|u| u.login.starts_with("alice")));
        assert!(seed.groups.iter().any(|g| g.name == "k8s-admins"));
        assert!(!seed.authorization_servers.is_empty());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let error = Seed::from_yaml("users: []\ngroupz: []\n").expect_err("typo");
        assert!(error.to_string().contains("groupz"), "{error}");
    }

    #[test]
    fn the_claim_rides_in_id_tokens_only_when_always_included_and_scoped() {
        let scoped = GroupsClaim {
            scopes: vec!["groups".into()],
            ..GroupsClaim::default()
        };
        assert!(scoped.in_id_token(&["openid".into(), "groups".into()]));
        assert!(!scoped.in_id_token(&["openid".into()]));
        assert!(
            GroupsClaim::default().in_id_token(&["openid".into()]),
            "any scope"
        );
        let userinfo_only = GroupsClaim {
            always_include_in_token: false,
            ..GroupsClaim::default()
        };
        assert!(!userinfo_only.in_id_token(&["openid".into(), "groups".into()]));
        let regex = GroupsClaim {
            filter_type: ClaimFilterType::Regex,
            filter_value: "k8s-.*-admins".into(),
            ..GroupsClaim::default()
        };
        assert!(regex.admits("k8s-team-admins"));
        assert!(
            !regex.admits("xk8s-team-admins"),
            "the whole name must match"
        );
    }

    #[test]
    fn the_groups_claim_filter_ignores_case() {
        let claim = GroupsClaim::default();
        assert!(claim.admits("K8S-Admins"));
        assert!(!claim.admits("eng-k8s-admins"));
    }
}
