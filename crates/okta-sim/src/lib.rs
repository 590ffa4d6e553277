//! A local Okta for tests, the demo and anyone without an Okta org: the Management API's
//! group endpoints, OAuth service-app tokens and OIDC authorization servers, close enough
//! to Okta that Okta's own SDKs work against it. Depends on axum and the test PKI, never
//! on the operator, which must not depend on it either.
//!
//! Tests, the benchmark and the demo start one with [`OktaSim::start`]; the `okta-sim`
//! binary runs one on its own. `/_sim/...` is its admin API: change the directory, inject
//! faults, read the request log. Event hooks registered through the Management API get
//! the System Log's events pushed to them, as from Okta.

mod admin;
mod api;
mod auth;
mod claims;
pub mod directory;
mod dpop;
mod edge;
mod errors;
pub mod event_hooks;
mod faults;
pub mod limits;
mod oidc;
mod org_token;
mod paging;
pub mod query;
mod request_log;
pub mod seed;
pub mod system_log;
mod tls;
mod users;
mod wire;

pub use directory::{Lifecycle, Outcome as LifecycleOutcome};
pub use event_hooks::{
    AttemptOutcome, DeliveryRecord, EventHookFaults, EventHookSettings, HookRegistration,
};
pub use faults::FaultSettings;
pub use request_log::{RequestRecord, most_in_flight};
pub use seed::{GroupType, OAuthSettings, RateLimitSettings, Seed, UserStatus};

use axum::Router;
use directory::{Directory, DirectoryError};
use errors::OktaError;
use limits::{Bucket, RateLimiter, lock};
use okta_rbac_pki::CertificateAuthority;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

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

pub(crate) struct SimState {
    pub base_url: String,
    pub directory: Mutex<Directory>,
    pub limits: RateLimiter,
    pub faults: faults::Faults,
    pub log: Mutex<Vec<RequestRecord>>,
    pub credentials: auth::Credentials,
    pub servers: oidc::AuthorizationServers,
    pub event_hooks: event_hooks::EventHooks,
}

impl SimState {
    /// Checks a Management API call needing `scope`.
    pub(crate) fn authorize(&self, caller: &auth::Caller, scope: &str) -> Result<(), OktaError> {
        self.credentials.authorize(caller, &self.base_url, scope)
    }
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
        let tls = options.tls.then(|| tls::tls_config(addr)).transpose()?;
        let event_hooks = event_hooks::EventHooks::new(tls.as_ref().map(|(ca, _)| ca.cert_pem()))
            .map_err(SimError::Tls)?;
        let state = Arc::new(SimState {
            credentials: auth::Credentials::from_seed(&options.seed).map_err(SimError::Seed)?,
            servers: oidc::AuthorizationServers::from_seed(&options.seed, &base_url)?,
            directory: Mutex::new(directory),
            limits: RateLimiter::new(options.seed.rate_limits.clone()),
            faults: faults::Faults::default(),
            log: Mutex::new(Vec::new()),
            event_hooks,
            base_url,
        });
        event_hooks::start(&state);
        let app = router(state.clone());
        let handle = axum_server::Handle::new();
        let (ca, serve) = if let Some((ca, config)) = tls {
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
        self.state.credentials.set_api_token("", token, None);
    }

    /// Issues (or restores) an API token named `name` with these scopes (`None`:
    /// everything).
    pub fn issue_api_token(&self, name: &str, token: &str, scopes: Option<Vec<String>>) {
        self.state
            .credentials
            .set_api_token(name, token, Some(scopes));
    }

    /// Registers another public key with a service app, as an admin rotating its key does
    /// first.
    pub fn add_client_key(
        &self,
        client_id: &str,
        kid: &str,
        public_key_pem: &str,
    ) -> Result<(), DirectoryError> {
        let key = auth::AppKey::from_pem(Some(kid.to_string()), public_key_pem)
            .map_err(DirectoryError::Invalid)?;
        self.found(client_id, self.state.credentials.add_key(client_id, key))
    }

    /// Removes a service app's key (the one with this kid, or with `None` the seed's key
    /// without one): assertions it signs are refused from now on.
    pub fn remove_client_key(
        &self,
        client_id: &str,
        kid: Option<&str>,
    ) -> Result<(), DirectoryError> {
        self.found(client_id, self.state.credentials.remove_key(client_id, kid))
    }

    /// Turns a service app's "Require DPoP" on or off; tokens issued before keep theirs.
    pub fn require_dpop(&self, client_id: &str, required: bool) -> Result<(), DirectoryError> {
        self.found(
            client_id,
            self.state.credentials.require_dpop(client_id, required),
        )
    }

    fn found(&self, client_id: &str, found: bool) -> Result<(), DirectoryError> {
        found
            .then_some(())
            .ok_or_else(|| DirectoryError::NotFound(format!("service app {client_id}")))
    }

    /// Changes access-token lifetimes and DPoP windows from now on.
    pub fn set_oauth_settings(&self, settings: OAuthSettings) {
        self.state.credentials.set_oauth_settings(settings);
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

    /// Changes an authorization server's groups claim, as an Okta admin would: ID tokens
    /// issued from now on follow it.
    pub fn set_groups_claim(
        &self,
        server_id: &str,
        claim: seed::GroupsClaim,
    ) -> Result<(), DirectoryError> {
        self.state
            .servers
            .set_groups_claim(server_id, claim)
            .map_err(|_| DirectoryError::NotFound(format!("authorization server {server_id}")))
    }

    /// Suspends, unsuspends, deactivates, activates, reactivates or deletes a user (by id
    /// or login) as Okta's User Lifecycle API does, with its System Log events.
    pub fn user_lifecycle(
        &self,
        user: &str,
        operation: Lifecycle,
    ) -> Result<LifecycleOutcome, DirectoryError> {
        lock(&self.state.directory).user_lifecycle(user, operation)
    }

    /// Trusts the certificates of this PEM, besides the simulator's own CA, for event hook
    /// deliveries and verifications: a receiver with a certificate of its own.
    pub fn trust_hook_roots(&self, pem: &str) -> Result<(), SimError> {
        self.state.event_hooks.trust(pem).map_err(SimError::Tls)
    }

    pub fn event_hook_settings(&self) -> EventHookSettings {
        self.state.event_hooks.settings()
    }

    /// Changes the delivery timeout and batching window from the next delivery on.
    pub fn set_event_hook_settings(&self, settings: EventHookSettings) {
        self.state.event_hooks.set_settings(settings);
    }

    /// The delivery faults as they stand (`drop_next`: what is left of it).
    pub fn event_hook_faults(&self) -> EventHookFaults {
        self.state.event_hooks.faults()
    }

    /// Late, duplicated, reordered or dropped deliveries from now on; counts start over.
    pub fn set_event_hook_faults(&self, faults: EventHookFaults) {
        self.state.event_hooks.set_faults(faults);
    }

    pub fn clear_event_hook_faults(&self) {
        self.state
            .event_hooks
            .set_faults(EventHookFaults::default());
    }

    /// Every event hook delivery attempt so far (and every delivery a fault dropped),
    /// oldest first.
    pub fn hook_deliveries(&self) -> Vec<DeliveryRecord> {
        self.state.event_hooks.deliveries()
    }

    pub fn clear_hook_deliveries(&self) {
        self.state.event_hooks.clear_deliveries();
    }

    /// The System Log's events so far, oldest first: (uuid, eventType) of each.
    pub fn logged_events(&self) -> Vec<(String, String)> {
        lock(&self.state.directory)
            .system_log
            .events()
            .iter()
            .map(|e| (e.uuid.clone(), e.event_type.to_string()))
            .collect()
    }

    /// Merges `fields` into every answer that carries the group or user of this id
    /// (`None`: answers as usual): a value a client does not expect, in one item of a page.
    pub fn set_oddity(
        &self,
        id: &str,
        fields: Option<serde_json::Value>,
    ) -> Result<(), DirectoryError> {
        let mut directory = lock(&self.state.directory);
        if let Some(group) = directory.groups.get_mut(id) {
            group.oddity = fields;
        } else if let Some(user) = directory.users.get_mut(id) {
            user.oddity = fields;
        } else {
            return Err(DirectoryError::NotFound(id.to_string()));
        }
        Ok(())
    }
}

impl Drop for OktaSim {
    fn drop(&mut self) {
        self.handle.shutdown();
        self.state.event_hooks.stop();
    }
}

fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .merge(api::routes())
        .merge(users::routes())
        .merge(org_token::routes())
        .merge(oidc::routes())
        .merge(claims::routes())
        .merge(system_log::routes())
        .merge(event_hooks::routes())
        .merge(admin::routes())
        .fallback(|| async { OktaError::not_found("the requested path") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            edge::edge,
        ))
        .with_state(state)
}
