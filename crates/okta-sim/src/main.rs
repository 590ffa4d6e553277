//! `okta-sim`: the local Okta on its own, until Ctrl-C or SIGTERM.

use clap::Parser;
use okta_sim::{OktaSim, Seed, SimOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::signal::unix::{SignalKind, signal};

/// Runs the local Okta (Management API, OAuth service apps, OIDC issuer) until Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "okta-sim", version)]
struct Args {
    /// The org to start with: users, groups, tokens, clients, authorization servers.
    #[arg(long, default_value = "examples/okta-org.yaml")]
    seed: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Write the CA that signed the HTTPS certificate here (for --oidc-ca-file or the
    /// operator's --okta-ca-file).
    #[arg(long)]
    ca_out: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS (the kube-apiserver will not trust it).
    #[arg(long)]
    plain_http: bool,
    /// Turn rate limits off (benchmarks).
    #[arg(long)]
    unlimited: bool,
    /// Trust the certificates in this PEM file, besides the simulator's own CA, when
    /// calling event hooks (repeatable).
    #[arg(long, value_name = "PEM_FILE")]
    event_hook_ca_file: Vec<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    // Installed before "ready" is printed, so that a signal sent right after it is a clean
    // stop and not the default kill.
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
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
    for path in &args.event_hook_ca_file {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        sim.trust_hook_roots(&pem)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.ca_out {
        sim.write_ca(path)
            .map_err(|e| format!("writing the CA to {}: {e}", path.display()))?;
        println!("CA: {}", path.display());
    }
    println!("org URL: {}", sim.base_url());
    println!("issuer: {}", sim.issuer("default"));
    println!("ready: press Ctrl-C to stop");
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    Ok(())
}
