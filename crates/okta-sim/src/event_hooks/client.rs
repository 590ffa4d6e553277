//! The HTTPS client Okta calls event hooks with: it trusts the simulator's own CA and
//! the roots added at runtime (a test's receiver has a certificate of its own), no
//! system roots, no proxy, no redirects, no connection kept between deliveries.

use crate::limits::lock;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::sync::Mutex;

struct Trust {
    roots: Vec<String>,
    client: reqwest::Client,
}

pub struct HookClient {
    trust: Mutex<Trust>,
}

fn build(roots: &[String]) -> Result<reqwest::Client, String> {
    let pems: Vec<&str> = roots.iter().map(String::as_str).collect();
    let config = okta_rbac_pki::client_config_trusting(&pems)?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        // A connection per delivery: one kept to a receiver that has gone (its Pod
        // deleted behind a Service) would fail every later delivery until it timed out.
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| format!("building the event hook client: {e}"))
}

impl HookClient {
    pub fn new(ca_pem: Option<&str>) -> Result<Self, String> {
        let roots: Vec<String> = ca_pem.map(str::to_string).into_iter().collect();
        let client = build(&roots)?;
        Ok(Self {
            trust: Mutex::new(Trust { roots, client }),
        })
    }

    /// Trusts the certificates of `pem` too, from the next request on.
    pub fn trust(&self, pem: &str) -> Result<(), String> {
        let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("reading the PEM: {e}"))?;
        if certificates.is_empty() {
            return Err("the PEM holds no certificate".into());
        }
        let mut trust = lock(&self.trust);
        let mut roots = trust.roots.clone();
        roots.push(pem.to_string());
        trust.client = build(&roots)?;
        trust.roots = roots;
        Ok(())
    }

    /// The client as it is now (a cheap handle on a shared pool).
    pub fn client(&self) -> reqwest::Client {
        lock(&self.trust).client.clone()
    }
}

/// What became of one HTTP request to a hook: its status, or why there was none.
pub fn describe(error: &reqwest::Error, timeout_ms: u64) -> String {
    if error.is_timeout() {
        return format!("no answer within {timeout_ms} ms");
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
