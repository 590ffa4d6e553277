//! The `OktaGroupBinding` resource (`oktarbac.io/v1alpha1`, cluster-scoped, short name
//! `ogb`) and its conditions: the contract between users, the operator and GitOps tools.
//! Depends on the Kubernetes types and serde only (no client, no runtime).
//!
//! The CRD in `crds/` is generated from these types (`okta-rbac-operator crd`); invariants
//! that admission can check live here as schema constraints and CEL rules, so
//! `kubectl apply` of a bad object fails clearly.

pub mod conditions;
pub mod decoded;
pub mod reasons;
pub mod times;

pub use decoded::{Decoded, Unreadable};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Printable characters with no surrounding white space (what an Okta group name can be).
const GROUP_NAME_PATTERN: &str = r"^[^\s\x00-\x1f\x7f]([^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$";
/// What Kubernetes accepts as an RBAC role name (a path segment).
const ROLE_NAME_PATTERN: &str = r"^[^/%\s]+$";
const NAMESPACE_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

// clippy reads the repeated `type_ = ...` of separate printcolumn(...) entries as one
// attribute given twice.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "oktarbac.io",
    version = "v1alpha1",
    kind = "OktaGroupBinding",
    shortname = "ogb",
    status = "OktaGroupBindingStatus",
    derive = "PartialEq",
    doc = "Grants Kubernetes roles to an Okta group, verified against Okta.",
    printcolumn(name = "Group", type_ = "string", json_path = ".spec.group"),
    printcolumn(
        name = "Subject",
        type_ = "string",
        description = "The subject the bindings name, prefix included",
        json_path = ".status.subject"
    ),
    printcolumn(
        name = "Verified",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"GroupVerified\")].status"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Active",
        type_ = "string",
        description = "Whether a time-bound grant is in effect now (empty: no startTime or endTime)",
        json_path = ".status.conditions[?(@.type==\"Active\")].status"
    ),
    printcolumn(
        name = "Ends",
        type_ = "string",
        description = "When the grant ends (spec.endTime)",
        json_path = ".spec.endTime"
    ),
    printcolumn(
        name = "Bindings",
        type_ = "integer",
        json_path = ".status.bindingCount"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("size(self.clusterRoleBindings) + size(self.roleBindings) > 0").message("declare at least one entry in clusterRoleBindings or roleBindings"))]
#[x_kube(validation = Rule::new(times::end_after_start()).message("endTime must be after startTime"))]
#[serde(rename_all = "camelCase")]
pub struct OktaGroupBindingSpec {
    /// The Okta group's `profile.name`, exactly. It must start with the operator's allowed
    /// prefix (default `k8s-`), or it could never appear in a token.
    #[schemars(length(min = 1, max = 255), regex(pattern = GROUP_NAME_PATTERN))]
    pub group: String,

    /// Who the bindings name: the group itself, or its active members one by one.
    #[serde(default)]
    pub subject: SubjectSpec,

    /// ClusterRoles granted cluster-wide.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub cluster_role_bindings: Vec<ClusterRoleBindingSpec>,

    /// Roles or ClusterRoles granted in one namespace, or in every namespace matching a
    /// selector, now and later.
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub role_bindings: Vec<RoleBindingSpec>,

    /// What happens to the bindings when Okta says the group does not exist.
    #[serde(default)]
    pub on_group_missing: OnGroupMissing,

    /// While true, the operator leaves this object's bindings as they are and verifies
    /// nothing; the status says Paused. The end of a grant (`endTime`) is enforced even
    /// while paused.
    #[serde(default)]
    pub paused: bool,

    /// When the grants start (RFC 3339, such as `2026-12-01T09:00:00Z`, from
    /// 1970-01-01T00:00:00Z to 9999-12-30T00:00:00Z). Before it, the object's bindings do
    /// not exist; they are created within a second of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "times::schema")]
    pub start_time: Option<Time>,

    /// When the grants end (RFC 3339, in the same range; leave it out for a grant that
    /// never ends). From then on, the object's bindings do not exist: they are deleted
    /// within a second of it, and a grant already over when applied creates nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "times::schema")]
    pub end_time: Option<Time>,
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubjectSpec {
    #[serde(default)]
    pub kind: SubjectKind,
    /// Prepended to the group name (Group) or user name (Users): the apiserver's
    /// `--oidc-groups-prefix` or `--oidc-username-prefix`. Defaults to the operator's
    /// `--groups-prefix` / `--username-prefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), regex(pattern = r"^[^\x00-\x1f\x7f]*$"))]
    #[x_kube(validation = Rule::new("!self.startsWith('system:')").message("a prefix may not start with system: (Kubernetes reserves system: for its own users and groups, such as system:masters)"))]
    pub prefix: Option<String>,
    /// Users mode: which Okta profile attribute is the Kubernetes user name (the
    /// apiserver's `--oidc-username-claim`). Defaults to the operator's setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<UserNameAttribute>,
}

#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SubjectKind {
    /// One subject: the group, as the apiserver sees it in tokens.
    #[default]
    Group,
    /// One User subject per ACTIVE member of the group.
    Users,
}

#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UserNameAttribute {
    #[default]
    Email,
    Login,
}

#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnGroupMissing {
    /// Delete the bindings: a deleted group must never keep access.
    #[default]
    Revoke,
    /// Keep them as they are.
    Retain,
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRoleBindingSpec {
    #[schemars(length(min = 1, max = 253), regex(pattern = ROLE_NAME_PATTERN))]
    #[x_kube(validation = Rule::new("self != '.' && self != '..'").message("'.' and '..' are not role names: the apiserver refuses them as path segments"))]
    pub cluster_role: String,
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("has(self.role) != has(self.clusterRole)").message("set exactly one of role and clusterRole"))]
#[x_kube(validation = Rule::new("has(self.namespace) != has(self.namespaceSelector)").message("set exactly one of namespace and namespaceSelector"))]
#[x_kube(validation = Rule::new("!has(self.role) || has(self.namespace)").message("a Role exists in one namespace: use namespace, not namespaceSelector, with role (or use clusterRole)"))]
#[serde(rename_all = "camelCase")]
pub struct RoleBindingSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = NAMESPACE_PATTERN))]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<NamespaceSelector>,
    /// A Role in that namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = ROLE_NAME_PATTERN))]
    #[x_kube(validation = Rule::new("self != '.' && self != '..'").message("'.' and '..' are not role names: the apiserver refuses them as path segments"))]
    pub role: Option<String>,
    /// A ClusterRole, granted only inside the namespace(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = ROLE_NAME_PATTERN))]
    #[x_kube(validation = Rule::new("self != '.' && self != '..'").message("'.' and '..' are not role names: the apiserver refuses them as path segments"))]
    pub cluster_role: Option<String>,
}

// Kubernetes' LabelSelector, bounded: its general schema has no limits, so CEL's cost
// budget refuses any rule over it, and an unknown operator would pass admission.
/// Selects namespaces by their labels, as a Kubernetes label selector does.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// Labels a namespace must have, all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 16))]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// Requirements a namespace's labels must meet, all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub match_expressions: Option<Vec<SelectorRequirement>>,
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("(self.operator == 'In' || self.operator == 'NotIn') == (has(self.values) && size(self.values) > 0)").message("In and NotIn need values; Exists and DoesNotExist take none"))]
pub struct SelectorRequirement {
    #[schemars(length(min = 1, max = 317))]
    pub key: String,
    pub operator: SelectorOperator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), inner(length(max = 63)))]
    pub values: Option<Vec<String>>,
}

#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// The most bindings `status.bindings` lists; `bindingCount` counts them all.
pub const LISTED_BINDINGS: usize = 100;

#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OktaGroupBindingStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The subject the bindings name, prefix included: a prefix mistake shows here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The Okta group, as verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<OktaGroupStatus>,
    /// The bindings the operator keeps for this object, in order (ClusterRoleBindings
    /// first), at most 100 of them (`LISTED_BINDINGS`): an object that selects thousands
    /// of namespaces would otherwise outgrow what etcd stores and what a person can read.
    #[serde(default)]
    pub bindings: Vec<ManagedBinding>,
    /// How many bindings the operator keeps for this object, listed or not.
    #[serde(default)]
    #[schemars(range(min = 0, max = i32::MAX))]
    pub binding_count: i32,
    /// How many of them `bindings` leaves out (absent when it lists them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = i32::MAX))]
    pub bindings_not_listed: Option<i32>,
    /// When Okta last answered about the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verified: Option<Time>,
    /// A time-bound grant in effect: since when (its start, or when it was applied if
    /// that was later) ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_since: Option<Time>,
    /// ... and until when (`spec.endTime`; absent: no end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_until: Option<Time>,
    /// A list-map keyed by `type`, so that server-side apply merges conditions one by one.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OktaGroupStatus {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub group_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_count: Option<i64>,
    /// Users mode: how many ACTIVE members are bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_users: Option<i64>,
}

#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct ManagedBinding {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// `Role/name` or `ClusterRole/name`.
    pub role_ref: String,
}

/// The CRD as YAML, as committed in `crds/`.
pub fn crd_yaml() -> Result<String, serde_yaml_ng::Error> {
    use kube::CustomResourceExt;
    serde_yaml_ng::to_string(&OktaGroupBinding::crd())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_crds_are_the_generated_one() {
        let generated = super::crd_yaml().expect("CRD YAML");
        for (path, committed) in [
            (
                "crds/oktagroupbindings.oktarbac.io.yaml",
                include_str!("../../../crds/oktagroupbindings.oktarbac.io.yaml"),
            ),
            (
                "charts/okta-rbac-operator/crds/oktagroupbindings.oktarbac.io.yaml",
                include_str!(
                    "../../../charts/okta-rbac-operator/crds/oktagroupbindings.oktarbac.io.yaml"
                ),
            ),
        ] {
            assert!(
                committed == generated,
                "{path} is stale: run `make crd` and commit it"
            );
        }
    }
}
