//! The revocation authorizer under load: the demo world with the authorizer, then
//! SubjectAccessReviews posted straight at it as the apiserver posts them (HTTPS, the
//! apiserver's client certificate) at a fixed rate (AUTHORIZER_RATE, 2,000 a second by
//! default) for AUTHORIZER_SECONDS (10). Each carries a bound group of a current member,
//! the path every Okta user's request takes. Reports the rate reached, the latency the
//! client saw, and the operator's own answer time (its histogram's p99 bucket).

use crate::workload::env_number;
use okta_rbac_demo::Demo;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct AuthorizerResult {
    pub rate: u32,
    pub answered_per_second: f64,
    pub errors: usize,
    pub client_p50: Duration,
    pub client_p99: Duration,
    pub server_p99_at_most: Option<f64>,
    pub denied_probe: bool,
}

fn review(user: &str, group: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": [group, "system:authenticated"],
            "resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"},
        },
    })
}

/// A client that presents the apiserver's certificate and trusts the authorizer's CA.
fn client(demo: &Demo) -> Result<reqwest::Client, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let setup = demo.authorizer.as_ref().ok_or("no authorizer")?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in
        CertificateDer::pem_file_iter(setup.file("serving-ca.crt")).map_err(|e| e.to_string())?
    {
        roots
            .add(ca.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let chain = CertificateDer::pem_file_iter(setup.file("apiserver.crt"))
        .and_then(|c| c.collect::<Result<Vec<_>, _>>())
        .map_err(|e| e.to_string())?;
    let key =
        PrivateKeyDer::from_pem_file(setup.file("apiserver.key")).map_err(|e| e.to_string())?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .pool_max_idle_per_host(256)
        .build()
        .map_err(|e| e.to_string())
}

/// The upper bound of the histogram bucket that holds the 99th percentile, in seconds.
fn p99_bucket(metrics: &str) -> Option<f64> {
    let buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter(|l| l.starts_with("okta_rbac_authorizer_duration_seconds_bucket"))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let count = l.rsplit(' ').next()?.parse().ok()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count))
        })
        .collect();
    let total = buckets.last()?.1;
    buckets
        .iter()
        .find(|(_, count)| *count >= total * 0.99)
        .map(|(le, _)| *le)
}

pub async fn run(operator_bin: &Path) -> Option<AuthorizerResult> {
    let rate = env_number("AUTHORIZER_RATE", 2000);
    let seconds = env_number("AUTHORIZER_SECONDS", 10);
    if rate == 0 || seconds == 0 {
        return None;
    }
    let demo = Demo::start_with_authorizer("oidc:", operator_bin, "no-opinion", &[])
        .await
        .expect("the demo world with the authorizer");
    let http = client(&demo).expect("a client of the authorizer");
    let url = format!(
        "https://127.0.0.1:{}/authorize",
        demo.authorizer.as_ref().map_or(0, |a| a.port)
    );
    // Ready once carol (no member) carrying the group is denied: the members are listed.
    let deadline = Instant::now() + Duration::from_secs(60);
    let denied_probe = loop {
        let answer: serde_json::Value = http
            .post(&url)
            .json(&review(
                "oidc:carol@example.com",
                "oidc:k8s-restricted-users",
            ))
            .send()
            .await
            .expect("the authorizer answers")
            .json()
            .await
            .expect("json");
        if answer["status"]["denied"] == true {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let body = review("oidc:bob@example.com", "oidc:k8s-restricted-users").to_string();
    let total = (rate * seconds) as usize;
    let tick = Duration::from_millis(10);
    let per_tick = (rate as usize / 100).max(1);
    let mut ticker = tokio::time::interval(tick);
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    let mut sent = 0;
    while sent < total {
        ticker.tick().await;
        for _ in 0..per_tick.min(total - sent) {
            let (http, url, body) = (http.clone(), url.clone(), body.clone());
            tasks.spawn(async move {
                let at = Instant::now();
                let ok = http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                (at.elapsed(), ok)
            });
            sent += 1;
        }
    }
    let mut latencies = Vec::with_capacity(total);
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((latency, true)) => latencies.push(latency),
            _ => errors += 1,
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let metrics = reqwest::get(format!("{}/metrics", demo.operator_metrics_url()))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let result = AuthorizerResult {
        rate,
        answered_per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        errors,
        client_p50: at(0.50),
        client_p99: at(0.99),
        server_p99_at_most: p99_bucket(&metrics),
        denied_probe,
    };
    let _ = demo.stop();
    Some(result)
}

pub fn table(result: &AuthorizerResult) -> String {
    format!(
        "| offered | answered | errors | client p50 | client p99 | operator p99 (bucket) |\n\
         |---|---|---|---|---|---|\n\
         | {} /s | {:.0} /s | {} | {:.2} ms | {:.2} ms | ≤ {} |\n",
        result.rate,
        result.answered_per_second,
        result.errors,
        result.client_p50.as_secs_f64() * 1000.0,
        result.client_p99.as_secs_f64() * 1000.0,
        result
            .server_p99_at_most
            .map_or("?".to_string(), |s| format!("{:.3} ms", s * 1000.0)),
    )
}

/// Writes the authorizer's page; a run whose probe was never denied (its members were not
/// listed) measured nothing and fails.
pub fn write(path: &std::path::Path, cpus: usize, result: &AuthorizerResult, table: &str) {
    assert!(
        result.denied_probe,
        "the authorizer never denied the non-member's probe: its members were not listed"
    );
    std::fs::write(
        path,
        format!(
            "# Revocation authorizer\n\nOn one machine with {cpus} CPUs, the demo world \
             (kube-apiserver, the local Okta, the operator as its release binary), \
             SubjectAccessReviews posted straight at the authorizer over HTTPS with the \
             apiserver's client certificate, each carrying a bound group of a current \
             member, at a fixed rate for AUTHORIZER_SECONDS; the client runs on the same \
             CPUs. Reproduce with `SIZES= LARGE_CASES= make bench`.\n\n{table}"
        ),
    )
    .expect("authorizer.md");
}
