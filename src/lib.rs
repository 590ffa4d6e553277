//! okta-rbac-operator: turns Okta groups into Kubernetes RBAC.

pub mod cli;
pub mod controlplane;
pub mod pki;
pub mod sim;
