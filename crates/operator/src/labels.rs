//! The marks that make a binding the operator's (who manages it and which object owns
//! it), and the one label the operator reads from namespaces.

pub const MANAGER: &str = "okta-rbac-operator";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Label values are at most 63 characters; an object's uid fits, its name may not.
pub const OWNER_UID_LABEL: &str = "oktarbac.io/owner-uid";
pub const OWNER_ANNOTATION: &str = "oktarbac.io/owner";

/// The label the apiserver gives every namespace: its own name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
