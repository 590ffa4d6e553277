//! Objects and Okta answers the unit tests of the pipeline share.

use crate::okta::{GroupProfile, OktaGroup, OktaUser, UserProfile};
use crate::policy::Policy;
use okta_rbac_api::{
    ClusterRoleBindingSpec, NamespaceSelector, OktaGroupBinding, OktaGroupBindingSpec,
    RoleBindingSpec, SubjectSpec, UserNameAttribute,
};
use std::collections::BTreeMap;

pub fn policy() -> Policy {
    Policy {
        allowed_group_prefix: "k8s-".into(),
        groups_prefix: "oidc:".into(),
        username_prefix: "".into(),
        user_name: UserNameAttribute::Email,
        claim_check: None,
    }
}

/// The object named `restricted`, with a uid as the apiserver would give it.
pub fn ogb(spec: OktaGroupBindingSpec) -> OktaGroupBinding {
    let mut object = OktaGroupBinding::new("restricted", spec);
    object.metadata.uid = Some("uid-1".into());
    object.metadata.generation = Some(1);
    object
}

/// `view` cluster-wide, the Role `restricted-user` in `default`, and `edit` in every
/// namespace labelled `team=payments`.
pub fn spec() -> OktaGroupBindingSpec {
    OktaGroupBindingSpec {
        group: "k8s-restricted-users".into(),
        subject: SubjectSpec::default(),
        cluster_role_bindings: vec![ClusterRoleBindingSpec {
            cluster_role: "view".into(),
        }],
        role_bindings: vec![
            RoleBindingSpec {
                namespace: Some("default".into()),
                namespace_selector: None,
                role: Some("restricted-user".into()),
                cluster_role: None,
            },
            RoleBindingSpec {
                namespace: None,
                namespace_selector: Some(NamespaceSelector {
                    match_labels: Some(BTreeMap::from([("team".into(), "payments".into())])),
                    match_expressions: None,
                }),
                role: None,
                cluster_role: Some("edit".into()),
            },
        ],
        on_group_missing: Default::default(),
        paused: false,
        start_time: None,
        end_time: None,
    }
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn group(name: &str, kind: &str) -> OktaGroup {
    OktaGroup {
        id: "00g1".into(),
        group_type: kind.into(),
        profile: GroupProfile { name: name.into() },
        last_membership_updated: None,
        embedded: None,
    }
}

pub fn member(login: &str, status: &str) -> OktaUser {
    OktaUser {
        id: format!("00u{login}"),
        status: status.into(),
        profile: UserProfile {
            login: login.into(),
            email: Some(format!("{login}@example.com")),
        },
    }
}
