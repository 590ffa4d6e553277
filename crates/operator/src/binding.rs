//! The two kinds of binding the operator writes, as one type: ClusterRoleBindings and
//! RoleBindings differ only in scope.

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::fmt;

/// Which binding: a ClusterRoleBinding when `namespace` is `None`, else a RoleBinding.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BindingRef {
    pub namespace: Option<String>,
    pub name: String,
}

impl BindingRef {
    pub fn kind(&self) -> &'static str {
        match self.namespace {
            None => "ClusterRoleBinding",
            Some(_) => "RoleBinding",
        }
    }
}

/// `ClusterRoleBinding/name` or `RoleBinding/namespace/name`, as messages name them.
impl fmt::Display for BindingRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{ns}/{}", self.kind(), self.name),
            None => write!(f, "{}/{}", self.kind(), self.name),
        }
    }
}

/// A whole binding object, ready to be written.
#[derive(Clone, Debug, PartialEq)]
pub enum BindingObject {
    Cluster(ClusterRoleBinding),
    Namespaced(RoleBinding),
}

impl BindingObject {
    /// A binding of the kind `reference` names.
    pub fn build(
        reference: &BindingRef,
        metadata: ObjectMeta,
        role_ref: RoleRef,
        subjects: Vec<Subject>,
    ) -> Self {
        let metadata = ObjectMeta {
            name: Some(reference.name.clone()),
            namespace: reference.namespace.clone(),
            ..metadata
        };
        match reference.namespace {
            None => Self::Cluster(ClusterRoleBinding {
                metadata,
                role_ref,
                subjects: Some(subjects),
            }),
            Some(_) => Self::Namespaced(RoleBinding {
                metadata,
                role_ref,
                subjects: Some(subjects),
            }),
        }
    }

    pub fn reference(&self) -> BindingRef {
        let meta = self.metadata();
        BindingRef {
            namespace: meta.namespace.clone(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Self::Cluster(b) => &b.metadata,
            Self::Namespaced(b) => &b.metadata,
        }
    }

    pub fn role_ref(&self) -> &RoleRef {
        match self {
            Self::Cluster(b) => &b.role_ref,
            Self::Namespaced(b) => &b.role_ref,
        }
    }

    pub fn subjects(&self) -> &[Subject] {
        match self {
            Self::Cluster(b) => b.subjects.as_deref().unwrap_or_default(),
            Self::Namespaced(b) => b.subjects.as_deref().unwrap_or_default(),
        }
    }
}

impl From<ClusterRoleBinding> for BindingObject {
    fn from(binding: ClusterRoleBinding) -> Self {
        Self::Cluster(binding)
    }
}

impl From<RoleBinding> for BindingObject {
    fn from(binding: RoleBinding) -> Self {
        Self::Namespaced(binding)
    }
}
