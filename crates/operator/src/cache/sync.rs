//! Whether each watch has delivered its first full list, and if not, why: for the
//! controller (which waits for every list), `/readyz` (which says which watch is missing
//! and the last error it met) and the metrics (`watch_synced`, `watch_failures`).

use crate::metrics::WatchLabel;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The most of an error's text kept: an apiserver's answer can carry a whole list body.
const ERROR_TEXT: usize = 300;

/// Whether a watch has delivered its first full list, for any number of waiters.
///
/// Not kube's `Store::wait_until_ready`: its readiness is a oneshot channel that keeps
/// one waker, so of two tasks waiting at once only the last to poll is woken. The
/// controller itself waits on the objects' store, and a readiness check waiting there too
/// could stay unready forever (seen: `/readyz` answering 503 for minutes after every list
/// had arrived).
#[derive(Clone, Debug)]
pub struct Synced(tokio::sync::watch::Receiver<bool>);

impl Synced {
    /// Resolves once the first full list has arrived; `false` if the watch is gone first.
    pub async fn wait(mut self) -> bool {
        self.0.wait_for(|synced| *synced).await.is_ok()
    }
}

/// Waits until every one of `watches` has its first full list.
pub async fn all_synced(watches: Vec<Synced>) -> bool {
    futures::future::join_all(watches.into_iter().map(Synced::wait))
        .await
        .into_iter()
        .all(|synced| synced)
}

#[derive(Debug)]
struct State {
    synced: bool,
    since: Instant,
    failures: u64,
    last_error: Option<(Instant, String)>,
}

/// The watches of the running controller and where each stands.
pub struct WatchStates {
    states: Mutex<BTreeMap<&'static str, State>>,
    synced: Family<WatchLabel, Gauge>,
    failures: Family<WatchLabel, Counter>,
}

fn label(watch: &'static str) -> WatchLabel {
    WatchLabel {
        watch: watch.into(),
    }
}

impl WatchStates {
    pub fn new(synced: Family<WatchLabel, Gauge>, failures: Family<WatchLabel, Counter>) -> Self {
        Self {
            states: Mutex::new(BTreeMap::new()),
            synced,
            failures,
        }
    }

    fn states(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, State>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A watch starts (again, when this replica leads again): not synced yet.
    pub fn register(self: &Arc<Self>, watch: &'static str) -> (WatchReport, Synced) {
        self.states().insert(
            watch,
            State {
                synced: false,
                since: Instant::now(),
                failures: 0,
                last_error: None,
            },
        );
        self.synced.get_or_create(&label(watch)).set(0);
        drop(self.failures.get_or_create(&label(watch)));
        let (sender, receiver) = tokio::sync::watch::channel(false);
        (
            WatchReport {
                watch,
                states: Arc::clone(self),
                sender,
            },
            Synced(receiver),
        )
    }

    /// The controller stopped (this replica no longer leads): no watch runs.
    pub fn clear(&self) {
        for watch in std::mem::take(&mut *self.states()).into_keys() {
            self.synced.get_or_create(&label(watch)).set(0);
        }
    }

    /// The watches without their first full list, and why, for `/readyz`.
    pub fn unsynced(&self) -> Vec<String> {
        self.states()
            .iter()
            .filter(|(_, state)| !state.synced)
            .map(|(watch, state)| {
                let waiting = state.since.elapsed().as_secs();
                match &state.last_error {
                    None => format!("{watch}: listing for {waiting}s"),
                    Some((at, error)) => format!(
                        "{watch}: not listed for {waiting}s; failed {} times, last {}s ago: {error}",
                        state.failures,
                        at.elapsed().as_secs()
                    ),
                }
            })
            .collect()
    }
}

/// What one watch tells [`WatchStates`].
pub struct WatchReport {
    watch: &'static str,
    states: Arc<WatchStates>,
    sender: tokio::sync::watch::Sender<bool>,
}

impl WatchReport {
    pub fn synced(&self) {
        if let Some(state) = self.states.states().get_mut(self.watch) {
            state.synced = true;
        }
        self.states.synced.get_or_create(&label(self.watch)).set(1);
        self.sender.send_replace(true);
    }

    /// The watch failed (it retries with backoff). Logged, shortened, and kept as the
    /// reason while the watch has not synced.
    pub fn failed(&self, error: &impl std::fmt::Display) {
        let text = shortened(&error.to_string());
        tracing::warn!(error = %text, "watching {} failed; retrying with backoff", self.watch);
        self.states.failures.get_or_create(&label(self.watch)).inc();
        if let Some(state) = self.states.states().get_mut(self.watch) {
            state.failures += 1;
            state.last_error = Some((Instant::now(), text));
        }
    }
}

fn shortened(text: &str) -> String {
    match text.char_indices().nth(ERROR_TEXT) {
        Some((cut, _)) => format!("{}... ({} bytes in all)", &text[..cut], text.len()),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states() -> Arc<WatchStates> {
        Arc::new(WatchStates::new(Family::default(), Family::default()))
    }

    #[tokio::test]
    async fn every_waiter_learns_that_the_watch_synced() {
        let (report, synced) = states().register("Roles");
        let waiters: Vec<_> = (0..3)
            .map(|_| tokio::spawn(synced.clone().wait()))
            .collect();
        tokio::task::yield_now().await;
        report.synced();
        for waiter in waiters {
            let synced = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
                .await
                .expect("woken")
                .expect("task");
            assert!(synced);
        }
        assert!(synced.wait().await, "a late waiter sees it too");
    }

    #[test]
    fn readiness_names_the_watch_that_has_not_synced_and_its_last_error() {
        let states = states();
        let (roles, _) = states.register("Roles");
        let (objects, _) = states.register("OktaGroupBindings");
        roles.synced();
        objects.failed(&format!("forbidden: {}", "x".repeat(1000)));
        let unsynced = states.unsynced();
        assert_eq!(unsynced.len(), 1, "{unsynced:?}");
        assert!(
            unsynced[0].starts_with("OktaGroupBindings: not listed for 0s; failed 1 times"),
            "{}",
            unsynced[0]
        );
        assert!(unsynced[0].contains("forbidden"));
        assert!(unsynced[0].len() < 450, "shortened: {}", unsynced[0].len());
        states.clear();
        assert!(states.unsynced().is_empty());
    }
}
