//! Kubeconfigs for the admin, a token or a certificate user: one JSON shape that kubectl
//! and kube-rs both read.

use base64::Engine as _;
use okta_rbac_pki::CertAndKey;

pub(super) enum Credentials<'a> {
    ClientCert(&'a CertAndKey),
    Token(&'a str),
}

fn base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A kubeconfig as JSON (which kubectl reads like YAML).
pub(super) fn kubeconfig(
    server: &str,
    ca_pem: &str,
    credentials: Credentials<'_>,
) -> serde_json::Value {
    let user = match credentials {
        Credentials::ClientCert(cert) => serde_json::json!({
            "client-certificate-data": base64(&cert.cert_pem),
            "client-key-data": base64(&cert.key_pem),
        }),
        Credentials::Token(token) => serde_json::json!({ "token": token }),
    };
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {
            "server": server,
            "certificate-authority-data": base64(ca_pem),
        }}],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "user"}}],
        "current-context": "local",
    })
}
