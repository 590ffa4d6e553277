//! Tools of other ecosystems, built from their Go modules (`make tools`) and driven here:
//! kstatus (how Flux sees an object), Argo CD's health evaluation, Helm, promtool and the
//! PromQL checker built on the Prometheus module; and the CRDs of the projects whose kinds
//! the chart renders, taken from their Go modules (`make third-party-crds`).

use crate::LaunchError;
use crate::error::io_error;
use crate::paths::tool;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs a tool that reads one JSON object per line and answers one JSON object per line.
fn per_line(name: &str, args: &[&str], objects: &[Value]) -> Result<Vec<Value>, LaunchError> {
    let binary = tool(name);
    if !binary.is_file() {
        return Err(LaunchError::MissingBinary { path: binary });
    }
    let mut child = Command::new(&binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_error(format!("running {name}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        for object in objects {
            writeln!(stdin, "{object}").map_err(io_error(format!("writing to {name}")))?;
        }
    }
    let output = child
        .wait_with_output()
        .map_err(io_error(format!("running {name}")))?;
    if !output.status.success() {
        return Err(LaunchError::Client(format!(
            "{name} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .map_err(|e| LaunchError::Client(format!("{name} answered {line:?}: {e}")))
        })
        .collect()
}

/// kstatus's verdict on each object (`Current`, `InProgress`, `Failed`, ...), as Flux's
/// health checks compute it, with its message.
pub fn kstatus(objects: &[Value]) -> Result<Vec<(String, String)>, LaunchError> {
    verdicts("kstatus", &[], objects)
}

/// Argo CD's health of each object (`Healthy`, `Progressing`, `Degraded`, `Suspended`,
/// ...) by the health script in the argocd-cm ConfigMap file `argocd_cm`.
pub fn argocd_health(
    argocd_cm: &std::path::Path,
    objects: &[Value],
) -> Result<Vec<(String, String)>, LaunchError> {
    let path = argocd_cm.display().to_string();
    verdicts("argocd-health", &[&path], objects)
}

fn verdicts(
    name: &str,
    args: &[&str],
    objects: &[Value],
) -> Result<Vec<(String, String)>, LaunchError> {
    per_line(name, args, objects)?
        .into_iter()
        .map(|answer| match answer["error"].as_str() {
            Some(error) => Err(LaunchError::Client(format!("{name}: {error}"))),
            None => Ok((
                answer["status"].as_str().unwrap_or_default().to_string(),
                answer["message"].as_str().unwrap_or_default().to_string(),
            )),
        })
        .collect()
}

/// The CRDs `make third-party-crds` took from other projects' Go modules (cert-manager,
/// Gateway API, the Prometheus Operator), to install on a test control plane.
pub fn third_party_crds() -> Result<Vec<CustomResourceDefinition>, LaunchError> {
    let dir = crate::paths::third_party_crds_dir();
    let entries = std::fs::read_dir(&dir)
        .map_err(|_| LaunchError::MissingThirdPartyCrds { path: dir.clone() })?;
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(io_error(format!("reading {}", path.display())))?;
            serde_yaml_ng::from_str(&text)
                .map_err(|e| LaunchError::Client(format!("{}: {e}", path.display())))
        })
        .collect()
}

/// Runs Helm with these arguments in the checkout; `Ok` holds its standard output, `Err`
/// its error output.
pub fn helm(args: &[&str]) -> Result<Result<String, String>, LaunchError> {
    run("helm", args, &crate::paths::checkout(), None)
}

/// Runs promtool with these arguments in `dir`; `Ok` holds its standard output, `Err` its
/// standard and error output.
pub fn promtool(
    args: &[&str],
    dir: &std::path::Path,
) -> Result<Result<String, String>, LaunchError> {
    run("promtool", args, dir, None)
}

/// Evaluates each `(name, PromQL expression)` against `scrape`, a scrape of /metrics
/// served with `content_type`: one answer per expression with its `error`,
/// `unknownMetrics` (selected metrics the scrape does not expose) and `series`.
pub fn promql_check(
    scrape: &str,
    content_type: &str,
    queries: &[(String, String)],
) -> Result<Vec<Value>, LaunchError> {
    let dir = tempfile::tempdir().map_err(io_error("a directory for promql-check"))?;
    let metrics = dir.path().join("metrics.txt");
    std::fs::write(&metrics, scrape).map_err(io_error("writing the scrape"))?;
    let input: Vec<Value> = queries
        .iter()
        .map(|(name, expr)| serde_json::json!({"name": name, "expr": expr}))
        .collect();
    let metrics = metrics.display().to_string();
    let args = ["-metrics", metrics.as_str(), "-content-type", content_type];
    let stdin = Value::Array(input).to_string();
    match run("promql-check", &args, dir.path(), Some(&stdin))? {
        Ok(stdout) => stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line).map_err(|e| {
                    LaunchError::Client(format!("promql-check answered {line:?}: {e}"))
                })
            })
            .collect(),
        Err(stderr) => Err(LaunchError::Client(format!(
            "promql-check failed: {stderr}"
        ))),
    }
}

/// Runs a tool in `dir`, with `stdin` as its input if given; `Ok` holds its standard
/// output, `Err` its standard and error output.
fn run(
    name: &str,
    args: &[&str],
    dir: &std::path::Path,
    stdin: Option<&str>,
) -> Result<Result<String, String>, LaunchError> {
    let binary = tool(name);
    if !binary.is_file() {
        return Err(LaunchError::MissingBinary { path: binary });
    }
    let mut child = Command::new(&binary)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_error(format!("running {name}")))?;
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.unwrap_or_default().as_bytes())
            .map_err(io_error(format!("writing to {name}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(io_error(format!("running {name}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    Ok(if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stdout}{stderr}"))
    })
}
