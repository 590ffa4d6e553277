//! One reconcile, as a pipeline: observe (read Okta and the caches) -> judge (pure: what
//! Okta's answer means) -> plan (pure: the exact writes) -> apply (I/O: the writes) ->
//! report (pure: status, events, metrics). Then the status is written, only if it changed.

pub mod apply;
pub mod audit;
pub mod claim;
pub mod conditions;
pub mod context;
pub mod desired;
#[cfg(test)]
mod fixtures;
pub mod judge;
pub mod observe;
pub mod plan;
pub mod report;
pub mod schedule;
pub mod subjects;
pub mod tally;
pub mod unreadable;

use crate::metrics::{Metrics, ObjectState};
use apply::Writer;
use context::Context;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use okta_rbac_api::{Decoded, OktaGroupBinding, OktaGroupBindingStatus};
use report::{Inputs, Note, Report, Retry};
use schedule::Window;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The operator's metrics, with every failure kind the reconciler can report at 0.
pub fn new_metrics() -> Metrics {
    let metrics = Metrics::default();
    metrics.show_failure_kinds(&Error::KINDS, &apply::WriteFailure::KINDS);
    metrics
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing the status: {0}")]
    Status(#[source] kube::Error),
}

impl Error {
    /// Every value `kind` takes, so that the metric shows each at 0 before it first fails.
    pub const KINDS: [&'static str; 1] = ["StatusWrite"];

    pub fn kind(&self) -> &'static str {
        match self {
            Error::Status(_) => "StatusWrite",
        }
    }
}

pub async fn reconcile(
    stored: Arc<Decoded<OktaGroupBinding>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let ogb = match stored.as_ref() {
        Decoded::Read(ogb) => ogb,
        Decoded::Unreadable(object) => return Ok(unreadable::report(&ctx, &stored, object).await),
    };
    let started = Instant::now();
    ctx.metrics.reconciles.inc();
    if ctx
        .unreadable
        .readable_again(&ogb.uid().unwrap_or_default(), &ctx.metrics)
    {
        tracing::info!(name = %ogb.name_any(), "this OktaGroupBinding can be read again");
    }
    let result = reconcile_inner(ogb, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    if result.is_ok() {
        ctx.metrics.reconciled();
    }
    result
}

async fn reconcile_inner(ogb: &OktaGroupBinding, ctx: &Context) -> Result<Action, Error> {
    let uid = ogb.uid().unwrap_or_default();
    if ogb.meta().deletion_timestamp.is_some() {
        // The garbage collector removes the bindings through their owner references.
        ctx.metrics.object(&uid, None);
        return Ok(Action::await_change());
    }
    let started = now();
    let window = schedule::window(ogb, started.0);
    ctx.metrics.grant_ends(&uid, window.ends());
    // Paused leaves the bindings as they are, but not past the end of a grant.
    if ogb.spec.paused && !matches!(window, Window::Expired { .. }) {
        let old = ctx.current_status(ogb);
        let status = report::paused(ogb, &ctx.policy, &old, &started);
        ctx.metrics.object(
            &uid,
            Some(ObjectState {
                verification: "paused",
                ready: ready_status(&status),
                bindings: 0,
            }),
        );
        write_status(ctx, ogb, &old, status).await?;
        return Ok(Action::requeue(schedule::until_next_look(
            ctx.resync, &window, started.0,
        )));
    }

    let mut observation = observe::observe(ctx, ogb, &window).await;
    if let Some(roster) = &ctx.roster {
        // Told before the members are read, so that the list read next is kept: what a
        // Group subject grants does not depend on the members.
        let grant =
            judge::authorizer_grant(ogb, &judge::judge(ogb, &ctx.policy, &observation, &window));
        if let Some(grant) = grant {
            let unlisted = grant
                .as_ref()
                .filter(|g| !roster.has_list(&g.group_id))
                .map(|g| g.group_id.clone());
            roster.track(&uid, grant);
            if let Some(id) = unlisted {
                ctx.okta.relist_members(&id);
            }
        }
    }
    if let Some(group) = judge::members_to_read(ogb, &observation, &window, ctx.roster.is_some()) {
        observe::members(ctx, &group, &mut observation.okta).await;
    }
    let judgement = judge::judge(ogb, &ctx.policy, &observation, &window);
    let plan = plan::plan(ogb, &judgement, &observation.cluster);
    let writer = Writer {
        client: &ctx.client,
        stores: &ctx.stores,
        owner_uid: &uid,
    };
    let results = apply::apply(&writer, &plan.writes).await;
    record_access_changes(
        ctx,
        ogb,
        &judgement,
        &window,
        &audit::access_changes(&plan.writes, &results, &observation.cluster),
        &observation.status,
    );
    let report = report::report(
        &Inputs {
            ogb,
            policy: &ctx.policy,
            old: &observation.status,
            judgement: &judgement,
            plan: &plan,
            results: &results,
            window: &window,
        },
        &now(),
    );
    tracing::debug!(name = %ogb.name_any(), writes = results.len(), "applied");

    let Report {
        status,
        events,
        state,
        retry,
        failed_writes,
        terminating,
    } = report;
    ctx.metrics.terminating(&uid, terminating);
    for kind in failed_writes {
        ctx.metrics.binding_write_failed(kind);
    }
    ctx.metrics.object(
        &uid,
        Some(ObjectState {
            verification: state,
            ready: ready_status(&status),
            bindings: i64::from(status.binding_count),
        }),
    );
    publish(ctx, ogb, events);
    write_status(ctx, ogb, &observation.status, status).await?;
    // The next look: a retry, the resync, or the window's next boundary, the earliest. A
    // grant that is over is looked at each resync too: it asks Okta nothing, and a status
    // written over by someone else (a change of status alone triggers nothing) is
    // replaced rather than kept for as long as the object lives.
    let now = now().0;
    let next = match retry {
        Retry::Backoff => ctx.backoff_after_failure(&uid),
        // A second past the reset, when the directory's hold has ended; the lookups of
        // every object waiting for it go out together, in full requests.
        Retry::AtReset(reset) => Duration::from_secs(
            reset
                .saturating_sub(u64::try_from(now.as_second()).unwrap_or_default())
                .saturating_add(1),
        ),
        Retry::Resync => {
            ctx.clear_failures(&uid);
            ctx.resync
        }
    };
    Ok(Action::requeue(schedule::until_next_look(
        next, &window, now,
    )))
}

/// One audit record per subject granted or revoked a role, naming the Okta event that
/// caused it when one read lately can, and timing that event to its effect.
fn record_access_changes(
    ctx: &Context,
    ogb: &OktaGroupBinding,
    judgement: &judge::Judgement,
    window: &Window,
    changes: &[audit::AccessChange],
    old: &OktaGroupBindingStatus,
) {
    let group_id = match &judgement.outcome {
        judge::Outcome::Verified(group) => Some(group.id.as_str()),
        _ => old.group.as_ref().map(|g| g.id.as_str()),
    };
    for change in changes {
        let keys: Vec<&str> = match change.subject_kind.as_str() {
            "User" => {
                let login = change
                    .subject_name
                    .strip_prefix(subjects::effective_prefix(ogb, &ctx.policy))
                    .unwrap_or(&change.subject_name);
                std::iter::once(login).chain(group_id).collect()
            }
            _ => group_id.into_iter().collect(),
        };
        let cause = audit::cause(judgement, window, change);
        let event = cause
            .okta
            .then(|| {
                ctx.recent.latest(&keys, |kind| {
                    audit::explains(kind, &change.subject_kind, change.change)
                })
            })
            .flatten();
        let age = event.as_ref().and_then(|e| e.age_seconds());
        if let Some(age) = age {
            ctx.metrics.okta_change_took_effect("binding", age);
        }
        tracing::info!(
            target: "audit",
            object = %ogb.name_any(),
            group = %ogb.spec.group,
            binding = %change.binding,
            role = %change.role,
            subject = %change.subject,
            change = %change.change.as_str(),
            cause = %cause.text,
            okta_event_id = %event.as_ref().map_or("", |e| e.uuid.as_str()),
            okta_event_type = %event.as_ref().map_or("", |e| e.event_type.as_str()),
            seconds_after_okta = age,
            "access {}", change.change.as_str()
        );
    }
}

/// The status of the Ready condition, as the `objects` gauge counts it.
fn ready_status(status: &OktaGroupBindingStatus) -> &'static str {
    let ready = status
        .conditions
        .iter()
        .find(|condition| condition.type_ == okta_rbac_api::conditions::READY);
    match ready.map(|condition| condition.status.as_str()) {
        Some("True") => "True",
        Some("False") => "False",
        _ => "Unknown",
    }
}

pub(crate) fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Writes the status, unless it is the one last known: a reconcile that changes nothing
/// writes nothing. The whole status is replaced, not merged: a field the operator no
/// longer writes (or one it could not read, see [`Decoded`]) does not outlive it.
async fn write_status(
    ctx: &Context,
    ogb: &OktaGroupBinding,
    old: &OktaGroupBindingStatus,
    status: OktaGroupBindingStatus,
) -> Result<(), Error> {
    if &status == old {
        return Ok(());
    }
    let patch = json_patch::Patch(vec![json_patch::PatchOperation::Add(
        json_patch::AddOperation {
            path: json_patch::jsonptr::PointerBuf::from_tokens(["status"]),
            value: serde_json::json!(status),
        },
    )]);
    Api::<Decoded<OktaGroupBinding>>::all(ctx.client.clone())
        .patch_status(
            &ogb.name_any(),
            &PatchParams::default(),
            &Patch::Json::<()>(patch),
        )
        .await
        .map_err(Error::Status)?;
    ctx.record_status(ogb, status);
    Ok(())
}

/// Queues the events: an event is a note for people, and waiting for it would hold a
/// worker that could be granting the next object.
fn publish(ctx: &Context, ogb: &OktaGroupBinding, notes: Vec<Note>) {
    if !notes.is_empty() {
        ctx.events.publish(notes, &ogb.object_ref(&()));
    }
}

pub fn error_policy(
    stored: Arc<Decoded<OktaGroupBinding>>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    tracing::warn!(name = %stored.name_any(), %error, "reconcile failed");
    ctx.metrics
        .reconcile_failures
        .get_or_create(&crate::metrics::KindLabel {
            kind: error.kind().into(),
        })
        .inc();
    Action::requeue(Duration::from_secs(5))
}
