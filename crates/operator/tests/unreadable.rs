//! What the apiserver stores but the operator cannot read, and what Okta sends that the
//! operator does not expect: each is reported on its own and skipped, and never stops a
//! list, a watch, a page, or any other object, through a restart too.
//!
//! Objects are stored through an older, looser CRD (times without the rules admission has
//! now, an enum value of another version), then the current CRD is installed over them,
//! as an upgrade or a rollback leaves them.

mod common;

use common::world::World;
use common::{NEVER, condition, looser_crd, wait_condition};
use k8s_openapi::api::events::v1::Event;
use kube::CustomResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::api::{ApiResource, DynamicObject};
use okta_rbac_api::{OktaGroupBinding, SubjectKind};
use okta_rbac_testenv::OperatorProcess;
use okta_sim::{GroupType, UserStatus};
use serde_json::Value;
use serde_json::json;
use std::time::{Duration, Instant};

const RESYNC: &[&str] = &["--resync-interval", "3s"];

async fn metric(operator: &OperatorProcess, line: &str) -> f64 {
    let (_, text) = operator.get("/metrics").await.expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn unreadable_events(client: &kube::Client, name: &str) -> Vec<String> {
    Api::<Event>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some("Unreadable")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
        })
        .filter_map(|e| e.note)
        .collect()
}

/// A condition of the object as stored, read as JSON: the object is one the operator's
/// types (and so the typed helpers) cannot read.
async fn stored_condition(client: &kube::Client, name: &str, type_: &str) -> Option<Value> {
    let api = Api::<DynamicObject>::all_with(
        client.clone(),
        &ApiResource::erase::<OktaGroupBinding>(&()),
    );
    let object = api.get(name).await.ok()?;
    object.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

/// The Ready condition says Unreadable and names the field, Stalled is True; a Warning
/// event names the field too.
async fn reported(client: &kube::Client, name: &str, field: &str) {
    let ready = common::eventually(
        Duration::from_secs(45),
        &format!("{name} is reported Unreadable"),
        || async {
            let ready = stored_condition(client, name, "Ready").await?;
            (ready["reason"] == "Unreadable" && ready["status"] == "False").then_some(ready)
        },
    )
    .await;
    let message = ready["message"].as_str().unwrap_or_default();
    assert!(message.contains(field), "{message}");
    let stalled = stored_condition(client, name, "Stalled").await;
    assert_eq!(stalled.map(|c| c["status"].clone()), Some(json!("True")));
    common::eventually(Duration::from_secs(20), "a Warning event", || async {
        let notes = unreadable_events(client, name).await;
        notes.iter().any(|n| n.contains(field)).then_some(())
    })
    .await;
}

fn kubectl_plugin(world: &World, args: &[&str]) -> (i32, serde_json::Value) {
    let plugin = okta_rbac_testenv::paths::built_binary("kubectl-okta_rbac").expect("plugin");
    let output = std::process::Command::new(plugin)
        .args(args)
        .arg(format!(
            "--kubeconfig={}",
            world.plane.kubeconfig_path().display()
        ))
        .args(["-o", "json"])
        .env_remove("OKTA_API_TOKEN")
        .env_remove("OKTA_ORG_URL")
        .output()
        .expect("the plugin runs");
    let code = output.status.code().unwrap_or(-1);
    let answer = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (code, answer)
}

#[tokio::test]
async fn objects_the_operator_cannot_read_are_reported_and_stop_nothing_through_a_restart() {
    let world = World::start().await;
    world
        .plane
        .install_crds(&[looser_crd()])
        .await
        .expect("the looser CRD");
    let mut operator = world.operator(RESYNC).await;
    let group = world.group("k8s-unread-kept");
    let bystander_group = world.group("k8s-unread-fine");

    // Granted while readable; then an end the operator cannot hold is stored.
    let mut spec = common::view_spec(&group);
    spec.end_time = Some(serde_json::from_value(json!("2999-01-01T00:00:00Z")).expect("time"));
    world.create("kept", spec).await;
    wait_condition(&world.client, "kept", "Ready", "True", None).await;
    assert_eq!(world.bindings_of("kept").await, 1);
    let patched = world.plane.kubectl(
        &[
            "patch",
            "oktagroupbinding",
            "kept",
            "--type=merge",
            "-p",
            &json!({"spec": {"endTime": NEVER}}).to_string(),
        ],
        None,
    );
    assert!(
        patched.expect("kubectl").success,
        "the looser CRD admits it"
    );
    reported(&world.client, "kept", "spec.endTime").await;

    // An enum value of another version, stored new.
    let newer = json!({
        "apiVersion": "oktarbac.io/v1alpha1", "kind": "OktaGroupBinding",
        "metadata": {"name": "newer"},
        "spec": {"group": bystander_group, "subject": {"kind": "ServiceAccounts"},
                 "clusterRoleBindings": [{"clusterRole": "view"}]},
    });
    let created = world
        .plane
        .kubectl(&["apply", "-f", "-"], Some(&newer.to_string()))
        .expect("kubectl");
    assert!(created.success, "{}", created.stderr);
    reported(&world.client, "newer", "spec.subject.kind").await;

    // Everything else goes on: a new object is granted at once, and the unreadable one
    // keeps its binding through resyncs.
    world
        .create("fine", common::view_spec(&bystander_group))
        .await;
    wait_condition(&world.client, "fine", "Ready", "True", None).await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(world.bindings_of("kept").await, 1, "left as it was");
    assert_eq!(world.bindings_of("newer").await, 0, "never granted");
    assert_eq!(metric(&operator, "okta_rbac_unreadable_objects").await, 2.0);
    let log = operator.log();
    let lines = |log: &str, name: &str| {
        log.lines()
            .filter(|l| l.contains("cannot read this OktaGroupBinding") && l.contains(name))
            .count()
    };
    assert_eq!(
        lines(&log, "kept"),
        1,
        "one line per change, not per resync"
    );
    assert!(!log.contains("Error deserializing"), "no list failed on it");

    // The current CRD goes on over the stored objects; the operator restarts.
    world
        .plane
        .install_crds(&[OktaGroupBinding::crd()])
        .await
        .expect("the current CRD");
    operator.kill();
    let restarted = Instant::now();
    let operator = world.operator(RESYNC).await;
    let ready_after = restarted.elapsed();
    let (code, body) = operator.get("/readyz").await.expect("readyz");
    assert_eq!((code, body.as_str()), (200, "ok"));
    world
        .create("after", common::view_spec(&bystander_group))
        .await;
    wait_condition(&world.client, "after", "Ready", "True", None).await;
    println!(
        "restarted with two unreadable objects: ready in {:.1}s, a new object Ready {:.1}s after the start",
        ready_after.as_secs_f64(),
        restarted.elapsed().as_secs_f64()
    );
    assert!(restarted.elapsed() < Duration::from_secs(30));
    assert_eq!(world.bindings_of("kept").await, 1, "still left as it was");
    common::eventually(Duration::from_secs(10), "both counted again", || async {
        (metric(&operator, "okta_rbac_unreadable_objects").await == 2.0).then_some(())
    })
    .await;

    // The plugin answers, and says what it left out.
    let (code, explained) = kubectl_plugin(
        &world,
        &[
            "explain",
            "someone@example.com",
            "--check",
            "list pods -n default",
            &format!("--groups={bystander_group}"),
        ],
    );
    assert_eq!(code, 0, "allowed: {explained}");
    let unchecked = explained["unchecked"].to_string();
    assert!(
        unchecked.contains("OktaGroupBinding kept cannot be read")
            && unchecked.contains("spec.endTime")
            && unchecked.contains("OktaGroupBinding newer cannot be read"),
        "{unchecked}"
    );
    let (code, holders) = kubectl_plugin(&world, &["who-can", "list", "pods", "-n", "default"]);
    assert_eq!(code, 0, "{holders}");
    assert!(
        holders["unchecked"]
            .to_string()
            .contains("spec.subject.kind")
    );

    // Corrected, it is read and kept again; deleted, it is forgotten.
    world
        .objects()
        .patch(
            "kept",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"endTime": "9999-12-30T00:00:00Z"}})),
        )
        .await
        .expect("corrected");
    wait_condition(&world.client, "kept", "Ready", "True", None).await;
    assert_eq!(world.bindings_of("kept").await, 1);
    assert!(operator.log().contains("can be read again"));
    world
        .objects()
        .delete("newer", &Default::default())
        .await
        .expect("deleted");
    common::eventually(Duration::from_secs(20), "none left unreadable", || async {
        (metric(&operator, "okta_rbac_unreadable_objects").await == 0.0).then_some(())
    })
    .await;
}

/// `/readyz` says which watch has not listed, and why; `/healthz` stays ok, so the
/// kubelet does not restart what a restart cannot mend.
#[tokio::test]
async fn readiness_names_the_watch_that_cannot_list_and_why() {
    let world = World::start().await;
    let kubeconfig = world.plane.dir().join("no-rights.kubeconfig");
    world
        .plane
        .write_user_kubeconfig("no-rights", &[], &kubeconfig)
        .expect("kubeconfig");
    let operator = world
        .launch_as("no-rights", &kubeconfig, RESYNC)
        .start(&world.plane.dir().join("no-rights.log"))
        .expect("starts");
    let body = common::eventually(
        Duration::from_secs(30),
        "/readyz names the watches",
        || async {
            let (code, body) = operator.get("/readyz").await?;
            // Each watch lists on its own, so wait until every one has been refused.
            let every_watch_refused = body
                .lines()
                .filter(|line| line.contains(": "))
                .all(|line| line.contains("forbidden"));
            (code == 503 && body.contains("OktaGroupBindings") && every_watch_refused)
                .then_some(body)
        },
    )
    .await;
    println!("{body}");
    assert!(body.contains("OktaGroupBindings: not listed for"), "{body}");
    assert!(body.contains("RoleBindings"), "{body}");
    assert_eq!(operator.get("/healthz").await.map(|(c, _)| c), Some(200));
    assert_eq!(
        metric(
            &operator,
            "okta_rbac_watch_synced{watch=\"OktaGroupBindings\"}"
        )
        .await,
        0.0
    );
    assert!(
        metric(
            &operator,
            "okta_rbac_watch_failures_total{watch=\"OktaGroupBindings\"}"
        )
        .await
            >= 1.0
    );
}

/// One odd group or user in Okta's answer is set aside, never failing its page: the
/// other groups are verified, the other members bound.
#[tokio::test]
async fn an_odd_item_in_okta_s_answer_is_set_aside_and_the_rest_used() {
    let world = World::start().await;
    let operator = world.operator(RESYNC).await;
    let odd = world.group("k8s-odd-type");
    let lenient = world.group("k8s-odd-extras");
    let plain = world.group("k8s-odd-plain");
    let id = |name: &str| world.sim.group_id(name, GroupType::OktaGroup).expect("id");
    world
        .sim
        .set_oddity(&id(&odd), Some(json!({"type": null})))
        .expect("oddity");
    world
        .sim
        .set_oddity(
            &id(&lenient),
            Some(json!({"lastMembershipUpdated": 12, "_embedded": {"stats": {"usersCount": "many"}}})),
        )
        .expect("oddity");
    // Users mode: one member whose login is missing.
    let members = world.group("k8s-odd-members");
    let stranger = world
        .sim
        .create_user("stranger@example.com", UserStatus::Active, None)
        .expect("user");
    world
        .sim
        .add_member(&id(&members), "stranger@example.com")
        .expect("member");
    world
        .sim
        .set_oddity(&stranger, Some(json!({"profile": {"login": null}})))
        .expect("oddity");

    for (name, group) in [("odd", &odd), ("lenient", &lenient), ("plain", &plain)] {
        world.create(name, common::view_spec(group)).await;
    }
    let mut users = common::view_spec(&members);
    users.subject.kind = SubjectKind::Users;
    world.create("members", users).await;

    let unknown = wait_condition(
        &world.client,
        "odd",
        "GroupVerified",
        "Unknown",
        Some("OktaBadAnswer"),
    )
    .await;
    let verified = condition(&unknown, "GroupVerified").expect("GroupVerified");
    assert!(verified.message.contains("type"), "{}", verified.message);
    wait_condition(&world.client, "lenient", "Ready", "True", None).await;
    wait_condition(&world.client, "plain", "Ready", "True", None).await;
    let bound = wait_condition(&world.client, "members", "Ready", "True", None).await;
    assert_eq!(
        bound
            .status
            .and_then(|s| s.group)
            .and_then(|g| g.bound_users),
        Some(1),
        "the readable member only"
    );
    assert!(
        metric(
            &operator,
            "okta_rbac_okta_unreadable_items_total{kind=\"group\"}"
        )
        .await
            >= 1.0
    );
    assert!(
        metric(
            &operator,
            "okta_rbac_okta_unreadable_items_total{kind=\"user\"}"
        )
        .await
            >= 1.0
    );

    world.sim.set_oddity(&id(&odd), None).expect("mended");
    wait_condition(&world.client, "odd", "Ready", "True", None).await;
}

/// Found by the fuzzer: a status written over by hand on a grant that had ended stayed, so
/// `kubectl get ogb` showed bindings that did not exist, for as long as the object lived.
/// Every object is looked at again each resync now, and a status the operator cannot read
/// (a time past what it holds) is replaced like any other.
#[tokio::test]
async fn a_status_written_over_by_hand_is_replaced_even_after_the_grant_ended() {
    let world = World::start().await;
    let _operator = world.operator(RESYNC).await;
    let group = world.group("k8s-hand-written");
    let mut ended = common::view_spec(&group);
    ended.end_time = Some(serde_json::from_value(json!("2020-01-01T00:00:00Z")).expect("time"));
    world.create("ended", ended).await;
    world.create("granted", common::view_spec(&group)).await;
    wait_condition(&world.client, "ended", "Active", "False", Some("Expired")).await;
    wait_condition(&world.client, "granted", "Ready", "True", None).await;

    let forged = json!({"status": {
        "bindingCount": 6,
        "subject": "forged",
        "lastVerified": "9999-12-31T23:59:59Z",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "forged",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    }});
    // Read back as stored: the forged time is one the typed client could not decode.
    let stored = Api::<okta_rbac_api::Decoded<OktaGroupBinding>>::all(world.client.clone());
    for name in ["ended", "granted"] {
        stored
            .patch_status(name, &PatchParams::default(), &Patch::Merge(forged.clone()))
            .await
            .expect("the apiserver takes a hand-written status");
    }
    for name in ["ended", "granted"] {
        let object = common::eventually(
            Duration::from_secs(15),
            &format!("{name}'s status is the operator's again"),
            || async {
                let object = world.objects().get(name).await.ok()?;
                let status = object.status.clone()?;
                (status.subject.as_deref() != Some("forged")).then_some(object)
            },
        )
        .await;
        let status = object.status.expect("status");
        let bindings = world.bindings_of(name).await;
        assert_eq!(
            status.binding_count as usize, bindings,
            "{name}: what exists"
        );
        assert_ne!(
            status.last_verified.map(|t| t.0.to_string()).as_deref(),
            Some("9999-12-31T23:59:59Z")
        );
    }
}
