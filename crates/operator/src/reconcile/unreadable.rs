//! An OktaGroupBinding the operator cannot read (see [`okta_rbac_api::decoded`]): a
//! field its types cannot hold, such as an enum value written through another version of
//! the CRD or a time stored before admission refused it. It is reported once per change
//! of the object (a Warning event and the Ready condition naming the field and why, one
//! log line, the `unreadable_objects` gauge) and otherwise left alone: its bindings stay
//! as they are until it can be read, and it holds up no other object.

use super::context::Context;
use crate::events::{EventType, Note};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use okta_rbac_api::conditions::{READY, STALLED};
use okta_rbac_api::reasons::Reason;
use okta_rbac_api::{Decoded, OktaGroupBinding, Unreadable};
use std::collections::HashMap;
use std::sync::Mutex;

/// The objects reported as unreadable, by uid, with the generation reported.
#[derive(Default)]
pub struct Reported(Mutex<HashMap<String, Option<i64>>>);

impl Reported {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<i64>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that this generation of `uid` is unreadable; false when it was reported
    /// already.
    fn first_report(&self, uid: &str, generation: Option<i64>) -> bool {
        self.lock().insert(uid.to_string(), generation) != Some(generation)
    }

    /// `uid` can be read again (or is gone): true when it had been reported.
    pub fn readable_again(&self, uid: &str, metrics: &crate::metrics::Metrics) -> bool {
        let mut reported = self.lock();
        let was = reported.remove(uid).is_some();
        metrics.unreadable_objects(reported.len());
        was
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }
}

/// What the object's author reads, in the event and in the Ready condition.
pub fn message(object: &Unreadable) -> String {
    format!(
        "the operator cannot read {}: {}. It leaves this object's bindings as they are until \
         it can: correct the field, or run the operator version that understands it",
        object.field, object.reason
    )
}

/// Reports `object` if this change of it was not reported yet. Nothing else happens to
/// it until it changes.
pub async fn report(
    ctx: &Context,
    stored: &Decoded<OktaGroupBinding>,
    object: &Unreadable,
) -> Action {
    let uid = stored.uid().unwrap_or_default();
    let generation = stored.meta().generation;
    if !ctx.unreadable.first_report(&uid, generation) {
        return Action::await_change();
    }
    ctx.metrics.unreadable_objects(ctx.unreadable.count());
    // The object is no longer kept by the pipeline: its gauges would count it twice.
    ctx.metrics.object(&uid, None);
    let name = stored.name_any();
    tracing::warn!(
        %name,
        field = %object.field,
        reason = %object.reason,
        "cannot read this OktaGroupBinding; its bindings stay as they are until it can be read"
    );
    let text = message(object);
    ctx.events.publish(
        vec![Note {
            type_: EventType::Warning,
            reason: Reason::Unreadable.as_str(),
            note: text.clone(),
        }],
        &stored.object_ref(&()),
    );
    let condition = |type_: &str, status: &str| Condition {
        type_: type_.into(),
        status: status.into(),
        reason: Reason::Unreadable.as_str().into(),
        message: text.clone(),
        observed_generation: generation,
        last_transition_time: super::now(),
    };
    // Only a person (or another operator version) can make it readable: Stalled, which
    // GitOps tools show as failed. The other conditions spoke of a version the operator
    // cannot read; the bindings it listed are still there, so `bindings` stays.
    let patch = serde_json::json!({
        "status": {
            "observedGeneration": generation,
            "conditions": [condition(READY, "False"), condition(STALLED, "True")],
        }
    });
    if let Err(error) = Api::<Decoded<OktaGroupBinding>>::all(ctx.client.clone())
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        tracing::debug!(%name, %error, "could not write the status of an unreadable object");
    }
    Action::await_change()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_change_is_reported_once() {
        let reported = Reported::default();
        let metrics = crate::metrics::Metrics::default();
        assert!(reported.first_report("a", Some(1)));
        assert!(!reported.first_report("a", Some(1)), "the same generation");
        assert!(reported.first_report("a", Some(2)), "a new generation");
        assert!(reported.first_report("b", Some(1)));
        assert_eq!(reported.count(), 2);
        assert!(reported.readable_again("a", &metrics));
        assert!(!reported.readable_again("a", &metrics));
        assert_eq!(reported.count(), 1);
    }

    #[test]
    fn the_message_names_the_field_and_what_happens_to_the_bindings() {
        let text = message(&Unreadable {
            metadata: Default::default(),
            field: "spec.subject.kind".into(),
            reason: "unknown variant `ServiceAccounts`".into(),
        });
        assert!(text.contains("spec.subject.kind: unknown variant `ServiceAccounts`"));
        assert!(text.contains("bindings as they are"));
    }
}
