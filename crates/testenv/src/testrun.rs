//! Runs the workspace's test executables side by side. Most of them wait on control
//! planes, kubelets, Okta's rate-limit windows and timers rather than compute, so a few at
//! once on two cores take a fraction of the time they take one after another, as `cargo
//! test` runs them. Each runs in its package's directory, as cargo runs it, its output in
//! a log of its own that is printed when it fails; the longest (by the last run's times)
//! start first; at the end, a table of every executable's wall time, slowest first.
//!
//! Not cargo-nextest: it runs each test in a process of its own, while the tests of one
//! executable here share one control plane, started once per process.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A test executable cargo built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executable {
    /// `package/target`, such as `okta-rbac-operator/on_node`.
    pub name: String,
    pub path: PathBuf,
    /// The package's directory, where cargo runs its tests.
    pub dir: PathBuf,
    pub package: String,
}

/// The test executables among cargo's `--message-format=json` messages.
pub fn executables(messages: impl BufRead) -> Vec<Executable> {
    let mut found = Vec::new();
    for line in messages.lines().map_while(Result::ok) {
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" || message["profile"]["test"] != true {
            continue;
        }
        let (Some(path), Some(manifest)) = (
            message["executable"].as_str(),
            message["manifest_path"].as_str(),
        ) else {
            continue;
        };
        let dir = Path::new(manifest)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let package = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let package = package_name(&message).unwrap_or(package);
        let target = message["target"]["name"].as_str().unwrap_or_default();
        // A package's library and an integration test may share a name: the unit tests of
        // its library and binaries say what they are.
        let kind = message["target"]["kind"][0].as_str().unwrap_or("test");
        let name = match kind {
            "test" => format!("{package}/{target}"),
            other => format!("{package}/{target} ({other})"),
        };
        found.push(Executable {
            name,
            path: PathBuf::from(path),
            dir,
            package,
        });
    }
    found
}

/// The package name from cargo's package id (`path+file:///...#name@0.1.0`, or
/// `...#0.1.0` when the name is the directory's).
fn package_name(message: &Value) -> Option<String> {
    let id = message["package_id"].as_str()?;
    let (_, fragment) = id.rsplit_once('#')?;
    let name = fragment.split_once('@').map(|(name, _)| name)?;
    Some(name.to_string())
}

/// How one executable ran.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub name: String,
    pub passed: bool,
    pub wall: Duration,
    pub log: PathBuf,
    /// `test result:` lines of libtest.
    pub summary: String,
}

/// The longest first, by `times` (seconds, from an earlier run); those never timed first
/// of all, since nothing says they are short.
pub fn order(mut executables: Vec<Executable>, times: &BTreeMap<String, f64>) -> Vec<Executable> {
    executables.sort_by(|a, b| {
        let time = |e: &Executable| times.get(&e.name).copied().unwrap_or(f64::MAX);
        time(b)
            .total_cmp(&time(a))
            .then_with(|| a.name.cmp(&b.name))
    });
    executables
}

/// Runs every executable, `jobs` at a time, each with its output in `logs`.
pub fn run(executables: Vec<Executable>, jobs: usize, logs: &Path) -> Vec<Outcome> {
    let queue = Arc::new(Mutex::new(executables.into_iter()));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..jobs.max(1))
        .map(|_| {
            let queue = Arc::clone(&queue);
            let outcomes = Arc::clone(&outcomes);
            let logs = logs.to_path_buf();
            std::thread::spawn(move || {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some(executable) = next else { return };
                    let outcome = run_one(&executable, &logs);
                    println!(
                        "{} {} ({:.0}s){}",
                        if outcome.passed { "ok    " } else { "FAILED" },
                        outcome.name,
                        outcome.wall.as_secs_f64(),
                        if outcome.summary.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", outcome.summary)
                        }
                    );
                    outcomes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(outcome);
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    let mut outcomes = std::mem::take(&mut *outcomes.lock().unwrap_or_else(|e| e.into_inner()));
    outcomes.sort_by_key(|o| std::cmp::Reverse(o.wall));
    outcomes
}

fn run_one(executable: &Executable, logs: &Path) -> Outcome {
    let file_name: String = executable
        .name
        .replace('/', "__")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let log = logs.join(format!("{file_name}.log"));
    let started = Instant::now();
    let file = std::fs::File::create(&log);
    let status = file.and_then(|file| {
        let errors = file.try_clone()?;
        Command::new(&executable.path)
            .current_dir(&executable.dir)
            // kubectl's discovery cache, keyed by host and port, is not to be shared by
            // control planes that run side by side and reuse each other's ports.
            .env("KUBECACHEDIR", logs.join(format!("{file_name}.kube-cache")))
            .env("CARGO_MANIFEST_DIR", &executable.dir)
            .env("CARGO_PKG_NAME", &executable.package)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(errors)
            .status()
    });
    let wall = started.elapsed();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let summary = text
        .lines()
        .filter(|l| l.starts_with("test result:"))
        .map(|l| l.trim_start_matches("test result: ").to_string())
        .collect::<Vec<_>>()
        .join("; ");
    let passed = match status {
        Ok(status) => status.success(),
        Err(error) => {
            let _ = std::fs::write(
                &log,
                format!("could not run {}: {error}", executable.path.display()),
            );
            false
        }
    };
    Outcome {
        name: executable.name.clone(),
        passed,
        wall,
        log,
        summary,
    }
}

/// The table printed at the end: every executable, slowest first.
pub fn table(outcomes: &[Outcome], wall: Duration) -> String {
    let width = outcomes
        .iter()
        .map(|o| o.name.len())
        .max()
        .unwrap_or(10)
        .max(10);
    let mut out = format!("{:<width$}  result  wall\n", "test executable");
    for outcome in outcomes {
        out += &format!(
            "{:<width$}  {:<6}  {:>5.0}s\n",
            outcome.name,
            if outcome.passed { "ok" } else { "FAILED" },
            outcome.wall.as_secs_f64()
        );
    }
    let sum: f64 = outcomes.iter().map(|o| o.wall.as_secs_f64()).sum();
    out += &format!(
        "{} executables, {} failed: {:.0}s of wall time for {:.0}s of tests\n",
        outcomes.len(),
        outcomes.iter().filter(|o| !o.passed).count(),
        wall.as_secs_f64(),
        sum
    );
    out
}

/// Times by executable, as `order` reads them, from a file of `name seconds` lines.
pub fn read_times(path: &Path) -> BTreeMap<String, f64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (name, seconds) = line.rsplit_once(' ')?;
            Some((name.to_string(), seconds.parse().ok()?))
        })
        .collect()
}

pub fn write_times(path: &Path, outcomes: &[Outcome]) -> std::io::Result<()> {
    let text: String = outcomes
        .iter()
        .map(|o| format!("{} {:.1}\n", o.name, o.wall.as_secs_f64()))
        .collect();
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(name: &str, package: &str, test: bool) -> String {
        let kind = if name == "okta_rbac_operator" {
            "lib"
        } else {
            "test"
        };
        serde_json::json!({
            "reason": "compiler-artifact",
            "package_id": format!("path+file:///w/crates/{package}#okta-rbac-{package}@0.1.0"),
            "manifest_path": format!("/w/crates/{package}/Cargo.toml"),
            "target": {"name": name, "kind": [kind]},
            "profile": {"test": test},
            "executable": format!("/w/target/debug/deps/{name}-abc"),
        })
        .to_string()
    }

    #[test]
    fn only_test_executables_are_run_each_from_its_package() {
        let messages = [
            artifact("on_node", "operator", true),
            artifact("okta_rbac_operator", "operator", false),
            artifact("okta_rbac_operator", "operator", true),
            r#"{"reason":"build-finished","success":true}"#.to_string(),
            artifact("tutorial", "demo", true),
        ]
        .join("\n");
        let found = executables(messages.as_bytes());
        let names: Vec<&str> = found.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "okta-rbac-operator/on_node",
                "okta-rbac-operator/okta_rbac_operator (lib)",
                "okta-rbac-demo/tutorial"
            ]
        );
        assert_eq!(found[0].dir, PathBuf::from("/w/crates/operator"));
    }

    #[test]
    fn the_longest_and_the_untimed_start_first() {
        let make = |name: &str| Executable {
            name: name.into(),
            path: PathBuf::new(),
            dir: PathBuf::new(),
            package: String::new(),
        };
        let times = BTreeMap::from([("a".to_string(), 5.0), ("b".to_string(), 50.0)]);
        let ordered: Vec<String> = order(vec![make("a"), make("b"), make("new")], &times)
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(ordered, ["new", "b", "a"]);
    }

    #[test]
    fn a_failing_executable_fails_and_its_log_is_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let make = |name: &str, program: &str| Executable {
            name: name.into(),
            path: PathBuf::from(program),
            dir: dir.path().to_path_buf(),
            package: "p".into(),
        };
        let outcomes = run(
            vec![make("p/yes", "/bin/true"), make("p/no", "/bin/false")],
            2,
            dir.path(),
        );
        let passed: BTreeMap<&str, bool> = outcomes
            .iter()
            .map(|o| (o.name.as_str(), o.passed))
            .collect();
        assert_eq!(passed, BTreeMap::from([("p/no", false), ("p/yes", true)]));
        assert!(outcomes.iter().all(|o| o.log.is_file()));
        assert!(table(&outcomes, Duration::from_secs(1)).contains("2 executables, 1 failed"));
    }
}
