//! A question put to the apiserver: may this subject do VERB on RESOURCE (in NAMESPACE)?
//! Parsed from what a person types (`list pods -n default`, `create deployments.apps`,
//! `get pods/log -n web`) and matched against RBAC rules the way the RBAC authorizer does
//! for requests without a resource name. Pure.

use k8s_openapi::api::rbac::v1::PolicyRule;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub verb: String,
    pub resource: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    /// The API group ("" for the core group).
    pub group: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The questions `explain` asks when none are given.
pub const DEFAULT_CHECKS: [&str; 5] = [
    "list pods -n default",
    "list secrets -n default",
    "create deployments.apps -n default",
    "list pods -n kube-system",
    "delete namespaces",
];

impl Check {
    /// `VERB RESOURCE[.GROUP][/SUBRESOURCE] [-n NAMESPACE]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let (verb, resource, rest) = match words.as_slice() {
            [verb, resource, rest @ ..] => (*verb, *resource, rest),
            _ => return Err(format!("{text:?}: expected VERB RESOURCE [-n NAMESPACE]")),
        };
        let namespace = match rest {
            [] => None,
            ["-n" | "--namespace", namespace] => Some(namespace.to_string()),
            _ => return Err(format!("{text:?}: expected VERB RESOURCE [-n NAMESPACE]")),
        };
        Ok(Self::new(verb, resource, namespace))
    }

    pub fn new(verb: &str, resource: &str, namespace: Option<String>) -> Self {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        let (resource, group) = resource.split_once('.').unwrap_or((resource, ""));
        Self {
            verb: verb.to_string(),
            resource: resource.to_string(),
            subresource: subresource.to_string(),
            group: group.to_string(),
            namespace,
        }
    }

    /// As a person reads it: `list pods -n default`.
    pub fn describe(&self) -> String {
        let mut text = format!("{} {}", self.verb, self.resource);
        if !self.group.is_empty() {
            text.push('.');
            text.push_str(&self.group);
        }
        if !self.subresource.is_empty() {
            text.push('/');
            text.push_str(&self.subresource);
        }
        if let Some(namespace) = &self.namespace {
            text.push_str(" -n ");
            text.push_str(namespace);
        }
        text
    }

    fn resource_path(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// Whether one RBAC rule allows it (rules naming resources by name do not: the check
    /// names none).
    pub fn allowed_by(&self, rule: &PolicyRule) -> bool {
        let any = |list: &Option<Vec<String>>, value: &str| {
            list.iter()
                .flatten()
                .any(|item| item == "*" || item == value)
        };
        let resource = self.resource_path();
        rule.verbs.iter().any(|v| v == "*" || *v == self.verb)
            && any(&rule.api_groups, &self.group)
            && (any(&rule.resources, &resource)
                || rule.resources.iter().flatten().any(|r| {
                    r == &format!("*/{}", self.subresource) && !self.subresource.is_empty()
                }))
            && rule.resource_names.as_ref().is_none_or(Vec::is_empty)
    }

    pub fn allowed_by_any(&self, rules: &[PolicyRule]) -> bool {
        rules.iter().any(|rule| self.allowed_by(rule))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
        let list = |items: &[&str]| Some(items.iter().map(|s| s.to_string()).collect());
        PolicyRule {
            api_groups: list(groups),
            resources: list(resources),
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn what_a_person_types_is_understood() {
        let check = Check::parse("create deployments.apps -n web").expect("parse");
        assert_eq!(
            (
                check.verb.as_str(),
                check.resource.as_str(),
                check.group.as_str()
            ),
            ("create", "deployments", "apps")
        );
        assert_eq!(check.namespace.as_deref(), Some("web"));
        assert_eq!(check.describe(), "create deployments.apps -n web");
        let logs = Check::parse("get pods/log -n default").expect("parse");
        assert_eq!(logs.subresource, "log");
        assert!(Check::parse("list").is_err());
        assert!(Check::parse("list pods default").is_err());
        for text in DEFAULT_CHECKS {
            Check::parse(text).expect(text);
        }
    }

    #[test]
    fn rules_match_as_rbac_matches_them() {
        let pods = Check::parse("list pods -n default").expect("parse");
        assert!(pods.allowed_by(&rule(&[""], &["pods"], &["get", "list"])));
        assert!(pods.allowed_by(&rule(&["*"], &["*"], &["*"])));
        assert!(
            !pods.allowed_by(&rule(&["apps"], &["pods"], &["list"])),
            "another group"
        );
        assert!(
            !pods.allowed_by(&rule(&[""], &["pods"], &["get"])),
            "another verb"
        );
        let named = PolicyRule {
            resource_names: Some(vec!["one".into()]),
            ..rule(&[""], &["pods"], &["list"])
        };
        assert!(!pods.allowed_by(&named), "a rule for one pod by name");
        let logs = Check::parse("get pods/log").expect("parse");
        assert!(
            !logs.allowed_by(&rule(&[""], &["pods"], &["get"])),
            "a subresource is its own"
        );
        assert!(logs.allowed_by(&rule(&[""], &["pods/log"], &["get"])));
    }
}
