//! The names waiting to be verified, and when they go out: lookups that arrive close
//! together share a request, and a burst (a GitOps sync, a restart) goes out in full
//! requests of [`NAMES_PER_SEARCH`] names rather than one per coalescing window. Pure
//! timing policy: no Okta here, so that it is tested on tokio's paused clock.

use super::client::NAMES_PER_SEARCH;
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Lookups arriving within this window share a request.
const COALESCE: Duration = Duration::from_millis(25);

/// The longest a batch waits to fill while names keep arriving. Objects created at a
/// steady 25 a second or more (a GitOps sync of thousands) then go out 50 names per
/// request; with half-full requests, 5,000 new objects would need twice the tightest
/// org's 100 searches a minute, and half of them would wait out a window and say so.
const LONGEST_GATHER: Duration = Duration::from_secs(2);

/// Pending names from which a gathering counts as a burst; so does a gathering that
/// starts within [`BURST_MEMORY`] of a batch of that many. Objects applied one at a
/// time (batches of one) are never held back.
const BURST: usize = 5;
const BURST_MEMORY: Duration = Duration::from_millis(500);

/// Coalescing windows without a new name that end a burst's gathering.
const BURST_QUIET_WINDOWS: u32 = 8;

/// The names asked for and not yet sent.
#[derive(Default)]
pub struct Batching {
    pending: Mutex<HashSet<String>>,
    wake: Notify,
    /// When the last batch went out, and how many names it had.
    last_batch: Mutex<Option<(Instant, usize)>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Batching {
    /// Asks for `name` in the next batch.
    pub fn ask(&self, name: &str) {
        if lock(&self.pending).insert(name.to_string()) {
            self.wake.notify_one();
        }
    }

    /// Puts names back for a later batch (refused for the rate limit), without waking
    /// the batcher: it wakes itself when the window resets.
    pub fn put_back(&self, names: impl IntoIterator<Item = String>) {
        lock(&self.pending).extend(names);
    }

    /// Wakes the batcher if names are waiting.
    pub fn wake_if_pending(&self) {
        if !lock(&self.pending).is_empty() {
            self.wake.notify_one();
        }
    }

    /// Keeps only the pending names `keep` accepts.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        lock(&self.pending).retain(|name| keep(name));
    }

    /// The next batch's names: waits to be woken, then gathers (see [`Self::gather`]).
    /// Empty when woken with nothing pending.
    pub async fn next_batch(&self) -> HashSet<String> {
        self.wake.notified().await;
        let burst_continues = self.gather().await;
        let names = self.take(burst_continues);
        if !names.is_empty() {
            *lock(&self.last_batch) = Some((Instant::now(), names.len()));
        }
        names
    }

    /// Waits while names keep arriving, so that a burst goes out in full requests: until
    /// a full request's worth is pending, the names stop coming, or [`LONGEST_GATHER`]
    /// has passed. A few lookups go after one quiet window; a burst (many names, or
    /// names soon after a batch of many) only after [`BURST_QUIET_WINDOWS`] of them,
    /// because its names arrive in clumps (watch events, the apiserver's latency) with
    /// gaps longer than one window.
    ///
    /// Returns whether names were still arriving when it stopped (a full request's worth
    /// was pending).
    async fn gather(&self) -> bool {
        let started = Instant::now();
        let recent = lock(&self.last_batch)
            .is_some_and(|(at, names)| names >= BURST && at.elapsed() < BURST_MEMORY);
        let mut seen = lock(&self.pending).len();
        let mut quiet = 0;
        while started.elapsed() < LONGEST_GATHER {
            tokio::time::sleep(COALESCE).await;
            let pending = lock(&self.pending).len();
            if pending >= NAMES_PER_SEARCH {
                return true;
            }
            if pending > seen {
                seen = pending;
                quiet = 0;
                continue;
            }
            quiet += 1;
            if (pending < BURST && !recent) || quiet >= BURST_QUIET_WINDOWS {
                return false;
            }
        }
        false
    }

    /// The pending names. While a burst continues, only whole requests' worth: the rest
    /// waits for the names still coming, instead of going out as a small request of its
    /// own (at 50 names a request, a sync of 5,000 objects needs the whole minute of the
    /// tightest org's budget, with no room for remainders).
    fn take(&self, burst_continues: bool) -> HashSet<String> {
        let mut pending = lock(&self.pending);
        let mut names: Vec<String> = pending.drain().collect();
        if burst_continues {
            let rest = names.len() % NAMES_PER_SEARCH;
            pending.extend(names.drain(names.len() - rest..));
        }
        names.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// The sizes of the batches taken, as the directory takes them, until `total` names
    /// have gone out.
    async fn batch_sizes(
        batching: Arc<Batching>,
        feeding: tokio::task::JoinHandle<()>,
        total: usize,
    ) -> Vec<usize> {
        let taker = tokio::spawn({
            let batching = batching.clone();
            async move {
                let mut sizes = Vec::new();
                loop {
                    let names = batching.next_batch().await;
                    if !names.is_empty() {
                        sizes.push(names.len());
                    }
                    batching.wake_if_pending();
                    if sizes.iter().sum::<usize>() == total {
                        return sizes;
                    }
                }
            }
        });
        feeding.await.expect("feeder");
        taker.await.expect("taker")
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_arriving_in_clumps_goes_out_in_full_requests() {
        let batching = Arc::new(Batching::default());
        // As a GitOps sync's objects arrive on the watch: clumps of 7, with gaps longer
        // than one coalescing window.
        let feeding = tokio::spawn({
            let batching = batching.clone();
            async move {
                for n in 0..500 {
                    batching.ask(&format!("k8s-burst-{n:03}"));
                    if n % 7 == 6 {
                        tokio::time::sleep(Duration::from_millis(40)).await;
                    }
                }
            }
        });
        let sizes = batch_sizes(batching, feeding, 500).await;
        let (last, whole) = sizes.split_last().expect("batches");
        assert!(
            whole.iter().all(|n| n % NAMES_PER_SEARCH == 0),
            "every batch but the last a whole number of requests: {sizes:?}"
        );
        let requests: usize =
            whole.iter().sum::<usize>() / NAMES_PER_SEARCH + last.div_ceil(NAMES_PER_SEARCH);
        assert_eq!(requests, 500 / NAMES_PER_SEARCH, "{sizes:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_lookup_goes_out_after_one_window() {
        let batching = Batching::default();
        let asked = Instant::now();
        batching.ask("k8s-admins");
        let names = batching.next_batch().await;
        assert_eq!(names.len(), 1);
        assert_eq!(
            asked.elapsed(),
            COALESCE,
            "held back one coalescing window only"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_is_sent_after_the_longest_gather() {
        let batching = Arc::new(Batching::default());
        let feeding = tokio::spawn({
            let batching = batching.clone();
            async move {
                // One name every 100 ms, for 3 s: a burst that never fills a request.
                for n in 0..30 {
                    batching.ask(&format!("k8s-slow-{n}"));
                    if n == 0 {
                        // Six at once first: a burst.
                        for extra in 0..5 {
                            batching.ask(&format!("k8s-first-{extra}"));
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        let started = Instant::now();
        let first = batching.next_batch().await;
        let waited = started.elapsed();
        feeding.abort();
        assert!(
            waited >= LONGEST_GATHER && waited < LONGEST_GATHER + COALESCE * 2,
            "sent after {waited:?}"
        );
        assert!(
            first.len() > 6 && first.len() < NAMES_PER_SEARCH,
            "{}",
            first.len()
        );
    }
}
