//! What the writes came to, in the terms the conditions and events use: conflicts,
//! missing namespaces, failures, and how many bindings were created, repaired, deleted and
//! are bound now. Pure.

use super::apply::{Done, WriteFailure, WriteResult};
use super::plan::Plan;
use okta_rbac_api::ManagedBinding;
use std::collections::BTreeSet;

/// What the writes came to, in the terms the conditions and events use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    /// Bindings of the declared names that this object does not own: left untouched.
    pub conflicts: Vec<String>,
    pub missing_namespaces: Vec<String>,
    pub failures: Vec<String>,
    /// The object's bindings that are being deleted but are kept by finalizers: they
    /// still exist, and RBAC still honours them.
    pub terminating: Vec<String>,
    /// The bindings the object has after this reconcile (status.bindings), sorted.
    pub bound: Vec<ManagedBinding>,
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
}

pub fn tally(plan: &Plan, results: &[WriteResult]) -> Tally {
    let mut tally = Tally {
        missing_namespaces: plan.missing_namespaces.clone(),
        terminating: plan.terminating.iter().map(|t| t.describe()).collect(),
        ..Default::default()
    };
    let mut lost = BTreeSet::new();
    for write in results {
        match &write.result {
            Ok(Done::Created) => tally.created += 1,
            Ok(Done::Repaired) => tally.updated += 1,
            Ok(Done::Deleted) => tally.deleted += 1,
            Ok(Done::AlreadyGone | Done::AlreadyOwned) => {}
            Ok(Done::Terminating(finalizers)) => {
                lost.insert(write.target.clone());
                tally.terminating.push(format!(
                    "{} is being deleted but kept by finalizers [{}], and grants until they are removed",
                    write.target,
                    finalizers.join(", ")
                ));
            }
            Err(failure) => {
                lost.insert(write.target.clone());
                match failure {
                    WriteFailure::Conflict => tally.conflicts.push(write.target.to_string()),
                    WriteFailure::NamespaceMissing(ns) => {
                        if !tally.missing_namespaces.contains(ns) {
                            tally.missing_namespaces.push(ns.clone());
                        }
                    }
                    other => tally.failures.push(other.to_string()),
                }
            }
        }
    }
    tally.bound = plan
        .bound
        .iter()
        .filter(|(target, _)| !lost.contains(target))
        .map(|(_, binding)| binding.clone())
        .collect();
    tally
}
