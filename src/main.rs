use clap::Parser;
use okta_rbac_operator::cli::{
    Cli, Command, LogFormat, RunArgs, SimArgs, UserNameArg, version_text,
};
use okta_rbac_operator::controller::desired::Policy;
use okta_rbac_operator::controlplane::{ControlPlane, ControlPlaneOptions};
use okta_rbac_operator::crd::UserNameAttribute;
use okta_rbac_operator::okta::auth::Credentials;
use okta_rbac_operator::operator::{LeaderElection, OperatorConfig};
use okta_rbac_operator::sim::{OktaSim, Seed, SimOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Plain => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let result = match cli.command {
        Command::Run(args) => run_operator(*args).await,
        Command::Version => {
            println!("{}", version_text());
            Ok(())
        }
        Command::Controlplane {
            kubeconfig_out,
            keep_dir,
        } => run_controlplane(kubeconfig_out, keep_dir).await,
        Command::Sim(args) => run_sim(args).await,
        Command::Demo { once, prefix } => run_demo(once, &prefix).await,
        Command::Crd => okta_rbac_operator::crd::crd_yaml()
            .map(|yaml| print!("{yaml}"))
            .map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run_controlplane(kubeconfig_out: Option<PathBuf>, keep_dir: bool) -> Result<(), String> {
    let shutdown = ShutdownSignal::install()?;
    let plane = ControlPlane::start(ControlPlaneOptions {
        keep_dir,
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    if let Some(out) = &kubeconfig_out {
        std::fs::copy(plane.kubeconfig_path(), out)
            .map_err(|e| format!("copying the kubeconfig to {}: {e}", out.display()))?;
    }
    println!("server: {}", plane.server_url());
    println!("readyz after: {:.2}s", plane.time_to_ready().as_secs_f64());
    println!("kubeconfig: {}", plane.kubeconfig_path().display());
    println!("directory: {}", plane.dir().display());
    for (name, pid) in plane.processes() {
        println!("process: {name} {pid}");
    }
    println!("ready: press Ctrl-C to stop");
    shutdown.received().await;
    drop(plane);
    Ok(())
}

fn read(path: &std::path::Path, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("reading the {what} {}: {e}", path.display()))
}

fn operator_config(args: RunArgs) -> Result<OperatorConfig, String> {
    let credentials = match (&args.okta_client_id, &args.okta_private_key_file, &args.okta_token_file) {
        (Some(client_id), Some(key_file), _) => Credentials::private_key(
            client_id.clone(),
            &read(key_file, "Okta private key")?,
            args.okta_private_key_id.clone(),
            vec!["okta.groups.read".into()],
        )
        .map_err(|e| e.to_string())?,
        (_, _, Some(token_file)) => Credentials::ApiToken(read(token_file, "Okta API token file")?.trim().to_string()),
        _ => match std::env::var("OKTA_API_TOKEN") {
            Ok(token) if !token.trim().is_empty() => Credentials::ApiToken(token.trim().to_string()),
            _ => return Err("no Okta credentials: set --okta-token-file, OKTA_API_TOKEN, or --okta-client-id with --okta-private-key-file".into()),
        },
    };
    let okta_ca_pem = args
        .okta_ca_file
        .as_deref()
        .map(|path| read(path, "Okta CA file"))
        .transpose()?;
    let identity = std::env::var("POD_NAME")
        .unwrap_or_else(|_| format!("okta-rbac-operator-{}", std::process::id()));
    Ok(OperatorConfig {
        okta_org_url: args.okta_org_url,
        okta_credentials: credentials,
        okta_ca_pem,
        okta_concurrency: args.okta_concurrency,
        okta_timeout: args.okta_timeout,
        policy: Policy {
            allowed_group_prefix: args.allowed_group_prefix,
            groups_prefix: args.groups_prefix,
            username_prefix: args.username_prefix,
            user_name: match args.username_attribute {
                UserNameArg::Email => UserNameAttribute::Email,
                UserNameArg::Login => UserNameAttribute::Login,
            },
        },
        resync: args.resync_interval,
        metrics_address: args.metrics_address,
        leader_election: args.leader_election.then(|| LeaderElection {
            lease_name: args.lease_name,
            lease_namespace: args.lease_namespace,
            identity,
            lease_seconds: args.lease_duration.as_secs().max(3),
        }),
        reconcile_concurrency: args.reconcile_concurrency,
    })
}

async fn run_operator(args: RunArgs) -> Result<(), String> {
    let shutdown = ShutdownSignal::install()?;
    let config = operator_config(args)?;
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("connecting to Kubernetes: {e}"))?;
    okta_rbac_operator::operator::run(
        client,
        config,
        |running| tracing::info!(metrics = %running.metrics_address, "started"),
        shutdown.received(),
    )
    .await
    .map_err(|e| e.to_string())
}

async fn run_demo(once: bool, prefix: &str) -> Result<(), String> {
    use okta_rbac_operator::demo::{Demo, USERS, access_table, kubectl_get_ogb};
    let shutdown = ShutdownSignal::install()?;
    println!(
        ">> starting the local Okta (example org), a control plane trusting it for OIDC, the operator, and the samples"
    );
    let demo = Demo::start(prefix).await?;
    println!(">> kubectl get ogb\n{}", kubectl_get_ogb(&demo)?);
    println!(
        ">> what each example user may do with their own ID token\n{}",
        access_table(&demo).await?
    );
    if once {
        return Ok(());
    }
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
    println!(">> stopping");
    Ok(())
}

async fn run_sim(args: SimArgs) -> Result<(), String> {
    let shutdown = ShutdownSignal::install()?;
    let text = std::fs::read_to_string(&args.seed)
        .map_err(|e| format!("reading the seed {}: {e}", args.seed.display()))?;
    let mut seed = Seed::from_yaml(&text).map_err(|e| format!("{}: {e}", args.seed.display()))?;
    if args.unlimited {
        seed.rate_limits.unlimited = true;
    }
    let sim = OktaSim::start(SimOptions {
        tls: !args.plain_http,
        listen: args.listen,
        ..SimOptions::new(seed)
    })
    .await
    .map_err(|e| e.to_string())?;
    if let Some(path) = &args.ca_out {
        sim.write_ca(path)
            .map_err(|e| format!("writing the CA to {}: {e}", path.display()))?;
        println!("CA: {}", path.display());
    }
    println!("org URL: {}", sim.base_url());
    println!("issuer: {}", sim.issuer("default"));
    println!("ready: press Ctrl-C to stop");
    shutdown.received().await;
    Ok(())
}

/// SIGINT and SIGTERM, registered before the process says it is ready, so that a signal
/// sent right after "ready" is a clean stop and not the default kill.
struct ShutdownSignal {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    fn install() -> Result<Self, String> {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind| signal(kind).map_err(|e| format!("installing a signal handler: {e}"));
        Ok(Self {
            interrupt: install(SignalKind::interrupt())?,
            terminate: install(SignalKind::terminate())?,
        })
    }

    async fn received(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
