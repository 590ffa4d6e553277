//! Okta's event hook wired into a demo world the way an admin wires it: a serving
//! certificate and a header secret for the operator's receiver, and the hook registered,
//! verified and activated through the Management API of the local Okta, which trusts the
//! receiver's CA (a real org needs a certificate of a public CA).

use okta_rbac_operator::hooks::EVENT_TYPES;
use okta_rbac_pki::CertificateAuthority;
use okta_rbac_testenv::unique_name;
use okta_sim::{HookRegistration, OktaSim};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// The header value Okta sends, as the hook's `authScheme.value`.
const SECRET: &str = "Bearer demo-event-hook-secret";

/// The files of one receiver, removed with it.
pub struct EventHookSetup {
    dir: PathBuf,
    /// Where the operator receives deliveries.
    pub port: u16,
    ca_pem: String,
}

impl Drop for EventHookSetup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl EventHookSetup {
    /// A certificate and a secret for a receiver on a free loopback port.
    pub fn prepare() -> Result<Self, String> {
        let dir = std::env::temp_dir().join(unique_name("okta-rbac-event-hook"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let port = okta_rbac_testenv::free_port().map_err(|e| e.to_string())?;
        let ca = CertificateAuthority::new("okta-rbac event hook CA").map_err(|e| e.to_string())?;
        let serving = ca
            .serving_cert(
                "okta-rbac-event-hook",
                &["localhost"],
                &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
            )
            .map_err(|e| e.to_string())?;
        for (name, content) in [
            ("tls.crt", serving.cert_pem.as_str()),
            ("tls.key", serving.key_pem.as_str()),
            ("secret", SECRET),
        ] {
            std::fs::write(dir.join(name), content).map_err(|e| e.to_string())?;
        }
        Ok(Self {
            dir,
            port,
            ca_pem: ca.cert_pem().to_string(),
        })
    }

    /// The URL Okta delivers to.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/okta/event-hook", self.port)
    }

    /// The operator's flags that serve the receiver.
    pub fn operator_flags(&self) -> Vec<String> {
        let path = |name: &str| self.dir.join(name).display().to_string();
        vec![
            "--event-hook-address".into(),
            format!("127.0.0.1:{}", self.port),
            "--event-hook-tls-cert-file".into(),
            path("tls.crt"),
            "--event-hook-tls-key-file".into(),
            path("tls.key"),
            "--event-hook-secret-file".into(),
            path("secret"),
        ]
    }

    /// Registers the hook with the local Okta (once the receiver listens): created for
    /// the event types the operator follows, verified (Okta's challenge, answered by the
    /// receiver) and active. Returns its id.
    pub async fn register(&self, sim: &OktaSim) -> Result<String, String> {
        sim.trust_hook_roots(&self.ca_pem)
            .map_err(|e| e.to_string())?;
        let hook = sim
            .register_event_hook(HookRegistration {
                name: "okta-rbac-operator",
                uri: &self.url(),
                header: "Authorization",
                secret: SECRET,
                event_types: &EVENT_TYPES,
            })
            .await?;
        hook["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| "the event hook has no id".into())
    }
}
