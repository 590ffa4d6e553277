//! What an OktaGroupBinding declares, judged against a check: which of its grants would
//! allow it, were its bindings in place. Used to tell why a person is refused (the grant
//! exists but is expired, not Ready, or its group never reaches the token). Pure: the
//! roles' rules and the namespace's labels are read beforehand.

use crate::check::Check;
use k8s_openapi::api::rbac::v1::PolicyRule;
use okta_rbac_api::OktaGroupBinding;
use okta_rbac_operator::reconcile::desired::selector_matches;
use std::collections::BTreeMap;

/// A role's rules by (kind, namespace of a Role, name).
pub type RoleRules = BTreeMap<(String, Option<String>, String), Vec<PolicyRule>>;

/// The roles an object references, as keys of [`RoleRules`].
pub fn referenced_roles(ogb: &OktaGroupBinding) -> Vec<(String, Option<String>, String)> {
    let spec = &ogb.spec;
    let mut roles: Vec<_> = spec
        .cluster_role_bindings
        .iter()
        .map(|c| ("ClusterRole".to_string(), None, c.cluster_role.clone()))
        .collect();
    for binding in &spec.role_bindings {
        match (&binding.role, &binding.cluster_role) {
            (Some(role), _) => roles.push(("Role".into(), binding.namespace.clone(), role.clone())),
            (None, Some(cluster_role)) => {
                roles.push(("ClusterRole".into(), None, cluster_role.clone()))
            }
            (None, None) => {}
        }
    }
    roles
}

/// The first of the object's grants that would allow `check`, as a person reads it.
pub fn grant_that_allows(
    ogb: &OktaGroupBinding,
    check: &Check,
    rules: &RoleRules,
    namespace_labels: Option<&BTreeMap<String, String>>,
) -> Option<String> {
    let allows = |kind: &str, namespace: Option<&str>, name: &str| {
        rules
            .get(&(
                kind.to_string(),
                namespace.map(str::to_string),
                name.to_string(),
            ))
            .is_some_and(|rules| check.allowed_by_any(rules))
    };
    for grant in &ogb.spec.cluster_role_bindings {
        if allows("ClusterRole", None, &grant.cluster_role) {
            return Some(format!("ClusterRole {} cluster-wide", grant.cluster_role));
        }
    }
    let namespace = check.namespace.as_deref()?;
    for grant in &ogb.spec.role_bindings {
        let applies = match (&grant.namespace, &grant.namespace_selector) {
            (Some(named), _) => named == namespace,
            (None, Some(selector)) => {
                namespace_labels.is_some_and(|l| selector_matches(selector, l))
            }
            (None, None) => false,
        };
        if !applies {
            continue;
        }
        match (&grant.role, &grant.cluster_role) {
            (Some(role), _) if allows("Role", Some(namespace), role) => {
                return Some(format!("Role {role} in {namespace}"));
            }
            (None, Some(cluster_role)) if allows("ClusterRole", None, cluster_role) => {
                return Some(format!("ClusterRole {cluster_role} in {namespace}"));
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use okta_rbac_api::{
        ClusterRoleBindingSpec, NamespaceSelector, OktaGroupBindingSpec, RoleBindingSpec,
    };

    fn rule(resources: &[&str], verbs: &[&str]) -> PolicyRule {
        PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(resources.iter().map(|s| s.to_string()).collect()),
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn object(cluster: &[&str], roles: Vec<RoleBindingSpec>) -> OktaGroupBinding {
        OktaGroupBinding::new(
            "x",
            OktaGroupBindingSpec {
                group: "k8s-x".into(),
                subject: Default::default(),
                cluster_role_bindings: cluster
                    .iter()
                    .map(|c| ClusterRoleBindingSpec {
                        cluster_role: c.to_string(),
                    })
                    .collect(),
                role_bindings: roles,
                on_group_missing: Default::default(),
                paused: false,
                start_time: None,
                end_time: None,
            },
        )
    }

    #[test]
    fn a_grant_allows_what_its_role_allows_where_it_applies() {
        let rules: RoleRules = [
            (
                ("ClusterRole".into(), None, "view".into()),
                vec![rule(&["pods"], &["list"])],
            ),
            (
                ("Role".into(), Some("web".into()), "deployer".into()),
                vec![rule(&["configmaps"], &["create"])],
            ),
        ]
        .into();
        let list_pods = Check::parse("list pods -n web").expect("check");
        assert_eq!(
            grant_that_allows(&object(&["view"], vec![]), &list_pods, &rules, None).as_deref(),
            Some("ClusterRole view cluster-wide")
        );
        let in_web = RoleBindingSpec {
            namespace: Some("web".into()),
            namespace_selector: None,
            role: Some("deployer".into()),
            cluster_role: None,
        };
        let create = Check::parse("create configmaps -n web").expect("check");
        assert_eq!(
            grant_that_allows(&object(&[], vec![in_web.clone()]), &create, &rules, None).as_deref(),
            Some("Role deployer in web")
        );
        let elsewhere = Check::parse("create configmaps -n db").expect("check");
        assert_eq!(
            grant_that_allows(&object(&[], vec![in_web]), &elsewhere, &rules, None),
            None
        );
        let selected = RoleBindingSpec {
            namespace: None,
            namespace_selector: Some(NamespaceSelector {
                match_labels: Some([("team".to_string(), "web".to_string())].into()),
                match_expressions: None,
            }),
            role: None,
            cluster_role: Some("view".into()),
        };
        let labels: BTreeMap<String, String> = [("team".to_string(), "web".to_string())].into();
        assert_eq!(
            grant_that_allows(
                &object(&[], vec![selected.clone()]),
                &list_pods,
                &rules,
                Some(&labels)
            )
            .as_deref(),
            Some("ClusterRole view in web")
        );
        assert_eq!(
            grant_that_allows(
                &object(&[], vec![selected]),
                &list_pods,
                &rules,
                Some(&BTreeMap::new())
            ),
            None
        );
        assert_eq!(
            referenced_roles(&object(&["view", "edit"], vec![])).len(),
            2
        );
    }
}
