//! `okta-rbac-test-run`: the workspace's test executables, several at once (see
//! `okta_rbac_testenv::testrun`). Reads cargo's `--message-format=json` messages on stdin:
//!
//! ```sh
//! cargo test --workspace --no-run --message-format=json-render-diagnostics \
//!   | okta-rbac-test-run --jobs 3 --logs target/test-logs
//! ```

use clap::Parser;
use okta_rbac_testenv::testrun;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, Parser)]
#[command(name = "okta-rbac-test-run", version)]
struct Args {
    /// How many executables run at once.
    #[arg(long, default_value_t = 3)]
    jobs: usize,
    /// Where each executable's output goes, and the last run's times.
    #[arg(long)]
    logs: PathBuf,
    /// Run only executables whose name contains this.
    #[arg(long)]
    only: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(error) = std::fs::create_dir_all(&args.logs) {
        eprintln!("error: creating {}: {error}", args.logs.display());
        return ExitCode::FAILURE;
    }
    let mut executables = testrun::executables(std::io::stdin().lock());
    if let Some(only) = &args.only {
        executables.retain(|e| e.name.contains(only.as_str()));
    }
    if executables.is_empty() {
        eprintln!("error: no test executables in cargo's messages on stdin");
        return ExitCode::FAILURE;
    }
    let times_file = args.logs.join("times");
    let times = testrun::read_times(&times_file);
    let ordered = testrun::order(executables, &times);
    println!(
        ">> {} test executables, {} at a time; their output in {}",
        ordered.len(),
        args.jobs,
        args.logs.display()
    );
    let started = Instant::now();
    let outcomes = testrun::run(ordered, args.jobs, &args.logs);
    let wall = started.elapsed();
    if args.only.is_none()
        && let Err(error) = testrun::write_times(&times_file, &outcomes)
    {
        eprintln!("warning: writing {}: {error}", times_file.display());
    }
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.passed).collect();
    for outcome in &failed {
        println!(
            "\n===== {} failed: {} =====",
            outcome.name,
            outcome.log.display()
        );
        print!(
            "{}",
            std::fs::read_to_string(&outcome.log).unwrap_or_default()
        );
    }
    print!("\n{}", testrun::table(&outcomes, wall));
    let table_file = args.logs.join("table");
    let _ = std::fs::write(&table_file, testrun::table(&outcomes, wall));
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
