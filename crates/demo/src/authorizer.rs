//! The revocation authorizer wired into a demo control plane the way a cluster admin wires
//! it: a serving certificate for the authorizer, a client certificate for the apiserver,
//! the webhook's kubeconfig, and the apiserver's AuthorizationConfiguration as
//! `okta-rbac-operator authorization-config` prints it.

use okta_rbac_pki::CertificateAuthority;
use okta_rbac_testenv::unique_name;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// The files of one setup, removed with it.
pub struct AuthorizerSetup {
    dir: PathBuf,
    /// Where the operator serves the authorizer.
    pub port: u16,
    /// The apiserver's `--authorization-config`.
    pub authorization_config: serde_json::Value,
}

impl Drop for AuthorizerSetup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl AuthorizerSetup {
    /// Certificates and configuration for an authorizer on a free loopback port, with
    /// this failure policy (`no-opinion` or `deny`) and prefix (groups and user names).
    pub fn prepare(
        operator_binary: &Path,
        prefix: &str,
        failure_policy: &str,
    ) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(unique_name("okta-rbac-authorizer"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let port = okta_rbac_testenv::free_port().map_err(|e| e.to_string())?;
        let serving_ca = CertificateAuthority::new("okta-rbac authorizer serving CA")
            .map_err(|e| e.to_string())?;
        let serving = serving_ca
            .serving_cert(
                "okta-rbac-authorizer",
                &["localhost"],
                &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
            )
            .map_err(|e| e.to_string())?;
        let client_ca = CertificateAuthority::new("okta-rbac authorizer client CA")
            .map_err(|e| e.to_string())?;
        let apiserver = client_ca
            .client_cert("kube-apiserver", &[])
            .map_err(|e| e.to_string())?;
        let files = [
            ("serving-ca.crt", serving_ca.cert_pem()),
            ("tls.crt", serving.cert_pem.as_str()),
            ("tls.key", serving.key_pem.as_str()),
            ("client-ca.crt", client_ca.cert_pem()),
            ("apiserver.crt", apiserver.cert_pem.as_str()),
            ("apiserver.key", apiserver.key_pem.as_str()),
        ];
        for (name, content) in files {
            std::fs::write(dir.join(name), content).map_err(|e| e.to_string())?;
        }
        let path = |name: &str| dir.join(name).display().to_string();
        let kubeconfig = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "okta-rbac-authorizer", "cluster": {
                "server": format!("https://127.0.0.1:{port}/authorize"),
                "certificate-authority": path("serving-ca.crt"),
            }}],
            "users": [{"name": "kube-apiserver", "user": {
                "client-certificate": path("apiserver.crt"),
                "client-key": path("apiserver.key"),
            }}],
            "contexts": [{"name": "authorizer", "context": {
                "cluster": "okta-rbac-authorizer", "user": "kube-apiserver",
            }}],
            "current-context": "authorizer",
        });
        std::fs::write(dir.join("authorizer.kubeconfig"), kubeconfig.to_string())
            .map_err(|e| e.to_string())?;
        let printed = std::process::Command::new(operator_binary)
            .args(["authorization-config", "--kubeconfig-file"])
            .arg(dir.join("authorizer.kubeconfig"))
            .args(["--groups-prefix", prefix, "--username-prefix", prefix])
            .args(["--failure-policy", failure_policy])
            .output()
            .map_err(|e| format!("okta-rbac-operator authorization-config: {e}"))?;
        if !printed.status.success() {
            return Err(format!(
                "okta-rbac-operator authorization-config: {}",
                String::from_utf8_lossy(&printed.stderr)
            ));
        }
        let authorization_config =
            serde_json::from_slice(&printed.stdout).map_err(|e| e.to_string())?;
        Ok(Self {
            dir,
            port,
            authorization_config,
        })
    }

    /// One of its files: `serving-ca.crt`, `apiserver.crt`, `apiserver.key`, ...
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The operator's flags that serve the authorizer with these certificates.
    pub fn operator_flags(&self) -> Vec<String> {
        let path = |name: &str| self.dir.join(name).display().to_string();
        vec![
            "--authorizer-address".into(),
            format!("127.0.0.1:{}", self.port),
            "--authorizer-tls-cert-file".into(),
            path("tls.crt"),
            "--authorizer-tls-key-file".into(),
            path("tls.key"),
            "--authorizer-client-ca-file".into(),
            path("client-ca.crt"),
        ]
    }
}
