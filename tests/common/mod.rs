//! Helpers shared by integration tests.
#![allow(dead_code)]

use okta_rbac_operator::pki::client_config_trusting;
use okta_rbac_operator::sim::OktaSim;

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
    let pem = sim.ca_pem().expect("the simulator serves HTTPS");
    let config = client_config_trusting(&[pem]).expect("TLS config");
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .redirect(reqwest::redirect::Policy::none())
}
