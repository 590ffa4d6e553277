//! Okta's rate limits: a per-minute budget for each endpoint bucket, shared by the whole
//! org, and a limit on concurrent requests. Every answer says where the bucket stands.

use super::seed::RateLimitSettings;
use axum::http::Method;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// `GET /api/v1/groups` (list, `q`, `search`, `filter`).
    Groups,
    /// `GET /api/v1/groups/{id}`.
    Group,
    /// `GET /api/v1/groups/{id}/users`.
    GroupUsers,
    /// `GET /api/v1/logs` (the System Log).
    Logs,
    /// `/api/v1/eventHooks` (every method).
    EventHooks,
    /// `POST /oauth2/v1/token` (service apps).
    OrgToken,
    /// `/oauth2/{server}/...` (OIDC logins).
    AuthorizationServer,
    /// Anything else under `/api/v1`.
    Other,
}

impl Bucket {
    pub const ALL: [Bucket; 8] = [
        Bucket::Groups,
        Bucket::Group,
        Bucket::GroupUsers,
        Bucket::Logs,
        Bucket::EventHooks,
        Bucket::OrgToken,
        Bucket::AuthorizationServer,
        Bucket::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bucket::Groups => "groups",
            Bucket::Group => "group",
            Bucket::GroupUsers => "group-users",
            Bucket::Logs => "logs",
            Bucket::EventHooks => "event-hooks",
            Bucket::OrgToken => "oauth2-token",
            Bucket::AuthorizationServer => "authorization-server",
            Bucket::Other => "other",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// A developer org's budgets.
    fn default_per_minute(self) -> u32 {
        match self {
            Bucket::Groups | Bucket::Group | Bucket::GroupUsers | Bucket::EventHooks => 100,
            Bucket::Logs => 60,
            Bucket::OrgToken | Bucket::AuthorizationServer | Bucket::Other => 600,
        }
    }

    /// The bucket a request counts against; `None` for the simulator's own admin API.
    pub fn of(method: &Method, path: &str) -> Option<Self> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match segments.as_slice() {
            ["api", "v1", "groups"] if method == Method::GET => Some(Bucket::Groups),
            ["api", "v1", "groups", _] if method == Method::GET => Some(Bucket::Group),
            ["api", "v1", "groups", _, "users"] if method == Method::GET => {
                Some(Bucket::GroupUsers)
            }
            ["api", "v1", "logs"] if method == Method::GET => Some(Bucket::Logs),
            ["api", "v1", "eventHooks", ..] => Some(Bucket::EventHooks),
            ["api", "v1", ..] => Some(Bucket::Other),
            ["oauth2", "v1", "token"] => Some(Bucket::OrgToken),
            ["oauth2", ..] => Some(Bucket::AuthorizationServer),
            _ => None,
        }
    }
}

/// What the `X-Rate-Limit-*` headers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    pub limit: u32,
    pub remaining: u32,
    /// Epoch seconds at which the bucket refills.
    pub reset: u64,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    started: u64,
    used: u32,
}

const UNLIMITED: u32 = 1_000_000;

pub struct RateLimiter {
    settings: Mutex<RateLimitSettings>,
    windows: Mutex<HashMap<Bucket, Window>>,
    in_flight: AtomicU32,
}

/// Held while a request runs; counts it against the concurrency limit.
pub struct InFlight<'a>(&'a AtomicU32);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings) -> Self {
        Self {
            settings: Mutex::new(settings),
            windows: Mutex::new(HashMap::new()),
            in_flight: AtomicU32::new(0),
        }
    }

    pub fn set_settings(&self, settings: RateLimitSettings) {
        *lock(&self.settings) = settings;
        lock(&self.windows).clear();
    }

    pub fn settings(&self) -> RateLimitSettings {
        lock(&self.settings).clone()
    }

    /// The bucket's budget per window and the window's length; `None` when unlimited.
    fn budget(&self, bucket: Bucket) -> Option<(u32, u64)> {
        let settings = lock(&self.settings);
        if settings.unlimited {
            return None;
        }
        let limit = settings
            .per_minute
            .get(bucket.name())
            .copied()
            .unwrap_or_else(|| bucket.default_per_minute());
        Some((limit, settings.window_seconds.max(1)))
    }

    /// Counts one request against `bucket` at `now` (epoch seconds): `Ok` while the
    /// window has budget left, `Err` (a 429) once it is used up.
    pub fn admit(&self, bucket: Bucket, now: u64) -> Result<Standing, Standing> {
        let Some((limit, window_seconds)) = self.budget(bucket) else {
            return Ok(Standing {
                limit: UNLIMITED,
                remaining: UNLIMITED,
                reset: now + 60,
            });
        };
        let mut windows = lock(&self.windows);
        let window = windows.entry(bucket).or_insert(Window {
            started: now,
            used: 0,
        });
        if now >= window.started + window_seconds {
            *window = Window {
                started: now,
                used: 0,
            };
        }
        let reset = window.started + window_seconds;
        if window.used >= limit {
            return Err(Standing {
                limit,
                remaining: 0,
                reset,
            });
        }
        window.used += 1;
        Ok(Standing {
            limit,
            remaining: limit - window.used,
            reset,
        })
    }

    /// Uses up the current window of `bucket` (a fault: a burst from another client).
    pub fn exhaust(&self, bucket: Bucket, now: u64) {
        let Some((limit, window_seconds)) = self.budget(bucket) else {
            return;
        };
        let mut windows = lock(&self.windows);
        let window = windows.entry(bucket).or_insert(Window {
            started: now,
            used: 0,
        });
        if now >= window.started + window_seconds {
            *window = Window {
                started: now,
                used: 0,
            };
        }
        window.used = limit;
    }

    /// Takes a concurrency slot, or `None` when the org is at its limit.
    pub fn enter(&self) -> Option<InFlight<'_>> {
        let limit = {
            let settings = lock(&self.settings);
            if settings.unlimited {
                u32::MAX
            } else {
                settings.concurrency
            }
        };
        let previous = self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(&self.in_flight);
        (previous < limit).then_some(guard)
    }
}

/// A poisoned lock only means another request panicked; the data is still usable.
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn limiter(per_minute: u32, concurrency: u32) -> RateLimiter {
        RateLimiter::new(RateLimitSettings {
            unlimited: false,
            concurrency,
            window_seconds: 60,
            per_minute: BTreeMap::from([("groups".to_string(), per_minute)]),
        })
    }

    #[test]
    fn a_bucket_counts_down_then_refuses_until_its_reset() {
        let limits = limiter(3, 10);
        let first = limits.admit(Bucket::Groups, 1000).expect("1");
        assert_eq!((first.limit, first.remaining, first.reset), (3, 2, 1060));
        limits.admit(Bucket::Groups, 1010).expect("2");
        assert_eq!(limits.admit(Bucket::Groups, 1020).expect("3").remaining, 0);
        let refused = limits
            .admit(Bucket::Groups, 1059)
            .expect_err("4th in the window");
        assert_eq!(refused.reset, 1060);
        assert_eq!(
            limits
                .admit(Bucket::Groups, 1060)
                .expect("new window")
                .remaining,
            2
        );
        assert!(
            limits.admit(Bucket::Group, 1000).is_ok(),
            "buckets are separate"
        );
    }

    #[test]
    fn exhausting_a_bucket_refuses_until_reset() {
        let limits = limiter(5, 10);
        limits.admit(Bucket::Groups, 100).expect("first");
        limits.exhaust(Bucket::Groups, 101);
        assert!(limits.admit(Bucket::Groups, 159).is_err());
        assert!(limits.admit(Bucket::Groups, 160).is_ok());
    }

    #[test]
    fn concurrency_slots_are_returned() {
        let limits = limiter(5, 2);
        let a = limits.enter().expect("a");
        let b = limits.enter().expect("b");
        assert!(limits.enter().is_none());
        drop(a);
        assert!(limits.enter().is_some());
        drop(b);
    }

    #[test]
    fn buckets_of_requests() {
        assert_eq!(
            Bucket::of(&Method::GET, "/api/v1/groups"),
            Some(Bucket::Groups)
        );
        assert_eq!(
            Bucket::of(&Method::GET, "/api/v1/groups/00g1"),
            Some(Bucket::Group)
        );
        assert_eq!(
            Bucket::of(&Method::GET, "/api/v1/groups/00g1/users"),
            Some(Bucket::GroupUsers)
        );
        assert_eq!(
            Bucket::of(&Method::POST, "/oauth2/v1/token"),
            Some(Bucket::OrgToken)
        );
        assert_eq!(
            Bucket::of(&Method::GET, "/oauth2/default/v1/keys"),
            Some(Bucket::AuthorizationServer)
        );
        assert_eq!(
            Bucket::of(&Method::POST, "/api/v1/eventHooks/who1/lifecycle/verify"),
            Some(Bucket::EventHooks)
        );
        assert_eq!(Bucket::of(&Method::GET, "/_sim/requests"), None);
    }
}
