//! Where the CPU went during a run: the control plane's processes, the operator, the
//! local Okta and the bench itself share the machine, and a run is only as fast as the
//! busiest of them lets it be.

use okta_rbac_testenv::procstat::cpu_seconds;

pub struct CpuMeter {
    processes: Vec<(String, u32, f64)>,
}

impl CpuMeter {
    /// Starts counting for these processes (name, pid).
    pub fn start(processes: impl IntoIterator<Item = (String, u32)>) -> Self {
        Self {
            processes: processes
                .into_iter()
                .map(|(name, pid)| {
                    let now = cpu_seconds(pid);
                    (name, pid, now)
                })
                .collect(),
        }
    }

    /// CPU seconds each used since the start, over `wall` seconds.
    pub fn report(&self, wall: f64) -> String {
        let used: Vec<String> = self
            .processes
            .iter()
            .map(|(name, pid, start)| {
                format!("{name} {:.1} s", (cpu_seconds(*pid) - start).max(0.0))
            })
            .collect();
        format!("CPU over {wall:.1} s: {}", used.join(", "))
    }
}

/// The control plane's processes and the bench's own (which runs the local Okta too).
pub fn plane_processes(plane: &okta_rbac_testenv::ControlPlane) -> Vec<(String, u32)> {
    plane
        .processes()
        .into_iter()
        .map(|(name, pid)| (name.to_string(), pid))
        .chain(std::iter::once(("bench".to_string(), std::process::id())))
        .collect()
}
