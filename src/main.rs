use clap::Parser;
use okta_rbac_operator::cli::{Cli, Command, SimArgs, version_text};
use okta_rbac_operator::controlplane::{ControlPlane, ControlPlaneOptions};
use okta_rbac_operator::sim::{OktaSim, Seed, SimOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Version => {
            println!("{}", version_text());
            Ok(())
        }
        Command::Controlplane {
            kubeconfig_out,
            keep_dir,
        } => run_controlplane(kubeconfig_out, keep_dir).await,
        Command::Sim(args) => run_sim(args).await,
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
