//! The command line: each subcommand is one thing the binary really does.

use crate::leader_endpoint::PodIdentity;
use crate::okta::credentials::{Credentials, Source};
use crate::okta::dpop::DpopMode;
use crate::policy::{ClaimCheck, Policy};
use crate::runtime::{LeaderElection, OperatorConfig, SystemLogConfig};
use clap::{Parser, Subcommand};
use okta_rbac_api::UserNameAttribute;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "okta-rbac-operator",
    version,
    about = "Turns Okta groups into Kubernetes RBAC"
)]
pub struct Cli {
    /// How log lines are written.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "plain",
        env = "LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// What is logged: a level (error, warn, info, debug, trace) or tracing filter
    /// directives such as `info,okta_rbac_operator=debug`. Without it, RUST_LOG, else info.
    #[arg(long, global = true, env = "LOG_LEVEL")]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    Plain,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the operator: verify OktaGroupBindings with Okta and keep their bindings.
    Run(Box<RunArgs>),
    /// Print the version and the Kubernetes release it is built and tested against.
    Version,
    /// Print the OktaGroupBinding CustomResourceDefinition as YAML (committed in crds/).
    Crd,
    /// Print the apiserver's AuthorizationConfiguration (for --authorization-config)
    /// that places the revocation authorizer before RBAC.
    AuthorizationConfig(crate::authorizer::config::ConfigArgs),
}

/// `run`: every flag also reads the environment variable shown in `--help`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub okta: OktaArgs,
    #[command(flatten)]
    pub token: TokenArgs,
    #[command(flatten)]
    pub reconcile: ReconcileArgs,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub authorizer: crate::authorizer::config::AuthorizerArgs,
    #[command(flatten)]
    pub hooks: crate::hooks::config::HookArgs,
}

/// How the operator reaches Okta and proves itself.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Okta")]
pub struct OktaArgs {
    /// The Okta org, such as https://example.okta.com.
    #[arg(long, env = "OKTA_ORG_URL")]
    pub okta_org_url: url::Url,
    /// File holding an Okta API token (SSWS). Or set OKTA_API_TOKEN.
    #[arg(long, env = "OKTA_API_TOKEN_FILE", conflicts_with = "okta_client_id")]
    pub okta_token_file: Option<PathBuf>,
    /// Service app client id, for OAuth client credentials with a private key.
    #[arg(long, env = "OKTA_CLIENT_ID", requires = "okta_private_key_file")]
    pub okta_client_id: Option<String>,
    /// PEM private key (RSA or EC) registered with the service app.
    #[arg(long, env = "OKTA_PRIVATE_KEY_FILE")]
    pub okta_private_key_file: Option<PathBuf>,
    /// The key's id (kid) in the app's JWKS, when it has several keys.
    #[arg(long, env = "OKTA_PRIVATE_KEY_ID")]
    pub okta_private_key_id: Option<String>,
    /// A file holding the key's id, read again with the key when they change (a rotated
    /// key comes with its kid); an absent file means the key has none.
    #[arg(
        long,
        env = "OKTA_PRIVATE_KEY_ID_FILE",
        conflicts_with = "okta_private_key_id"
    )]
    pub okta_private_key_id_file: Option<PathBuf>,
    /// DPoP for a service app: auto sends a proof with every token request and uses the
    /// token as Okta issues it (bound when the app requires DPoP); on also refuses an
    /// unbound token; off sends no proof.
    #[arg(long, env = "OKTA_DPOP", value_enum, default_value = "auto")]
    pub okta_dpop: DpopMode,
    /// How long one DPoP key is used before a new one is made (at the next token).
    #[arg(long, env = "OKTA_DPOP_KEY_ROTATION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub okta_dpop_key_rotation: std::time::Duration,
    /// Extra PEM CA certificates to trust for Okta (a private CA or the local Okta).
    #[arg(long, env = "OKTA_CA_FILE")]
    pub okta_ca_file: Option<PathBuf>,
    /// Concurrent requests to Okta at most.
    #[arg(long, env = "OKTA_CONCURRENCY", default_value_t = 8)]
    pub okta_concurrency: usize,
    /// Time allowed for one Okta request.
    #[arg(long, env = "OKTA_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub okta_timeout: std::time::Duration,
    /// The fraction of each Okta rate-limit window the operator may spend, so that the
    /// clusters and apps sharing an org leave each other room (0.1: a tenth).
    #[arg(long, env = "OKTA_RATE_LIMIT_SHARE", default_value_t = 1.0, value_parser = parse_share)]
    pub okta_rate_limit_share: f64,
    /// Follow Okta's System Log and verify again only the groups it names (needs an API
    /// token whose admin may read the log, or a service app granted okta.logs.read;
    /// without, every group is verified each resync as with `false`).
    #[arg(long, env = "OKTA_SYSTEM_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    pub okta_system_log: bool,
    /// How often the System Log is read.
    #[arg(long, env = "OKTA_SYSTEM_LOG_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub okta_system_log_interval: std::time::Duration,
}

/// What the apiserver does with an Okta login, and which groups may be bound.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Tokens and RBAC")]
pub struct TokenArgs {
    /// Prefix of group subjects: the same as the apiserver's --oidc-groups-prefix.
    #[arg(long, env = "GROUPS_PREFIX", default_value = "")]
    pub groups_prefix: String,
    /// Prefix of user subjects (Users mode): the apiserver's --oidc-username-prefix.
    #[arg(long, env = "USERNAME_PREFIX", default_value = "")]
    pub username_prefix: String,
    /// The Okta profile attribute that is the user name (the apiserver's --oidc-username-claim).
    #[arg(long, env = "USERNAME_ATTRIBUTE", value_enum, default_value = "email")]
    pub username_attribute: UserNameArg,
    /// Only groups starting with this (case-insensitively) can be bound; Okta's groups
    /// claim filter keeps the others out of tokens anyway.
    #[arg(long, env = "ALLOWED_GROUP_PREFIX", default_value = "k8s-")]
    pub allowed_group_prefix: String,
    /// The custom authorization server kubectl logs in with (its id, as in
    /// `/oauth2/{id}`). When set, each object reports whether its group reaches ID tokens
    /// (condition ClaimCarriesGroup); the credentials then need `okta.authorizationServers.read`.
    #[arg(long, env = "OKTA_AUTHORIZATION_SERVER")]
    pub okta_authorization_server: Option<String>,
    /// The claim the apiserver reads groups from (its --oidc-groups-claim).
    #[arg(long, env = "OIDC_GROUPS_CLAIM", default_value = "groups")]
    pub oidc_groups_claim: String,
    /// The scopes kubectl (kubelogin) requests when it logs in, comma-separated.
    #[arg(
        long,
        env = "OIDC_SCOPES",
        value_delimiter = ',',
        default_value = "openid,email,groups"
    )]
    pub oidc_scopes: Vec<String>,
}

/// How often and how many at once.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Reconciling")]
pub struct ReconcileArgs {
    /// How long an answer from Okta is trusted before the group is verified again, when
    /// the System Log is not being followed.
    #[arg(long, env = "RESYNC_INTERVAL", default_value = "5m", value_parser = humantime::parse_duration)]
    pub resync_interval: std::time::Duration,
    /// While the System Log is followed, every group is still verified again this often
    /// [default: 1h, or --resync-interval if that is longer].
    #[arg(long, env = "FULL_RESYNC_INTERVAL", value_parser = humantime::parse_duration)]
    pub full_resync_interval: Option<std::time::Duration>,
    /// OktaGroupBindings reconciled at once.
    #[arg(long, env = "RECONCILE_CONCURRENCY", default_value_t = 16)]
    pub reconcile_concurrency: u16,
}

/// The metrics and probes, and the Lease that elects the one replica that writes.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Serving and leader election")]
pub struct ServeArgs {
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_address: SocketAddr,
    /// Elect a leader among replicas with a Lease; only the leader writes.
    #[arg(long, env = "LEADER_ELECTION")]
    pub leader_election: bool,
    /// The Lease's name: replicas with the same name elect one leader.
    #[arg(long, env = "LEASE_NAME", default_value = "okta-rbac-operator")]
    pub lease_name: String,
    /// Defaults to the pod's namespace (POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "okta-rbac-operator")]
    pub lease_namespace: String,
    /// How long a leader's lease lasts without renewal: the longest hand-over.
    #[arg(long, env = "LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_duration: std::time::Duration,
    /// This Pod's IP (the downward API's `status.podIP`): the leader points the
    /// authorizer's and the event hook's Services at it.
    #[arg(long, env = "POD_IP")]
    pub pod_ip: Option<std::net::IpAddr>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum UserNameArg {
    Email,
    Login,
}

/// The Kubernetes release the operator is built and tested against (the test control
/// plane's; a test keeps the two equal).
pub const TESTED_KUBERNETES: &str = "v1.37.2";

/// What `version` prints.
pub fn version_text() -> String {
    format!(
        "okta-rbac-operator {} (Kubernetes {TESTED_KUBERNETES})",
        env!("CARGO_PKG_VERSION"),
    )
}

/// The full resync when none is given: an hour, or the resync interval if it is longer.
const DEFAULT_FULL_RESYNC: std::time::Duration = std::time::Duration::from_secs(3600);

impl ReconcileArgs {
    /// The full resync interval: as given, which may not be shorter than the resync
    /// interval, or the default.
    fn full_resync(&self) -> Result<std::time::Duration, String> {
        match self.full_resync_interval {
            Some(full) if full < self.resync_interval => Err(format!(
                "--full-resync-interval ({}) is shorter than --resync-interval ({})",
                humantime::format_duration(full),
                humantime::format_duration(self.resync_interval)
            )),
            Some(full) => Ok(full),
            None => Ok(DEFAULT_FULL_RESYNC.max(self.resync_interval)),
        }
    }
}

fn parse_share(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(share) if share > 0.0 && share <= 1.0 => Ok(share),
        _ => Err(format!(
            "'{text}' is not a fraction above 0 and at most 1 (for example 0.25)"
        )),
    }
}

fn read(path: &std::path::Path, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("reading the {what} {}: {e}", path.display()))
}

impl RunArgs {
    /// The operator's configuration: credentials read from their files or the
    /// environment, the identity from `POD_NAME`.
    pub fn into_config(self) -> Result<OperatorConfig, String> {
        let args = self;
        let source = match (
            &args.okta.okta_client_id,
            &args.okta.okta_private_key_file,
            &args.okta.okta_token_file,
        ) {
            (Some(client_id), Some(key_file), _) => Some(Source::ServiceAppFiles {
                client_id: client_id.clone(),
                key_file: key_file.clone(),
                key_id: args.okta.okta_private_key_id.clone(),
                key_id_file: args.okta.okta_private_key_id_file.clone(),
            }),
            (_, _, Some(token_file)) => Some(Source::TokenFile(token_file.clone())),
            _ => None,
        };
        let credentials = match source {
            Some(source) => Credentials::from_files(source).map_err(|e| e.to_string())?,
            None => match std::env::var("OKTA_API_TOKEN") {
                Ok(token) if !token.trim().is_empty() => Credentials::api_token(token.trim()),
                _ => return Err("no Okta credentials: set --okta-token-file, OKTA_API_TOKEN, or --okta-client-id with --okta-private-key-file".into()),
            },
        };
        let full_resync = args.reconcile.full_resync()?;
        let okta_ca_pem = args
            .okta
            .okta_ca_file
            .as_deref()
            .map(|path| read(path, "Okta CA file"))
            .transpose()?;
        let identity = std::env::var("POD_NAME")
            .unwrap_or_else(|_| format!("okta-rbac-operator-{}", std::process::id()));
        // The operator's namespace: the Lease's, and the authorizer's Service's.
        let namespace = args.serve.lease_namespace.clone();
        let pod = PodIdentity {
            name: std::env::var("POD_NAME").ok(),
            ip: args.serve.pod_ip,
        };
        Ok(OperatorConfig {
            okta_org_url: args.okta.okta_org_url,
            okta_credentials: std::sync::Arc::new(credentials),
            okta_dpop: args.okta.okta_dpop,
            okta_dpop_key_rotation: args.okta.okta_dpop_key_rotation,
            okta_ca_pem,
            okta_concurrency: args.okta.okta_concurrency,
            okta_timeout: args.okta.okta_timeout,
            policy: Policy {
                allowed_group_prefix: args.token.allowed_group_prefix,
                groups_prefix: args.token.groups_prefix,
                username_prefix: args.token.username_prefix,
                user_name: match args.token.username_attribute {
                    UserNameArg::Email => UserNameAttribute::Email,
                    UserNameArg::Login => UserNameAttribute::Login,
                },
                claim_check: args
                    .token
                    .okta_authorization_server
                    .map(|server_id| ClaimCheck {
                        server_id,
                        claim: args.token.oidc_groups_claim,
                        scopes: args.token.oidc_scopes,
                    }),
            },
            resync: args.reconcile.resync_interval,
            system_log: args.okta.okta_system_log.then_some(SystemLogConfig {
                interval: args.okta.okta_system_log_interval,
                full_resync,
            }),
            okta_rate_limit_share: args.okta.okta_rate_limit_share,
            metrics_address: args.serve.metrics_address,
            leader_election: args.serve.leader_election.then(|| LeaderElection {
                lease_name: args.serve.lease_name,
                lease_namespace: args.serve.lease_namespace,
                identity,
                lease_seconds: args.serve.lease_duration.as_secs().max(3),
            }),
            reconcile_concurrency: args.reconcile.reconcile_concurrency,
            authorizer: args.authorizer.into_config(&namespace, pod.clone()),
            hooks: args.hooks.into_config(&namespace, pod)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::Parser;
    use clap::error::ErrorKind;

    const ORG: [&str; 3] = [
        "okta-rbac-operator",
        "run",
        "--okta-org-url=https://example.okta.com",
    ];

    fn parse(extra: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(ORG.iter().chain(extra))
    }

    #[test]
    fn a_token_and_a_service_app_at_once_are_refused() {
        let error = parse(&[
            "--okta-token-file=/t",
            "--okta-client-id=0oa1",
            "--okta-private-key-file=/k",
        ])
        .expect_err("both credential modes");
        assert_eq!(error.kind(), ErrorKind::ArgumentConflict);
        assert!(error.to_string().contains("--okta-client-id"), "{error}");
    }

    #[test]
    fn a_service_app_needs_its_private_key() {
        let error = parse(&["--okta-client-id=0oa1"]).expect_err("no key");
        assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);
        assert!(
            error.to_string().contains("--okta-private-key-file"),
            "{error}"
        );
    }

    #[test]
    fn a_rate_limit_share_is_a_fraction_of_one() {
        for bad in ["0", "1.5", "-0.2", "half"] {
            let error = parse(&[
                "--okta-token-file=/t",
                &format!("--okta-rate-limit-share={bad}"),
            ])
            .expect_err(bad);
            assert!(error.to_string().contains("is not a fraction"), "{error}");
        }
        parse(&["--okta-token-file=/t", "--okta-rate-limit-share=0.25"]).expect("a quarter");
    }

    #[test]
    fn the_system_log_is_followed_unless_turned_off() {
        let super::Command::Run(args) = parse(&["--okta-token-file=/t"]).expect("parse").command
        else {
            panic!("run");
        };
        assert!(args.okta.okta_system_log);
        let super::Command::Run(args) = parse(&["--okta-token-file=/t", "--okta-system-log=false"])
            .expect("parse")
            .command
        else {
            panic!("run");
        };
        assert!(!args.okta.okta_system_log);
    }

    fn full_resync(extra: &[&str]) -> Result<std::time::Duration, String> {
        let super::Command::Run(args) = parse(extra).expect("parse").command else {
            panic!("run");
        };
        args.reconcile.full_resync()
    }

    #[test]
    fn the_full_resync_follows_a_resync_longer_than_its_default() {
        let hour = std::time::Duration::from_secs(3600);
        assert_eq!(full_resync(&[]), Ok(hour));
        assert_eq!(
            full_resync(&["--resync-interval=2h"]),
            Ok(2 * hour),
            "a resync above an hour alone must not stop the operator"
        );
        assert_eq!(
            full_resync(&["--resync-interval=2h", "--full-resync-interval=3h"]),
            Ok(3 * hour)
        );
        let refused = full_resync(&["--resync-interval=2h", "--full-resync-interval=1h"])
            .expect_err("shorter than the resync");
        assert!(
            refused.contains("is shorter than --resync-interval"),
            "{refused}"
        );
    }

    #[test]
    fn each_mode_alone_parses() {
        parse(&["--okta-token-file=/t"]).expect("token");
        parse(&["--okta-client-id=0oa1", "--okta-private-key-file=/k"]).expect("service app");
    }
}
