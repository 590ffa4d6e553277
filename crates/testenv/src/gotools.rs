//! Tools of other ecosystems, built from their Go modules (`make tools`) and driven here:
//! kstatus (how Flux sees an object), Argo CD's health evaluation, Helm.

use crate::LaunchError;
use crate::error::io_error;
use crate::paths::tool;
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

/// Runs Helm with these arguments; `Ok` holds its standard output, `Err` its error output.
pub fn helm(args: &[&str]) -> Result<Result<String, String>, LaunchError> {
    let binary = tool("helm");
    if !binary.is_file() {
        return Err(LaunchError::MissingBinary { path: binary });
    }
    let output = Command::new(&binary)
        .args(args)
        .current_dir(crate::paths::checkout())
        .output()
        .map_err(io_error("running helm"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    Ok(if output.status.success() {
        Ok(stdout)
    } else {
        Err(stderr)
    })
}
