//! The bindings an object declares: one per ClusterRole, one per Role or ClusterRole in
//! each named or selected namespace, with deterministic, bounded names. Pure.

use super::subjects::RBAC_GROUP;
use k8s_openapi::api::rbac::v1::{RoleRef, Subject};
use okta_rbac_api::{NamespaceSelector, OktaGroupBinding, SelectorOperator};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

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

/// The namespace cache does not store the name label (it would make every namespace's
/// label set distinct); a [`NamespaceView`] answers it from the name.
pub use crate::labels::NAMESPACE_NAME_LABEL;

/// Labels a selector can be matched against.
pub trait LabelSource {
    fn label(&self, key: &str) -> Option<&str>;
}

impl LabelSource for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// Whether a namespace's labels match a selector, as Kubernetes' label selectors do.
pub fn selector_matches(selector: &NamespaceSelector, labels: &impl LabelSource) -> bool {
    let labels_match = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.label(key) == Some(value.as_str()));
    let expressions_match = selector
        .match_expressions
        .iter()
        .flatten()
        .all(|expression| {
            let value = labels.label(&expression.key);
            let values = expression.values.as_deref().unwrap_or_default();
            let listed = |v: &str| values.iter().any(|listed| listed == v);
            match expression.operator {
                SelectorOperator::In => value.is_some_and(listed),
                SelectorOperator::NotIn => value.is_none_or(|v| !listed(v)),
                SelectorOperator::Exists => value.is_some(),
                SelectorOperator::DoesNotExist => value.is_none(),
            }
        });
    labels_match && expressions_match
}

/// A namespace as the core sees it: its name, and its labels but for its name label.
pub struct NamespaceView<'a> {
    pub name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

impl LabelSource for NamespaceView<'_> {
    fn label(&self, key: &str) -> Option<&str> {
        match self.labels.label(key) {
            None if key == NAMESPACE_NAME_LABEL => Some(self.name),
            found => found,
        }
    }
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
                .filter(|ns| selector_matches(selector, *ns))
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
    use crate::reconcile::fixtures::{labels, ogb, policy, spec};
    use crate::reconcile::subjects::group_subject;
    use okta_rbac_api::SelectorRequirement;

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

    #[test]
    fn a_namespace_matches_its_name_label_though_the_cache_does_not_store_it() {
        let by_name = NamespaceSelector {
            match_labels: None,
            match_expressions: Some(vec![SelectorRequirement {
                key: NAMESPACE_NAME_LABEL.into(),
                operator: SelectorOperator::In,
                values: Some(vec!["payments".into(), "web".into()]),
            }]),
        };
        let none = labels(&[]);
        let view = |name| NamespaceView {
            name,
            labels: &none,
        };
        assert!(selector_matches(&by_name, &view("payments")));
        assert!(!selector_matches(&by_name, &view("billing")));
        let not_named = NamespaceSelector {
            match_labels: None,
            match_expressions: Some(vec![SelectorRequirement {
                key: NAMESPACE_NAME_LABEL.into(),
                operator: SelectorOperator::DoesNotExist,
                values: None,
            }]),
        };
        assert!(
            !selector_matches(&not_named, &view("payments")),
            "every namespace has it"
        );
    }
}
