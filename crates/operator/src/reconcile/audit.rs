//! Step 6, audit: who gained or lost a role through the writes that succeeded, and why,
//! one record per subject and role. Pure; the caller logs the records and times Okta's
//! changes to their effect.

use super::apply::{Done, WriteResult};
use super::judge::{Grant, Judgement, Outcome, Refusal};
use super::observe::ClusterView;
use super::plan::Write;
use super::schedule::Window;
use crate::binding::{BindingObject, BindingRef};
use k8s_openapi::api::rbac::v1::Subject;
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Granted,
    Revoked,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Granted => "granted",
            Change::Revoked => "revoked",
        }
    }
}

/// One subject that gained or lost one role through one binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessChange {
    pub change: Change,
    pub binding: BindingRef,
    /// `ClusterRole/name` or `Role/name`.
    pub role: String,
    /// `Group/name` or `User/name`, as the binding names it.
    pub subject: String,
    pub subject_kind: String,
    pub subject_name: String,
}

type Grants = BTreeSet<(String, String, String)>;

/// (role, subject kind, subject name) of each subject of the binding.
fn grants_of(binding: Option<&BindingObject>) -> Grants {
    let Some(binding) = binding else {
        return Grants::new();
    };
    let role = binding.role_ref();
    let role = format!("{}/{}", role.kind, role.name);
    binding
        .subjects()
        .iter()
        .map(|s: &Subject| (role.clone(), s.kind.clone(), s.name.clone()))
        .collect()
}

/// What the writes that took effect changed: the binding as it was observed against the
/// binding as written. A write that failed, found the binding gone already, or left it
/// held by finalizers changed nobody's access.
pub fn access_changes(
    writes: &[Write],
    results: &[WriteResult],
    cluster: &ClusterView,
) -> Vec<AccessChange> {
    let mut changes = Vec::new();
    for (write, result) in writes.iter().zip(results) {
        if !matches!(
            result.result,
            Ok(Done::Created | Done::Repaired | Done::Deleted)
        ) {
            continue;
        }
        let target = write.target();
        let before = grants_of(cluster.owned.get(&target));
        let after = match write {
            Write::Create(b) | Write::Repair(b) | Write::Recreate(b, _) => grants_of(Some(b)),
            Write::Delete(..) => Grants::new(),
        };
        let record = |change, (role, kind, name): &(String, String, String)| AccessChange {
            change,
            binding: target.clone(),
            role: role.clone(),
            subject: format!("{kind}/{name}"),
            subject_kind: kind.clone(),
            subject_name: name.clone(),
        };
        changes.extend(
            after
                .difference(&before)
                .map(|g| record(Change::Granted, g)),
        );
        changes.extend(
            before
                .difference(&after)
                .map(|g| record(Change::Revoked, g)),
        );
    }
    changes
}

/// Why the object's access changed this way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cause {
    /// In words.
    pub text: &'static str,
    /// Okta's answer changed (not the object, its time window or the cluster): an Okta
    /// event may have told of it.
    pub okta: bool,
}

pub fn cause(judgement: &Judgement, window: &Window, change: &AccessChange) -> Cause {
    let text = cause_text(judgement, window, change);
    let declared = text == DECLARED || text == NOT_DECLARED;
    Cause {
        text,
        okta: !declared && !matches!(window, Window::Expired { .. } | Window::NotYetActive { .. }),
    }
}

const DECLARED: &str = "declared by the object";
const NOT_DECLARED: &str = "no longer declared by the object";

fn cause_text(judgement: &Judgement, window: &Window, change: &AccessChange) -> &'static str {
    match (window, change.change) {
        (Window::Expired { .. }, Change::Revoked) => return "the time-bound grant ended",
        (Window::NotYetActive { .. }, Change::Revoked) => {
            return "the time-bound grant has not started";
        }
        _ => {}
    }
    let user = change.subject_kind == "User";
    match (&judgement.outcome, judgement.grant, change.change) {
        (Outcome::Missing, _, Change::Revoked) => "the group no longer exists in Okta",
        (Outcome::Replaced { .. }, _, Change::Revoked) => {
            "the group was deleted and another created under its name in Okta"
        }
        (Outcome::Refused(Refusal::OutsideAllowedPrefix), _, Change::Revoked) => {
            "the group is outside the allowed prefix"
        }
        (Outcome::Refused(Refusal::BuiltIn), _, Change::Revoked) => {
            "the group is one of Okta's built-in groups"
        }
        (Outcome::Refused(Refusal::Ambiguous(_)), _, Change::Revoked) => {
            "several Okta groups have the name"
        }
        (Outcome::Verified(_), Grant::Declared, Change::Granted) if user => {
            "an ACTIVE member of the group in Okta"
        }
        (Outcome::Verified(_), Grant::Declared, Change::Revoked) if user => {
            "no longer an ACTIVE member of the group in Okta"
        }
        (_, _, Change::Granted) => DECLARED,
        (_, _, Change::Revoked) => NOT_DECLARED,
    }
}

/// Whether an Okta event of this type can explain the change to a subject of this kind:
/// a revocation by a member leaving, a user's suspension, deactivation or deletion, or the
/// group's deletion or rename; a grant by a member joining, a user's return, or the
/// group's rename. A Group subject changes only with the group itself.
pub fn explains(event_type: &str, subject_kind: &str, change: Change) -> bool {
    if subject_kind != "User"
        && (event_type.starts_with("user.") || event_type.starts_with("group.user_membership."))
    {
        return false;
    }
    let revokes = event_type == "group.user_membership.remove"
        || event_type == "group.lifecycle.delete"
        || event_type == "user.lifecycle.suspend"
        || event_type == "user.lifecycle.deactivate"
        || event_type.starts_with("user.lifecycle.delete");
    let grants = event_type == "group.user_membership.add"
        || event_type == "group.lifecycle.create"
        || event_type == "user.lifecycle.unsuspend"
        || event_type == "user.lifecycle.activate"
        || event_type == "user.lifecycle.reactivate";
    match change {
        _ if event_type == "group.profile.update" => true,
        Change::Revoked => revokes,
        Change::Granted => grants,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::apply::WriteFailure;
    use crate::reconcile::fixtures::group;
    use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn crb(name: &str, role: &str, users: &[&str]) -> BindingObject {
        BindingObject::Cluster(ClusterRoleBinding {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: role.into(),
            },
            subjects: Some(
                users
                    .iter()
                    .map(|u| Subject {
                        kind: "User".into(),
                        name: (*u).into(),
                        api_group: Some("rbac.authorization.k8s.io".into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
        })
    }

    fn cluster(owned: &[BindingObject]) -> ClusterView {
        ClusterView {
            namespaces: vec![],
            owned: owned
                .iter()
                .map(|b| (b.reference(), b.clone()))
                .collect::<BTreeMap<_, _>>(),
            pending: BTreeSet::new(),
            roles: Default::default(),
        }
    }

    fn ok(write: &Write, done: Done) -> WriteResult {
        WriteResult {
            target: write.target(),
            result: Ok(done),
        }
    }

    fn summary(changes: &[AccessChange]) -> Vec<String> {
        changes
            .iter()
            .map(|c| {
                format!(
                    "{} {} {} {}",
                    c.change.as_str(),
                    c.binding,
                    c.role,
                    c.subject
                )
            })
            .collect()
    }

    #[test]
    fn a_repair_records_each_subject_added_and_removed() {
        let old = crb("b", "view", &["ann", "bob"]);
        let new = crb("b", "view", &["ann", "cid"]);
        let writes = [Write::Repair(new)];
        let results = [ok(&writes[0], Done::Repaired)];
        assert_eq!(
            summary(&access_changes(&writes, &results, &cluster(&[old]))),
            [
                "granted ClusterRoleBinding/b ClusterRole/view User/cid",
                "revoked ClusterRoleBinding/b ClusterRole/view User/bob"
            ]
        );
    }

    #[test]
    fn a_new_role_revokes_the_old_one_and_grants_the_new_one() {
        let old = crb("b", "view", &["ann"]);
        let new = crb("b", "edit", &["ann"]);
        let writes = [Write::Recreate(new, None)];
        let results = [ok(&writes[0], Done::Repaired)];
        assert_eq!(
            summary(&access_changes(&writes, &results, &cluster(&[old]))),
            [
                "granted ClusterRoleBinding/b ClusterRole/edit User/ann",
                "revoked ClusterRoleBinding/b ClusterRole/view User/ann"
            ]
        );
    }

    #[test]
    fn writes_that_changed_nothing_record_nothing() {
        let old = crb("b", "view", &["ann"]);
        let writes = [
            Write::Delete(old.reference(), None),
            Write::Create(crb("c", "view", &["ann"])),
            Write::Delete(crb("d", "view", &["bob"]).reference(), None),
        ];
        let results = [
            ok(&writes[0], Done::Terminating(vec!["hold".into()])),
            WriteResult {
                target: writes[1].target(),
                result: Err(WriteFailure::Conflict),
            },
            ok(&writes[2], Done::AlreadyGone),
        ];
        assert!(access_changes(&writes, &results, &cluster(&[old])).is_empty());
    }

    #[test]
    fn the_cause_names_what_okta_or_the_object_did() {
        let revoked = AccessChange {
            change: Change::Revoked,
            binding: crb("b", "view", &[]).reference(),
            role: "ClusterRole/view".into(),
            subject: "User/bob".into(),
            subject_kind: "User".into(),
            subject_name: "bob".into(),
        };
        let judged = |outcome, grant| Judgement {
            outcome,
            subjects: vec![],
            members_unknown: None,
            grant,
            claim: None,
        };
        let verified = judged(
            Outcome::Verified(group("k8s-a", "OKTA_GROUP")),
            Grant::Declared,
        );
        assert_eq!(
            cause(&verified, &Window::Unbounded, &revoked),
            Cause {
                text: "no longer an ACTIVE member of the group in Okta",
                okta: true
            }
        );
        assert_eq!(
            cause(
                &judged(Outcome::Missing, Grant::RevokeAll),
                &Window::Unbounded,
                &revoked
            )
            .text,
            "the group no longer exists in Okta"
        );
        let ended = Window::Expired {
            ended: k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        };
        assert_eq!(
            cause(
                &judged(Outcome::NotChecked, Grant::RevokeAll),
                &ended,
                &revoked
            ),
            Cause {
                text: "the time-bound grant ended",
                okta: false
            }
        );
        let group_revoked = AccessChange {
            subject_kind: "Group".into(),
            ..revoked
        };
        assert_eq!(
            cause(&verified, &Window::Unbounded, &group_revoked),
            Cause {
                text: "no longer declared by the object",
                okta: false
            }
        );
    }

    #[test]
    fn only_events_that_can_cause_the_change_explain_it() {
        assert!(explains(
            "group.user_membership.remove",
            "User",
            Change::Revoked
        ));
        assert!(!explains(
            "group.user_membership.remove",
            "User",
            Change::Granted
        ));
        assert!(!explains(
            "group.user_membership.add",
            "Group",
            Change::Granted
        ));
        assert!(explains(
            "user.lifecycle.delete.initiated",
            "User",
            Change::Revoked
        ));
        assert!(explains(
            "user.lifecycle.unsuspend",
            "User",
            Change::Granted
        ));
        assert!(explains("group.profile.update", "Group", Change::Revoked));
        assert!(explains("group.lifecycle.delete", "Group", Change::Revoked));
        assert!(explains("group.profile.update", "User", Change::Granted));
        assert!(!explains("user.lifecycle.suspend", "User", Change::Granted));
    }
}
