//! Step 1, observe: everything a decision about one object depends on, read once. Okta's
//! answer about the group (and, in Users mode, once judge has verified the group, its
//! members), the object's last known status, and the cluster as the caches see it. The
//! only step that asks Okta.

use super::context::Context;
use super::schedule::Window;
use crate::binding::{BindingObject, BindingRef};
use crate::cache::NamespaceInfo;
use crate::okta::{GroupAnswer, OktaClaim, OktaError, OktaGroup, OktaUser};
use kube::ResourceExt;
use okta_rbac_api::{OktaGroupBinding, OktaGroupBindingStatus, SubjectKind};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What Okta said about the group's name.
#[derive(Clone, Debug)]
pub enum GroupLookup {
    /// The name can never be bound (outside the allowed prefix): Okta was not asked.
    NotAsked,
    /// The grant is over (`spec.endTime` passed): nothing to verify, Okta was not asked.
    Skipped,
    Answered(Arc<GroupAnswer>),
    Failed(OktaError),
}

/// Okta's side.
#[derive(Clone, Debug)]
pub struct OktaView {
    pub lookup: GroupLookup,
    /// Users mode, once the group is verified: its members, or why they could not be read.
    pub members: Option<Result<Arc<Vec<OktaUser>>, OktaError>>,
    /// Group mode with the claim check on: the authorization server's claims.
    pub claims: Option<Result<Arc<Vec<OktaClaim>>, OktaError>>,
}

/// The roles the object references that exist.
#[derive(Clone, Debug, Default)]
pub struct RolesPresent {
    pub cluster_roles: BTreeSet<String>,
    /// (namespace, name)
    pub roles: BTreeSet<(String, String)>,
}

/// The cluster's side, from the caches.
#[derive(Clone, Debug, Default)]
pub struct ClusterView {
    /// Namespaces that exist and are not being deleted: every one when the object has a
    /// namespaceSelector, otherwise only those it names.
    pub namespaces: Vec<NamespaceInfo>,
    /// The bindings this object owns.
    pub owned: BTreeMap<BindingRef, BindingObject>,
    /// Bindings this object created whose watch event has not arrived yet.
    pub pending: BTreeSet<BindingRef>,
    pub roles: RolesPresent,
}

#[derive(Clone, Debug)]
pub struct Observation {
    /// What this operator last wrote, while the cache still holds the version it was
    /// written over; otherwise the cached object's status.
    pub status: OktaGroupBindingStatus,
    pub okta: OktaView,
    pub cluster: ClusterView,
}

/// Okta is asked about the group unless the grant is over (a break-glass object that
/// ended costs Okta nothing, however long it is kept).
pub async fn observe(ctx: &Context, ogb: &OktaGroupBinding, window: &Window) -> Observation {
    let okta = match window {
        Window::Expired { .. } => OktaView {
            lookup: GroupLookup::Skipped,
            members: None,
            claims: None,
        },
        _ => ask_okta(ctx, ogb).await,
    };
    Observation {
        status: ctx.current_status(ogb),
        okta,
        cluster: look_at_cluster(ctx, ogb),
    }
}

async fn ask_okta(ctx: &Context, ogb: &OktaGroupBinding) -> OktaView {
    let group = &ogb.spec.group;
    let lookup = if !ctx.policy.admits(group) {
        GroupLookup::NotAsked
    } else {
        match ctx.okta.lookup(group).await {
            Ok(answer) => GroupLookup::Answered(answer),
            Err(error) => GroupLookup::Failed(error),
        }
    };
    let claims = match (&ctx.claims, ogb.spec.subject.kind) {
        (Some(cache), SubjectKind::Group) => Some(cache.claims().await),
        _ => None,
    };
    OktaView {
        lookup,
        members: None,
        claims,
    }
}

/// Users mode: reads the members of the group judge verified.
pub async fn members(ctx: &Context, group: &OktaGroup, okta: &mut OktaView) {
    okta.members = Some(ctx.okta.members(group).await);
}

fn look_at_cluster(ctx: &Context, ogb: &OktaGroupBinding) -> ClusterView {
    let uid = ogb.uid().unwrap_or_default();
    let name = ogb.name_any();
    let stores = &ctx.stores;
    let role_bindings = &ogb.spec.role_bindings;
    let namespaces = if role_bindings.iter().any(|r| r.namespace_selector.is_some()) {
        stores.namespaces.all()
    } else {
        role_bindings
            .iter()
            .filter_map(|r| stores.namespaces.get(r.namespace.as_deref()?))
            .collect()
    };
    let mut owned = BTreeMap::new();
    // An orphan an object of this name left behind counts as owned: the plan repairs it
    // into this object's (adopts it) or deletes it, like any owned binding.
    for binding in stores.owned_cluster_role_bindings(&uid, &name) {
        let object = BindingObject::from(binding);
        owned.insert(object.reference(), object);
    }
    for binding in stores.owned_role_bindings(&uid, &name) {
        let object = BindingObject::from(binding);
        owned.insert(object.reference(), object);
    }
    ClusterView {
        namespaces,
        owned,
        pending: stores.pending_for(&uid),
        roles: roles_present(ctx, ogb),
    }
}

fn roles_present(ctx: &Context, ogb: &OktaGroupBinding) -> RolesPresent {
    let spec = &ogb.spec;
    let cluster_roles = spec
        .cluster_role_bindings
        .iter()
        .map(|c| c.cluster_role.as_str())
        .chain(
            spec.role_bindings
                .iter()
                .filter_map(|r| r.cluster_role.as_deref()),
        )
        .filter(|name| ctx.stores.cluster_role_exists(name))
        .map(str::to_string)
        .collect();
    let roles = spec
        .role_bindings
        .iter()
        .filter_map(|r| Some((r.namespace.as_deref()?, r.role.as_deref()?)))
        .filter(|(namespace, name)| ctx.stores.role_exists(namespace, name))
        .map(|(namespace, name)| (namespace.to_string(), name.to_string()))
        .collect();
    RolesPresent {
        cluster_roles,
        roles,
    }
}
