//! The request log: one line per request the local Okta answered, for tests and the
//! benchmark to count by kind, bucket and caller.

use serde::Serialize;

/// One line of the request log.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    /// The rate-limit bucket it counted against.
    pub bucket: Option<&'static str>,
    /// When it arrived and when it was answered (or the client gave up: status 499), in
    /// milliseconds since the epoch.
    pub started_ms: u64,
    pub finished_ms: u64,
    /// `X-Rate-Limit-Reset` of the answer, if it had one.
    pub rate_limit_reset: Option<u64>,
    /// Who called: the `Authorization` scheme with the API token's name or the service
    /// app's client id; for a token request that passed, the client id and its key's kid.
    pub caller: Option<String>,
}

/// The most of these requests that were in flight at one moment (an answer that ends
/// when another request starts frees its slot first).
pub fn most_in_flight<'a>(requests: impl IntoIterator<Item = &'a RequestRecord>) -> usize {
    let mut edges: Vec<(u64, i32)> = requests
        .into_iter()
        .flat_map(|r| [(r.started_ms, 1), (r.finished_ms, -1)])
        .collect();
    edges.sort();
    let mut in_flight = 0i32;
    let mut most = 0i32;
    for (_, change) in edges {
        in_flight += change;
        most = most.max(in_flight);
    }
    most as usize
}
