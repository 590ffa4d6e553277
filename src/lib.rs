//! okta-rbac-operator: turns Okta groups into Kubernetes RBAC.

pub mod cli;
pub mod controlplane;
pub mod crd;
pub mod okta;
pub mod pki;
pub mod sim;
