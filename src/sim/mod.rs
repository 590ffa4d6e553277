//! A local Okta: the Management API's group endpoints, OAuth service-app tokens, and OIDC
//! authorization servers, behaving like Okta closely enough that Okta's own SDKs work
//! against it. Tests, the benchmark and the demo start one with [`OktaSim::start`]; the
//! `sim` subcommand runs one on its own. `/_sim/...` is its admin API: change the
//! directory, inject faults, read the request log.

mod admin;
mod api;
mod auth;
pub mod directory;
mod errors;
mod faults;
pub mod limits;
mod oidc;
mod paging;
pub mod query;
pub mod seed;

pub use faults::FaultSettings;
pub use seed::{GroupType, RateLimitSettings, Seed, UserStatus};

use crate::pki::CertificateAuthority;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use directory::{Directory, DirectoryError};
use errors::{OktaError, random_id};
use limits::{Bucket, RateLimiter, Standing, lock};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("the seed is not valid: {0}")]
    Seed(String),
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("generating a signing key: {0}")]
    Key(String),
}

#[derive(Clone, Debug)]
pub struct SimOptions {
    pub seed: Seed,
    /// Port 0 picks a free one.
    pub listen: SocketAddr,
    /// HTTPS with the simulator's own CA (the default); plain HTTP only when asked for.
    pub tls: bool,
}

impl SimOptions {
    pub fn new(seed: Seed) -> Self {
        Self {
            seed,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            tls: true,
        }
    }
}

/// One line of the request log.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    /// The rate-limit bucket it counted against.
    pub bucket: Option<&'static str>,
    /// When it arrived and when it was answered (or the client gave up: status 499), in
    /// milliseconds since the epoch.
    pub started_ms: u64,
    pub finished_ms: u64,
    /// `X-Rate-Limit-Reset` of the answer, if it had one.
    pub rate_limit_reset: Option<u64>,
}

pub(crate) struct SimState {
    pub base_url: String,
    pub directory: Mutex<Directory>,
    pub limits: RateLimiter,
    pub faults: faults::Faults,
    pub log: Mutex<Vec<RequestRecord>>,
    pub credentials: auth::Credentials,
    pub servers: oidc::AuthorizationServers,
}

/// A running simulator. Dropping it stops it.
pub struct OktaSim {
    state: Arc<SimState>,
    addr: SocketAddr,
    ca: Option<CertificateAuthority>,
    handle: axum_server::Handle<SocketAddr>,
}

pub(crate) fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl OktaSim {
    pub async fn start(options: SimOptions) -> Result<Self, SimError> {
        let listener =
            std::net::TcpListener::bind(options.listen).map_err(|source| SimError::Listen {
                addr: options.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Listen {
            addr: options.listen,
            source,
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| SimError::Listen { addr, source })?;
        let scheme = if options.tls { "https" } else { "http" };
        let base_url = format!("{scheme}://{addr}");

        let directory =
            Directory::from_seed(&options.seed).map_err(|e| SimError::Seed(e.to_string()))?;
        let state = Arc::new(SimState {
            credentials: auth::Credentials::from_seed(&options.seed).map_err(SimError::Seed)?,
            servers: oidc::AuthorizationServers::from_seed(&options.seed, &base_url)?,
            directory: Mutex::new(directory),
            limits: RateLimiter::new(options.seed.rate_limits.clone()),
            faults: faults::Faults::default(),
            log: Mutex::new(Vec::new()),
            base_url,
        });
        let app = router(state.clone());
        let handle = axum_server::Handle::new();
        let (ca, serve) = if options.tls {
            let (ca, config) = tls_config(addr)?;
            let server = axum_server::tls_rustls::from_tcp_rustls(listener, config)
                .map_err(|source| SimError::Listen { addr, source })?
                .handle(handle.clone());
            let serve = tokio::spawn(async move { server.serve(app.into_make_service()).await });
            (Some(ca), serve)
        } else {
            let server = axum_server::from_tcp(listener)
                .map_err(|source| SimError::Listen { addr, source })?
                .handle(handle.clone());
            (
                None,
                tokio::spawn(async move { server.serve(app.into_make_service()).await }),
            )
        };
        drop(serve);
        Ok(Self {
            state,
            addr,
            ca,
            handle,
        })
    }

    /// `https://127.0.0.1:PORT`: the org URL a client is configured with.
    pub fn base_url(&self) -> &str {
        &self.state.base_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PEM of the CA that signed the serving certificate (None for plain HTTP).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca.as_ref().map(|ca| ca.cert_pem())
    }

    /// Writes the CA, for `--oidc-ca-file` or an Okta client's CA file option.
    pub fn write_ca(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.ca_pem().unwrap_or_default())
    }

    /// The issuer URL of an authorization server (`/oauth2/{id}`).
    pub fn issuer(&self, server_id: &str) -> String {
        format!("{}/oauth2/{server_id}", self.base_url())
    }

    /// Every request so far (admin calls excluded), oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.state.log).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.state.log).clear();
    }

    pub fn set_faults(&self, settings: FaultSettings) {
        self.state.faults.set(settings);
    }

    pub fn clear_faults(&self) {
        self.state.faults.set(FaultSettings::default());
    }

    pub fn set_rate_limits(&self, settings: RateLimitSettings) {
        self.state.limits.set_settings(settings);
    }

    /// Uses up a bucket's current minute, as a burst from another client would.
    pub fn exhaust_bucket(&self, bucket: Bucket) {
        self.state.limits.exhaust(bucket, epoch_millis() / 1000);
    }

    /// Revokes an API token: requests with it get E0000011 from now on.
    pub fn revoke_api_token(&self, token: &str) {
        self.state.credentials.set_api_token(token, None);
    }

    /// Issues (or restores) an API token with these scopes (`None`: everything).
    pub fn issue_api_token(&self, token: &str, scopes: Option<Vec<String>>) {
        self.state.credentials.set_api_token(token, Some(scopes));
    }

    pub fn create_group(
        &self,
        name: &str,
        group_type: GroupType,
    ) -> Result<String, DirectoryError> {
        lock(&self.state.directory).create_group(name, None, group_type)
    }

    pub fn rename_group(&self, id: &str, name: &str) -> Result<(), DirectoryError> {
        lock(&self.state.directory).update_group(id, Some(name.into()), None)
    }

    pub fn delete_group(&self, id: &str) -> Result<(), DirectoryError> {
        lock(&self.state.directory).delete_group(id)
    }

    /// The id of the group with exactly this name and type, if there is one.
    pub fn group_id(&self, name: &str, group_type: GroupType) -> Option<String> {
        lock(&self.state.directory)
            .groups
            .values()
            .find(|g| g.name == name && g.group_type == group_type)
            .map(|g| g.id.clone())
    }

    pub fn create_user(
        &self,
        login: &str,
        status: UserStatus,
        password: Option<&str>,
    ) -> Result<String, DirectoryError> {
        lock(&self.state.directory).create_user(
            login,
            None,
            None,
            None,
            status,
            password.map(str::to_string),
        )
    }

    pub fn add_member(&self, group_id: &str, user: &str) -> Result<(), DirectoryError> {
        lock(&self.state.directory).add_member(group_id, user)
    }

    pub fn remove_member(&self, group_id: &str, user: &str) -> Result<(), DirectoryError> {
        lock(&self.state.directory).remove_member(group_id, user)
    }

    pub fn set_user_status(&self, user: &str, status: UserStatus) -> Result<(), DirectoryError> {
        lock(&self.state.directory).set_user_status(user, status)
    }
}

impl Drop for OktaSim {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

fn tls_config(
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

fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .merge(api::routes())
        .merge(auth::routes())
        .merge(oidc::routes())
        .merge(admin::routes())
        .fallback(|| async { OktaError::not_found("the requested path") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), edge))
        .with_state(state)
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-okta-request-id");
const HANG: Duration = Duration::from_secs(600);

/// Okta's front door: every request gets an id; API and OAuth requests go through the
/// injected faults, the rate-limit bucket and the concurrency limit, and are logged.
async fn edge(State(state): State<Arc<SimState>>, request: Request, next: Next) -> Response {
    let bucket = Bucket::of(request.method(), request.uri().path());
    // Logged even when the client gives up first (a timeout drops this future): the log
    // then shows every request the client had in flight, with status 499.
    let mut record = bucket.map(|bucket| Logged {
        state: state.clone(),
        record: Some(RequestRecord {
            method: request.method().to_string(),
            path: request.uri().path().to_string(),
            query: request.uri().query().map(str::to_string),
            status: CLIENT_CLOSED_REQUEST,
            bucket: Some(bucket.name()),
            started_ms: epoch_millis(),
            finished_ms: 0,
            rate_limit_reset: None,
        }),
    });
    let mut response = match bucket {
        Some(bucket) => guarded(&state, bucket, request, next).await,
        None => next.run(request).await,
    };
    if let Ok(id) = HeaderValue::from_str(&random_id("", 27)) {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    if let Some(entry) = record.as_mut().and_then(|logged| logged.record.as_mut()) {
        entry.status = response.status().as_u16();
        entry.rate_limit_reset = response
            .headers()
            .get("x-rate-limit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
    }
    response
}

/// nginx's status for a request whose client closed the connection before the answer.
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// Appends its record to the request log when dropped: after the answer, or when the
/// client went away.
struct Logged {
    state: Arc<SimState>,
    record: Option<RequestRecord>,
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.finished_ms = epoch_millis();
            lock(&self.state.log).push(record);
        }
    }
}

async fn guarded(state: &SimState, bucket: Bucket, request: Request, next: Next) -> Response {
    let fault = state.faults.draw();
    if fault.outage {
        return OktaError::unavailable().into_response();
    }
    let now = epoch_millis() / 1000;
    let standing = match state.limits.admit(bucket, now) {
        Ok(standing) => standing,
        Err(standing) => {
            return with_rate_headers(OktaError::rate_limited().into_response(), standing);
        }
    };
    // A slow or hanging request keeps its slot, so clients that pile up hit the limit.
    let Some(_slot) = state.limits.enter() else {
        // Okta reports a concurrency refusal with a limit and remaining of zero.
        let standing = Standing {
            limit: 0,
            remaining: 0,
            reset: now + 1,
        };
        return with_rate_headers(OktaError::rate_limited().into_response(), standing);
    };
    if !fault.latency.is_zero() {
        tokio::time::sleep(fault.latency).await;
    }
    if fault.hang {
        tokio::time::sleep(HANG).await;
        return OktaError::unavailable().into_response();
    }
    if fault.server_error {
        return with_rate_headers(OktaError::internal().into_response(), standing);
    }
    with_rate_headers(next.run(request).await, standing)
}

fn with_rate_headers(mut response: Response, standing: Standing) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-rate-limit-limit", standing.limit as u64),
        ("x-rate-limit-remaining", standing.remaining as u64),
        ("x-rate-limit-reset", standing.reset),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
    response
}
