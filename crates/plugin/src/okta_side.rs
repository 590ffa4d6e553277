//! What Okta knows: the user, their groups, and the authorization server's claims, read
//! with the operator's own Okta client (its rate-limit handling, DPoP and errors).

use crate::cli::{OidcArgs, OktaArgs};
use okta_rbac_operator::okta::client::LOG_PAGE;
use okta_rbac_operator::okta::dpop::DpopMode;
use okta_rbac_operator::okta::{
    LogEvent, OktaClaim, OktaClient, OktaConfig, OktaError, OktaGroup, OktaUser,
};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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
    /// The user's membership and lifecycle changes within the tokens' lifetime.
    pub changes: Result<Vec<PastChange>, OktaError>,
}

pub async fn user_facts(
    client: &OktaClient,
    login: &str,
    oidc: &OidcArgs,
) -> Result<UserFacts, OktaError> {
    let claims = client
        .authorization_server_claims(&oidc.authorization_server)
        .await;
    let Some(user) = client.user(login).await? else {
        let changes = past_changes(client, Target::Login(login), oidc.token_lifetime).await;
        return Ok(UserFacts {
            user: None,
            groups: Vec::new(),
            claims,
            changes,
        });
    };
    let groups = client.user_groups(&user.id).await?;
    let changes = past_changes(client, Target::Id(&user.id), oidc.token_lifetime).await;
    Ok(UserFacts {
        user: Some(user),
        groups,
        claims,
        changes,
    })
}

/// A change in Okta that a token issued before it does not know of: it still carries
/// what the change took away, until it expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PastChange {
    /// The user's login (as the System Log names the user).
    pub user: String,
    /// "left k8s-admins", "suspended", "deactivated", "deleted"; "back" for a return to
    /// ACTIVE, "joined k8s-admins" for an addition.
    pub what: String,
    /// The group a membership change concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// When Okta logged it (RFC 3339).
    pub at: String,
}

/// The membership and lifecycle events the System Log has on a user or group.
const CHANGES: &str =
    r#"(eventType sw "group.user_membership." or eventType sw "user.lifecycle.")"#;

fn past_change(event: &LogEvent) -> Option<PastChange> {
    let target = |kind: &str| event.target.iter().find(|t| t.kind == kind);
    let user = target("User")?;
    let user = user.alternate_id.clone().unwrap_or_else(|| user.id.clone());
    let group = target("UserGroup").and_then(|g| g.display_name.clone());
    let what = match event.event_type.as_str() {
        "group.user_membership.remove" => format!("left {}", group.clone()?),
        "group.user_membership.add" => format!("joined {}", group.clone()?),
        "user.lifecycle.suspend" => "suspended".into(),
        "user.lifecycle.deactivate" => "deactivated".into(),
        t if t.starts_with("user.lifecycle.delete") => "deleted".into(),
        "user.lifecycle.unsuspend" | "user.lifecycle.activate" | "user.lifecycle.reactivate" => {
            "back".into()
        }
        _ => return None,
    };
    Some(PastChange {
        user,
        what,
        group,
        at: event.published.clone()?,
    })
}

/// Whom the System Log is asked about.
pub enum Target<'a> {
    /// A user's or group's id.
    Id(&'a str),
    /// A user Okta no longer has (deleted), by login.
    Login(&'a str),
}

/// The membership and lifecycle changes Okta logged within `lifetime` (the ID tokens'
/// lifetime) for the target, oldest first. Read with a token of its own
/// (`okta.logs.read`): an app without that scope still answers the rest.
pub async fn past_changes(
    client: &OktaClient,
    target: Target<'_>,
    lifetime: Duration,
) -> Result<Vec<PastChange>, OktaError> {
    let target = match target {
        Target::Id(id) => format!(r#"target.id eq "{id}""#),
        Target::Login(login) => format!(r#"target.alternateId eq "{login}""#),
    };
    let log = client.with_scopes(vec!["okta.logs.read".into()])?;
    let since = SystemTime::now()
        .checked_sub(lifetime)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut next = log.system_log_query(since, &format!("{CHANGES} and {target}"))?;
    let mut changes = Vec::new();
    loop {
        let (events, link) = log.system_log_page(&next).await?;
        let full = events.read.len() + events.unreadable.len() >= LOG_PAGE;
        changes.extend(events.read.iter().filter_map(past_change));
        match link {
            Some(link) if full => next = link,
            _ => return Ok(changes),
        }
    }
}

/// The Okta groups of these names (those Okta has), each with all its members.
pub async fn group_members(
    client: &OktaClient,
    names: &[String],
) -> Result<Vec<(OktaGroup, Vec<OktaUser>)>, OktaError> {
    let groups = client.search_groups(names).await?;
    if let Some(odd) = groups.unreadable.first() {
        return Err(OktaError::Decode(format!(
            "a group of Okta's answer cannot be read: {odd}"
        )));
    }
    let mut members = Vec::new();
    for group in groups.read {
        let users = client.group_members(&group.id).await?;
        members.push((group, users));
    }
    Ok(members)
}

/// For each group of these names Okta has: its ACTIVE members, and those who left it or
/// stopped being ACTIVE within `lifetime`, by user name (email, or login).
pub async fn people(
    client: &OktaClient,
    names: &[String],
    lifetime: Duration,
    by_email: bool,
) -> Result<std::collections::BTreeMap<String, crate::who_can::People>, OktaError> {
    let user_name = |user: &OktaUser| match (by_email, &user.profile.email) {
        (true, Some(email)) => email.clone(),
        _ => user.profile.login.clone(),
    };
    let mut found = std::collections::BTreeMap::new();
    for (group, users) in group_members(client, names).await? {
        let mut people = crate::who_can::People::default();
        for user in &users {
            if user.status == "ACTIVE" {
                people.active.push(user_name(user));
                continue;
            }
            let changes = past_changes(client, Target::Id(&user.id), lifetime).await?;
            if let Some(change) = changes
                .into_iter()
                .rfind(|c| ["suspended", "deactivated", "deleted"].contains(&c.what.as_str()))
            {
                people.former.push((user_name(user), change));
            }
        }
        let left = format!("left {}", group.profile.name);
        for change in past_changes(client, Target::Id(&group.id), lifetime).await? {
            let still = users.iter().any(|u| u.profile.login == change.user);
            let listed = people.former.iter().any(|(u, _)| *u == change.user);
            if change.what == left && !still && !listed {
                people.former.push((change.user.clone(), change));
            }
        }
        found.insert(group.profile.name.clone(), people);
    }
    Ok(found)
}
