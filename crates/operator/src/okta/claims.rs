//! The claims of the authorization server kubectl logs in with, read at most once per
//! resync interval for every object together, and once however many objects ask at the
//! same time. No lock is held while the request is in flight.

use super::{OktaClaim, OktaClient, OktaError};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Claims = Result<Arc<Vec<OktaClaim>>, OktaError>;

enum Known {
    Listed {
        at: Instant,
        claims: Arc<Vec<OktaClaim>>,
    },
    Fetching(Shared<BoxFuture<'static, Claims>>),
}

pub struct ClaimsCache {
    client: Arc<OktaClient>,
    server_id: String,
    fresh_for: Duration,
    known: Mutex<Option<Known>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ClaimsCache {
    pub fn new(client: Arc<OktaClient>, server_id: String, fresh_for: Duration) -> Self {
        Self {
            client,
            server_id,
            fresh_for,
            known: Mutex::new(None),
        }
    }

    /// The authorization server this cache reads.
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// The server's claims, from the cache while fresh.
    pub async fn claims(&self) -> Claims {
        let fetch = {
            let mut known = lock(&self.known);
            match &*known {
                Some(Known::Listed { at, claims }) if at.elapsed() < self.fresh_for => {
                    return Ok(claims.clone());
                }
                Some(Known::Fetching(fetch)) => fetch.clone(),
                _ => {
                    let client = self.client.clone();
                    let server = self.server_id.clone();
                    let fetch = async move {
                        client
                            .authorization_server_claims(&server)
                            .await
                            .map(Arc::new)
                    }
                    .boxed()
                    .shared();
                    *known = Some(Known::Fetching(fetch.clone()));
                    fetch
                }
            }
        };
        let result = fetch.await;
        let mut known = lock(&self.known);
        if matches!(&*known, Some(Known::Fetching(_))) {
            *known = match &result {
                Ok(claims) => Some(Known::Listed {
                    at: Instant::now(),
                    claims: claims.clone(),
                }),
                // The next caller asks again.
                Err(_) => None,
            };
        }
        result
    }
}
