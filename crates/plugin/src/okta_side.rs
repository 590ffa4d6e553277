//! What Okta knows: the user, their groups, and the authorization server's claims, read
//! with the operator's own Okta client (its rate-limit handling, DPoP and errors).

use crate::cli::{OidcArgs, OktaArgs};
use okta_rbac_operator::okta::dpop::DpopMode;
use okta_rbac_operator::okta::{OktaClaim, OktaClient, OktaConfig, OktaError, OktaGroup, OktaUser};
use std::sync::Arc;
use std::time::Duration;

/// The read-only scopes a service app needs for everything the plugin asks.
const SCOPES: [&str; 3] = [
    "okta.users.read",
    "okta.groups.read",
    "okta.authorizationServers.read",
];

/// Okta, when the plugin may ask it.
pub enum Okta {
    Client(Box<OktaClient>),
    /// Why not (no org URL or no credentials): said in the answer.
    NotConfigured(String),
}

impl Okta {
    pub fn from_args(args: &OktaArgs) -> Result<Self, String> {
        let Some(org_url) = args.okta_org_url.clone() else {
            return Ok(Okta::NotConfigured(
                "no Okta org (set --okta-org-url or OKTA_ORG_URL)".into(),
            ));
        };
        let Some(credentials) = args.credentials()? else {
            return Ok(Okta::NotConfigured(
                "no Okta credentials (set --okta-token-file, OKTA_API_TOKEN, or --okta-client-id \
                 with --okta-private-key-file)"
                    .into(),
            ));
        };
        let extra_ca_pem = args
            .okta_ca_file
            .as_ref()
            .map(|path| {
                std::fs::read_to_string(path)
                    .map_err(|e| format!("reading the Okta CA file {}: {e}", path.display()))
            })
            .transpose()?;
        let client = OktaClient::new(OktaConfig {
            org_url,
            credentials: Arc::new(credentials),
            scopes: SCOPES.iter().map(|s| s.to_string()).collect(),
            dpop: DpopMode::Auto,
            dpop_key_rotation: Duration::from_secs(24 * 3600),
            extra_ca_pem,
            concurrency: 4,
            request_timeout: Duration::from_secs(15),
            max_attempts: 2,
            rate_limit_share: 1.0,
        })
        .map_err(|e| e.to_string())?;
        Ok(Okta::Client(Box::new(client)))
    }
}

/// What Okta said about a user.
pub struct UserFacts {
    /// None: Okta has no such user.
    pub user: Option<OktaUser>,
    pub groups: Vec<OktaGroup>,
    /// The claims of the authorization server kubectl logs in with.
    pub claims: Result<Vec<OktaClaim>, OktaError>,
}

pub async fn user_facts(
    client: &OktaClient,
    login: &str,
    oidc: &OidcArgs,
) -> Result<UserFacts, OktaError> {
    let Some(user) = client.user(login).await? else {
        return Ok(UserFacts {
            user: None,
            groups: Vec::new(),
            claims: Ok(Vec::new()),
        });
    };
    let groups = client.user_groups(&user.id).await?;
    let claims = client
        .authorization_server_claims(&oidc.authorization_server)
        .await;
    Ok(UserFacts {
        user: Some(user),
        groups,
        claims,
    })
}

/// The ACTIVE members of the groups of these names (those Okta has).
pub async fn active_members(
    client: &OktaClient,
    names: &[String],
) -> Result<Vec<(String, Vec<String>)>, OktaError> {
    let groups = client.search_groups(names).await?;
    if let Some(odd) = groups.unreadable.first() {
        return Err(OktaError::Decode(format!(
            "a group of Okta's answer cannot be read: {odd}"
        )));
    }
    let mut members = Vec::new();
    for group in groups.read {
        let users = client.group_members(&group.id).await?;
        members.push((
            group.profile.name.clone(),
            users
                .into_iter()
                .filter(|u| u.status == "ACTIVE")
                .map(|u| u.profile.login)
                .collect(),
        ));
    }
    Ok(members)
}
