//! The command line, as kubectl plugins take it: the cluster from the kubeconfig
//! (`--kubeconfig`, `--context`), Okta access the same ways the operator takes it, and the
//! apiserver's OIDC settings the answer depends on.

use clap::{Args, Parser, Subcommand};
use okta_rbac_operator::okta::credentials::{Credentials, Source};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "kubectl okta-rbac",
    bin_name = "kubectl okta-rbac",
    version,
    about = "Who has access through Okta groups, and why a person does or does not",
    after_help = "Exit codes: 0 every check allowed (who-can: someone holds it), 1 a check denied \
                  (who-can: nobody), 2 the question could not be asked (usage, cluster), 3 the \
                  cluster side was answered but Okta could not be asked."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub okta: OktaArgs,
    #[command(flatten)]
    pub oidc: OidcArgs,
    /// Output: a table for people, json or yaml for scripts.
    #[arg(short, long, global = true, value_enum, default_value = "table")]
    pub output: Output,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Why an Okta user may or may not do something: their groups in Okta, which reach
    /// their token, what the OktaGroupBindings grant them, and the apiserver's answer.
    Explain {
        /// The user's Okta login.
        user: String,
        /// A question, as `VERB RESOURCE[.GROUP][/SUBRESOURCE] [-n NAMESPACE]` (repeatable;
        /// default: a few common ones).
        #[arg(long = "check")]
        checks: Vec<String>,
        /// The groups the user's token carries, when Okta cannot be asked.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
    },
    /// Who may do VERB on RESOURCE: the Okta groups granted it through OktaGroupBindings
    /// (with their members, when Okta can be asked) and the other subjects that hold it.
    WhoCan {
        verb: String,
        /// `RESOURCE[.GROUP][/SUBRESOURCE]`.
        resource: String,
        #[arg(short, long)]
        namespace: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct KubeArgs {
    /// The kubeconfig (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
}

/// Read-only Okta access: an API token, or a service app granted `okta.users.read`,
/// `okta.groups.read` and `okta.authorizationServers.read` (and `okta.logs.read`, for
/// what tokens issued before a change still get).
#[derive(Debug, Args)]
pub struct OktaArgs {
    /// The Okta org, such as https://example.okta.com.
    #[arg(long, global = true, env = "OKTA_ORG_URL")]
    pub okta_org_url: Option<url::Url>,
    /// File holding an Okta API token (SSWS). Or set OKTA_API_TOKEN.
    #[arg(long, global = true, env = "OKTA_API_TOKEN_FILE")]
    pub okta_token_file: Option<PathBuf>,
    /// A service app's client id, with --okta-private-key-file.
    #[arg(long, global = true, env = "OKTA_CLIENT_ID")]
    pub okta_client_id: Option<String>,
    #[arg(long, global = true, env = "OKTA_PRIVATE_KEY_FILE")]
    pub okta_private_key_file: Option<PathBuf>,
    #[arg(long, global = true, env = "OKTA_PRIVATE_KEY_ID")]
    pub okta_private_key_id: Option<String>,
    /// Extra PEM CA certificates to trust for Okta.
    #[arg(long, global = true, env = "OKTA_CA_FILE")]
    pub okta_ca_file: Option<PathBuf>,
}

/// What the apiserver and Okta's authorization server do with a login: they decide which
/// groups reach the token and under which names RBAC sees them.
#[derive(Debug, Args)]
pub struct OidcArgs {
    /// The custom authorization server kubectl logs in with (as in /oauth2/{id}).
    #[arg(
        long,
        global = true,
        default_value = "default",
        env = "OKTA_AUTHORIZATION_SERVER"
    )]
    pub authorization_server: String,
    /// The claim the apiserver reads groups from (its --oidc-groups-claim).
    #[arg(
        long,
        global = true,
        default_value = "groups",
        env = "OIDC_GROUPS_CLAIM"
    )]
    pub groups_claim: String,
    /// The scopes kubectl (kubelogin) requests.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "openid,email,groups"
    )]
    pub scopes: Vec<String>,
    /// The apiserver's --oidc-groups-prefix (default: as the OktaGroupBindings' status shows).
    #[arg(long, global = true)]
    pub groups_prefix: Option<String>,
    /// How long Okta's ID tokens live (the authorization server's access policy): a token
    /// issued before a change in Okta carries the old groups this long.
    #[arg(long, global = true, default_value = "1h", value_parser = humantime::parse_duration)]
    pub token_lifetime: std::time::Duration,
    /// The apiserver's --oidc-username-prefix.
    #[arg(long, global = true, default_value = "")]
    pub username_prefix: String,
    /// The Okta profile attribute that is the user name (the apiserver's --oidc-username-claim).
    #[arg(long, global = true, value_enum, default_value = "email")]
    pub username_claim: UsernameClaim,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum UsernameClaim {
    Email,
    Login,
}

impl OktaArgs {
    /// The credentials given, if any; an error names a file that cannot be read.
    pub fn credentials(&self) -> Result<Option<Credentials>, String> {
        let source = match (
            &self.okta_client_id,
            &self.okta_private_key_file,
            &self.okta_token_file,
        ) {
            (Some(client_id), Some(key_file), _) => Source::ServiceAppFiles {
                client_id: client_id.clone(),
                key_file: key_file.clone(),
                key_id: self.okta_private_key_id.clone(),
                key_id_file: None,
            },
            (Some(_), None, _) => {
                return Err("--okta-client-id needs --okta-private-key-file".into());
            }
            (None, _, Some(token_file)) => Source::TokenFile(token_file.clone()),
            (None, _, None) => {
                return Ok(std::env::var("OKTA_API_TOKEN")
                    .ok()
                    .filter(|t| !t.trim().is_empty())
                    .map(|t| Credentials::api_token(t.trim())));
            }
        };
        Credentials::from_files(source)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}
