use clap::Parser;
use okta_rbac_operator::cli::{Cli, Command, LogFormat, RunArgs, version_text};
use std::process::ExitCode;
use tokio::signal::unix::{SignalKind, signal};

/// jemalloc rather than the C library's allocator: it returns what a burst (thousands of
/// objects at once, a resync) used instead of keeping each thread arena at its peak, and
/// fragments less under the caches' churn. Measured with `make bench`: see the
/// performance docs.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match log_filter(cli.log_level.as_deref()) {
        Ok(filter) => filter,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    // Colours only on a terminal: `kubectl logs` and log collectors get plain text.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Plain => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let result = match cli.command {
        Command::Run(args) => run(*args).await,
        Command::Version => {
            println!("{}", version_text());
            Ok(())
        }
        Command::AuthorizationConfig(args) => {
            let config = okta_rbac_operator::authorizer::config::authorization_configuration(&args);
            serde_json::to_string_pretty(&config)
                .map(|json| println!("{json}"))
                .map_err(|e| e.to_string())
        }
        Command::Crd => okta_rbac_api::crd_yaml()
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

/// `--log-level`, else RUST_LOG, else info.
fn log_filter(level: Option<&str>) -> Result<tracing_subscriber::EnvFilter, String> {
    let directives = match level {
        Some(level) => level.to_string(),
        None => std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
    };
    tracing_subscriber::EnvFilter::try_new(&directives)
        .map_err(|e| format!("--log-level {directives:?} is not a level or filter: {e}"))
}

async fn run(args: RunArgs) -> Result<(), String> {
    // Installed before anything can say "started", so that a SIGTERM right after it is a
    // clean stop and not the default kill.
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let shutdown = async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    };
    let config = args.into_config()?;
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("connecting to Kubernetes: {e}"))?;
    okta_rbac_operator::runtime::run(
        client,
        config,
        |running| tracing::info!(metrics = %running.metrics_address, "started"),
        shutdown,
    )
    .await
    .map_err(|e| e.to_string())
}
