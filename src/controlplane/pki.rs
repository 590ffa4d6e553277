//! Certificates and keys for a throwaway control plane: one CA that signs the apiserver's
//! serving certificate and every client certificate, plus the service-account signing key.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::net::{IpAddr, Ipv4Addr};

/// A PEM certificate and its PEM private key.
#[derive(Clone)]
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAndKey").finish_non_exhaustive()
    }
}

/// Everything the control plane's TLS and token signing needs.
#[derive(Clone, Debug)]
pub struct Pki {
    pub ca: CertAndKey,
    /// Kept to sign more client certificates with the same issuer name.
    ca_params: CertificateParams,
    pub apiserver: CertAndKey,
    pub admin: CertAndKey,
    /// PKCS#8 key that signs service-account tokens, and its public half that verifies them.
    pub service_account_key_pem: String,
    pub service_account_public_key_pem: String,
}

impl Pki {
    pub fn generate() -> Result<Self, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = name("okta-rbac-operator test CA", None);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca = CertAndKey {
            cert_pem: ca_cert.pem(),
            key_pem: ca_key.serialize_pem(),
        };

        let service_account_key = KeyPair::generate()?;
        let issuer = Issuer::new(ca_params.clone(), ca_key);
        let pki = Self {
            apiserver: sign_serving(
                &issuer,
                &["localhost", "kubernetes", "kubernetes.default.svc"],
            )?,
            admin: sign_client(&issuer, "okta-rbac-admin", &["system:masters"])?,
            service_account_key_pem: service_account_key.serialize_pem(),
            service_account_public_key_pem: service_account_key.public_key_pem(),
            ca,
            ca_params,
        };
        Ok(pki)
    }

    /// A client certificate for `user` in `groups`, trusted by the apiserver: how tests
    /// act as a person with exactly the rights RBAC gives that name.
    pub fn client_cert(&self, user: &str, groups: &[&str]) -> Result<CertAndKey, rcgen::Error> {
        let issuer = Issuer::new(self.ca_params.clone(), KeyPair::from_pem(&self.ca.key_pem)?);
        sign_client(&issuer, user, groups)
    }
}

fn name(common_name: &str, organizations: Option<&[&str]>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    for org in organizations.unwrap_or_default() {
        dn.push(DnType::OrganizationName, *org);
    }
    dn
}

fn sign_serving(
    issuer: &Issuer<'_, KeyPair>,
    dns_names: &[&str],
) -> Result<CertAndKey, rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params =
        CertificateParams::new(dns_names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params.distinguished_name = name("kube-apiserver", None);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, issuer)?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn sign_client(
    issuer: &Issuer<'_, KeyPair>,
    user: &str,
    groups: &[&str],
) -> Result<CertAndKey, rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = name(user, Some(groups));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, issuer)?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}
