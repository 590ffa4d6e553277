//! The leader's claim on a Service of its own: the revocation authorizer's (only the
//! replica that leads reads Okta's member lists, so only it can answer; a standby would
//! answer NoOpinion for every token) and the event hook receiver's (only the leader acts
//! on a delivery; a standby refuses it). The Service has no selector, and the leader keeps
//! its EndpointSlice pointing at its own Pod, as kube-apiserver keeps the `kubernetes`
//! Service's.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Says who writes the slice: the EndpointSlice controller leaves it alone.
const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
const MANAGED_BY: &str = "okta-rbac-operator";
/// Put back this often while leading, should anyone change or delete it.
const REASSERT: Duration = Duration::from_secs(30);

/// This replica's Pod, as the downward API gives it.
#[derive(Clone, Debug, Default)]
pub struct PodIdentity {
    pub name: Option<String>,
    pub ip: Option<IpAddr>,
}

/// The Service and this replica's Pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderEndpoint {
    pub service: String,
    pub namespace: String,
    pub pod_ip: IpAddr,
    /// For the endpoint's targetRef.
    pub pod_name: Option<String>,
    /// The port in the Pod, and its name in the Service.
    pub port: u16,
    pub port_name: String,
}

impl LeaderEndpoint {
    /// The slice's name: one per Service, whoever leads.
    pub fn slice_name(&self) -> String {
        format!("{}-leader", self.service)
    }

    /// The EndpointSlice that sends the Service's traffic to this Pod alone.
    pub fn slice(&self) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                name: Some(self.slice_name()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([
                    (SERVICE_NAME_LABEL.to_string(), self.service.clone()),
                    (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
                ])),
                ..Default::default()
            },
            address_type: match self.pod_ip {
                IpAddr::V4(_) => "IPv4".into(),
                IpAddr::V6(_) => "IPv6".into(),
            },
            endpoints: Some(vec![Endpoint {
                addresses: vec![self.pod_ip.to_string()],
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    serving: Some(true),
                    terminating: Some(false),
                }),
                target_ref: self.pod_name.as_ref().map(|name| ObjectReference {
                    kind: Some("Pod".into()),
                    name: Some(name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ports: Some(vec![EndpointPort {
                name: Some(self.port_name.clone()),
                port: Some(i32::from(self.port)),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
        }
    }

    /// While leading: points the Service at this Pod, and again every little while.
    pub async fn keep(self, client: Client) {
        let slices: Api<EndpointSlice> = Api::namespaced(client, &self.namespace);
        let params = PatchParams::apply(MANAGED_BY).force();
        let mut pointed = false;
        let mut failing = false;
        loop {
            match slices
                .patch(&self.slice_name(), &params, &Patch::Apply(self.slice()))
                .await
            {
                Ok(_) => {
                    if !pointed || failing {
                        tracing::info!(
                            service = %self.service,
                            pod_ip = %self.pod_ip,
                            "the Service points at this replica"
                        );
                    }
                    pointed = true;
                    failing = false;
                }
                Err(error) => {
                    if !failing {
                        tracing::warn!(
                            %error,
                            service = %self.service,
                            "cannot point the Service at this replica; retrying"
                        );
                    }
                    failing = true;
                }
            }
            tokio::time::sleep(if failing {
                Duration::from_secs(2)
            } else {
                REASSERT
            })
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slice_names_the_service_and_only_this_pod() {
        let endpoint = LeaderEndpoint {
            service: "okta-rbac-authorizer".into(),
            namespace: "iam".into(),
            pod_ip: "10.244.0.7".parse().expect("ip"),
            pod_name: Some("okta-rbac-operator-abc".into()),
            port: 8443,
            port_name: "authorizer".into(),
        };
        let slice = endpoint.slice();
        assert_eq!(
            slice.metadata.name.as_deref(),
            Some("okta-rbac-authorizer-leader")
        );
        let labels = slice.metadata.labels.expect("labels");
        assert_eq!(labels[SERVICE_NAME_LABEL], "okta-rbac-authorizer");
        assert_eq!(labels[MANAGED_BY_LABEL], "okta-rbac-operator");
        assert_eq!(slice.address_type, "IPv4");
        let endpoints = slice.endpoints.expect("endpoints");
        assert_eq!(endpoints.len(), 1);
        assert_eq!(endpoints[0].addresses, ["10.244.0.7"]);
        let ports = slice.ports.expect("ports");
        assert_eq!(ports[0].port, Some(8443));
        assert_eq!(ports[0].name.as_deref(), Some("authorizer"));
        let v6 = LeaderEndpoint {
            pod_ip: "fd00::7".parse().expect("ip"),
            ..endpoint
        };
        assert_eq!(v6.slice().address_type, "IPv6");
    }
}
