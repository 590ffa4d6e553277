//! Child processes that never outlive the test: each component runs as a child with its
//! output in a log file, and a watchdog kills them all (and removes the working
//! directory) when this process goes away, even through a panic, SIGKILL or Ctrl-C.

use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};

/// Reads one pid per line (`-pid` forgets one) until its stdin closes, which happens
/// when the owning process exits for any reason; then kills what it remembers, runs the
/// teardown command (the node's: its containers, mounts, cgroups and network) and removes
/// the directory. It ignores the signals a terminal sends so it outlives Ctrl-C.
const WATCHDOG_SCRIPT: &str = r#"
trap '' INT TERM HUP
dir=$1
pids=
while IFS= read -r line; do
  case $line in
    -*) pids=$(printf '%s\n' $pids | grep -vx -- "${line#-}") ;;
    *) pids="$pids $line" ;;
  esac
done
[ -z "$pids" ] || kill -KILL $pids 2>/dev/null
[ -z "$2" ] || sh -c "$2"
[ -z "$dir" ] || rm -rf -- "$dir"
"#;

pub(crate) struct Watchdog {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Watchdog {
    /// `cleanup_dir` is removed when the watchdog fires (`None` keeps it for inspection),
    /// after the shell command `teardown` ran.
    pub(crate) fn start(cleanup_dir: Option<&Path>, teardown: Option<&str>) -> io::Result<Self> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("okta-rbac-watchdog")
            .arg(cleanup_dir.map(Path::as_os_str).unwrap_or_default())
            .arg(teardown.unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C to the test run must not stop the cleanup.
            .process_group(0)
            .spawn()?;
        let stdin = child.stdin.take();
        Ok(Self { child, stdin })
    }

    /// Kills `pid` when the owning process goes away.
    pub(crate) fn watch(&mut self, pid: u32) {
        self.send(pid.to_string());
    }

    /// Stops watching `pid`: call it before reaping the process.
    pub(crate) fn forget(&mut self, pid: u32) {
        self.send(format!("-{pid}"));
    }

    fn send(&mut self, line: String) {
        if let Some(stdin) = self.stdin.as_mut() {
            // A dead watchdog only costs the cleanup-on-crash guarantee; normal teardown
            // still stops every component itself.
            let _ = writeln!(stdin, "{line}");
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.wait();
    }
}

/// One running component (etcd, kube-apiserver, ...).
pub(crate) struct Component {
    pub(crate) name: &'static str,
    child: Child,
    binary: PathBuf,
    args: Vec<String>,
    pub(crate) log_path: PathBuf,
}

impl Component {
    pub(crate) fn spawn(
        name: &'static str,
        binary: &Path,
        args: &[String],
        log_path: PathBuf,
        watchdog: &mut Watchdog,
    ) -> io::Result<Self> {
        let child = Self::start(binary, args, &log_path, watchdog)?;
        Ok(Self {
            name,
            child,
            binary: binary.to_path_buf(),
            args: args.to_vec(),
            log_path,
        })
    }

    fn start(
        binary: &Path,
        args: &[String],
        log_path: &Path,
        watchdog: &mut Watchdog,
    ) -> io::Result<Child> {
        // Appended to, so that a restarted component's log follows its first life's.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)?;
        let child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        watchdog.watch(child.id());
        Ok(child)
    }

    /// Kills the process and starts it again with the same command line.
    pub(crate) fn respawn(&mut self, watchdog: &mut Watchdog) -> io::Result<()> {
        self.stop(watchdog);
        self.child = Self::start(&self.binary, &self.args, &self.log_path, watchdog)?;
        Ok(())
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some` once the process has exited.
    pub(crate) fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The log's error lines and its last lines, for error messages: a fatal error is
    /// often followed by lines that other goroutines still wrote.
    pub(crate) fn log_excerpt(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let errors: Vec<&str> = all
            .iter()
            .copied()
            .filter(|line| is_error_line(line))
            .collect();
        let tail = &all[all.len().saturating_sub(lines)..];
        let mut excerpt = String::new();
        if !errors.is_empty() {
            excerpt.push_str("errors:\n");
            excerpt.push_str(&errors[errors.len().saturating_sub(lines / 2)..].join("\n"));
            excerpt.push_str("\nlast lines:\n");
        }
        excerpt.push_str(&tail.join("\n"));
        excerpt
    }

    pub(crate) fn stop(&mut self, watchdog: &mut Watchdog) {
        let _ = self.child.kill();
        // Forget the pid before reaping it, so the watchdog can never kill a reused pid.
        watchdog.forget(self.child.id());
        let _ = self.child.wait();
    }
}

/// Ports below the kernel's ephemeral range (32768 and up by default), where no outgoing
/// connection of any process lands, and below the NodePort range (30000 and up): a port
/// the kernel hands out for `:0` is free at that instant only, and a client connection
/// elsewhere on the machine could take it before the component binds it.
const QUIET_PORTS: std::ops::Range<u16> = 20_000..30_000;

/// A free TCP port on every address, picked at random below the ephemeral range so that
/// neither outgoing connections nor other test processes are likely to take it before
/// the caller binds it.
pub fn free_port() -> io::Result<u16> {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    for _ in 0..200 {
        let port = rng.gen_range(QUIET_PORTS);
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return Ok(port);
        }
    }
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// klog's error and fatal lines (`E1123 ...`, `F1123 ...`), cobra's `Error: ...`, and
/// etcd's JSON error levels.
fn is_error_line(line: &str) -> bool {
    let klog = matches!(line.as_bytes(), [b'E' | b'F', d1, d2, d3, d4, b' ', ..]
        if [d1, d2, d3, d4].iter().all(|d| d.is_ascii_digit()));
    klog || line.starts_with("Error:")
        || line.contains(r#""level":"error""#)
        || line.contains(r#""level":"fatal""#)
}

#[cfg(test)]
mod tests {
    use super::is_error_line;

    #[test]
    fn recognises_the_error_lines_of_each_component() {
        assert!(is_error_line(
            r#"E1123 00:35:55.802086   23508 run.go:72] "command failed""#
        ));
        assert!(is_error_line("F0101 12:00:00.000000 1 main.go:1] boom"));
        assert!(is_error_line("Error: unknown flag: --no-such-flag"));
        assert!(is_error_line(r#"{"level":"fatal","msg":"listen failed"}"#));
        assert!(!is_error_line(
            "I1123 00:35:55.801970   23508 handler.go:309] Adding GroupVersion"
        ));
        assert!(!is_error_line("Everything is fine"));
    }
}
