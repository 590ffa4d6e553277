//! The control plane's certificates and keys: one CA signs the apiserver's serving
//! certificate and every client certificate; a separate key signs service-account tokens.

use okta_rbac_pki::{CertAndKey, CertificateAuthority};
use rcgen::KeyPair;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Clone, Debug)]
pub struct Pki {
    pub ca: CertificateAuthority,
    pub apiserver: CertAndKey,
    pub admin: CertAndKey,
    /// PKCS#8 key that signs service-account tokens, and its public half that verifies them.
    pub service_account_key_pem: String,
    pub service_account_public_key_pem: String,
}

impl Pki {
    /// The apiserver's certificate also names `extra_ips` (the node's view of it: the
    /// host's address and the `kubernetes` Service's cluster IP).
    pub fn generate(extra_ips: &[Ipv4Addr]) -> Result<Self, rcgen::Error> {
        let ca = CertificateAuthority::new("okta-rbac-operator test CA")?;
        let service_account_key = KeyPair::generate()?;
        let ips: Vec<IpAddr> = std::iter::once(Ipv4Addr::LOCALHOST)
            .chain(extra_ips.iter().copied())
            .map(IpAddr::V4)
            .collect();
        Ok(Self {
            apiserver: ca.serving_cert(
                "kube-apiserver",
                &[
                    "localhost",
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local",
                ],
                &ips,
            )?,
            admin: ca.client_cert("okta-rbac-admin", &["system:masters"])?,
            service_account_key_pem: service_account_key.serialize_pem(),
            service_account_public_key_pem: service_account_key.public_key_pem(),
            ca,
        })
    }

    /// A client certificate for `user` in `groups`, trusted by the apiserver: how tests
    /// act as a person with exactly the rights RBAC gives that name.
    pub fn client_cert(&self, user: &str, groups: &[&str]) -> Result<CertAndKey, rcgen::Error> {
        self.ca.client_cert(user, groups)
    }
}
