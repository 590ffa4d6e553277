//! What /proc says about a running process: its memory and CPU time.

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// Peak resident memory (VmHWM) in KiB.
pub fn peak_memory_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// Resident memory now (VmRSS) in KiB.
pub fn memory_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// User plus system CPU seconds so far. /proc counts in USER_HZ, 100 on Linux's
/// mainstream architectures.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_cpu_time() {
        let pid = std::process::id();
        let now = memory_kib(pid).expect("VmRSS");
        let peak = peak_memory_kib(pid).expect("VmHWM");
        assert!(now > 0 && peak >= now, "{now} KiB now, {peak} KiB peak");
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(50) {}
        assert!(cpu_seconds(pid) > 0.0);
    }
}
