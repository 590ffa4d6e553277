//! Injected trouble: added latency, a share of 5xx answers, requests that hang, and a
//! full outage for a time window.

use super::limits::lock;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSettings {
    /// Added to every API and OAuth request.
    #[serde(default)]
    pub latency_ms: u64,
    /// Share (0..=1) of requests answered with a 500.
    #[serde(default)]
    pub error_rate: f64,
    /// Share (0..=1) of requests that hang (no answer for ten minutes).
    #[serde(default)]
    pub hang_rate: f64,
    /// Every request is answered with a 503 for this long from now.
    #[serde(default)]
    pub outage_seconds: u64,
    /// The rate-limit buckets the faults hit (`oauth2-token`: the service apps'
    /// token endpoint); empty: every request.
    #[serde(default)]
    pub buckets: Vec<String>,
}

/// What happens to one request.
pub struct Fault {
    pub latency: Duration,
    pub server_error: bool,
    pub hang: bool,
    pub outage: bool,
}

#[derive(Default)]
pub struct Faults {
    inner: Mutex<Option<(FaultSettings, Instant)>>,
}

impl Faults {
    pub fn set(&self, settings: FaultSettings) {
        *lock(&self.inner) =
            (settings != FaultSettings::default()).then(|| (settings, Instant::now()));
    }

    pub fn get(&self) -> FaultSettings {
        lock(&self.inner)
            .as_ref()
            .map(|(s, _)| s.clone())
            .unwrap_or_default()
    }

    /// What happens to a request counted against `bucket`.
    pub fn draw(&self, bucket: &str) -> Fault {
        let settings = lock(&self.inner)
            .clone()
            .filter(|(s, _)| s.buckets.is_empty() || s.buckets.iter().any(|b| b == bucket));
        let Some((settings, since)) = settings else {
            return Fault {
                latency: Duration::ZERO,
                server_error: false,
                hang: false,
                outage: false,
            };
        };
        let mut rng = rand::thread_rng();
        Fault {
            latency: Duration::from_millis(settings.latency_ms),
            server_error: settings.error_rate > 0.0 && rng.r#gen::<f64>() < settings.error_rate,
            hang: settings.hang_rate > 0.0 && rng.r#gen::<f64>() < settings.hang_rate,
            outage: since.elapsed() < Duration::from_secs(settings.outage_seconds),
        }
    }
}
