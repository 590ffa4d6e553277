//! The floor: the fastest way this apiserver accepts everything the operator's run
//! writes, not only the bindings. A direct client does per object what the user and the
//! operator together do: creates the object, creates its bindings, writes a status of
//! the operator's shape and publishes one event, with no Okta and no decisions. The
//! operator cannot be faster than this; the true limit (bindings only) leaves out the
//! object, its status and its event, which cost the apiserver more per object than the
//! bindings do. Runs after the operator (stopped by then), with its status as template.

use crate::cpu::CpuMeter;
use crate::limit::{create, remove, until_seen};
use crate::results::FloorResult;
use crate::watch::watch_bindings;
use crate::workload::{LIMIT_LABEL, NAMESPACES_PER_OBJECT, namespaces_of, spec};
use futures::StreamExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use okta_rbac_api::{OktaGroupBinding, OktaGroupBindingStatus};
use okta_rbac_operator::events::{EventType, Note, Publisher};
use std::time::Instant;

/// Objects in flight at once (each with its bindings at once), swept.
const OBJECTS_AT_ONCE: [usize; 2] = [3, 12];

const RUN: &str = "floor";

/// One object's writes: the object, its bindings (at once), its status, its event.
async fn one_object(
    client: &Client,
    events: &Publisher,
    status: &OktaGroupBindingStatus,
    i: usize,
) {
    let api: Api<OktaGroupBinding> = Api::all(client.clone());
    let mut object = OktaGroupBinding::new(&format!("{RUN}-{i:05}"), spec(i));
    object.metadata.labels = Some([(LIMIT_LABEL.to_string(), RUN.to_string())].into());
    let object = api
        .create(&PostParams::default(), &object)
        .await
        .expect("create an OktaGroupBinding");
    let bindings = std::iter::once(None)
        .chain(namespaces_of(i).map(Some))
        .map(|ns| create(client, RUN, i, ns));
    futures::future::join_all(bindings).await;
    api.patch_status(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await
    .expect("write the status");
    let note = Note {
        type_: EventType::Normal,
        reason: "Granted",
        note: format!("{} bindings created, 0 repaired", NAMESPACES_PER_OBJECT + 1),
    };
    events
        .publish(
            &note,
            &kube::Resource::object_ref(&object, &()),
            k8s_openapi::jiff::Timestamp::now(),
        )
        .await
        .expect("publish the event");
}

async fn one_run(
    client: &Client,
    processes: &[(String, u32)],
    objects: usize,
    status: &OktaGroupBindingStatus,
    at_once: usize,
) -> f64 {
    let (crbs, rbs) = watch_bindings(client, &format!("{LIMIT_LABEL}={RUN}")).await;
    let events = Publisher::new(client.clone(), "okta-rbac-bench", None);
    let cpu = CpuMeter::start(processes.iter().cloned());
    let started = Instant::now();
    futures::stream::iter(0..objects)
        .map(|i| one_object(client, &events, status, i))
        .buffer_unordered(at_once)
        .collect::<Vec<()>>()
        .await;
    until_seen((&crbs, &rbs), objects).await;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "   floor at {at_once} objects at once: {}",
        cpu.report(seconds)
    );
    Api::<OktaGroupBinding>::all(client.clone())
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels(&format!("{LIMIT_LABEL}={RUN}")),
        )
        .await
        .expect("delete the floor's objects");
    remove(client, RUN, (&crbs, &rbs)).await;
    seconds
}

/// The floor: the best of the sweep. `status` is one the operator wrote for an object
/// of the same workload.
pub async fn run_floor(
    client: &Client,
    processes: &[(String, u32)],
    objects: usize,
    status: &OktaGroupBindingStatus,
) -> FloorResult {
    let mut best: Option<FloorResult> = None;
    for at_once in OBJECTS_AT_ONCE {
        let seconds = one_run(client, processes, objects, status, at_once).await;
        eprintln!("   floor at {at_once} objects at once: {seconds:.2} s");
        if best.as_ref().is_none_or(|b| seconds < b.seconds) {
            best = Some(FloorResult {
                seconds,
                objects_at_once: at_once,
            });
        }
    }
    best.expect("a run")
}
