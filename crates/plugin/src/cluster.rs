//! What the cluster knows, read-only except SubjectAccessReviews: the OktaGroupBindings,
//! the roles and bindings, namespace labels, and the apiserver's own answer to "may this
//! subject do that".

use crate::check::Check;
use crate::cli::KubeArgs;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use okta_rbac_api::{Decoded, OktaGroupBinding};
use serde::Serialize;
use std::collections::BTreeMap;

pub struct Cluster {
    client: kube::Client,
}

/// The apiserver's answer for one subject and one check.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Review {
    pub allowed: bool,
    /// An authorizer said no outright (RBAC never does: the revocation authorizer did).
    pub denied: bool,
    /// The authorizer's words (RBAC names the binding that allows).
    pub reason: String,
}

impl Cluster {
    pub async fn connect(args: &KubeArgs) -> Result<Self, String> {
        let options = KubeConfigOptions {
            context: args.context.clone(),
            ..Default::default()
        };
        let config = match &args.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options).await
            }
            None => kube::Config::from_kubeconfig(&options).await,
        }
        .map_err(|e| format!("the kubeconfig: {e}"))?;
        let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
        Ok(Self { client })
    }

    /// Every OktaGroupBinding, each decoded on its own: those read, and a note for each
    /// one that cannot be (a field this version does not understand), which the answer
    /// then leaves out and says so.
    pub async fn objects(&self) -> Result<(Vec<OktaGroupBinding>, Vec<String>), String> {
        let list = Api::<Decoded<OktaGroupBinding>>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing OktaGroupBindings: {e}"))?;
        let (read, unreadable) = Decoded::split(list.items);
        let notes = unreadable
            .iter()
            .map(|object| {
                format!(
                    "OktaGroupBinding {} cannot be read ({object}): this answer leaves it out, \
                     and the operator leaves its bindings as they are",
                    object.metadata.name.as_deref().unwrap_or_default()
                )
            })
            .collect();
        Ok((read, notes))
    }

    /// May `user` in `groups` do `check`? The apiserver decides, as for a real request.
    pub async fn review(
        &self,
        user: &str,
        groups: &[String],
        check: &Check,
    ) -> Result<Review, String> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.to_string()),
                groups: Some(groups.to_vec()),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(check.verb.clone()),
                    resource: Some(check.resource.clone()),
                    subresource: (!check.subresource.is_empty()).then(|| check.subresource.clone()),
                    group: Some(check.group.clone()),
                    namespace: check.namespace.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| format!("asking the apiserver (SubjectAccessReview): {e}"))?;
        let status = answer.status.unwrap_or_default();
        Ok(Review {
            allowed: status.allowed && !status.denied.unwrap_or(false),
            denied: status.denied.unwrap_or(false),
            reason: status.reason.unwrap_or_default(),
        })
    }

    /// The rules of a role (`Role` in `namespace`, or a `ClusterRole`), if it exists.
    pub async fn rules(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Vec<PolicyRule>> {
        match (kind, namespace) {
            ("Role", Some(namespace)) => Api::<Role>::namespaced(self.client.clone(), namespace)
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .map(|r| r.rules.unwrap_or_default()),
            _ => Api::<ClusterRole>::all(self.client.clone())
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .map(|r| r.rules.unwrap_or_default()),
        }
    }

    pub async fn namespace_labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        Api::<Namespace>::all(self.client.clone())
            .get_opt(name)
            .await
            .ok()
            .flatten()
            .map(|ns| ns.metadata.labels.unwrap_or_default())
    }

    /// Every ClusterRoleBinding, and the RoleBindings of `namespace`.
    pub async fn bindings(
        &self,
        namespace: Option<&str>,
    ) -> Result<(Vec<ClusterRoleBinding>, Vec<RoleBinding>), String> {
        let cluster = Api::<ClusterRoleBinding>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing ClusterRoleBindings: {e}"))?
            .items;
        let namespaced = match namespace {
            Some(namespace) => {
                Api::<RoleBinding>::namespaced(self.client.clone(), namespace)
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| format!("listing RoleBindings in {namespace}: {e}"))?
                    .items
            }
            None => Vec::new(),
        };
        Ok((cluster, namespaced))
    }
}
