//! The revocation authorizer's configuration: the operator's flags that serve it, and the
//! apiserver's side, the `AuthorizationConfiguration` (apiserver.config.k8s.io/v1) that
//! places it before RBAC, printed by `okta-rbac-operator authorization-config` for the
//! apiserver's `--authorization-config`.

use super::server::TlsFiles;
use crate::leader_endpoint::{LeaderEndpoint, PodIdentity};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The revocation authorizer: a Webhook authorizer the apiserver calls before RBAC.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Revocation authorizer")]
pub struct AuthorizerArgs {
    /// Serve the revocation authorizer (HTTPS, POST /authorize) on this address; off
    /// without it. Needs the three files below.
    #[arg(long, env = "AUTHORIZER_ADDRESS", requires_all = ["authorizer_tls_cert_file", "authorizer_tls_key_file", "authorizer_client_ca_file"])]
    pub authorizer_address: Option<SocketAddr>,
    /// Its serving certificate (PEM, with the chain), read again when it changes.
    #[arg(long, env = "AUTHORIZER_TLS_CERT_FILE")]
    pub authorizer_tls_cert_file: Option<PathBuf>,
    #[arg(long, env = "AUTHORIZER_TLS_KEY_FILE")]
    pub authorizer_tls_key_file: Option<PathBuf>,
    /// The CA of the client certificate the apiserver presents: no other client is served.
    #[arg(long, env = "AUTHORIZER_CLIENT_CA_FILE")]
    pub authorizer_client_ca_file: Option<PathBuf>,
    /// The authorizer's Service, without a selector, in the operator's namespace: the
    /// leader points its EndpointSlice (`<name>-leader`) at its own Pod, so that the
    /// apiserver reaches only the replica that holds Okta's member lists (a standby would
    /// have no opinion on anything). Needs `--pod-ip`.
    #[arg(long, env = "AUTHORIZER_SERVICE", requires = "pod_ip")]
    pub authorizer_service: Option<String>,
}

/// Where and with which certificates the authorizer serves.
#[derive(Debug)]
pub struct AuthorizerConfig {
    pub address: SocketAddr,
    pub files: TlsFiles,
    /// The Service the leader points at itself, when there is one.
    pub leader_endpoint: Option<LeaderEndpoint>,
}

impl AuthorizerArgs {
    /// `None` unless an address is given (clap requires the files with it). The Service
    /// is in `namespace`; `pod_name` names this Pod.
    pub fn into_config(self, namespace: &str, pod: PodIdentity) -> Option<AuthorizerConfig> {
        match self {
            AuthorizerArgs {
                authorizer_address: Some(address),
                authorizer_tls_cert_file: Some(cert),
                authorizer_tls_key_file: Some(key),
                authorizer_client_ca_file: Some(client_ca),
                authorizer_service,
            } => Some(AuthorizerConfig {
                address,
                files: TlsFiles {
                    cert,
                    key,
                    client_ca: Some(client_ca),
                },
                leader_endpoint: authorizer_service.zip(pod.ip).map(|(service, pod_ip)| {
                    LeaderEndpoint {
                        service,
                        namespace: namespace.to_string(),
                        pod_ip,
                        pod_name: pod.name,
                        port: address.port(),
                        port_name: "authorizer".into(),
                    }
                }),
            }),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailurePolicy {
    /// The authorizer down or too slow: RBAC alone decides (tokens issued before a
    /// change in Okta keep their groups until they expire).
    NoOpinion,
    /// The authorizer down or too slow: requests that reach it are refused (fail closed
    /// for Okta users; service accounts, nodes and other users never reach it).
    Deny,
}

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// The kubeconfig the apiserver reaches the authorizer with (its URL, the CA of its
    /// serving certificate, and the apiserver's client certificate).
    #[arg(long)]
    pub kubeconfig_file: String,
    /// The apiserver's `--oidc-groups-prefix` (the operator's `--groups-prefix`): only
    /// requests carrying a group with it reach the authorizer.
    #[arg(long, default_value = "")]
    pub groups_prefix: String,
    /// The apiserver's `--oidc-username-prefix` (the operator's `--username-prefix`).
    #[arg(long, default_value = "")]
    pub username_prefix: String,
    #[arg(long, value_enum, default_value = "no-opinion")]
    pub failure_policy: FailurePolicy,
    /// Put the Node authorizer first, as a cluster with kubelets needs.
    #[arg(long)]
    pub node: bool,
}

/// CEL that lets through only requests of an Okta user carrying a group of the prefix:
/// never `system:` users (service accounts, nodes, the operator itself) or groups.
fn match_conditions(args: &ConfigArgs) -> Vec<Value> {
    let quoted = |text: &str| serde_json::to_string(text).unwrap_or_default();
    let mut conditions = vec![json!({
        "expression": "!request.user.startsWith('system:')"
    })];
    if !args.username_prefix.is_empty() {
        conditions.push(json!({
            "expression": format!("request.user.startsWith({})", quoted(&args.username_prefix))
        }));
    }
    let group_test = if args.groups_prefix.is_empty() {
        "!g.startsWith('system:')".to_string()
    } else {
        format!("g.startsWith({})", quoted(&args.groups_prefix))
    };
    conditions.push(json!({
        "expression": format!("has(request.groups) && request.groups.exists(g, {group_test})")
    }));
    conditions
}

/// The AuthorizationConfiguration: (Node,) the revocation authorizer, RBAC.
pub fn authorization_configuration(args: &ConfigArgs) -> Value {
    let mut authorizers = Vec::new();
    if args.node {
        authorizers.push(json!({"type": "Node", "name": "node"}));
    }
    authorizers.push(json!({
        "type": "Webhook",
        "name": "okta-rbac-revocation",
        "webhook": {
            // It never allows, and its answers must change the moment Okta's do: the
            // apiserver caches neither, so no cache adds to a revocation.
            "authorizedTTL": "1s",
            "cacheAuthorizedRequests": false,
            "unauthorizedTTL": "1s",
            "cacheUnauthorizedRequests": false,
            "timeout": "2s",
            "subjectAccessReviewVersion": "v1",
            "matchConditionSubjectAccessReviewVersion": "v1",
            "failurePolicy": match args.failure_policy {
                FailurePolicy::NoOpinion => "NoOpinion",
                FailurePolicy::Deny => "Deny",
            },
            "connectionInfo": {"type": "KubeConfigFile", "kubeConfigFile": args.kubeconfig_file},
            "matchConditions": match_conditions(args),
        },
    }));
    authorizers.push(json!({"type": "RBAC", "name": "rbac"}));
    json!({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthorizationConfiguration",
        "authorizers": authorizers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_sits_between_node_and_rbac_and_sees_only_okta_users() {
        let config = authorization_configuration(&ConfigArgs {
            kubeconfig_file: "/etc/kubernetes/okta-rbac.kubeconfig".into(),
            groups_prefix: "oidc:".into(),
            username_prefix: "oidc:".into(),
            failure_policy: FailurePolicy::NoOpinion,
            node: true,
        });
        let types: Vec<&str> = config["authorizers"]
            .as_array()
            .expect("authorizers")
            .iter()
            .filter_map(|a| a["type"].as_str())
            .collect();
        assert_eq!(types, ["Node", "Webhook", "RBAC"]);
        let webhook = &config["authorizers"][1]["webhook"];
        assert_eq!(webhook["failurePolicy"], "NoOpinion");
        assert_eq!(webhook["cacheUnauthorizedRequests"], false);
        let conditions = webhook["matchConditions"].to_string();
        assert!(
            conditions.contains(r#"g.startsWith(\"oidc:\")"#),
            "{conditions}"
        );
        assert!(conditions.contains("request.user.startsWith('system:')"));
    }
}
