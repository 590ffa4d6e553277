//! Member lists of groups bound in Users mode, re-listed only when the group's
//! `lastMembershipUpdated` moved. Each group's list is fetched once however many objects
//! ask at the same time, lists of different groups are fetched concurrently (the client
//! bounds the requests in flight and keeps to Okta's rate limits), and no lock is held
//! while a request is in flight.

use super::{OktaClient, OktaError, OktaGroup, OktaUser};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// Told of every member list read, with when its read began.
pub trait ListSink: Send + Sync {
    fn listed(&self, group_id: &str, users: &[OktaUser], started: Instant);
}

type Members = Result<Arc<Vec<OktaUser>>, OktaError>;

enum Known {
    Listed {
        last_membership_updated: Option<String>,
        users: Arc<Vec<OktaUser>>,
    },
    Fetching {
        last_membership_updated: Option<String>,
        fetch: Shared<BoxFuture<'static, Members>>,
        started: Instant,
    },
}

pub struct MemberLists {
    client: Arc<OktaClient>,
    /// By group id.
    known: Mutex<HashMap<String, Known>>,
    sink: OnceLock<Arc<dyn ListSink>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MemberLists {
    pub fn new(client: Arc<OktaClient>) -> Self {
        Self {
            client,
            known: Mutex::new(HashMap::new()),
            sink: OnceLock::new(),
        }
    }

    /// Every list read from now on is also handed to `sink`.
    pub fn tell(&self, sink: Arc<dyn ListSink>) {
        let _ = self.sink.set(sink);
    }

    /// Keeps the lists of these groups (by id) only.
    pub fn retain(&self, ids: &std::collections::HashSet<String>) {
        lock(&self.known).retain(|id, _| ids.contains(id));
    }

    /// Drops the lists that hold any of these users (by id), and those being fetched (they
    /// may have been read before the change), and returns the ids of their groups.
    pub fn forget_holding(&self, users: &[String]) -> std::collections::HashSet<String> {
        let mut known = lock(&self.known);
        let stale: std::collections::HashSet<String> = known
            .iter()
            .filter(|(_, list)| match list {
                Known::Listed { users: listed, .. } => {
                    listed.iter().any(|user| users.contains(&user.id))
                }
                Known::Fetching { .. } => true,
            })
            .map(|(id, _)| id.clone())
            .collect();
        known.retain(|id, _| !stale.contains(id));
        stale
    }

    /// Drops the group's list (by id): the next caller lists it again.
    pub fn forget_group(&self, id: &str) {
        lock(&self.known).remove(id);
    }

    pub fn count(&self) -> usize {
        lock(&self.known).len()
    }

    /// The members of `group` as of its `lastMembershipUpdated`.
    pub async fn of(&self, group: &OktaGroup) -> Members {
        let moment = &group.last_membership_updated;
        let fetch = {
            let mut known = lock(&self.known);
            match known.get(&group.id) {
                // Without a timestamp nothing says the list is current: list again.
                Some(Known::Listed {
                    last_membership_updated,
                    users,
                }) if moment.is_some() && last_membership_updated == moment => {
                    return Ok(users.clone());
                }
                Some(Known::Fetching {
                    last_membership_updated,
                    fetch,
                    ..
                }) if last_membership_updated == moment => fetch.clone(),
                _ => {
                    let client = self.client.clone();
                    let id = group.id.clone();
                    let fetch = async move { client.group_members(&id).await.map(Arc::new) }
                        .boxed()
                        .shared();
                    known.insert(
                        group.id.clone(),
                        Known::Fetching {
                            last_membership_updated: moment.clone(),
                            fetch: fetch.clone(),
                            started: Instant::now(),
                        },
                    );
                    fetch
                }
            }
        };
        let result = fetch.await;
        let mut known = lock(&self.known);
        let this_fetch_began = match known.get(&group.id) {
            Some(Known::Fetching {
                last_membership_updated,
                started,
                ..
            }) if last_membership_updated == moment => Some(*started),
            _ => None,
        };
        if let Some(started) = this_fetch_began {
            match &result {
                Ok(users) => {
                    if let Some(sink) = self.sink.get() {
                        sink.listed(&group.id, users, started);
                    }
                    known.insert(
                        group.id.clone(),
                        Known::Listed {
                            last_membership_updated: moment.clone(),
                            users: users.clone(),
                        },
                    );
                }
                // The next caller asks Okta again.
                Err(_) => {
                    known.remove(&group.id);
                }
            }
        }
        result
    }
}
