//! An event hook endpoint for tests: HTTPS with a certificate of its own CA, every request
//! it gets handed to the test, answers scripted one by one (by default: the verification
//! challenge echoed for a GET, 200 for a POST).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use okta_rbac_pki::CertificateAuthority;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One request the endpoint got.
#[derive(Debug)]
pub struct Received {
    pub method: Method,
    pub headers: HeaderMap,
    pub body: Value,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `uuid`s of the System Log events a delivery carries.
    pub fn event_uuids(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e["uuid"].as_str().expect("uuid").to_string())
            .collect()
    }

    pub fn events(&self) -> Vec<Value> {
        self.body["data"]["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// How the endpoint answers one request.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    Status(u16),
    /// Never answers (the client times out).
    Hang,
    /// A 200 whose `verification` is not the challenge.
    WrongChallenge,
}

struct Shared {
    received: mpsc::UnboundedSender<Received>,
    script: Mutex<VecDeque<Reply>>,
}

pub struct Receiver {
    pub url: String,
    pub ca_pem: String,
    shared: Arc<Shared>,
    received: mpsc::UnboundedReceiver<Received>,
    handle: axum_server::Handle<SocketAddr>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = shared.script.lock().expect("script").pop_front();
    let challenge = headers
        .get("x-okta-verification-challenge")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let _ = shared.received.send(Received {
        method: method.clone(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        at: Instant::now(),
    });
    match reply {
        Some(Reply::Status(status)) => StatusCode::from_u16(status)
            .expect("status")
            .into_response(),
        Some(Reply::Hang) => {
            tokio::time::sleep(Duration::from_secs(600)).await;
            StatusCode::OK.into_response()
        }
        Some(Reply::WrongChallenge) => {
            axum::Json(json!({"verification": "not the challenge"})).into_response()
        }
        None if method == Method::GET => {
            axum::Json(json!({"verification": challenge})).into_response()
        }
        None => StatusCode::OK.into_response(),
    }
}

impl Receiver {
    pub async fn start() -> Self {
        let ca = CertificateAuthority::new("hook receiver CA").expect("CA");
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let serving = ca
            .serving_cert("hook receiver", &["localhost"], &[localhost])
            .expect("serving certificate");
        let config = tls_config(&serving.cert_pem, &serving.key_pem);
        let listener = std::net::TcpListener::bind((localhost, 0)).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let (sender, received) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            received: sender,
            script: Mutex::new(VecDeque::new()),
        });
        let app = axum::Router::new()
            .route("/okta/events", axum::routing::any(receive))
            .with_state(shared.clone());
        let handle = axum_server::Handle::new();
        let server = axum_server::tls_rustls::from_tcp_rustls(listener, config)
            .expect("server")
            .handle(handle.clone());
        tokio::spawn(async move { server.serve(app.into_make_service()).await });
        Self {
            url: format!("https://{addr}/okta/events"),
            ca_pem: ca.cert_pem().to_string(),
            shared,
            received,
            handle,
        }
    }

    /// Answers the next requests like this, in order.
    pub fn script(&self, replies: &[Reply]) {
        self.shared
            .script
            .lock()
            .expect("script")
            .extend(replies.iter().copied());
    }

    /// The next request, if one comes within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Received> {
        tokio::time::timeout(wait, self.received.recv())
            .await
            .ok()
            .flatten()
    }

    pub async fn next(&mut self) -> Received {
        self.next_within(Duration::from_secs(10))
            .await
            .expect("a request to the hook within 10 s")
    }

    /// Every request that comes within `wait`.
    pub async fn all_within(&mut self, wait: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut all = Vec::new();
        while let Ok(Some(received)) = tokio::time::timeout_at(deadline, self.received.recv()).await
        {
            all.push(received);
        }
        all
    }
}

fn tls_config(cert_pem: &str, key_pem: &str) -> axum_server::tls_rustls::RustlsConfig {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("certificate")];
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key");
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server config");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config))
}
