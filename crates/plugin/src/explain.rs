//! `explain USER`: the user's groups in Okta, which reach the token and under which name,
//! what the OktaGroupBindings grant them, and the apiserver's answer to each check, with
//! one line of why for every "no".

use crate::check::Check;
use crate::cluster::{Cluster, Review};
use crate::earlier::{EarlierTokens, TokenView, earlier_groups, earlier_tokens};
use crate::grants::{RoleRules, grant_that_allows, referenced_roles};
use crate::okta_side::PastChange;
use k8s_openapi::jiff::Timestamp;
use okta_rbac_api::{OktaGroupBinding, SubjectKind};
use okta_rbac_operator::okta::{OktaClaim, OktaError};
use okta_rbac_operator::policy::ClaimCheck;
use okta_rbac_operator::reconcile::claim::{ClaimFinding, find};
use serde::Serialize;
use std::collections::BTreeMap;

/// Okta puts at most this many groups in a groups claim.
const CLAIM_GROUP_LIMIT: usize = 100;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub user: String,
    /// The user's status in Okta (ACTIVE, SUSPENDED, ...); absent when Okta was not asked
    /// or has no such user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub okta_status: Option<String>,
    /// Whether Okta has the user (absent: not asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_okta: Option<bool>,
    /// The user name the apiserver sees.
    pub username: String,
    pub groups: Vec<GroupFinding>,
    pub checks: Vec<CheckFinding>,
    /// Tokens issued before a change in Okta took something away, while they may live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earlier_tokens: Option<EarlierTokens>,
    /// What could not be checked, and why.
    pub unchecked: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupFinding {
    pub name: String,
    /// Whether the token carries it (absent: unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_token: Option<bool>,
    /// Why, in one line.
    pub token: String,
    /// The name RBAC sees it under, when it reaches the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub objects: Vec<ObjectFinding>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectFinding {
    pub name: String,
    pub ready: bool,
    /// Ready's reason (Ready, NotYetActive, Expired, Paused, GroupMissing, ...).
    pub state: String,
    pub grants: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckFinding {
    pub check: String,
    pub allowed: bool,
    pub why: String,
}

/// What Okta said, if it was asked.
pub enum OktaAnswer {
    NotAsked(String),
    Failed(OktaError),
    Answered {
        user: Option<okta_rbac_operator::okta::OktaUser>,
        groups: Vec<String>,
        claims: Result<Vec<OktaClaim>, OktaError>,
        /// The user's changes within the tokens' lifetime.
        changes: Result<Vec<PastChange>, OktaError>,
    },
}

pub struct Settings {
    pub claim: ClaimCheck,
    pub groups_prefix: Option<String>,
    pub username_prefix: String,
    pub username_is_login: bool,
    /// Groups given on the command line, for when Okta is not asked.
    pub given_groups: Vec<String>,
    /// How long ID tokens live.
    pub token_lifetime: std::time::Duration,
}

fn condition<'a>(
    ogb: &'a OktaGroupBinding,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    ogb.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

/// The groups prefix the operator uses, as the objects' status shows it.
pub fn inferred_prefix(objects: &[OktaGroupBinding]) -> Option<String> {
    objects.iter().find_map(|o| {
        let subject = o.status.as_ref()?.subject.as_deref()?;
        (o.spec.subject.kind == SubjectKind::Group)
            .then(|| {
                subject
                    .strip_suffix(o.spec.group.as_str())
                    .map(str::to_string)
            })
            .flatten()
    })
}

fn grants_of(ogb: &OktaGroupBinding) -> Vec<String> {
    let spec = &ogb.spec;
    let mut grants: Vec<String> = spec
        .cluster_role_bindings
        .iter()
        .map(|c| format!("ClusterRole {} cluster-wide", c.cluster_role))
        .collect();
    for binding in &spec.role_bindings {
        let role = match (&binding.role, &binding.cluster_role) {
            (Some(role), _) => format!("Role {role}"),
            (None, Some(cluster_role)) => format!("ClusterRole {cluster_role}"),
            (None, None) => continue,
        };
        let place = match (&binding.namespace, &binding.namespace_selector) {
            (Some(namespace), _) => format!("in {namespace}"),
            _ => "in selected namespaces".to_string(),
        };
        grants.push(format!("{role} {place}"));
    }
    grants
}

fn object_finding(ogb: &OktaGroupBinding) -> ObjectFinding {
    let ready = condition(ogb, "Ready");
    ObjectFinding {
        name: ogb.metadata.name.clone().unwrap_or_default(),
        ready: ready.is_some_and(|c| c.status == "True"),
        state: ready
            .map(|c| c.reason.clone())
            .unwrap_or_else(|| "NotReconciled".into()),
        grants: grants_of(ogb),
    }
}

/// Why an object's grant does not reach the user now, if it does not.
fn not_in_effect(ogb: &OktaGroupBinding, now: Timestamp) -> Option<String> {
    let name = ogb.metadata.name.as_deref().unwrap_or_default();
    if let Some(end) = ogb.spec.end_time.as_ref().filter(|end| end.0 <= now) {
        return Some(format!("OktaGroupBinding {name} expired at {}", end.0));
    }
    if let Some(start) = ogb.spec.start_time.as_ref().filter(|start| start.0 > now) {
        return Some(format!(
            "OktaGroupBinding {name} is not active until {}",
            start.0
        ));
    }
    if ogb.spec.paused {
        return Some(format!("OktaGroupBinding {name} is paused"));
    }
    match condition(ogb, "Ready") {
        Some(ready) if ready.status == "True" => None,
        Some(ready) => Some(format!(
            "OktaGroupBinding {name} is not Ready ({}: {})",
            ready.reason, ready.message
        )),
        None => Some(format!(
            "OktaGroupBinding {name} has not been reconciled yet"
        )),
    }
}

/// The token's view of one group.
pub fn token_finding(
    name: &str,
    claims: Option<&Result<Vec<OktaClaim>, OktaError>>,
    claim: &ClaimCheck,
) -> (Option<bool>, String) {
    match claims {
        None => (None, "not checked (Okta not asked)".into()),
        Some(Err(error)) => (
            None,
            format!("unknown: the authorization server's claims could not be read ({error})"),
        ),
        Some(Ok(claims)) => match find(claim, claims, name) {
            ClaimFinding::Carries { filter } => (Some(true), format!("yes (filter {filter})")),
            ClaimFinding::FilterUnreadable { filter, error } => (
                None,
                format!("unknown: the claim's filter {filter} cannot be evaluated here ({error})"),
            ),
            ClaimFinding::FilterExcludes { filter } => {
                (Some(false), format!("no: filtered out by {filter}"))
            }
            ClaimFinding::NoGroupsClaim { .. } => (
                Some(false),
                format!(
                    "no: authorization server {} has no ID-token GROUPS claim {:?}",
                    claim.server_id, claim.claim
                ),
            ),
            ClaimFinding::NotInIdTokens => (
                Some(false),
                format!(
                    "no: claim {:?} is not always included in ID tokens",
                    claim.claim
                ),
            ),
            ClaimFinding::ScopeNotRequested { claim_scopes } => (
                Some(false),
                format!(
                    "no: claim {:?} is issued only for scopes {claim_scopes:?}, which kubectl does not request",
                    claim.claim
                ),
            ),
        },
    }
}

/// Everything `explain` shows, from what was read. The apiserver is asked once per check.
pub async fn explain(
    cluster: &Cluster,
    login: &str,
    checks: &[Check],
    okta: OktaAnswer,
    settings: &Settings,
) -> Result<Explanation, String> {
    let (objects, mut unchecked) = cluster.objects().await?;
    let prefix = settings
        .groups_prefix
        .clone()
        .or_else(|| inferred_prefix(&objects))
        .unwrap_or_default();
    let mut changes = None;
    let (user, groups, claims) = match okta {
        OktaAnswer::Answered {
            user,
            groups,
            claims,
            changes: found,
        } => {
            match found {
                Ok(found) => changes = Some(found),
                Err(error) => unchecked.push(format!(
                    "what tokens issued before a change in Okta still get: the System Log could not be read ({error}; it needs okta.logs.read)"
                )),
            }
            (Some(user), groups, Some(claims))
        }
        OktaAnswer::NotAsked(why) => {
            unchecked.push(format!(
                "the user's Okta groups, status and the token's claim filter: {why}{}",
                if settings.given_groups.is_empty() {
                    ""
                } else {
                    "; using --groups as the token's groups"
                }
            ));
            (None, settings.given_groups.clone(), None)
        }
        OktaAnswer::Failed(error) => {
            unchecked.push(format!("Okta could not be asked: {error}"));
            (None, settings.given_groups.clone(), None)
        }
    };
    let okta_user = user.as_ref().and_then(|u| u.as_ref());
    let username = match (okta_user, settings.username_is_login) {
        (Some(user), false) => user
            .profile
            .email
            .clone()
            .unwrap_or_else(|| user.profile.login.clone()),
        (Some(user), true) => user.profile.login.clone(),
        (None, _) => login.to_string(),
    };
    let username = format!("{}{username}", settings.username_prefix);

    let mut group_findings = Vec::new();
    let mut token_groups = Vec::new();
    for name in &groups {
        let (in_token, token) = match &claims {
            Some(claims) => token_finding(name, Some(claims), &settings.claim),
            // Given on the command line: the person says the token carries them.
            None => (Some(true), "given with --groups".into()),
        };
        let subject = (in_token != Some(false)).then(|| format!("{prefix}{name}"));
        if let Some(subject) = &subject {
            token_groups.push(subject.clone());
        }
        group_findings.push(GroupFinding {
            name: name.clone(),
            in_token,
            token,
            subject,
            objects: objects
                .iter()
                .filter(|o| &o.spec.group == name)
                .map(object_finding)
                .collect(),
        });
    }
    if token_groups.len() > CLAIM_GROUP_LIMIT {
        unchecked.push(format!(
            "{} groups pass the claim's filter; Okta puts at most {CLAIM_GROUP_LIMIT} in a groups claim, so a login may fail or miss groups",
            token_groups.len()
        ));
    }

    // The roles and namespaces the objects of the user's groups need, to tell why not.
    let mine: Vec<&OktaGroupBinding> = objects
        .iter()
        .filter(|o| groups.contains(&o.spec.group))
        .collect();
    let mut rules = RoleRules::new();
    for key in mine.iter().flat_map(|o| referenced_roles(o)) {
        if rules.contains_key(&key) {
            continue;
        }
        if let Some(found) = cluster.rules(&key.0, key.1.as_deref(), &key.2).await {
            rules.insert(key, found);
        }
    }
    let bindings_of: BTreeMap<String, String> = objects
        .iter()
        .flat_map(|o| {
            let owner = o.metadata.name.clone().unwrap_or_default();
            o.status
                .iter()
                .flat_map(|s| s.bindings.clone())
                .map(move |b| (b.name, owner.clone()))
        })
        .collect();

    let mut findings = Vec::new();
    let now = Timestamp::now();
    for check in checks {
        let barred = match okta_user.map(|u| u.status.as_str()) {
            _ if user.as_ref().is_some_and(Option::is_none) => {
                Some(format!("{login} is not a user in Okta"))
            }
            Some(status) if status != "ACTIVE" => Some(format!(
                "{login} is {status} in Okta, so Okta issues no token to sign in with"
            )),
            _ => None,
        };
        if let Some(why) = barred {
            findings.push(CheckFinding {
                check: check.describe(),
                allowed: false,
                why,
            });
            continue;
        }
        let mut groups = token_groups.clone();
        groups.push("system:authenticated".into());
        let review = cluster.review(&username, &groups, check).await?;
        let why = if review.allowed {
            allowed_because(&review, &bindings_of)
        } else {
            let labels = match &check.namespace {
                Some(namespace) => cluster.namespace_labels(namespace).await,
                None => None,
            };
            denied_because(
                check,
                &group_findings,
                &mine,
                &rules,
                labels.as_ref(),
                &prefix,
                now,
            )
        };
        findings.push(CheckFinding {
            check: check.describe(),
            allowed: review.allowed,
            why,
        });
    }
    let active = okta_user.is_some_and(|u| u.status == "ACTIVE");
    let earlier = changes
        .as_deref()
        .and_then(|changes| earlier_groups(changes, &groups, active));
    let earlier_tokens = match earlier {
        Some((changes, carried)) => {
            let view = TokenView {
                username: &username,
                prefix: &prefix,
                claims: claims.as_ref(),
                settings,
                bindings_of: &bindings_of,
            };
            Some(earlier_tokens(cluster, checks, &view, changes, carried).await?)
        }
        None => None,
    };
    Ok(Explanation {
        user: login.to_string(),
        okta_status: okta_user.map(|u| u.status.clone()),
        in_okta: user.as_ref().map(Option::is_some),
        username,
        groups: group_findings,
        checks: findings,
        earlier_tokens,
        unchecked,
    })
}

/// The authorizer's reason, with the OktaGroupBinding that owns the binding it names.
pub fn allowed_because(review: &Review, bindings_of: &BTreeMap<String, String>) -> String {
    let owner = bindings_of
        .iter()
        // RBAC names a RoleBinding as "name/namespace", a ClusterRoleBinding as "name".
        .find(|(binding, _)| {
            review.reason.contains(&format!("\"{binding}\""))
                || review.reason.contains(&format!("\"{binding}/"))
        })
        .map(|(_, owner)| format!(" (OktaGroupBinding {owner})"))
        .unwrap_or_else(|| " (a binding okta-rbac-operator does not manage)".into());
    if review.reason.is_empty() {
        "allowed".into()
    } else {
        format!("{}{owner}", review.reason)
    }
}

fn denied_because(
    check: &Check,
    groups: &[GroupFinding],
    mine: &[&OktaGroupBinding],
    rules: &RoleRules,
    labels: Option<&BTreeMap<String, String>>,
    prefix: &str,
    now: Timestamp,
) -> String {
    for object in mine {
        let Some(grant) = grant_that_allows(object, check, rules, labels) else {
            continue;
        };
        let name = object.metadata.name.as_deref().unwrap_or_default();
        let group = &object.spec.group;
        let finding = groups.iter().find(|g| &g.name == group);
        if let Some(finding) = finding.filter(|f| f.in_token == Some(false)) {
            return format!(
                "OktaGroupBinding {name} grants {grant} to {group}, but {group} is not in the token: {}",
                finding.token
            );
        }
        if let Some(why) = not_in_effect(object, now) {
            return format!("{why}; it would grant {grant} to {group}");
        }
        let subject = object
            .status
            .as_ref()
            .and_then(|s| s.subject.clone())
            .unwrap_or_default();
        if subject != format!("{prefix}{group}") {
            return format!(
                "OktaGroupBinding {name} binds {subject:?}, but the token's group arrives as {:?}: the groups prefix differs",
                format!("{prefix}{group}")
            );
        }
    }
    let in_token: Vec<&str> = groups
        .iter()
        .filter(|g| g.in_token != Some(false))
        .map(|g| g.name.as_str())
        .collect();
    if in_token.is_empty() {
        "no group of the user reaches the token, and nothing grants it to the user by name".into()
    } else {
        format!(
            "no OktaGroupBinding grants it to the groups in the token ({}), nor does any other binding",
            in_token.join(", ")
        )
    }
}
