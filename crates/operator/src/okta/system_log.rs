//! Following Okta's System Log, so that a quiet org costs almost nothing: instead of
//! verifying every group again on every resync, the operator reads the group events Okta
//! logs (lifecycle, profile, membership) and the user lifecycle events (suspended,
//! deactivated, deleted, back), and hands them to the [`ChangeStream`], which verifies
//! again only what they name. With an event hook delivering the same events first, the
//! log is the safety net and is read less often.
//! Answers are trusted for the long full-resync interval while the log is being read, and
//! for the ordinary resync interval whenever it is not (no permission, Okta down).

use super::OktaError;
use super::changes::Source;
use super::client::{LOG_PAGE, OktaClient};
use super::stream::ChangeStream;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

/// The events that can change Okta's answer about a group, its members or their status.
pub const WATCHED_EVENTS: &str = r#"eventType sw "group.lifecycle." or eventType eq "group.profile.update" or eventType sw "group.user_membership." or eventType sw "user.lifecycle.""#;

/// Reading from a little before the operator started covers events Okta logs late.
const START_OVERLAP: Duration = Duration::from_secs(60);
/// After a refusal (no permission) the log is tried again this rarely.
const RETRY_REFUSED: Duration = Duration::from_secs(600);

/// Reads the log every `interval` (or `interval_with_hooks` while the event hook delivers
/// every event first) and hands the names of the groups to verify again to `changed`.
pub struct Follower {
    pub client: Arc<OktaClient>,
    pub stream: Arc<ChangeStream>,
    pub interval: Duration,
    pub interval_with_hooks: Option<Duration>,
    /// Told of the interval each wait uses.
    pub on_interval: Box<dyn Fn(Duration) + Send + Sync>,
}

impl Follower {
    pub async fn run(self, changed: mpsc::Sender<Vec<String>>) {
        let since = SystemTime::now() - START_OVERLAP;
        let mut next = match self.client.system_log_query(since, WATCHED_EVENTS) {
            Ok(url) => url,
            Err(error) => {
                tracing::error!(%error, "cannot follow the System Log");
                return;
            }
        };
        let mut refused_before = false;
        loop {
            let wait = match self.client.system_log_page(&next).await {
                Ok((events, link)) => {
                    refused_before = false;
                    let count = events.read.len() + events.unreadable.len();
                    let names =
                        self.stream
                            .take(Source::SystemLog, events.read, events.unreadable.len());
                    if !names.is_empty() {
                        tracing::info!(
                            groups = names.len(),
                            "the System Log names groups to verify again"
                        );
                        // Waits while the controller is behind: the log is not read
                        // faster than its reports are taken.
                        if changed.send(names).await.is_err() {
                            return;
                        }
                    }
                    let full_page = count >= LOG_PAGE;
                    match link {
                        Some(link) => next = link,
                        None => tracing::warn!(
                            "the System Log gave no next link; reading the same page again"
                        ),
                    }
                    if full_page {
                        continue;
                    }
                    self.stream.log_caught_up();
                    self.calm_interval()
                }
                Err(error) => self.after_error(&error, &mut refused_before),
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// The wait before the next read of a log read through to its end.
    fn calm_interval(&self) -> Duration {
        let interval = match self.interval_with_hooks {
            Some(slower) if self.stream.hooks_flowing() => slower,
            _ => self.interval,
        };
        (self.on_interval)(interval);
        interval
    }

    fn after_error(&self, error: &OktaError, refused_before: &mut bool) -> Duration {
        match error {
            OktaError::Api {
                status: 401 | 403, ..
            } => {
                if !*refused_before {
                    tracing::warn!(%error, "Okta refuses the System Log (the API token's admin, or the service app's okta.logs.read grant); every group is verified again each resync instead");
                }
                *refused_before = true;
                RETRY_REFUSED
            }
            OktaError::RateLimited { reset } => {
                tracing::debug!(
                    reset,
                    "the System Log's rate limit is spent for this window"
                );
                Duration::from_secs(reset.saturating_sub(super::ratelimit::epoch_seconds()) + 1)
                    .max(self.interval)
            }
            _ => {
                tracing::warn!(%error, "reading the System Log failed; trying again");
                self.interval
            }
        }
    }
}
