//! Another project's operator, run as its own process against a control plane, for the
//! benchmark's side-by-side columns: its binary, arguments and environment, its output in
//! a log file, killed with the benchmark.

use crate::error::{LaunchError, io_error};
use crate::process::Watchdog;
use crate::procstat;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct PeerProcess {
    child: Child,
    watchdog: Watchdog,
    log: PathBuf,
}

impl PeerProcess {
    /// Starts `binary` with `args`, `KUBECONFIG` set to `kubeconfig`, and its output in `log`.
    pub fn start(
        binary: &Path,
        args: &[&str],
        kubeconfig: &Path,
        log: &Path,
    ) -> Result<Self, LaunchError> {
        if !binary.is_file() {
            return Err(LaunchError::MissingBinary {
                path: binary.to_path_buf(),
            });
        }
        let output =
            std::fs::File::create(log).map_err(io_error(format!("creating {}", log.display())))?;
        let errors = output
            .try_clone()
            .map_err(io_error(format!("opening {}", log.display())))?;
        let mut watchdog =
            Watchdog::start(None, None).map_err(io_error("starting the watchdog"))?;
        let child = Command::new(binary)
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .spawn()
            .map_err(io_error(format!("starting {}", binary.display())))?;
        watchdog.watch(child.id());
        Ok(Self {
            child,
            watchdog,
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn peak_memory_kib(&self) -> Option<u64> {
        procstat::peak_memory_kib(self.pid())
    }

    pub fn memory_kib(&self) -> Option<u64> {
        procstat::memory_kib(self.pid())
    }

    pub fn cpu_seconds(&self) -> f64 {
        procstat::cpu_seconds(self.pid())
    }

    /// The end of its log, for a failure message.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        self.watchdog.forget(self.child.id());
        let _ = self.child.wait();
    }
}
