//! Leader election on a Lease, with a standby that takes over as soon as the leader lets
//! go. The lease manager alone checks a Lease held by another replica only when that
//! holder's last renewal would expire, so a leader that stops cleanly and releases its
//! Lease would still leave the operator without a leader for up to `--lease-duration`:
//! no binding kept, no end time honoured, and the revocation authorizer answering no
//! opinion. A standby here also watches the Lease and asks for it again the moment it
//! is released.

use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Which Lease, and who this replica is.
#[derive(Debug, Clone)]
pub struct LeaderElection {
    pub lease_name: String,
    pub lease_namespace: String,
    /// Unique per replica (the pod name).
    pub identity: String,
    pub lease_seconds: u64,
}

/// What goes wrong while electing.
#[derive(Debug, thiserror::Error)]
#[error("leader election on Lease {lease}: {message}")]
pub struct ElectionError {
    lease: String,
    message: String,
}

/// Leading, with the task that renews the Lease; dropping `leading` releases it.
pub struct Leadership {
    /// True while this replica holds the Lease.
    pub leading: watch::Receiver<bool>,
    pub lease_task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
}

impl LeaderElection {
    fn error(&self, message: impl std::fmt::Display) -> ElectionError {
        ElectionError {
            lease: format!("{}/{}", self.lease_namespace, self.lease_name),
            message: message.to_string(),
        }
    }

    async fn manage(&self, client: &Client) -> Result<Leadership, ElectionError> {
        let manager = LeaseManagerBuilder::new(client.clone(), &self.lease_name)
            .with_namespace(&self.lease_namespace)
            .with_identity(&self.identity)
            .with_duration(self.lease_seconds)
            .with_grace(self.lease_seconds.div_ceil(3).max(1))
            .build()
            .await
            .map_err(|e| self.error(e))?;
        let (leading, lease_task) = manager.watch().await;
        Ok(Leadership {
            leading,
            lease_task,
        })
    }

    /// Waits until this replica holds the Lease; `None` if `stop` resolves first.
    pub async fn lead(
        &self,
        client: &Client,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<Option<Leadership>, ElectionError> {
        let mut current = self.manage(client).await?;
        let released = released(client, self).fuse();
        tokio::pin!(released, stop);
        loop {
            if *current.leading.borrow_and_update() {
                return Ok(Some(current));
            }
            tokio::select! {
                changed = current.leading.changed() => if changed.is_err() {
                    return Err(self.error("the lease manager stopped"));
                },
                Some(()) = released.next() => {
                    // The manager sleeps until the old holder's renewal would expire:
                    // a new one reads the Lease now and takes it. Aborted, not dropped,
                    // so that the old one does not try to release what it never held.
                    tracing::debug!(lease = %self.lease_name, "the Lease was released; asking for it now");
                    current.lease_task.abort();
                    current = self.manage(client).await?;
                }
                // Dropped: the manager releases the Lease should it have just taken it.
                () = &mut stop => return Ok(None),
            }
        }
    }
}

/// Yields each time the Lease is seen without a holder.
fn released(client: &Client, election: &LeaderElection) -> impl Stream<Item = ()> + use<> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &election.lease_namespace);
    let config =
        watcher::Config::default().fields(&format!("metadata.name={}", election.lease_name));
    watcher(leases, config)
        .default_backoff()
        .applied_objects()
        .filter_map(|lease| async move { lease.ok().filter(is_released).map(|_| ()) })
}

/// A Lease its holder let go of (or that nobody has taken yet).
fn is_released(lease: &Lease) -> bool {
    lease
        .spec
        .as_ref()
        .and_then(|spec| spec.holder_identity.as_deref())
        .is_none_or(str::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;

    fn lease(holder: Option<&str>) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_lease_without_a_holder_is_released() {
        assert!(is_released(&lease(None)));
        assert!(is_released(&lease(Some(""))));
        assert!(is_released(&Lease::default()));
        assert!(!is_released(&lease(Some("okta-rbac-operator-abc"))));
    }
}
