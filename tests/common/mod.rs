//! Helpers shared by integration tests.
#![allow(dead_code)]

use okta_rbac_operator::sim::OktaSim;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::sync::Arc;

/// An HTTP client that trusts only the simulator's CA, as a client configured with a CA
/// file would.
pub fn https_client(sim: &OktaSim) -> reqwest::Client {
    client_builder(sim).build().expect("HTTP client")
}

/// The same, speaking only HTTP/2, whose requests carry absolute URIs.
pub fn http2_client(sim: &OktaSim) -> reqwest::Client {
    client_builder(sim)
        .http2_prior_knowledge()
        .build()
        .expect("HTTP/2 client")
}

fn client_builder(sim: &OktaSim) -> reqwest::ClientBuilder {
    let mut roots = rustls::RootCertStore::empty();
    let pem = sim.ca_pem().expect("the simulator serves HTTPS");
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("CA PEM");
    roots.add(der).expect("add CA");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .redirect(reqwest::redirect::Policy::none())
}
