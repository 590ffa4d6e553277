//! Step 3, plan: the exact writes that make the cluster match the judgement. Creates what
//! is missing, repairs what drifted (a changed roleRef means delete and re-create),
//! deletes what this object owns but must not keep, and never plans a write to a binding
//! it does not own. Pure.

use super::desired::{DesiredBinding, NamespaceView, desired_bindings};
use super::judge::{Grant, Judgement};
use super::observe::ClusterView;
use crate::binding::{BindingObject, BindingRef};
use crate::labels::{MANAGED_BY_LABEL, MANAGER, OWNER_ANNOTATION, OWNER_UID_LABEL};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};
use okta_rbac_api::{ManagedBinding, OktaGroupBinding};
use std::collections::{BTreeMap, BTreeSet};

/// One write to the cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    Create(BindingObject),
    /// The same roleRef: subjects, labels or owner reference are put back.
    Repair(BindingObject),
    /// roleRef is immutable: delete the binding (the one of this uid) and create it again.
    Recreate(BindingObject, Option<String>),
    /// Delete the binding, the one of this uid only.
    Delete(BindingRef, Option<String>),
}

impl Write {
    pub fn target(&self) -> BindingRef {
        match self {
            Write::Create(b) | Write::Repair(b) | Write::Recreate(b, _) => b.reference(),
            Write::Delete(reference, _) => reference.clone(),
        }
    }
}

/// A binding of the object that is being deleted but held by finalizers: until they are
/// removed it still exists, and RBAC still honours it.
#[derive(Clone, Debug, PartialEq)]
pub struct Terminating {
    pub target: BindingRef,
    /// `ClusterRole/name` or `Role/name`.
    pub role_ref: String,
    pub finalizers: Vec<String>,
}

impl Terminating {
    pub fn of(binding: &BindingObject) -> Self {
        let role = binding.role_ref();
        Self {
            target: binding.reference(),
            role_ref: format!("{}/{}", role.kind, role.name),
            finalizers: binding.metadata().finalizers.clone().unwrap_or_default(),
        }
    }

    /// What a person reads: which binding, what it still grants, who holds it.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}) is being deleted but kept by finalizers [{}], and grants until they are removed",
            self.target,
            self.role_ref,
            self.finalizers.join(", ")
        )
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub writes: Vec<Write>,
    /// The bindings the object has once every write succeeds, sorted (status.bindings).
    pub bound: Vec<(BindingRef, ManagedBinding)>,
    /// Explicitly named namespaces that do not exist: their bindings wait for them.
    pub missing_namespaces: Vec<String>,
    /// Roles the bound bindings reference that do not exist (`ClusterRole/x`, `Role/ns/x`).
    pub missing_roles: Vec<String>,
    /// The object's bindings that are being deleted but still exist.
    pub terminating: Vec<Terminating>,
}

fn reference(binding: &DesiredBinding) -> BindingRef {
    BindingRef {
        namespace: binding.namespace().map(str::to_string),
        name: binding.name.clone(),
    }
}

fn managed(binding: &DesiredBinding) -> ManagedBinding {
    ManagedBinding {
        kind: binding.kind().to_string(),
        namespace: binding.namespace().map(str::to_string),
        name: binding.name.clone(),
        role_ref: format!("{}/{}", binding.role_ref.kind, binding.role_ref.name),
    }
}

/// The labels, annotation and controller owner reference of a binding `ogb` owns.
fn owned_meta(ogb: &OktaGroupBinding) -> ObjectMeta {
    ObjectMeta {
        labels: Some(BTreeMap::from([
            (MANAGED_BY_LABEL.to_string(), MANAGER.to_string()),
            (OWNER_UID_LABEL.to_string(), ogb.uid().unwrap_or_default()),
        ])),
        annotations: Some(BTreeMap::from([(
            OWNER_ANNOTATION.to_string(),
            ogb.name_any(),
        )])),
        owner_references: ogb.controller_owner_ref(&()).map(|r| vec![r]),
        ..Default::default()
    }
}

fn owned_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references.iter().flatten().any(|r| r.uid == uid)
}

/// Our labels and owner reference are in place.
fn marks_in_place(meta: &ObjectMeta, uid: &str) -> bool {
    let label = |key: &str| {
        meta.labels
            .as_ref()
            .and_then(|l| l.get(key))
            .map(String::as_str)
    };
    owned_by(meta, uid)
        && label(MANAGED_BY_LABEL) == Some(MANAGER)
        && label(OWNER_UID_LABEL) == Some(uid)
}

/// `current` with the declared subjects and our marks added (others' labels are kept).
fn repaired(
    current: &BindingObject,
    desired: &DesiredBinding,
    marks: &ObjectMeta,
    uid: &str,
) -> BindingObject {
    let mut meta = current.metadata().clone();
    meta.labels
        .get_or_insert_with(Default::default)
        .extend(marks.labels.clone().unwrap_or_default());
    meta.annotations
        .get_or_insert_with(Default::default)
        .extend(marks.annotations.clone().unwrap_or_default());
    if !owned_by(&meta, uid) {
        meta.owner_references
            .get_or_insert_with(Default::default)
            .extend(marks.owner_references.clone().unwrap_or_default());
    }
    BindingObject::build(
        &current.reference(),
        meta,
        current.role_ref().clone(),
        desired.subjects.clone(),
    )
}

fn role_name(binding: &DesiredBinding) -> String {
    match binding.namespace() {
        Some(ns) if binding.role_ref.kind == "Role" => {
            format!("Role/{ns}/{}", binding.role_ref.name)
        }
        _ => format!("{}/{}", binding.role_ref.kind, binding.role_ref.name),
    }
}

fn role_exists(binding: &DesiredBinding, cluster: &ClusterView) -> bool {
    match (binding.role_ref.kind.as_str(), binding.namespace()) {
        ("Role", Some(ns)) => cluster
            .roles
            .roles
            .contains(&(ns.to_string(), binding.role_ref.name.clone())),
        _ => cluster.roles.cluster_roles.contains(&binding.role_ref.name),
    }
}

pub fn plan(ogb: &OktaGroupBinding, judgement: &Judgement, cluster: &ClusterView) -> Plan {
    let uid = ogb.uid().unwrap_or_default();
    let views: Vec<NamespaceView<'_>> = cluster
        .namespaces
        .iter()
        .map(|ns| NamespaceView {
            name: &ns.name,
            labels: &ns.labels,
        })
        .collect();
    let existing_namespaces: BTreeSet<&str> = views.iter().map(|ns| ns.name).collect();
    let desired = desired_bindings(ogb, &judgement.subjects, &views);
    let declared: BTreeSet<BindingRef> = desired.iter().map(reference).collect();

    let mut plan = Plan::default();
    for (target, current) in &cluster.owned {
        if current.metadata().deletion_timestamp.is_some() {
            // Deleting it again changes nothing; its watch event, once it is gone, brings
            // the object back here (to create it anew, if it is still declared).
            plan.terminating.push(Terminating::of(current));
        } else if judgement.grant == Grant::RevokeAll || !declared.contains(target) {
            let uid = current.metadata().uid.clone();
            plan.writes.push(Write::Delete(target.clone(), uid));
        }
    }
    match judgement.grant {
        Grant::RevokeAll => {}
        Grant::KeepExisting => {
            for binding in &desired {
                let target = reference(binding);
                if cluster
                    .owned
                    .get(&target)
                    .is_some_and(|b| b.metadata().deletion_timestamp.is_none())
                {
                    plan.bound.push((target, managed(binding)));
                }
            }
        }
        Grant::Declared => {
            let marks = owned_meta(ogb);
            for binding in &desired {
                if let Some(ns) = binding.namespace()
                    && !existing_namespaces.contains(ns)
                {
                    plan.missing_namespaces.push(ns.to_string());
                    continue;
                }
                let target = reference(binding);
                let fresh = || {
                    BindingObject::build(
                        &target,
                        marks.clone(),
                        binding.role_ref.clone(),
                        binding.subjects.clone(),
                    )
                };
                match cluster.owned.get(&target) {
                    None if cluster.pending.contains(&target) => {}
                    None => plan.writes.push(Write::Create(fresh())),
                    // Created again once it is gone; not bound until then.
                    Some(current) if current.metadata().deletion_timestamp.is_some() => continue,
                    Some(current) if current.role_ref() != &binding.role_ref => {
                        let uid = current.metadata().uid.clone();
                        plan.writes.push(Write::Recreate(fresh(), uid));
                    }
                    Some(current)
                        if current.subjects() == binding.subjects.as_slice()
                            && marks_in_place(current.metadata(), &uid) => {}
                    Some(current) => plan
                        .writes
                        .push(Write::Repair(repaired(current, binding, &marks, &uid))),
                }
                plan.bound.push((target, managed(binding)));
                let role = role_name(binding);
                if !role_exists(binding, cluster) && !plan.missing_roles.contains(&role) {
                    plan.missing_roles.push(role);
                }
            }
        }
    }
    plan.bound.sort_by(|a, b| a.1.cmp(&b.1));
    plan
}

#[cfg(test)]
mod tests;
