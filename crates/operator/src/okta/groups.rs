//! One cache of Okta's answers about groups, shared by every OktaGroupBinding. Lookups
//! that arrive close together are verified together, many names per `search` request;
//! an answer is reused until the resync interval has passed, or, while the System Log is
//! followed ([`super::system_log`]), until the full-resync interval has passed or an Okta
//! event names the group ([`super::stream`]). Member lists (Users mode)
//! come from [`MemberLists`]. No lock is held while a request is in flight.

use super::batching::Batching;
use super::changes::{ChangedGroup, LogProgress};
use super::client::NAMES_PER_SEARCH;
use super::items::UnreadableItem;
use super::members::MemberLists;
use super::{OktaClient, OktaError, OktaGroup, OktaUser};
use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Okta's answer about one group name.
#[derive(Clone, Debug)]
pub struct GroupAnswer {
    /// Groups whose `profile.name` is exactly the name (case included). Empty: Okta says
    /// there is no such group. More than one: the name is ambiguous.
    pub groups: Vec<OktaGroup>,
    pub fetched: Instant,
}

#[derive(Clone)]
enum Entry {
    Answer(Arc<GroupAnswer>),
    Failed { error: OktaError, at: Instant },
}

/// Okta's answer about `name` is unknown when a group it set aside may be the one of
/// that name: its name is the name, or could not be read. Never "missing" (which would
/// revoke) nor "found" on a guess.
fn unreadable_for(name: &str, unreadable: &[UnreadableItem]) -> Option<OktaError> {
    unreadable
        .iter()
        .find(|item| item.label.as_deref().is_none_or(|label| label == name))
        .map(|item| OktaError::Decode(format!("a group of Okta's answer cannot be read: {item}")))
}

/// The longest a batch is held back for an exhausted rate-limit window.
const LONGEST_HOLD: Duration = Duration::from_secs(60);

fn epoch_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How long Okta's answers are trusted.
#[derive(Clone, Copy, Debug)]
pub struct Freshness {
    /// When the System Log is not being followed.
    pub resync: Duration,
    /// While it is: the safety net that catches what the log might miss.
    pub full_resync: Duration,
    /// The log counts as followed while it was read through within this long.
    pub log_current_within: Duration,
}

impl Freshness {
    /// Without the System Log: every answer lasts one resync interval.
    pub fn resync_only(resync: Duration) -> Self {
        Self {
            resync,
            full_resync: resync,
            log_current_within: Duration::ZERO,
        }
    }
}

pub struct GroupDirectory {
    client: Arc<OktaClient>,
    freshness: Freshness,
    /// Where following the System Log stands.
    log: LogProgress,
    concurrency: usize,
    entries: Mutex<HashMap<String, Entry>>,
    /// The names waiting for the next batch.
    batching: Batching,
    /// While Okta's window is exhausted: its reset, in epoch seconds. Lookups then fail
    /// at once (their names wait for the reset) instead of holding workers.
    held_until: Mutex<Option<u64>>,
    /// Bumped after every batch: waiters re-check the cache.
    batches: watch::Sender<u64>,
    members: MemberLists,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl GroupDirectory {
    /// The directory and the task that runs its batches (spawn it).
    pub fn new(client: Arc<OktaClient>, freshness: Freshness, concurrency: usize) -> Arc<Self> {
        let (batches, _) = watch::channel(0);
        Arc::new(Self {
            members: MemberLists::new(client.clone()),
            client,
            freshness,
            log: LogProgress::default(),
            concurrency: concurrency.max(1),
            entries: Mutex::new(HashMap::new()),
            batching: Batching::default(),
            held_until: Mutex::new(None),
            batches,
        })
    }

    /// The next read of the group's (by id) members lists them again.
    pub fn relist_members(&self, id: &str) {
        self.members.forget_group(id);
    }

    /// Every member list read from now on is also handed to `sink`.
    pub fn tell_member_lists(&self, sink: Arc<dyn super::members::ListSink>) {
        self.members.tell(sink);
    }

    /// The System Log was read through to its end: answers may be trusted longer.
    pub fn log_caught_up(&self) {
        self.log.caught_up();
    }

    /// How long an answer is trusted now.
    fn lifetime(&self) -> Duration {
        if self.log.current(self.freshness.log_current_within) {
            self.freshness.full_resync
        } else {
            self.freshness.resync
        }
    }

    /// Drops the answers about groups the System Log says changed (by id, or by name for a
    /// group created or renamed to a name that was missing) and returns the names whose
    /// answers were dropped, to be verified again.
    pub fn forget_changed(&self, changed: &[ChangedGroup]) -> Vec<String> {
        if changed.is_empty() {
            return Vec::new();
        }
        let mut entries = lock(&self.entries);
        let stale: Vec<String> = entries
            .iter()
            .filter(|(name, entry)| {
                changed.iter().any(|c| {
                    c.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name))
                        || matches!(entry, Entry::Answer(a) if a.groups.iter().any(|g| g.id == c.id))
                })
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in &stale {
            entries.remove(name);
        }
        stale
    }

    /// Drops every answer and member list and returns the names: an event of the System
    /// Log could not be read, and the group or user it names may be any of them.
    pub fn forget_all(&self) -> Vec<String> {
        self.members.retain(&HashSet::new());
        lock(&self.entries).drain().map(|(name, _)| name).collect()
    }

    /// Drops the member lists that hold any of these users (by id), whose status changed,
    /// and returns the names whose answers carry those groups, to be reconciled again: the
    /// group's answer stands, its members are listed afresh.
    pub fn forget_member_lists_of(&self, users: &[String]) -> Vec<String> {
        if users.is_empty() {
            return Vec::new();
        }
        let groups = self.members.forget_holding(users);
        if groups.is_empty() {
            return Vec::new();
        }
        lock(&self.entries)
            .iter()
            .filter(|(_, entry)| {
                matches!(entry, Entry::Answer(a) if a.groups.iter().any(|g| groups.contains(&g.id)))
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Okta's answer about `name`: from the cache while it is fresh (see [`Freshness`]),
    /// otherwise from the next batch.
    pub async fn lookup(&self, name: &str) -> Result<Arc<GroupAnswer>, OktaError> {
        let asked = Instant::now();
        let mut batches = self.batches.subscribe();
        loop {
            match lock(&self.entries).get(name) {
                Some(Entry::Answer(answer)) if answer.fetched.elapsed() < self.lifetime() => {
                    return Ok(answer.clone());
                }
                Some(Entry::Failed { error, at }) if *at >= asked => return Err(error.clone()),
                _ => {}
            }
            let held = *lock(&self.held_until);
            if let Some(reset) = held.filter(|reset| *reset > epoch_seconds()) {
                self.batching.put_back([name.to_string()]);
                return Err(OktaError::RateLimited { reset });
            }
            self.batching.ask(name);
            if batches.changed().await.is_err() {
                return Err(OktaError::Config("the Okta directory stopped".into()));
            }
        }
    }

    /// Queues `name` for the next batch unless a fresh answer is cached, without waiting.
    /// The controller calls it as objects arrive on the watch, so that batches fill up
    /// with every new name instead of only those the running reconciles ask about (at
    /// most the reconcile concurrency).
    pub fn prefetch(&self, name: &str) {
        let fresh = matches!(
            lock(&self.entries).get(name),
            Some(Entry::Answer(answer)) if answer.fetched.elapsed() < self.lifetime()
        );
        if !fresh {
            self.batching.ask(name);
        }
    }

    /// Runs batches forever: the names [`Batching`] gathers, verified
    /// [`NAMES_PER_SEARCH`] per request.
    pub async fn run(self: Arc<Self>) {
        loop {
            let mut names = self.batching.next_batch().await;
            if names.is_empty() {
                continue;
            }
            names.extend(self.due_soon());
            let names: Vec<String> = names.into_iter().collect();
            let chunks: Vec<Vec<String>> = names
                .chunks(NAMES_PER_SEARCH)
                .map(<[String]>::to_vec)
                .collect();
            let client = &self.client;
            let results: Vec<_> = futures::stream::iter(chunks)
                .map(|chunk| async move {
                    let result = client.search_groups(&chunk).await;
                    (chunk, result)
                })
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
            let now = Instant::now();
            // Names refused for the rate limit go out with the next batch, after the reset.
            let mut refused: Vec<String> = Vec::new();
            let mut reset_at: Option<u64> = None;
            {
                let mut entries = lock(&self.entries);
                for (chunk, result) in results {
                    match result {
                        Ok(groups) => {
                            for name in chunk {
                                let entry = match unreadable_for(&name, &groups.unreadable) {
                                    Some(error) => Entry::Failed { error, at: now },
                                    None => Entry::Answer(Arc::new(GroupAnswer {
                                        groups: groups
                                            .read
                                            .iter()
                                            .filter(|g| g.profile.name == name)
                                            .cloned()
                                            .collect(),
                                        fetched: now,
                                    })),
                                };
                                entries.insert(name, entry);
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, names = chunk.len(), "verifying groups with Okta failed");
                            if let OktaError::RateLimited { reset } = &error {
                                reset_at = reset_at.max(Some(*reset));
                                refused.extend(chunk.iter().cloned());
                            }
                            for name in chunk {
                                // A failure does not erase an earlier answer's group id.
                                entries.insert(
                                    name,
                                    Entry::Failed {
                                        error: error.clone(),
                                        at: now,
                                    },
                                );
                            }
                        }
                    }
                }
            }
            // The hold is known before anyone waiting hears of this batch: a lookup that
            // arrives meanwhile is answered RateLimited at once instead of waiting out the
            // whole hold for the next batch.
            let hold = reset_at.map(|reset| {
                self.batching.put_back(refused);
                let wait = reset
                    .saturating_sub(epoch_seconds())
                    .min(LONGEST_HOLD.as_secs());
                *lock(&self.held_until) = Some(epoch_seconds().saturating_add(wait));
                wait
            });
            self.batches.send_modify(|n| *n += 1);
            // What a burst left for the next request, or what arrived meanwhile.
            self.batching.wake_if_pending();
            if let Some(wait) = hold {
                // Gather everything asked meanwhile and send it in full requests once the
                // window resets, instead of spending the new window on stragglers.
                tokio::time::sleep(Duration::from_secs(wait)).await;
                *lock(&self.held_until) = None;
                self.batching.wake_if_pending();
            }
        }
    }

    /// Cached names past three quarters of their lifetime: verified along with a batch
    /// that goes out anyway, so that resyncs gather into full requests instead of
    /// trickling one name at a time as each answer expires.
    fn due_soon(&self) -> Vec<String> {
        let threshold = self.lifetime().mul_f64(0.75);
        lock(&self.entries)
            .iter()
            .filter(|(_, entry)| matches!(entry, Entry::Answer(answer) if answer.fetched.elapsed() >= threshold))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Drops the answers (and member lists) about groups no object names any more: a
    /// mistyped name, a deleted object's group. Nothing keeps verifying them.
    pub fn retain(&self, names: &HashSet<String>) {
        let mut entries = lock(&self.entries);
        entries.retain(|name, _| names.contains(name));
        let ids: HashSet<String> = entries
            .values()
            .filter_map(|entry| match entry {
                Entry::Answer(answer) => Some(answer.groups.iter().map(|g| g.id.clone())),
                Entry::Failed { .. } => None,
            })
            .flatten()
            .collect();
        drop(entries);
        self.batching.retain(|name| names.contains(name));
        self.members.retain(&ids);
    }

    /// How many answers and member lists are kept, for the `cached_objects` gauge.
    pub fn sizes(&self) -> [(&'static str, usize); 2] {
        [
            ("OktaGroupAnswer", lock(&self.entries).len()),
            ("OktaMemberList", self.members.count()),
        ]
    }

    /// The group's members (ACTIVE or not), re-listed only when its
    /// `lastMembershipUpdated` moved.
    pub async fn members(&self, group: &OktaGroup) -> Result<Arc<Vec<OktaUser>>, OktaError> {
        self.members.of(group).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(label: Option<&str>) -> UnreadableItem {
        UnreadableItem {
            id: Some("00g9".into()),
            label: label.map(str::to_string),
            field: "type".into(),
            reason: "invalid type: null".into(),
        }
    }

    #[test]
    fn a_group_set_aside_makes_the_answer_unknown_only_for_a_name_it_may_have() {
        assert!(unreadable_for("k8s-a", &[]).is_none());
        assert!(unreadable_for("k8s-a", &[item(Some("k8s-b"))]).is_none());
        let same = unreadable_for("k8s-a", &[item(Some("k8s-b")), item(Some("k8s-a"))]);
        assert!(matches!(&same, Some(OktaError::Decode(text)) if text.contains("00g9 (k8s-a)")));
        assert!(unreadable_for("k8s-a", &[item(None)]).is_some(), "nameless");
    }
}
