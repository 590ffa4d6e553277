//! The pure core: from an OktaGroupBinding, Okta's answer and the cluster's namespaces to
//! the exact bindings that should exist. No I/O here; everything is unit-tested.

use crate::crd::{
    NamespaceSelector, OktaGroupBinding, SelectorOperator, SubjectKind, UserNameAttribute,
};
use crate::okta::{OktaGroup, OktaUser};
use k8s_openapi::api::rbac::v1::{RoleRef, Subject};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Operator-wide settings the pure core needs.
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
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Cluster,
    Namespace(String),
}

/// One binding the operator should keep.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredBinding {
    pub scope: Scope,
    pub name: String,
    pub role_ref: RoleRef,
    pub subjects: Vec<Subject>,
}

impl DesiredBinding {
    pub fn kind(&self) -> &'static str {
        match self.scope {
            Scope::Cluster => "ClusterRoleBinding",
            Scope::Namespace(_) => "RoleBinding",
        }
    }

    pub fn namespace(&self) -> Option<&str> {
        match &self.scope {
            Scope::Cluster => None,
            Scope::Namespace(ns) => Some(ns),
        }
    }
}

/// Why a group must not be bound, whatever Okta says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    OutsideAllowedPrefix,
    BuiltIn,
    Ambiguous(usize),
}

/// Refuses names that can never reach a token, before asking Okta anything.
pub fn refuse_name(group: &str, policy: &Policy) -> Option<Refusal> {
    let allowed = policy.allowed_group_prefix.to_lowercase();
    (!group.to_lowercase().starts_with(&allowed)).then_some(Refusal::OutsideAllowedPrefix)
}

/// Refuses what Okta answered that must not be bound: a BUILT_IN group (Everyone), or a
/// name that several groups share.
pub fn refuse_answer(groups: &[OktaGroup]) -> Option<Refusal> {
    match groups {
        [] => None,
        [group] if group.group_type == "BUILT_IN" => Some(Refusal::BuiltIn),
        [_] => None,
        many => Some(Refusal::Ambiguous(many.len())),
    }
}

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

/// Whether a namespace's labels match a selector, as Kubernetes' label selectors do.
pub fn selector_matches(selector: &NamespaceSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_match = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    let expressions_match = selector
        .match_expressions
        .iter()
        .flatten()
        .all(|expression| {
            let value = labels.get(&expression.key);
            let values = expression.values.as_deref().unwrap_or_default();
            match expression.operator {
                SelectorOperator::In => value.is_some_and(|v| values.contains(v)),
                SelectorOperator::NotIn => value.is_none_or(|v| !values.contains(v)),
                SelectorOperator::Exists => value.is_some(),
                SelectorOperator::DoesNotExist => value.is_none(),
            }
        });
    labels_match && expressions_match
}

/// A namespace as the core sees it.
pub struct NamespaceView<'a> {
    pub name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

/// Deterministic, bounded binding names: readable parts and a hash of what makes the
/// binding unique, so two objects or two roles never share a name.
pub fn binding_name(owner: &str, scope: &Scope, role_ref: &RoleRef) -> String {
    let mut hasher = Sha256::new();
    for part in [owner, role_ref.kind.as_str(), role_ref.name.as_str()] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    if let Scope::Namespace(ns) = scope {
        hasher.update(ns.as_bytes());
    }
    let hash: String = hasher
        .finalize()
        .iter()
        .take(5)
        .map(|b| format!("{b:02x}"))
        .collect();
    let readable = |text: &str, max: usize| -> String {
        let cleaned: String = text
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(max)
            .collect();
        cleaned.trim_matches('-').to_string()
    };
    format!(
        "okta-{}-{}-{hash}",
        readable(owner, 40),
        readable(&role_ref.name, 30)
    )
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: Some(RBAC_GROUP.into()),
        kind: kind.into(),
        name: name.into(),
    }
}

/// Every binding the object declares, for these subjects and the namespaces that exist
/// (selectors match only existing namespaces; an explicit namespace is always declared).
pub fn desired_bindings(
    ogb: &OktaGroupBinding,
    subjects: &[Subject],
    namespaces: &[NamespaceView<'_>],
) -> Vec<DesiredBinding> {
    let owner = ogb.metadata.name.as_deref().unwrap_or_default();
    let mut bindings = Vec::new();
    for entry in &ogb.spec.cluster_role_bindings {
        let role_ref = role_ref("ClusterRole", &entry.cluster_role);
        bindings.push(DesiredBinding {
            name: binding_name(owner, &Scope::Cluster, &role_ref),
            scope: Scope::Cluster,
            role_ref,
            subjects: subjects.to_vec(),
        });
    }
    for entry in &ogb.spec.role_bindings {
        let role_ref = match (&entry.role, &entry.cluster_role) {
            (Some(role), _) => role_ref("Role", role),
            (None, Some(cluster_role)) => role_ref("ClusterRole", cluster_role),
            (None, None) => continue,
        };
        let targets: Vec<String> = match (&entry.namespace, &entry.namespace_selector) {
            (Some(namespace), _) => vec![namespace.clone()],
            (None, Some(selector)) => namespaces
                .iter()
                .filter(|ns| selector_matches(selector, ns.labels))
                .map(|ns| ns.name.to_string())
                .collect(),
            (None, None) => vec![],
        };
        for namespace in targets {
            let scope = Scope::Namespace(namespace);
            bindings.push(DesiredBinding {
                name: binding_name(owner, &scope, &role_ref),
                scope,
                role_ref: role_ref.clone(),
                subjects: subjects.to_vec(),
            });
        }
    }
    bindings.sort_by(|a, b| (&a.scope, &a.name).cmp(&(&b.scope, &b.name)));
    bindings.dedup_by(|a, b| a.scope == b.scope && a.name == b.name);
    bindings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::SelectorRequirement;
    use crate::crd::{ClusterRoleBindingSpec, OktaGroupBindingSpec, RoleBindingSpec, SubjectSpec};
    use crate::okta::{GroupProfile, UserProfile};

    fn policy() -> Policy {
        Policy {
            allowed_group_prefix: "k8s-".into(),
            groups_prefix: "oidc:".into(),
            username_prefix: "".into(),
            user_name: UserNameAttribute::Email,
        }
    }

    fn ogb(spec: OktaGroupBindingSpec) -> OktaGroupBinding {
        OktaGroupBinding::new("restricted", spec)
    }

    fn spec() -> OktaGroupBindingSpec {
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
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

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
    fn desired_bindings_cover_cluster_named_and_selected_namespaces() {
        let object = ogb(spec());
        let payments = labels(&[("team", "payments")]);
        let other = labels(&[("team", "web")]);
        let namespaces = [
            NamespaceView {
                name: "pay-1",
                labels: &payments,
            },
            NamespaceView {
                name: "web",
                labels: &other,
            },
            NamespaceView {
                name: "pay-2",
                labels: &payments,
            },
        ];
        let bindings = desired_bindings(&object, &group_subject(&object, &policy()), &namespaces);
        let shape: Vec<(&str, Option<&str>, &str)> = bindings
            .iter()
            .map(|b| (b.kind(), b.namespace(), b.role_ref.name.as_str()))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("ClusterRoleBinding", None, "view"),
                ("RoleBinding", Some("default"), "restricted-user"),
                ("RoleBinding", Some("pay-1"), "edit"),
                ("RoleBinding", Some("pay-2"), "edit"),
            ]
        );
        assert!(
            bindings
                .iter()
                .all(|b| b.subjects[0].name == "oidc:k8s-restricted-users")
        );
    }

    #[test]
    fn binding_names_are_deterministic_bounded_and_distinct() {
        let view = role_ref("ClusterRole", "view");
        let edit = role_ref("ClusterRole", "edit");
        let a = binding_name("team-a", &Scope::Cluster, &view);
        assert_eq!(a, binding_name("team-a", &Scope::Cluster, &view));
        assert!(a.starts_with("okta-team-a-view-"));
        assert_ne!(a, binding_name("team-b", &Scope::Cluster, &view));
        assert_ne!(a, binding_name("team-a", &Scope::Cluster, &edit));
        assert_ne!(
            a,
            binding_name("team-a", &Scope::Cluster, &role_ref("Role", "view"))
        );
        let long = binding_name(
            &"x".repeat(253),
            &Scope::Cluster,
            &role_ref("ClusterRole", &"system:".repeat(30)),
        );
        assert!(long.len() <= 90, "{} chars", long.len());
        assert!(
            long.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }

    #[test]
    fn label_selectors_match_like_kubernetes() {
        let selector = NamespaceSelector {
            match_labels: Some(BTreeMap::from([("team".into(), "payments".into())])),
            match_expressions: Some(vec![
                SelectorRequirement {
                    key: "env".into(),
                    operator: SelectorOperator::In,
                    values: Some(vec!["prod".into(), "staging".into()]),
                },
                SelectorRequirement {
                    key: "frozen".into(),
                    operator: SelectorOperator::DoesNotExist,
                    values: None,
                },
            ]),
        };
        assert!(selector_matches(
            &selector,
            &labels(&[("team", "payments"), ("env", "prod")])
        ));
        assert!(!selector_matches(
            &selector,
            &labels(&[("team", "payments"), ("env", "dev")])
        ));
        assert!(!selector_matches(
            &selector,
            &labels(&[("team", "payments"), ("env", "prod"), ("frozen", "1")])
        ));
        assert!(
            selector_matches(&NamespaceSelector::default(), &labels(&[])),
            "an empty selector matches all"
        );
    }

    fn member(login: &str, status: &str) -> OktaUser {
        OktaUser {
            id: format!("00u{login}"),
            status: status.into(),
            profile: UserProfile {
                login: login.into(),
                email: Some(format!("{login}@example.com")),
            },
        }
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

    fn group(name: &str, kind: &str) -> OktaGroup {
        OktaGroup {
            id: "00g1".into(),
            group_type: kind.into(),
            profile: GroupProfile { name: name.into() },
            last_membership_updated: None,
            embedded: None,
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(
            refuse_name("platform-admins", &policy()),
            Some(Refusal::OutsideAllowedPrefix)
        );
        assert_eq!(
            refuse_name("K8S-admins", &policy()),
            None,
            "Okta's claim filter ignores case"
        );
        assert_eq!(
            refuse_answer(&[group("Everyone", "BUILT_IN")]),
            Some(Refusal::BuiltIn)
        );
        assert_eq!(
            refuse_answer(&[group("k8s-a", "OKTA_GROUP"), group("k8s-a", "APP_GROUP")]),
            Some(Refusal::Ambiguous(2))
        );
        assert_eq!(refuse_answer(&[group("k8s-a", "OKTA_GROUP")]), None);
        assert_eq!(refuse_answer(&[]), None, "missing is not a refusal");
    }
}
