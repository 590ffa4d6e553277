//! The simulator's HTTPS: a throwaway CA and a serving certificate for loopback, so that a
//! client (or the kube-apiserver, which accepts only an https issuer) can trust it.

use crate::SimError;
use okta_rbac_pki::CertificateAuthority;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

pub(crate) fn tls_config(
    addr: SocketAddr,
) -> Result<(CertificateAuthority, axum_server::tls_rustls::RustlsConfig), SimError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let tls = |e: &dyn std::fmt::Display| SimError::Tls(e.to_string());
    let ca = CertificateAuthority::new("okta-rbac-operator local Okta CA").map_err(|e| tls(&e))?;
    let mut ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    if !addr.ip().is_unspecified() && !ips.contains(&addr.ip()) {
        ips.push(addr.ip());
    }
    let serving = ca
        .serving_cert("okta-sim", &["localhost"], &ips)
        .map_err(|e| tls(&e))?;
    let chain =
        vec![CertificateDer::from_pem_slice(serving.cert_pem.as_bytes()).map_err(|e| tls(&e))?];
    let key = PrivateKeyDer::from_pem_slice(serving.key_pem.as_bytes()).map_err(|e| tls(&e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls(&e))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| tls(&e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((
        ca,
        axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config)),
    ))
}
