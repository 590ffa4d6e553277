//! okta-rbac-operator: turns Okta groups into Kubernetes RBAC.

pub mod cli;
pub mod controller;
pub mod controlplane;
pub mod crd;
pub mod demo;
pub mod metrics;
pub mod okta;
pub mod operator;
pub mod pki;
pub mod server;
pub mod sim;
