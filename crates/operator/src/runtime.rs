//! The running operator: Okta client and directory, metrics and health endpoints, leader
//! election, and the controller. `okta-rbac-operator run` starts it here.

use crate::authorizer::config::AuthorizerConfig;
use crate::authorizer::roster::Roster;
use crate::authorizer::server::Authorizer;
use crate::cache::WatchStates;
use crate::controller::{self, Parts};
use crate::election::Leadership;
use crate::hooks::{HookConfig, Inbox};
use crate::metrics::Metrics;
use crate::okta::changes::Source;
use crate::okta::claims::ClaimsCache;
use crate::okta::credentials::Credentials;
use crate::okta::dpop::DpopMode;
use crate::okta::groups::Freshness;
use crate::okta::recent::RecentEvents;
use crate::okta::stream::ChangeStream;
use crate::okta::system_log::Follower;
use crate::okta::{GroupDirectory, OktaClient, OktaConfig};

/// The scopes a service app's tokens ask for: groups (and members), the claims check's,
/// and the System Log's, asked for by a token of its own.
const GROUPS_READ: &str = "okta.groups.read";
const AUTHORIZATION_SERVERS_READ: &str = "okta.authorizationServers.read";
const LOGS_READ: &str = "okta.logs.read";
use crate::policy::Policy;
use crate::progress::Progress;
use crate::server::{self, Health};
use crate::tasks::{Supervisor, TaskEnded};
use kube::Client;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use url::Url;

/// How long a leader that stops waits for its lease to be released.
const LEASE_RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

pub use crate::election::LeaderElection;

#[derive(Debug)]
pub struct OperatorConfig {
    pub okta_org_url: Url,
    pub okta_credentials: Arc<Credentials>,
    pub okta_dpop: DpopMode,
    pub okta_dpop_key_rotation: Duration,
    pub okta_ca_pem: Option<String>,
    pub okta_concurrency: usize,
    pub okta_timeout: Duration,
    pub policy: Policy,
    pub resync: Duration,
    /// `None`: the System Log is not followed.
    pub system_log: Option<SystemLogConfig>,
    pub okta_rate_limit_share: f64,
    pub metrics_address: SocketAddr,
    pub leader_election: Option<LeaderElection>,
    pub reconcile_concurrency: u16,
    /// `None`: no revocation authorizer.
    pub authorizer: Option<AuthorizerConfig>,
    /// `None`: no event hook receiver.
    pub hooks: Option<HookConfig>,
}

#[derive(Clone, Copy, Debug)]
pub struct SystemLogConfig {
    pub interval: Duration,
    pub full_resync: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("{0}")]
    Okta(#[from] crate::okta::OktaError),
    #[error("starting the metrics server on {address}: {source}")]
    Server {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("starting the revocation authorizer: {0}")]
    Authorizer(String),
    #[error("starting the event hook receiver: {0}")]
    EventHook(String),
    #[error("{0}")]
    Election(#[from] crate::election::ElectionError),
    #[error("lost the leader lease; stopping so that only the new leader writes")]
    LeadershipLost,
    #[error("{0}")]
    TaskEnded(#[from] TaskEnded),
}

/// A started operator's endpoints.
pub struct Running {
    pub metrics_address: SocketAddr,
    /// The revocation authorizer's, when it serves.
    pub authorizer_address: Option<SocketAddr>,
    /// The event hook receiver's, when it serves.
    pub event_hook_address: Option<SocketAddr>,
}

/// Runs until `shutdown` resolves, leadership is lost, or a task the operator needs ends.
/// `started` receives the bound metrics address as soon as it listens.
pub async fn run(
    client: Client,
    config: OperatorConfig,
    started: impl FnOnce(Running) + Send,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), OperatorError> {
    let metrics = Arc::new(crate::reconcile::new_metrics());
    let mut tasks = Supervisor::default();
    let roster = config
        .authorizer
        .as_ref()
        .map(|_| Arc::new(Roster::new(config.policy.user_name)));
    let okta = okta_side(&config, &metrics, roster.clone())?;
    tasks.spawn("the Okta directory", okta.directory.clone().run());
    let authorizer_address = match (&config.authorizer, &roster) {
        (Some(settings), Some(roster)) => {
            okta.directory.tell_member_lists(roster.clone());
            let authorizer = Arc::new(Authorizer {
                roster: roster.clone(),
                username_prefix: config.policy.username_prefix.clone(),
                client: client.clone(),
                metrics: metrics.clone(),
            });
            let (bound, serving) = crate::authorizer::server::serve(
                settings.address,
                settings.files.clone(),
                authorizer,
            )
            .await
            .map_err(OperatorError::Authorizer)?;
            tasks.spawn_fallible("the revocation authorizer", serving);
            Some(bound)
        }
        _ => None,
    };
    let hook_inbox = config.hooks.as_ref().map(|_| Arc::new(Inbox::default()));
    let event_hook_address = match (&config.hooks, &hook_inbox) {
        (Some(settings), Some(inbox)) => {
            let app = crate::hooks::receiver::app(settings, inbox.clone(), metrics.clone());
            let (bound, serving) = crate::https::serve(
                settings.address,
                settings.files.clone(),
                app,
                "the event hook receiver",
            )
            .await
            .map_err(OperatorError::EventHook)?;
            tasks.spawn_fallible("the event hook receiver", serving);
            Some(bound)
        }
        _ => None,
    };

    let ready = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(Progress::new(config.resync));
    let watches = Arc::new(WatchStates::new(
        metrics.watch_synced.clone(),
        metrics.watch_failures.clone(),
    ));
    let health = Health {
        metrics: metrics.clone(),
        ready: ready.clone(),
        progress: progress.clone(),
        watches: watches.clone(),
    };
    let address = config.metrics_address;
    let (bound, server) = server::serve(address, health)
        .await
        .map_err(|source| OperatorError::Server { address, source })?;
    tasks.spawn_fallible("the metrics and health server", server);
    started(Running {
        metrics_address: bound,
        authorizer_address,
        event_hook_address,
    });

    let parts = Parts {
        okta: okta.directory,
        claims: okta.claims,
        policy: config.policy,
        resync: config.resync,
        metrics,
        concurrency: config.reconcile_concurrency,
        progress,
        system_log: okta.system_log,
        stream: okta.stream,
        hook_inbox,
        watches,
        roster,
        recent: okta.recent,
        leader_endpoints: [
            config
                .authorizer
                .as_ref()
                .and_then(|a| a.leader_endpoint.clone()),
            config
                .hooks
                .as_ref()
                .and_then(|h| h.leader_endpoint.clone()),
        ]
        .into_iter()
        .flatten()
        .collect(),
    };
    let work = async move {
        match config.leader_election {
            None => {
                parts.metrics.leading(true);
                let on_synced = move || ready.store(true, Ordering::SeqCst);
                Ok(controller::run(client, parts, on_synced, shutdown).await?)
            }
            Some(election) => lead(client, parts, election, ready, shutdown).await,
        }
    };
    tokio::select! {
        result = work => result,
        ended = tasks.ended() => Err(ended.into()),
    }
}

/// The Okta client, the directory of group answers, the claims cache and the System Log
/// follower, as the configuration asks.
struct OktaSide {
    directory: Arc<GroupDirectory>,
    claims: Option<Arc<ClaimsCache>>,
    system_log: Option<Follower>,
    /// The one stream both the System Log and the event hook feed, when either is on.
    stream: Option<Arc<ChangeStream>>,
    /// The Okta events read lately, for the audit log.
    recent: Arc<RecentEvents>,
}

fn okta_side(
    config: &OperatorConfig,
    metrics: &Arc<Metrics>,
    roster: Option<Arc<Roster>>,
) -> Result<OktaSide, OperatorError> {
    let observed = metrics.clone();
    let scopes = std::iter::once(GROUPS_READ)
        .chain(
            config
                .policy
                .claim_check
                .as_ref()
                .map(|_| AUTHORIZATION_SERVERS_READ),
        )
        .map(str::to_string)
        .collect();
    let okta = OktaClient::new(OktaConfig {
        org_url: config.okta_org_url.clone(),
        credentials: config.okta_credentials.clone(),
        scopes,
        dpop: config.okta_dpop,
        dpop_key_rotation: config.okta_dpop_key_rotation,
        extra_ca_pem: config.okta_ca_pem.clone(),
        concurrency: config.okta_concurrency,
        request_timeout: config.okta_timeout,
        max_attempts: 3,
        rate_limit_share: config.okta_rate_limit_share,
    })?
    .with_observer(move |event| observed.okta(event));
    // The log's scope gets a token of its own: asking for a scope the app was not granted
    // would fail the groups' token too.
    let log_client = config
        .system_log
        .map(|_| okta.with_scopes(vec![LOGS_READ.into()]).map(Arc::new))
        .transpose()?;
    let okta = Arc::new(okta);
    let claims = config.policy.claim_check.as_ref().map(|check| {
        Arc::new(ClaimsCache::new(
            okta.clone(),
            check.server_id.clone(),
            config.resync,
        ))
    });
    let freshness = match config.system_log {
        Some(log) => Freshness {
            resync: config.resync,
            full_resync: log.full_resync,
            // Two reads missed (each with its retries) and the log no longer counts.
            log_current_within: config
                .hooks
                .as_ref()
                .map_or(log.interval, |h| h.system_log_interval.max(log.interval))
                * 2
                + config.okta_timeout * 3,
        },
        None => Freshness::resync_only(config.resync),
    };
    let directory = GroupDirectory::new(okta, freshness, config.okta_concurrency);
    let recent = Arc::new(RecentEvents::default());
    let stream = (config.system_log.is_some() || config.hooks.is_some()).then(|| {
        let counted = metrics.clone();
        let taken = metrics.clone();
        let recorded = recent.clone();
        Arc::new(ChangeStream::new(
            directory.clone(),
            Box::new(move |events, taken_at| {
                recorded.record(events);
                if let Some(roster) = &roster {
                    for effect in roster.apply(events, taken_at) {
                        crate::authorizer::audit(&effect, &counted);
                    }
                }
            }),
            Box::new(move |source, duplicate| {
                if source == Source::SystemLog {
                    taken.system_log_events.inc();
                }
                taken.changes.event(source.label(), duplicate);
            }),
        ))
    });
    let system_log =
        log_client
            .zip(config.system_log)
            .zip(stream.clone())
            .map(|((client, log), stream)| {
                let shown = metrics.clone();
                Follower {
                    client,
                    stream,
                    interval: log.interval,
                    interval_with_hooks: config.hooks.as_ref().map(|h| h.system_log_interval),
                    on_interval: Box::new(move |interval| shown.changes.log_interval(interval)),
                }
            });
    Ok(OktaSide {
        directory,
        claims,
        system_log,
        stream,
        recent,
    })
}

/// With leader election: a standby is ready (it serves probes) but runs no controller
/// until it leads; a leader that loses the lease stops.
async fn lead(
    client: Client,
    parts: Parts,
    election: LeaderElection,
    ready: Arc<AtomicBool>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), OperatorError> {
    ready.store(true, Ordering::SeqCst);
    let mut shutdown = Box::pin(shutdown);
    let Some(Leadership {
        mut leading,
        lease_task,
    }) = election.lead(&client, shutdown.as_mut()).await?
    else {
        return Ok(());
    };
    tracing::info!(identity = %election.identity, lease = %election.lease_name, "leading");
    parts.metrics.leading(true);
    ready.store(false, Ordering::SeqCst);
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    let lost = async move {
        loop {
            if leading.changed().await.is_err() || !*leading.borrow_and_update() {
                let _ = lost_tx.send(());
                return;
            }
        }
    };
    let stop = async move {
        tokio::select! {
            _ = shutdown => {}
            _ = lost => {}
        }
    };
    let on_synced = move || ready.store(true, Ordering::SeqCst);
    let metrics = parts.metrics.clone();
    let ran = controller::run(client, parts, on_synced, stop).await;
    metrics.leading(false);
    // The lease manager's task releases the lease once its receiver is gone (it went with
    // `stop`): waiting for that lets a standby take over now, not when the lease expires.
    match tokio::time::timeout(LEASE_RELEASE_TIMEOUT, lease_task).await {
        Ok(Ok(Ok(_))) => tracing::info!(lease = %election.lease_name, "released the lease"),
        Ok(Ok(Err(error))) => {
            tracing::warn!(%error, "releasing the lease failed; it expires instead")
        }
        Ok(Err(error)) => tracing::warn!(%error, "the lease manager's task failed"),
        Err(_) => tracing::warn!("releasing the lease timed out; it expires instead"),
    }
    ran?;
    match lost_rx.await {
        Ok(()) => Err(OperatorError::LeadershipLost),
        Err(_) => Ok(()),
    }
}
