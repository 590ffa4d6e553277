//! What the revocation authorizer knows, in memory: for each group a Group-mode
//! OktaGroupBinding grants, the name tokens carry it under, and where each member stands
//! as the operator last saw Okta: a member list, then the System Log's events read since
//! (which win over a list that began before they were read).

use crate::okta::{LogEvent, OktaUser};
use k8s_openapi::jiff::Timestamp;
use okta_rbac_api::UserNameAttribute;
use std::collections::{HashMap, HashSet};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// Where a token's user stands in a group the token carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// No object grants the group (as tokens name it): not the authorizer's business.
    NotBound,
    /// Not known yet (the members were not listed yet, or a change is being re-read).
    Unknown,
    /// An ACTIVE member.
    Active,
    /// Not an ACTIVE member any more, and why, in words.
    Gone(String),
}

/// What one event changed in the authorizer's answers, for the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    pub event_uuid: String,
    pub event_type: String,
    pub published: Option<String>,
    /// The bound group's name in Okta.
    pub group: String,
    /// The user's id, unless the event was about the whole group.
    pub user_id: Option<String>,
    /// In words: "left k8s-admins in Okta", "was suspended in Okta", ...
    pub what: String,
}

/// What an event did, for the reason a denial gives.
#[derive(Clone, Debug)]
struct Change {
    what: String,
    published: Option<String>,
    seen: Instant,
}

impl Change {
    fn describe(&self) -> String {
        match &self.published {
            Some(at) => format!("{} at {}", self.what, short_time(at)),
            None => self.what.clone(),
        }
    }
}

/// `2026-12-03T14:02:11.000Z` as `14:02:11Z on 2026-12-03`.
fn short_time(at: &str) -> String {
    match at.split_once('T') {
        Some((day, time)) => {
            let time = time.split('.').next().unwrap_or(time).trim_end_matches('Z');
            format!("{time}Z on {day}")
        }
        None => at.to_string(),
    }
}

#[derive(Clone, Debug, Default)]
struct Member {
    /// Okta's status; `None` while an event left it unknown until the next list.
    status: Option<String>,
    member: bool,
    /// The last membership event applied, and the last status event.
    membership_changed: Option<Change>,
    status_changed: Option<Change>,
    /// When Okta published the membership and the status events applied last: an event
    /// hook delivers in any order, and an older event must not undo a newer one.
    membership_published: Option<Timestamp>,
    status_published: Option<Timestamp>,
}

/// Whether an event published at `event` is older than the last one applied (`applied`).
fn older(event: Option<Timestamp>, applied: Option<Timestamp>) -> bool {
    matches!((event, applied), (Some(event), Some(applied)) if event < applied)
}

#[derive(Debug, Default)]
struct GroupState {
    name: String,
    /// When the last member list read began; `None` until one was read.
    listed: Option<Instant>,
    /// By user id.
    members: HashMap<String, Member>,
    /// The user name tokens carry (lowercase) to the user id.
    by_name: HashMap<String, String>,
    /// Someone was added since the last list: a user not found may be them.
    added_since_listed: bool,
    deleted: Option<Change>,
    /// An object keeps its bindings when the group is deleted: so does the authorizer.
    kept_if_deleted: bool,
}

/// What one object grants through a Group subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The group as tokens carry it (with the prefix).
    pub token_group: String,
    pub group_id: String,
    pub group_name: String,
    /// `onGroupMissing: Retain`: the group's deletion in Okta must not lock anyone out.
    pub kept_if_deleted: bool,
}

#[derive(Default)]
struct Inner {
    /// Per object uid: what it grants.
    by_object: HashMap<String, Grant>,
    /// Per token group: the Okta group ids bound under that name.
    bound: HashMap<String, HashSet<String>>,
    /// Per Okta group id.
    groups: HashMap<String, GroupState>,
}

pub struct Roster {
    user_name: UserNameAttribute,
    inner: RwLock<Inner>,
}

/// How far Okta's clock and the operator's may differ when an event's publication is
/// compared with the start of a member list.
const LIST_CLOCK_SLACK: Duration = Duration::from_secs(2);
/// How long a departed member is remembered after the event that said so, for the reason
/// a denial gives: longer than any token lives.
const REMEMBER_DEPARTED: Duration = Duration::from_secs(24 * 3600);

impl Roster {
    pub fn new(user_name: UserNameAttribute) -> Self {
        Self {
            user_name,
            inner: RwLock::default(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// What the object `uid` grants through a Group subject; `None`: nothing now.
    pub fn track(&self, uid: &str, grant: Option<Grant>) {
        let mut inner = self.write();
        if inner.by_object.get(uid) == grant.as_ref() {
            return;
        }
        if let Some(old) = inner.by_object.remove(uid) {
            let still = inner
                .by_object
                .values()
                .any(|g| g.token_group == old.token_group && g.group_id == old.group_id);
            if !still && let Some(ids) = inner.bound.get_mut(&old.token_group) {
                ids.remove(&old.group_id);
                if ids.is_empty() {
                    inner.bound.remove(&old.token_group);
                }
            }
            if !inner.by_object.values().any(|g| g.group_id == old.group_id) {
                inner.groups.remove(&old.group_id);
            }
        }
        if let Some(grant) = grant {
            inner
                .bound
                .entry(grant.token_group.clone())
                .or_default()
                .insert(grant.group_id.clone());
            inner.by_object.insert(uid.to_string(), grant.clone());
            let kept_if_deleted = inner
                .by_object
                .values()
                .any(|g| g.group_id == grant.group_id && g.kept_if_deleted);
            let group = inner.groups.entry(grant.group_id).or_default();
            group.name = grant.group_name;
            group.kept_if_deleted = kept_if_deleted;
        }
    }

    /// Whether the group's (by id) members were listed since it was first tracked.
    pub fn has_list(&self, id: &str) -> bool {
        self.read()
            .groups
            .get(id)
            .is_some_and(|group| group.listed.is_some())
    }

    /// The group's members as a list read that began at `started` gives them. What an
    /// event read after that says stays.
    pub fn listed(&self, group_id: &str, users: &[OktaUser], started: Instant) {
        let user_name = self.user_name;
        let mut inner = self.write();
        let Some(group) = inner.groups.get_mut(group_id) else {
            return;
        };
        let newer = |m: &Member| {
            [&m.membership_changed, &m.status_changed]
                .into_iter()
                .flatten()
                .any(|c| c.seen > started)
        };
        let mut members: HashMap<String, Member> = group
            .members
            .drain()
            .filter(|(_, m)| {
                newer(m)
                    || (!m.member
                        && m.membership_changed
                            .as_ref()
                            .is_some_and(|c| c.seen.elapsed() < REMEMBER_DEPARTED))
            })
            .collect();
        group.by_name.retain(|_, id| members.contains_key(id));
        // What Okta published before the list began is in it: an event delivered late,
        // older than that, must not undo it. A little slack for the clocks' difference.
        let listed_from = Timestamp::now()
            .checked_sub(started.elapsed() + LIST_CLOCK_SLACK)
            .ok();
        for user in users {
            if let Some(name) = token_name(user, user_name) {
                group.by_name.insert(name, user.id.clone());
            }
            members
                .entry(user.id.clone())
                .and_modify(|kept| {
                    if !newer(kept) {
                        // The events' times stay: one delivered late, older than what
                        // was applied, must not undo what the list confirms.
                        *kept = Member {
                            status: Some(user.status.clone()),
                            member: true,
                            membership_changed: None,
                            status_changed: None,
                            membership_published: kept.membership_published.max(listed_from),
                            status_published: kept.status_published.max(listed_from),
                        };
                    }
                })
                .or_insert_with(|| Member {
                    status: Some(user.status.clone()),
                    member: true,
                    membership_changed: None,
                    status_changed: None,
                    membership_published: listed_from,
                    status_published: listed_from,
                });
        }
        // A departed member the list no longer has is found by name while remembered, so
        // that a denial says when they left.
        group.members = members;
        group.listed = Some(started);
        if group.deleted.as_ref().is_some_and(|d| d.seen <= started) {
            group.deleted = None;
        }
        group.added_since_listed = false;
    }

    /// Applies what the System Log's events say, read at `seen`, and says what they
    /// changed in the groups it tracks.
    pub fn apply(&self, events: &[LogEvent], seen: Instant) -> Vec<Effect> {
        let mut inner = self.write();
        let mut effects = Vec::new();
        for event in events {
            let user = event
                .target
                .iter()
                .find(|t| t.kind == "User")
                .map(|t| t.id.as_str());
            let group = event
                .target
                .iter()
                .find(|t| t.kind == "UserGroup")
                .map(|t| t.id.as_str());
            let change = |what: String| Change {
                what,
                published: event.published.clone(),
                seen,
            };
            let published: Option<Timestamp> =
                event.published.as_deref().and_then(|p| p.parse().ok());
            let mut effect = |group: &str, user_id: Option<&str>, what: &str| {
                effects.push(Effect {
                    event_uuid: event.uuid.clone(),
                    event_type: event.event_type.clone(),
                    published: event.published.clone(),
                    group: group.to_string(),
                    user_id: user_id.map(str::to_string),
                    what: what.to_string(),
                });
            };
            match (event.event_type.as_str(), user, group) {
                ("group.user_membership.remove", Some(user), Some(group_id)) => {
                    if let Some(group) = inner.groups.get_mut(group_id) {
                        let what = format!("left {} in Okta", group.name);
                        let member = group.members.entry(user.to_string()).or_insert(Member {
                            status: None,
                            member: false,
                            ..Member::default()
                        });
                        if older(published, member.membership_published) {
                            continue;
                        }
                        member.member = false;
                        member.membership_published = published;
                        effect(&group.name, Some(user), &what);
                        member.membership_changed = Some(change(what));
                    }
                }
                // An event gives nothing back on its own word: it takes its place in the
                // order of events, and the member list it makes the operator read again
                // says whether the user is back (a forged or mistaken delivery can then
                // never restore what Okta took away).
                ("group.user_membership.add", Some(user), Some(group_id)) => {
                    if let Some(group) = inner.groups.get_mut(group_id) {
                        match group.members.get_mut(user) {
                            Some(member) => {
                                if !older(published, member.membership_published) {
                                    member.membership_published = published;
                                }
                            }
                            None => group.added_since_listed = true,
                        }
                    }
                }
                ("group.lifecycle.delete", _, Some(group_id)) => {
                    if let Some(group) = inner.groups.get_mut(group_id) {
                        let what = format!("{} was deleted in Okta", group.name);
                        effect(&group.name, None, &what);
                        group.deleted = Some(change(what));
                    }
                }
                (lifecycle, Some(user), _) if lifecycle.starts_with("user.lifecycle.") => {
                    // Unsuspended, activated, reactivated: back only once a list says so.
                    let taken = match lifecycle {
                        "user.lifecycle.suspend" => Some(("SUSPENDED", "was suspended in Okta")),
                        "user.lifecycle.deactivate" => {
                            Some(("DEPROVISIONED", "was deactivated in Okta"))
                        }
                        l if l.starts_with("user.lifecycle.delete") => {
                            Some(("DELETED", "was deleted in Okta"))
                        }
                        _ => None,
                    };
                    for group in inner.groups.values_mut() {
                        let Some(member) = group
                            .members
                            .get_mut(user)
                            .filter(|m| !older(published, m.status_published))
                        else {
                            continue;
                        };
                        member.status_published = published;
                        if let Some((status, what)) = taken {
                            member.status = Some(status.to_string());
                            member.status_changed = Some(change(what.to_string()));
                            effect(&group.name, Some(user), what);
                        }
                    }
                }
                _ => {}
            }
        }
        effects
    }

    /// Where the user that tokens call `user_name` stands in the group tokens call
    /// `token_group`. Bound under one name to several Okta groups (a replaced group
    /// during the hand-over), the user stands where the best of them puts them.
    pub fn standing(&self, token_group: &str, user_name: &str) -> Standing {
        let inner = self.read();
        let Some(ids) = inner.bound.get(token_group) else {
            return Standing::NotBound;
        };
        let name = user_name.to_lowercase();
        let mut best: Option<Standing> = None;
        for id in ids {
            let standing = inner
                .groups
                .get(id)
                .map_or(Standing::Unknown, |group| group.standing(&name));
            best = Some(match (best, standing) {
                (Some(Standing::Active), _) | (_, Standing::Active) => Standing::Active,
                (Some(Standing::Unknown), _) | (_, Standing::Unknown) => Standing::Unknown,
                (Some(gone), _) => gone,
                (None, other) => other,
            });
        }
        best.unwrap_or(Standing::NotBound)
    }

    /// Whether any token group is bound: until then every answer is NoOpinion.
    pub fn is_empty(&self) -> bool {
        self.read().bound.is_empty()
    }
}

impl crate::okta::members::ListSink for Roster {
    fn listed(&self, group_id: &str, users: &[OktaUser], started: Instant) {
        Roster::listed(self, group_id, users, started);
    }
}

impl GroupState {
    fn standing(&self, name: &str) -> Standing {
        if let Some(deleted) = self.deleted.as_ref().filter(|_| !self.kept_if_deleted) {
            return Standing::Gone(deleted.describe());
        }
        let Some(listed) = self.listed else {
            return Standing::Unknown;
        };
        let Some(member) = self.by_name.get(name).and_then(|id| self.members.get(id)) else {
            if self.added_since_listed {
                return Standing::Unknown;
            }
            return Standing::Gone(format!(
                "is not a member of {} in Okta (its members as read {}s ago)",
                self.name,
                listed.elapsed().as_secs()
            ));
        };
        match (&member.status, member.member) {
            (Some(status), true) if status == "ACTIVE" => Standing::Active,
            (None, true) => Standing::Unknown,
            (_, false) => Standing::Gone(member.membership_changed.as_ref().map_or_else(
                || format!("is not a member of {} in Okta", self.name),
                Change::describe,
            )),
            (Some(status), true) => Standing::Gone(
                member
                    .status_changed
                    .as_ref()
                    .map_or_else(|| format!("is {status} in Okta"), Change::describe),
            ),
        }
    }
}

/// The name a token carries for this user (lowercase), by the apiserver's username claim.
fn token_name(user: &OktaUser, attribute: UserNameAttribute) -> Option<String> {
    match attribute {
        UserNameAttribute::Email => user.profile.email.as_deref(),
        UserNameAttribute::Login => Some(user.profile.login.as_str()),
    }
    .map(str::to_lowercase)
}

#[cfg(test)]
pub(crate) mod tests;
