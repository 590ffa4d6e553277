//! The command lines of etcd, kube-apiserver and kube-controller-manager, and the
//! apiserver's structured authentication configuration for OIDC.

use super::OidcOptions;
use crate::node::network::{NodeNetwork, SERVICE_CIDR};
use std::path::Path;

pub(super) fn authentication_config(oidc: &OidcOptions) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "jwt": [{
            "issuer": {
                "url": oidc.issuer_url,
                "audiences": [oidc.client_id],
                "certificateAuthority": oidc.ca_pem,
            },
            "claimMappings": {
                "username": {"claim": oidc.username_claim, "prefix": oidc.username_prefix},
                "groups": {"claim": oidc.groups_claim, "prefix": oidc.groups_prefix},
            },
        }],
    })
}

fn path_arg(flag: &str, dir: &Path, file: &str) -> String {
    format!("--{flag}={}", dir.join(file).display())
}

pub(super) fn etcd_args(dir: &Path, client_port: u16, peer_port: u16) -> Vec<String> {
    let client = format!("http://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    vec![
        "--name=etcd".into(),
        path_arg("data-dir", dir, "etcd"),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=etcd={peer}"),
        // A test cluster's data is thrown away; fsync would only make every write slow.
        "--unsafe-no-fsync".into(),
        "--log-level=warn".into(),
    ]
}

/// Where the apiserver listens: loopback, or with a node the host's end of the node's
/// network, which it also advertises as the `kubernetes` Service's endpoint.
pub(super) fn apiserver_args(
    dir: &Path,
    port: u16,
    etcd_port: u16,
    oidc: bool,
    authorization_config: bool,
    node: Option<&NodeNetwork>,
) -> Vec<String> {
    let address = node.map_or("127.0.0.1".to_string(), |n| n.host_ip.to_string());
    let mut args = vec![
        format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
        format!("--bind-address={address}"),
        format!("--advertise-address={address}"),
        format!("--secure-port={port}"),
        path_arg("tls-cert-file", dir, "apiserver.crt"),
        path_arg("tls-private-key-file", dir, "apiserver.key"),
        path_arg("client-ca-file", dir, "ca.crt"),
        path_arg("cert-dir", dir, "apiserver-certs"),
        // With a node, the Node authorizer gives the kubelet what its own Pods need. A
        // structured authorization configuration names its authorizers itself.
        if authorization_config {
            path_arg("authorization-config", dir, "authorization-config.json")
        } else if node.is_some() {
            "--authorization-mode=Node,RBAC".into()
        } else {
            "--authorization-mode=RBAC".into()
        },
        // Service-account tokens (TokenRequest) need an issuer and a signing key.
        format!("--service-account-issuer=https://127.0.0.1:{port}"),
        path_arg("service-account-key-file", dir, "service-account.pub"),
        path_arg(
            "service-account-signing-key-file",
            dir,
            "service-account.key",
        ),
        format!("--service-cluster-ip-range={SERVICE_CIDR}"),
    ];
    if node.is_some() {
        // `kubectl logs` goes through the apiserver to the kubelet, found by its address
        // (the node's name resolves nowhere).
        args.extend([
            path_arg("kubelet-client-certificate", dir, "kubelet-client.crt"),
            path_arg("kubelet-client-key", dir, "kubelet-client.key"),
            "--kubelet-preferred-address-types=InternalIP".into(),
        ]);
    }
    if node.is_none() {
        // The `kubernetes` Service's endpoints would need a non-loopback address; without
        // a node no client uses that Service.
        args.push("--endpoint-reconciler-type=none".into());
    }
    if oidc {
        args.push(path_arg(
            "authentication-config",
            dir,
            "authentication-config.json",
        ));
    }
    args
}

/// The controllers: the garbage collector, namespace deletion and ClusterRole aggregation
/// (which fills `view`, `edit` and `admin` from the roles aggregated into them, as in
/// every real cluster) always; with a node also
/// what Deployments and Pods need (ReplicaSets, ServiceAccounts, the root CA ConfigMap of
/// projected tokens, PodDisruptionBudgets, EndpointSlices, finished Pods' cleanup, and the
/// node lifecycle, which lifts the new node's not-ready taint).
pub(super) fn controller_manager_args(dir: &Path, node: bool) -> Vec<String> {
    let mut controllers = vec![
        "garbage-collector-controller",
        "namespace-controller",
        "clusterrole-aggregation-controller",
    ];
    if node {
        controllers.extend([
            "deployment-controller",
            "replicaset-controller",
            "serviceaccount-controller",
            "root-ca-certificate-publisher-controller",
            "disruption-controller",
            "endpointslice-controller",
            "pod-garbage-collector-controller",
            "node-lifecycle-controller",
        ]);
    }
    vec![
        path_arg("kubeconfig", dir, "kubeconfig"),
        format!("--controllers={}", controllers.join(",")),
        "--leader-elect=false".into(),
        "--bind-address=127.0.0.1".into(),
        // Serve nothing: the tests only need its controllers.
        "--secure-port=0".into(),
    ]
}
