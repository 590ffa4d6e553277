//! Long-lived tasks the operator cannot do without (the Okta directory's batches, the
//! metrics server, the System Log follower, the event queue). They are owned here: if one
//! ends, by returning or by a panic, whoever waits on [`Supervisor::ended`] hears which and
//! why, and the process stops with an error so that the kubelet restarts it, rather than
//! running on with lookups that wait forever.

use std::collections::HashMap;
use std::future::Future;
use tokio::task::{Id, JoinSet};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the task {name} ended: {why}")]
pub struct TaskEnded {
    pub name: &'static str,
    pub why: String,
}

#[derive(Default)]
pub struct Supervisor {
    tasks: JoinSet<Result<(), String>>,
    names: HashMap<Id, &'static str>,
}

impl Supervisor {
    /// Runs `task`, which must not end while the operator runs.
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        self.spawn_fallible(name, async move {
            task.await;
            Err("it returned".into())
        });
    }

    /// Runs `task`; its error (or its return) is why the operator stops.
    pub fn spawn_fallible(
        &mut self,
        name: &'static str,
        task: impl Future<Output = Result<(), String>> + Send + 'static,
    ) {
        let handle = self.tasks.spawn(task);
        self.names.insert(handle.id(), name);
    }

    /// Waits until a task ends and says which and why; never returns without tasks.
    pub async fn ended(&mut self) -> TaskEnded {
        let Some(joined) = self.tasks.join_next_with_id().await else {
            return std::future::pending().await;
        };
        let (id, why) = match joined {
            Ok((id, Ok(()))) => (id, "it returned".to_string()),
            Ok((id, Err(why))) => (id, why),
            Err(error) if error.is_panic() => (error.id(), format!("it panicked: {error}")),
            Err(error) => (error.id(), format!("it was cancelled: {error}")),
        };
        let name = self.names.remove(&id).unwrap_or("(unnamed)");
        tracing::error!(task = name, %why, "a task the operator needs ended; stopping");
        TaskEnded { name, why }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_task_that_returns_or_panics_is_named() {
        let mut tasks = Supervisor::default();
        tasks.spawn("forever", std::future::pending());
        tasks.spawn("short-lived", async {});
        assert_eq!(
            tasks.ended().await,
            TaskEnded {
                name: "short-lived",
                why: "it returned".into()
            }
        );
        tasks.spawn("panicking", async { panic!("boom") });
        let ended = tasks.ended().await;
        assert_eq!(ended.name, "panicking");
        assert!(ended.why.contains("panicked"), "{}", ended.why);
        let quiet = tokio::time::timeout(Duration::from_millis(50), tasks.ended()).await;
        assert!(quiet.is_err(), "the long-lived one still runs");
    }
}
