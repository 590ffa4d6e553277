//! Step 4, apply: carries out the plan's writes, one at a time, and says what became of
//! each. I/O only: every decision was made in the plan.

use super::plan::Write;
use crate::binding::{BindingObject, BindingRef};
use crate::cache::Stores;
use crate::labels::MANAGER;
use futures::StreamExt;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};

/// What a write did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Done {
    Created,
    /// Repaired in place, or deleted and created again for a new roleRef.
    Repaired,
    Deleted,
    /// Deleted already (by someone else, or the garbage collector).
    AlreadyGone,
    /// Created already by this object, as declared; the cache had not seen it yet.
    AlreadyOwned,
    /// Deleted, but kept by these finalizers: it still exists, and still grants.
    Terminating(Vec<String>),
}

/// Why a write failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteFailure {
    /// A binding of that name exists and is not this object's: it is left untouched.
    #[error("not managed by this object, left untouched")]
    Conflict,
    /// The binding found is this object's, but not as declared (another roleRef or other
    /// subjects, or being deleted), or not the one observed (another uid): the next
    /// reconcile sees it as it is.
    #[error("{target}: {found}; it is looked at again")]
    NotAsDeclared { target: String, found: String },
    #[error("namespace {0} does not exist")]
    NamespaceMissing(String),
    #[error("{doing} {target}: {message}")]
    Api {
        doing: &'static str,
        target: String,
        code: u16,
        reason: String,
        message: String,
    },
    #[error("{doing} {target}: {message}")]
    Transport {
        doing: &'static str,
        target: String,
        message: String,
    },
}

impl WriteFailure {
    /// Every value `kind` takes, so that the metric shows each at 0 before it first fails.
    pub const KINDS: [&'static str; 9] = [
        "Conflict",
        "Stale",
        "NamespaceMissing",
        "Forbidden",
        "Invalid",
        "Throttled",
        "ServerError",
        "Unreachable",
        "Other",
    ];

    /// A bounded label for metrics, one of [`Self::KINDS`].
    pub fn kind(&self) -> &'static str {
        match self {
            WriteFailure::Conflict => "Conflict",
            WriteFailure::NotAsDeclared { .. } => "Stale",
            WriteFailure::NamespaceMissing(_) => "NamespaceMissing",
            WriteFailure::Api { code: 403, .. } => "Forbidden",
            WriteFailure::Api { code: 409, .. } => "Conflict",
            WriteFailure::Api {
                code: 400 | 422, ..
            } => "Invalid",
            WriteFailure::Api { code: 429, .. } => "Throttled",
            WriteFailure::Api { code, .. } if *code >= 500 => "ServerError",
            WriteFailure::Api { .. } => "Other",
            WriteFailure::Transport { .. } => "Unreachable",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct WriteResult {
    pub target: BindingRef,
    pub result: Result<Done, WriteFailure>,
}

/// Everything apply needs: the client to write with, the caches to tell about creations,
/// and the uid of the object the bindings belong to.
pub struct Writer<'a> {
    pub client: &'a Client,
    pub stores: &'a Stores,
    pub owner_uid: &'a str,
}

fn failure(doing: &'static str, target: &BindingRef, error: kube::Error) -> WriteFailure {
    match error {
        kube::Error::Api(status) => WriteFailure::Api {
            doing,
            target: target.to_string(),
            code: status.code,
            reason: status.reason.clone(),
            message: status.message.clone(),
        },
        other => WriteFailure::Transport {
            doing,
            target: target.to_string(),
            message: other.to_string(),
        },
    }
}

fn params() -> PostParams {
    PostParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    }
}

/// Writes of one reconcile in flight at once. Each write names a binding of its own, so
/// they are independent; with the reconcile concurrency this bounds what the operator
/// asks of the apiserver at once (16 x 8 by default).
const WRITES_IN_FLIGHT: usize = 8;

/// Every write, several at a time; the results in the order of `writes`.
pub async fn apply(writer: &Writer<'_>, writes: &[Write]) -> Vec<WriteResult> {
    // The futures are made up front (they do nothing until polled): made lazily by a
    // closure, their type would have to hold for any lifetime of the write, and a Send
    // future borrowing it cannot.
    let pending: Vec<_> = writes
        .iter()
        .map(|write| apply_one(writer, write))
        .collect();
    futures::stream::iter(pending)
        .buffered(WRITES_IN_FLIGHT)
        .collect()
        .await
}

async fn apply_one(writer: &Writer<'_>, write: &Write) -> WriteResult {
    let target = write.target();
    let result = match write {
        Write::Create(binding) => create(writer, binding).await,
        Write::Repair(binding) => replace(writer, binding).await,
        Write::Recreate(binding, uid) => match delete(writer, &target, uid.as_deref()).await {
            // Gone: created again with the declared roleRef.
            Ok(Done::Deleted | Done::AlreadyGone) => create(writer, binding)
                .await
                .map(|_| Done::Repaired)
                .map_err(|e| relabel(e, "re-creating")),
            // Still there (finalizers), or the delete failed: nothing is created over it.
            Ok(done) => Ok(done),
            Err(failure) => Err(relabel(failure, "replacing")),
        },
        Write::Delete(reference, uid) => delete(writer, reference, uid.as_deref()).await,
    };
    WriteResult { target, result }
}

fn relabel(failure: WriteFailure, doing: &'static str) -> WriteFailure {
    match failure {
        WriteFailure::Api {
            target,
            code,
            reason,
            message,
            ..
        } => WriteFailure::Api {
            doing,
            target,
            code,
            reason,
            message,
        },
        WriteFailure::Transport {
            target, message, ..
        } => WriteFailure::Transport {
            doing,
            target,
            message,
        },
        other => other,
    }
}

async fn create(writer: &Writer<'_>, binding: &BindingObject) -> Result<Done, WriteFailure> {
    let target = binding.reference();
    // Expected before it is sent: the watch event may arrive before the response does.
    writer.stores.expect(&target, writer.owner_uid);
    let result = try_create(writer, binding, &target).await;
    if result != Ok(Done::Created) {
        writer.stores.unexpect(&target);
    }
    result
}

async fn try_create(
    writer: &Writer<'_>,
    binding: &BindingObject,
    target: &BindingRef,
) -> Result<Done, WriteFailure> {
    let created = match binding {
        BindingObject::Cluster(b) => cluster_api(writer).create(&params(), b).await.map(|_| ()),
        BindingObject::Namespaced(b) => namespaced_api(writer, target)
            .create(&params(), b)
            .await
            .map(|_| ()),
    };
    match created {
        Ok(()) => Ok(Done::Created),
        // The cache may lag behind our own writes, or someone else owns the name: what is
        // there counts only if it is ours and exactly as declared.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            match existing(writer, target).await {
                Ok(found) if !owned_by(&found, writer.owner_uid) => Err(WriteFailure::Conflict),
                Ok(found) => match differs(&found, binding) {
                    None => {
                        tracing::debug!(binding = %target, "already created; the cache had not seen it");
                        Ok(Done::AlreadyOwned)
                    }
                    Some(found) => Err(WriteFailure::NotAsDeclared {
                        target: target.to_string(),
                        found,
                    }),
                },
                Err(error) => Err(failure("reading", target, error)),
            }
        }
        Err(kube::Error::Api(status)) if status.code == 404 => Err(WriteFailure::NamespaceMissing(
            target.namespace.clone().unwrap_or_default(),
        )),
        Err(error) => Err(failure("creating", target, error)),
    }
}

async fn replace(writer: &Writer<'_>, binding: &BindingObject) -> Result<Done, WriteFailure> {
    let target = binding.reference();
    let replaced = match binding {
        BindingObject::Cluster(b) => cluster_api(writer)
            .replace(&target.name, &params(), b)
            .await
            .map(|_| ()),
        BindingObject::Namespaced(b) => namespaced_api(writer, &target)
            .replace(&target.name, &params(), b)
            .await
            .map(|_| ()),
    };
    replaced
        .map(|()| Done::Repaired)
        .map_err(|e| failure("repairing", &target, e))
}

/// Deletes the binding of this uid (when known): the apiserver refuses (409) to delete
/// one re-created under the name since it was observed.
async fn delete(
    writer: &Writer<'_>,
    target: &BindingRef,
    uid: Option<&str>,
) -> Result<Done, WriteFailure> {
    let params = DeleteParams {
        preconditions: uid.map(|uid| Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..Default::default()
    };
    // Left: the binding is still there (finalizers hold it); Right: it is gone.
    let remaining: kube::Result<Option<ObjectMeta>> = match &target.namespace {
        None => cluster_api(writer)
            .delete(&target.name, &params)
            .await
            .map(|d| d.left().map(|b| b.metadata)),
        Some(_) => namespaced_api(writer, target)
            .delete(&target.name, &params)
            .await
            .map(|d| d.left().map(|b| b.metadata)),
    };
    match remaining {
        Ok(Some(meta)) if meta.deletion_timestamp.is_some() => {
            Ok(Done::Terminating(meta.finalizers.unwrap_or_default()))
        }
        Ok(_) => Ok(Done::Deleted),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Done::AlreadyGone),
        Err(kube::Error::Api(status)) if status.code == 409 => Err(WriteFailure::NotAsDeclared {
            target: target.to_string(),
            found: "a different binding (another uid) holds the name now".into(),
        }),
        Err(error) => Err(failure("deleting", target, error)),
    }
}

/// The binding of that name as the apiserver has it now.
async fn existing(writer: &Writer<'_>, target: &BindingRef) -> kube::Result<BindingObject> {
    Ok(match &target.namespace {
        None => BindingObject::Cluster(cluster_api(writer).get(&target.name).await?),
        Some(_) => {
            BindingObject::Namespaced(namespaced_api(writer, target).get(&target.name).await?)
        }
    })
}

fn owned_by(found: &BindingObject, owner_uid: &str) -> bool {
    found
        .metadata()
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.uid == owner_uid)
}

/// How a binding found differs from the one declared, if it does.
fn differs(found: &BindingObject, declared: &BindingObject) -> Option<String> {
    if let Some(finalizers) = found
        .metadata()
        .deletion_timestamp
        .as_ref()
        .map(|_| found.metadata().finalizers.clone().unwrap_or_default())
    {
        return Some(format!(
            "it is being deleted but kept by finalizers [{}]",
            finalizers.join(", ")
        ));
    }
    if found.role_ref() != declared.role_ref() {
        let role = found.role_ref();
        return Some(format!(
            "it exists with roleRef {}/{}",
            role.kind, role.name
        ));
    }
    (found.subjects() != declared.subjects()).then(|| "it exists with other subjects".to_string())
}

fn cluster_api(writer: &Writer<'_>) -> Api<ClusterRoleBinding> {
    Api::all(writer.client.clone())
}

fn namespaced_api(writer: &Writer<'_>, target: &BindingRef) -> Api<RoleBinding> {
    Api::namespaced(
        writer.client.clone(),
        target.namespace.as_deref().unwrap_or_default(),
    )
}
