//! Makes the cluster's bindings match the plan: creates what is missing, repairs what
//! drifted (a changed roleRef means delete and re-create), deletes what this object owns
//! but no longer declares, and never touches a binding it does not own.

use super::context::{Context, MANAGED_BY_LABEL, MANAGER, OWNER_ANNOTATION, OWNER_UID_LABEL};
use super::desired::{DesiredBinding, Scope};
use super::owners::OwnerIndex;
use super::verdict::{ApplyReport, Grant};
use crate::crd::{ManagedBinding, OktaGroupBinding};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

/// What the operator needs of ClusterRoleBindings and RoleBindings alike.
pub trait Binding:
    Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    fn build(metadata: ObjectMeta, role_ref: RoleRef, subjects: Vec<Subject>) -> Self;
    fn role_ref(&self) -> &RoleRef;
    fn subjects(&self) -> &[Subject];
    fn set_subjects(&mut self, subjects: Vec<Subject>);
}

macro_rules! binding {
    ($kind:ty) => {
        impl Binding for $kind {
            fn build(metadata: ObjectMeta, role_ref: RoleRef, subjects: Vec<Subject>) -> Self {
                Self {
                    metadata,
                    role_ref,
                    subjects: Some(subjects),
                }
            }
            fn role_ref(&self) -> &RoleRef {
                &self.role_ref
            }
            fn subjects(&self) -> &[Subject] {
                self.subjects.as_deref().unwrap_or_default()
            }
            fn set_subjects(&mut self, subjects: Vec<Subject>) {
                self.subjects = Some(subjects);
            }
        }
    };
}
binding!(ClusterRoleBinding);
binding!(RoleBinding);

fn owned_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references.iter().flatten().any(|r| r.uid == uid)
}

/// Our labels and owner reference are in place.
fn meta_in_order(meta: &ObjectMeta, uid: &str) -> bool {
    let labels = meta.labels.as_ref();
    owned_by(meta, uid)
        && labels
            .and_then(|l| l.get(MANAGED_BY_LABEL))
            .map(String::as_str)
            == Some(MANAGER)
        && labels
            .and_then(|l| l.get(OWNER_UID_LABEL))
            .map(String::as_str)
            == Some(uid)
}

fn desired_meta(ogb: &OktaGroupBinding, binding: &DesiredBinding) -> ObjectMeta {
    let uid = ogb.uid().unwrap_or_default();
    ObjectMeta {
        name: Some(binding.name.clone()),
        namespace: binding.namespace().map(str::to_string),
        labels: Some(BTreeMap::from([
            (MANAGED_BY_LABEL.to_string(), MANAGER.to_string()),
            (OWNER_UID_LABEL.to_string(), uid),
        ])),
        annotations: Some(BTreeMap::from([(
            OWNER_ANNOTATION.to_string(),
            ogb.name_any(),
        )])),
        owner_references: ogb.controller_owner_ref(&()).map(|r| vec![r]),
        ..Default::default()
    }
}

pub fn managed(binding: &DesiredBinding) -> ManagedBinding {
    ManagedBinding {
        kind: binding.kind().to_string(),
        namespace: binding.namespace().map(str::to_string),
        name: binding.name.clone(),
        role_ref: format!("{}/{}", binding.role_ref.kind, binding.role_ref.name),
    }
}

fn cluster_api(ctx: &Context) -> Api<ClusterRoleBinding> {
    Api::all(ctx.client.clone())
}

fn namespaced_api<K>(ctx: &Context, namespace: &str) -> Api<K>
where
    K: Binding + Resource<Scope = NamespaceResourceScope>,
{
    Api::namespaced(ctx.client.clone(), namespace)
}

/// Applies the plan and reports what happened and which bindings this object now has.
pub async fn apply(
    ctx: &Context,
    ogb: &OktaGroupBinding,
    desired: &[DesiredBinding],
    grant: Grant,
) -> (ApplyReport, Vec<ManagedBinding>) {
    let uid = ogb.uid().unwrap_or_default();
    let mut report = ApplyReport::default();
    let mut kept: Vec<ManagedBinding> = Vec::new();
    let declared: BTreeSet<(Scope, &str)> = desired
        .iter()
        .map(|d| (d.scope.clone(), d.name.as_str()))
        .collect();

    let owned_cluster: Vec<_> = ctx.stores.owned_cluster_role_bindings(&uid);
    let owned_namespaced: Vec<_> = ctx.stores.owned_role_bindings(&uid);

    // Delete what is owned but must not stay.
    for binding in &owned_cluster {
        let keep = grant != Grant::RevokeAll
            && declared.contains(&(Scope::Cluster, binding.name_any().as_str()));
        if !keep {
            delete(&cluster_api(ctx), &binding.name_any(), &mut report).await;
        }
    }
    for binding in &owned_namespaced {
        let namespace = binding.namespace().unwrap_or_default();
        let keep = grant != Grant::RevokeAll
            && declared.contains(&(
                Scope::Namespace(namespace.clone()),
                binding.name_any().as_str(),
            ));
        if !keep {
            delete(
                &namespaced_api::<RoleBinding>(ctx, &namespace),
                &binding.name_any(),
                &mut report,
            )
            .await;
        }
    }

    match grant {
        Grant::RevokeAll => {}
        Grant::KeepExisting => {
            for d in desired {
                let exists = match &d.scope {
                    Scope::Cluster => owned_cluster.iter().any(|b| b.name_any() == d.name),
                    Scope::Namespace(ns) => owned_namespaced
                        .iter()
                        .any(|b| b.name_any() == d.name && b.namespace().as_deref() == Some(ns)),
                };
                if exists {
                    kept.push(managed(d));
                }
            }
        }
        Grant::Declared => {
            for d in desired {
                let applied = match &d.scope {
                    Scope::Cluster => {
                        let existing = owned_cluster
                            .iter()
                            .find(|b| b.name_any() == d.name)
                            .map(|b| b.as_ref());
                        ensure(
                            &cluster_api(ctx),
                            &ctx.stores.cluster_role_binding_owners,
                            ogb,
                            d,
                            existing,
                            &uid,
                            &mut report,
                        )
                        .await
                    }
                    Scope::Namespace(ns) => {
                        if !ctx.stores.namespace_exists(ns) {
                            report.missing_namespaces.push(ns.clone());
                            continue;
                        }
                        let existing = owned_namespaced
                            .iter()
                            .find(|b| {
                                b.name_any() == d.name && b.namespace().as_deref() == Some(ns)
                            })
                            .map(|b| b.as_ref());
                        ensure(
                            &namespaced_api::<RoleBinding>(ctx, ns),
                            &ctx.stores.role_binding_owners,
                            ogb,
                            d,
                            existing,
                            &uid,
                            &mut report,
                        )
                        .await
                    }
                };
                if applied {
                    kept.push(managed(d));
                    if !ctx.stores.role_exists(&d.role_ref, d.namespace()) {
                        let role = match d.namespace() {
                            Some(ns) if d.role_ref.kind == "Role" => {
                                format!("Role/{ns}/{}", d.role_ref.name)
                            }
                            _ => format!("{}/{}", d.role_ref.kind, d.role_ref.name),
                        };
                        if !report.missing_roles.contains(&role) {
                            report.missing_roles.push(role);
                        }
                    }
                }
            }
        }
    }
    kept.sort();
    report.bound = kept.len();
    (report, kept)
}

async fn delete<K: Binding>(api: &Api<K>, name: &str, report: &mut ApplyReport) {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => report.deleted += 1,
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(error) => report.failures.push(format!("deleting {name}: {error}")),
    }
}

/// Makes one declared binding exist exactly as declared; `true` when it does.
async fn ensure<K: Binding>(
    api: &Api<K>,
    created: &OwnerIndex<K>,
    ogb: &OktaGroupBinding,
    desired: &DesiredBinding,
    existing: Option<&K>,
    uid: &str,
    report: &mut ApplyReport,
) -> bool {
    let fresh = || {
        K::build(
            desired_meta(ogb, desired),
            desired.role_ref.clone(),
            desired.subjects.clone(),
        )
    };
    let params = PostParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    };
    let reference = match desired.namespace() {
        Some(ns) => ObjectRef::<K>::new(&desired.name).within(ns),
        None => ObjectRef::<K>::new(&desired.name),
    };
    let current = match existing {
        Some(current) => current.clone(),
        // Created by an earlier reconcile; the watch has not delivered it yet.
        None if created.is_expected(&reference) => return true,
        None => match api.create(&params, &fresh()).await {
            Ok(_) => {
                created.expect(reference);
                report.created += 1;
                return true;
            }
            // Our cache may lag behind our own writes, or someone else owns the name.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                match api.get(&desired.name).await {
                    Ok(found) if owned_by(found.meta(), uid) => {
                        tracing::debug!(binding = %qualified(desired), "already created; the cache had not seen it");
                        found
                    }
                    Ok(_) => {
                        report.conflicts.push(qualified(desired));
                        return false;
                    }
                    Err(error) => {
                        report
                            .failures
                            .push(format!("reading {}: {error}", qualified(desired)));
                        return false;
                    }
                }
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {
                if let Some(ns) = desired.namespace() {
                    report.missing_namespaces.push(ns.to_string());
                }
                return false;
            }
            Err(error) => {
                report
                    .failures
                    .push(format!("creating {}: {error}", qualified(desired)));
                return false;
            }
        },
    };
    if current.role_ref() != &desired.role_ref {
        // roleRef is immutable: replace the binding.
        let _ = api.delete(&desired.name, &DeleteParams::default()).await;
        let result = api.create(&params, &fresh()).await;
        return repaired_or_failed(result, "re-creating", desired, report);
    }
    if current.subjects() == desired.subjects.as_slice() && meta_in_order(current.meta(), uid) {
        return true;
    }
    let mut repaired = current.clone();
    repaired.set_subjects(desired.subjects.clone());
    let wanted = desired_meta(ogb, desired);
    let meta = repaired.meta_mut();
    meta.labels
        .get_or_insert_with(Default::default)
        .extend(wanted.labels.unwrap_or_default());
    meta.annotations
        .get_or_insert_with(Default::default)
        .extend(wanted.annotations.unwrap_or_default());
    if !owned_by(meta, uid) {
        meta.owner_references
            .get_or_insert_with(Default::default)
            .extend(wanted.owner_references.unwrap_or_default());
    }
    let result = api.replace(&desired.name, &params, &repaired).await;
    repaired_or_failed(result, "repairing", desired, report)
}

/// Counts a repair, or records why it failed; `true` when the binding is as declared.
fn repaired_or_failed<T>(
    result: kube::Result<T>,
    doing: &str,
    desired: &DesiredBinding,
    report: &mut ApplyReport,
) -> bool {
    match result {
        Ok(_) => {
            report.updated += 1;
            true
        }
        Err(error) => {
            report
                .failures
                .push(format!("{doing} {}: {error}", qualified(desired)));
            false
        }
    }
}

fn qualified(binding: &DesiredBinding) -> String {
    match binding.namespace() {
        Some(ns) => format!("{}/{ns}/{}", binding.kind(), binding.name),
        None => format!("{}/{}", binding.kind(), binding.name),
    }
}
