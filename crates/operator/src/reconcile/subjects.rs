//! Who the bindings name: the group as the apiserver sees it (with its prefix), or in Users
//! mode one User subject per active member. Pure.

use crate::okta::OktaUser;
use crate::policy::Policy;
use k8s_openapi::api::rbac::v1::Subject;
use okta_rbac_api::{OktaGroupBinding, SubjectKind, UserNameAttribute};

pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The subject prefix in effect for this object.
pub fn effective_prefix<'a>(ogb: &'a OktaGroupBinding, policy: &'a Policy) -> &'a str {
    match (&ogb.spec.subject.prefix, ogb.spec.subject.kind) {
        (Some(prefix), _) => prefix,
        (None, SubjectKind::Group) => &policy.groups_prefix,
        (None, SubjectKind::Users) => &policy.username_prefix,
    }
}

/// What `status.subject` shows: the group subject, or how user subjects are formed.
pub fn subject_summary(ogb: &OktaGroupBinding, policy: &Policy) -> String {
    let prefix = effective_prefix(ogb, policy);
    match ogb.spec.subject.kind {
        SubjectKind::Group => format!("{prefix}{}", ogb.spec.group),
        SubjectKind::Users => {
            let attribute = match ogb.spec.subject.user_name.unwrap_or(policy.user_name) {
                UserNameAttribute::Email => "email",
                UserNameAttribute::Login => "login",
            };
            format!("users: {prefix}<{attribute}> of active members")
        }
    }
}

pub fn group_subject(ogb: &OktaGroupBinding, policy: &Policy) -> Vec<Subject> {
    vec![Subject {
        api_group: Some(RBAC_GROUP.into()),
        kind: "Group".into(),
        name: format!("{}{}", effective_prefix(ogb, policy), ogb.spec.group),
        namespace: None,
    }]
}

/// One User subject per ACTIVE member, sorted, without duplicates.
pub fn user_subjects(
    ogb: &OktaGroupBinding,
    policy: &Policy,
    members: &[OktaUser],
) -> Vec<Subject> {
    let prefix = effective_prefix(ogb, policy);
    let attribute = ogb.spec.subject.user_name.unwrap_or(policy.user_name);
    let mut names: Vec<String> = members
        .iter()
        .filter(|user| user.status == "ACTIVE")
        .filter_map(|user| match attribute {
            UserNameAttribute::Login => Some(user.profile.login.clone()),
            UserNameAttribute::Email => user.profile.email.clone(),
        })
        .map(|name| format!("{prefix}{name}"))
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| Subject {
            api_group: Some(RBAC_GROUP.into()),
            kind: "User".into(),
            name,
            namespace: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::fixtures::{member, ogb, policy, spec};

    #[test]
    fn the_group_subject_carries_the_effective_prefix() {
        let object = ogb(spec());
        let subjects = group_subject(&object, &policy());
        assert_eq!(subjects[0].name, "oidc:k8s-restricted-users");
        assert_eq!(subjects[0].kind, "Group");
        let mut own_prefix = spec();
        own_prefix.subject.prefix = Some(String::new());
        assert_eq!(
            group_subject(&ogb(own_prefix), &policy())[0].name,
            "k8s-restricted-users"
        );
        assert_eq!(
            subject_summary(&object, &policy()),
            "oidc:k8s-restricted-users"
        );
    }

    #[test]
    fn users_mode_binds_only_active_members_by_the_chosen_attribute() {
        let mut users = spec();
        users.subject.kind = SubjectKind::Users;
        users.subject.user_name = Some(UserNameAttribute::Login);
        users.subject.prefix = Some("okta:".into());
        let members = [
            member("bob", "ACTIVE"),
            member("erin", "SUSPENDED"),
            member("amy", "ACTIVE"),
        ];
        let subjects = user_subjects(&ogb(users.clone()), &policy(), &members);
        let names: Vec<&str> = subjects.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["okta:amy", "okta:bob"]);
        assert!(subjects.iter().all(|s| s.kind == "User"));
        users.subject.user_name = None;
        let by_email = user_subjects(&ogb(users), &policy(), &members);
        assert_eq!(by_email[0].name, "okta:amy@example.com");
    }
}
