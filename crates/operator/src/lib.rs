//! okta-rbac-operator, the shipped binary's code: verifies Okta groups through the Okta
//! Management API and keeps the ClusterRoleBindings and RoleBindings that
//! `OktaGroupBinding`s declare. Depends on the API types, kube-rs and an HTTPS client;
//! never on the local Okta or the test environment (`make lint` checks).
//!
//! A reconcile is a pipeline ([`reconcile`]): observe -> judge -> plan -> apply -> report,
//! where only observe and apply do I/O.

pub mod authorizer;
pub mod binding;
pub mod cache;
pub mod cli;
pub mod controller;
pub mod election;
pub mod events;
pub mod hooks;
pub mod https;
pub mod labels;
pub mod leader_endpoint;
pub mod metrics;
pub mod okta;
pub mod policy;
pub mod progress;
pub mod reconcile;
pub mod runtime;
pub mod server;
pub mod tasks;
