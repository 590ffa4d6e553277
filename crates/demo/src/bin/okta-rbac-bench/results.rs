//! What one size measured.

pub struct LimitResult {
    pub seconds: f64,
    pub writes: u64,
}

pub struct OperatorResult {
    pub seconds: f64,
    pub okta_requests: usize,
    pub writes: u64,
    pub peak_mib: f64,
    pub cpu_seconds: f64,
    pub quiet_writes: u64,
    pub quiet_okta_requests: usize,
}

pub struct SizeResult {
    pub objects: usize,
    pub limit: LimitResult,
    pub operator: OperatorResult,
}
