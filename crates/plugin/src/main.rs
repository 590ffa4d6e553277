//! `kubectl okta-rbac`: who has access through Okta groups, and why a person does or does
//! not. Installed as `kubectl-okta_rbac` on the PATH (or with krew), run by kubectl.

mod check;
mod cli;
mod cluster;
mod earlier;
mod explain;
mod grants;
mod okta_side;
mod output;
mod who_can;

use check::{Check, DEFAULT_CHECKS};
use clap::Parser;
use cli::{Cli, Command, UsernameClaim};
use cluster::Cluster;
use explain::{OktaAnswer, Settings};
use okta_rbac_operator::policy::ClaimCheck;
use okta_side::Okta;
use std::process::ExitCode;

/// Every check allowed (who-can: someone holds it).
const ALLOWED: u8 = 0;
/// A check denied (who-can: nobody).
const DENIED: u8 = 1;
/// The question could not be asked.
const FAILED: u8 = 2;
/// The cluster answered, but Okta could not be asked.
const PARTIAL: u8 = 3;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(FAILED)
        }
    }
}

async fn run(cli: Cli) -> Result<u8, String> {
    let cluster = Cluster::connect(&cli.kube).await?;
    let okta = Okta::from_args(&cli.okta)?;
    match &cli.command {
        Command::Explain {
            user,
            checks,
            groups,
        } => {
            let asked: Vec<&str> = if checks.is_empty() {
                DEFAULT_CHECKS.to_vec()
            } else {
                checks.iter().map(String::as_str).collect()
            };
            let checks = asked
                .into_iter()
                .map(Check::parse)
                .collect::<Result<Vec<_>, _>>()?;
            let answer = match &okta {
                Okta::NotConfigured(why) => OktaAnswer::NotAsked(why.clone()),
                Okta::Client(client) => {
                    match okta_side::user_facts(client, user, &cli.oidc).await {
                        Ok(facts) => OktaAnswer::Answered {
                            user: facts.user,
                            groups: facts.groups.into_iter().map(|g| g.profile.name).collect(),
                            claims: facts.claims,
                            changes: facts.changes,
                        },
                        Err(error) => OktaAnswer::Failed(error),
                    }
                }
            };
            let failed = matches!(answer, OktaAnswer::Failed(_));
            let settings = Settings {
                claim: ClaimCheck {
                    server_id: cli.oidc.authorization_server.clone(),
                    claim: cli.oidc.groups_claim.clone(),
                    scopes: cli.oidc.scopes.clone(),
                },
                groups_prefix: cli.oidc.groups_prefix.clone(),
                username_prefix: cli.oidc.username_prefix.clone(),
                username_is_login: cli.oidc.username_claim == UsernameClaim::Login,
                given_groups: groups.clone(),
                token_lifetime: cli.oidc.token_lifetime,
            };
            let explanation = explain::explain(&cluster, user, &checks, answer, &settings).await?;
            print!("{}", output::explanation(&explanation, cli.output)?);
            Ok(if failed {
                PARTIAL
            } else if explanation.checks.iter().all(|c| c.allowed) {
                ALLOWED
            } else {
                DENIED
            })
        }
        Command::WhoCan {
            verb,
            resource,
            namespace,
        } => {
            let check = Check::new(verb, resource, namespace.clone());
            let mut okta_failed = false;
            let lifetime = cli.oidc.token_lifetime;
            let by_email = cli.oidc.username_claim != UsernameClaim::Login;
            let answer = who_can::who_can(
                &cluster,
                &check,
                &cli.oidc.username_prefix,
                lifetime,
                async |groups| match &okta {
                    Okta::NotConfigured(why) => Err(why.clone()),
                    Okta::Client(client) => okta_side::people(client, &groups, lifetime, by_email)
                        .await
                        .map_err(|e| {
                            okta_failed = true;
                            e.to_string()
                        }),
                },
            )
            .await?;
            print!("{}", output::who_can(&answer, cli.output)?);
            Ok(if okta_failed {
                PARTIAL
            } else if answer.holders.is_empty() {
                DENIED
            } else {
                ALLOWED
            })
        }
    }
}
