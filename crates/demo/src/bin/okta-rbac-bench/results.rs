//! What one size measured.

pub struct LimitResult {
    pub seconds: f64,
    /// The concurrency of the best run.
    pub concurrency: usize,
    pub writes: u64,
    /// The same bindings by server-side apply, at the same concurrency.
    pub apply_seconds: f64,
}

pub struct FloorResult {
    pub seconds: f64,
    /// The objects in flight of the best run.
    pub objects_at_once: usize,
}

pub struct PeerResult {
    pub seconds: f64,
    pub writes: u64,
    pub peak_mib: f64,
    pub steady_mib: f64,
    pub cpu_seconds: f64,
}

/// Percentiles of a few timings, in seconds.
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
}

impl Latency {
    pub fn of(mut seconds: Vec<f64>) -> Self {
        seconds.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let index = ((seconds.len() as f64 - 1.0) * q).round() as usize;
            seconds.get(index).copied().unwrap_or(f64::NAN)
        };
        Self {
            p50: at(0.5),
            p99: at(0.99),
        }
    }
}

pub struct OperatorResult {
    pub seconds: f64,
    pub okta_requests: usize,
    pub writes: u64,
    pub peak_mib: f64,
    /// Resident memory after the quiet resync.
    pub steady_mib: f64,
    pub cpu_seconds: f64,
    pub quiet_writes: u64,
    /// Okta requests an hour in steady state following the System Log: group requests
    /// and log reads in a quiet window, plus the hourly full re-verification.
    pub quiet_okta_requests_per_hour: f64,
    /// The same with the System Log turned off (every group verified each resync).
    pub quiet_okta_requests_per_hour_without_log: f64,
    /// One more object applied while the others are kept: until it is Ready.
    pub apply_to_ready: Latency,
    /// One object deleted: until its bindings are gone.
    pub delete_to_revoked: Latency,
    /// An object's group deleted in Okta: until its bindings are gone.
    pub group_deleted_to_revoked: f64,
    /// Objects that showed OktaRateLimited after the quiet resync.
    pub rate_limited: usize,
}

pub struct SizeResult {
    pub objects: usize,
    pub limit: LimitResult,
    pub floor: FloorResult,
    pub operator: OperatorResult,
    pub peer: Option<PeerResult>,
}
