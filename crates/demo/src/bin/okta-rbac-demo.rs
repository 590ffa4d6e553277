//! `make demo`: the local Okta, a control plane trusting it for OIDC, the operator and the
//! samples; then each example user's real access. Runs until Ctrl-C (`--once` exits).

use clap::Parser;
use okta_rbac_demo::{
    Demo, DemoConfig, USERS, access_table, kubectl_get_ogb, kubectl_okta_rbac_explain,
};
use okta_rbac_testenv::tool::{self, Shutdown};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "okta-rbac-demo", version)]
struct Args {
    /// Exit after showing the table instead of running until Ctrl-C.
    #[arg(long)]
    once: bool,
    /// The apiserver's OIDC username and groups prefix (and the operator's).
    #[arg(long, default_value = "")]
    prefix: String,
    /// Without Okta's event hook: Okta's changes come through the System Log alone.
    #[arg(long)]
    no_event_hook: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tool::main("warn", || run(args))
}

async fn run(args: Args) -> Result<(), String> {
    let shutdown = Shutdown::install()?;
    let operator = okta_rbac_testenv::paths::operator_binary().map_err(|e| e.to_string())?;
    println!(
        ">> starting the local Okta (example org), a control plane trusting it for OIDC, the operator and the samples"
    );
    let demo = Demo::start_configured(
        &operator,
        DemoConfig {
            prefix: &args.prefix,
            event_hook: !args.no_event_hook,
            ..Default::default()
        },
    )
    .await?;
    if let Some(hook) = &demo.event_hook {
        println!(
            ">> the local Okta pushes its changes to the operator's event hook at {}",
            hook.url()
        );
    }
    println!(">> kubectl get ogb\n{}", kubectl_get_ogb(&demo)?);
    println!(
        ">> what each example user may do with their own ID token\n{}",
        access_table(&demo).await?
    );
    println!(
        ">> why: kubectl okta-rbac explain {}\n{}",
        USERS[1].0,
        kubectl_okta_rbac_explain(&demo, USERS[1].0).await?
    );
    if !args.once {
        let ca = demo.plane.dir().join("okta-ca.pem");
        println!(
            ">> the cluster: export KUBECONFIG={}",
            demo.plane.kubeconfig_path().display()
        );
        println!(">> act as a user: get their ID token, then call without the admin kubeconfig:");
        let (user, password) = USERS[1];
        println!(
            "   TOKEN=$(curl -s --cacert {} -d grant_type=password -d client_id=kubernetes -d username={user} -d password={password} -d 'scope=openid email groups' {}/v1/token | sed 's/.*\"id_token\":\"\\([^\"]*\\)\".*/\\1/')",
            ca.display(),
            demo.sim.issuer("default")
        );
        println!(
            "   kubectl --server {} --certificate-authority {} --token \"$TOKEN\" get pods",
            demo.plane.server_url(),
            demo.plane.dir().join("ca.crt").display()
        );
        println!(
            "   users: {}",
            USERS
                .iter()
                .map(|(u, p)| format!("{u} / {p}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(">> running until Ctrl-C");
        shutdown.received().await;
    }
    println!(">> stopping");
    demo.stop()
}
