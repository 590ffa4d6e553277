//! One reconcile: verify the group with Okta, work out the bindings, apply them, and
//! write the status only when it changed.

use super::apply::apply;
use super::context::Context;
use super::desired::{
    NamespaceView, desired_bindings, group_subject, refuse_answer, refuse_name, subject_summary,
    user_subjects,
};
use super::verdict::{self, Outcome};
use crate::crd::conditions::{self, Status, Verdict};
use crate::crd::{OktaGroupBinding, OktaGroupBindingStatus, OktaGroupStatus, SubjectKind};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing the status: {0}")]
    Status(#[source] kube::Error),
}

impl Error {
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Status(_) => "StatusWrite",
        }
    }
}

async fn verify(ctx: &Context, ogb: &OktaGroupBinding) -> Outcome {
    let group = &ogb.spec.group;
    if let Some(refusal) = refuse_name(group, &ctx.policy) {
        return Outcome::Refused(refusal);
    }
    let answer = match ctx.okta.lookup(group).await {
        Ok(answer) => answer,
        Err(error) => return Outcome::Unknown(error),
    };
    if let Some(refusal) = refuse_answer(&answer.groups) {
        return Outcome::Refused(refusal);
    }
    let Some(found) = answer.groups.first() else {
        return Outcome::Missing;
    };
    let recorded = ogb
        .status
        .as_ref()
        .and_then(|s| s.group.as_ref())
        .map(|g| g.id.clone());
    match recorded {
        Some(recorded) if recorded != found.id => Outcome::Replaced {
            recorded,
            found: found.id.clone(),
        },
        _ => Outcome::Verified(found.clone()),
    }
}

fn state_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Verified(_) => "verified",
        Outcome::Missing | Outcome::Replaced { .. } => "missing",
        Outcome::Refused(_) => "refused",
        Outcome::Unknown(_) => "unknown",
    }
}

pub async fn reconcile(ogb: Arc<OktaGroupBinding>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics.reconciles.inc();
    let result = reconcile_inner(&ogb, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_inner(ogb: &OktaGroupBinding, ctx: &Context) -> Result<Action, Error> {
    let uid = ogb.uid().unwrap_or_default();
    if ogb.meta().deletion_timestamp.is_some() {
        // The garbage collector removes the bindings through their owner references.
        ctx.metrics.object(&uid, None);
        return Ok(Action::await_change());
    }
    if ogb.spec.paused {
        ctx.metrics.object(&uid, Some(("paused", 0)));
        return Ok(Action::requeue(ctx.resync));
    }

    let mut outcome = verify(ctx, ogb).await;
    let subjects = match (&outcome, ogb.spec.subject.kind) {
        (Outcome::Verified(_), SubjectKind::Group) => group_subject(ogb, &ctx.policy),
        (Outcome::Verified(group), SubjectKind::Users) => match ctx.okta.members(group).await {
            Ok(members) => user_subjects(ogb, &ctx.policy, &members),
            Err(error) => {
                outcome = Outcome::Unknown(error);
                Vec::new()
            }
        },
        _ => Vec::new(),
    };
    let namespaces = ctx.stores.namespaces.state();
    let views: Vec<NamespaceView<'_>> = namespaces
        .iter()
        .filter(|ns| ns.metadata.deletion_timestamp.is_none())
        .map(|ns| NamespaceView {
            name: ns.metadata.name.as_deref().unwrap_or_default(),
            labels: ns.metadata.labels.as_ref().unwrap_or(&EMPTY_LABELS),
        })
        .collect();
    let desired = desired_bindings(ogb, &subjects, &views);
    let grant = verdict::grant(&outcome, ogb.spec.on_group_missing);
    let (report, bindings) = apply(ctx, ogb, &desired, grant).await;
    tracing::debug!(
        name = %ogb.name_any(),
        created = report.created,
        updated = report.updated,
        deleted = report.deleted,
        bound = report.bound,
        "applied"
    );

    let verified = verdict::group_verified(
        &outcome,
        &ogb.spec.group,
        &ctx.policy.allowed_group_prefix,
        ogb.spec.on_group_missing,
    );
    let applied = verdict::bindings_applied(grant, &outcome, &report);
    let ready = verdict::ready(&verified, &applied, &report);
    let old = ctx.current_status(ogb);
    let status = new_status(
        ogb,
        ctx,
        &old,
        &outcome,
        &subjects,
        bindings,
        &[ready, verified.clone(), applied.clone()],
    );
    publish_events(ctx, ogb, &old, &verified, &applied, &report);
    ctx.metrics.object(
        &uid,
        Some((state_name(&outcome), status.binding_count as i64)),
    );
    if status != old {
        let api: Api<OktaGroupBinding> = Api::all(ctx.client.clone());
        api.patch_status(
            &ogb.name_any(),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": status })),
        )
        .await
        .map_err(Error::Status)?;
        ctx.record_status(ogb, status);
    }
    Ok(match outcome {
        Outcome::Unknown(_) => Action::requeue(ctx.backoff_after_failure(&uid)),
        _ if !report.failures.is_empty() => Action::requeue(ctx.backoff_after_failure(&uid)),
        _ => {
            ctx.clear_failures(&uid);
            Action::requeue(ctx.resync)
        }
    })
}

static EMPTY_LABELS: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();

fn new_status(
    ogb: &OktaGroupBinding,
    ctx: &Context,
    old: &OktaGroupBindingStatus,
    outcome: &Outcome,
    subjects: &[k8s_openapi::api::rbac::v1::Subject],
    bindings: Vec<crate::crd::ManagedBinding>,
    verdicts: &[Verdict],
) -> OktaGroupBindingStatus {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let conditions = conditions::merge(&old.conditions, verdicts, ogb.metadata.generation, &now);
    let group = match outcome {
        Outcome::Verified(group) => Some(OktaGroupStatus {
            id: group.id.clone(),
            name: group.profile.name.clone(),
            group_type: group.group_type.clone(),
            member_count: group.member_count().map(i64::from),
            bound_users: (ogb.spec.subject.kind == SubjectKind::Users)
                .then_some(subjects.len() as i64),
        }),
        // Keep the verified id: a group re-created under the same name must not pass.
        _ => old.group.clone(),
    };
    // The time of verification moves when what was verified changes, so that a resync
    // that confirms everything writes nothing.
    let verification_changed = old.group != group
        || conditions
            .iter()
            .find(|c| c.type_ == conditions::GROUP_VERIFIED)
            .map(|c| &c.last_transition_time)
            != old
                .conditions
                .iter()
                .find(|c| c.type_ == conditions::GROUP_VERIFIED)
                .map(|c| &c.last_transition_time);
    let last_verified = match outcome {
        Outcome::Unknown(_) => old.last_verified.clone(),
        _ if verification_changed || old.last_verified.is_none() => Some(now),
        _ => old.last_verified.clone(),
    };
    OktaGroupBindingStatus {
        observed_generation: ogb.metadata.generation,
        subject: Some(subject_summary(ogb, &ctx.policy)),
        group,
        binding_count: bindings.len() as i32,
        bindings,
        last_verified,
        conditions,
    }
}

fn publish_events(
    ctx: &Context,
    ogb: &OktaGroupBinding,
    old: &OktaGroupBindingStatus,
    verified: &Verdict,
    applied: &Verdict,
    report: &verdict::ApplyReport,
) {
    let reference = ogb.object_ref(&());
    let previous = |type_: &str| {
        old.conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| c.reason.clone())
    };
    let mut events = Vec::new();
    if previous(conditions::GROUP_VERIFIED).as_deref() != Some(verified.reason)
        && verified.status != Status::True
    {
        events.push((
            EventType::Warning,
            verified.reason,
            verified.message.clone(),
        ));
    }
    if previous(conditions::BINDINGS_APPLIED).as_deref() != Some(applied.reason)
        && applied.status == Status::False
    {
        events.push((EventType::Warning, applied.reason, applied.message.clone()));
    }
    if report.created > 0 || report.updated > 0 {
        events.push((
            EventType::Normal,
            "Granted",
            format!(
                "{} bindings created, {} repaired",
                report.created, report.updated
            ),
        ));
    }
    if report.deleted > 0 {
        events.push((
            EventType::Normal,
            "Revoked",
            format!("{} bindings deleted", report.deleted),
        ));
    }
    if events.is_empty() {
        return;
    }
    // Published off the reconcile's path: an event is a note for people, and waiting for
    // it would hold a worker that could be granting the next object.
    let recorder = ctx.recorder.clone();
    tokio::spawn(async move {
        for (type_, reason, note) in events {
            let event = Event {
                type_,
                reason: reason.into(),
                note: Some(note),
                action: "Reconcile".into(),
                secondary: None,
            };
            if let Err(error) = recorder.publish(&event, &reference).await {
                tracing::warn!(%error, "publishing an event failed");
            }
        }
    });
}

pub fn error_policy(ogb: Arc<OktaGroupBinding>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(name = %ogb.name_any(), %error, "reconcile failed");
    ctx.metrics
        .reconcile_failures
        .get_or_create(&crate::metrics::KindLabel {
            kind: error.kind().into(),
        })
        .inc();
    Action::requeue(Duration::from_secs(5))
}
