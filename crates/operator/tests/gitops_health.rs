//! How GitOps tools see OktaGroupBindings, judged by their own code on status the operator
//! actually wrote on the real control plane: Argo CD's health evaluation of the shipped
//! health script (config/argocd/argocd-cm.yaml), and kstatus, which Flux's health checks
//! and `wait` use.

mod common;

use common::{apply_binding, eventually, harness, view_spec, wait_condition};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::SignedDuration;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use okta_rbac_api::{OktaGroupBinding, OktaGroupBindingSpec, RoleBindingSpec};
use okta_rbac_operator::reconcile::desired::{Scope, binding_name};
use okta_rbac_testenv::gotools::{argocd_health, kstatus};
use okta_rbac_testenv::paths::checkout;
use okta_rbac_testenv::unique_name;
use okta_sim::{FaultSettings, GroupType};
use serde_json::Value;
use std::time::Duration;

fn okta_group(prefix: &str) -> String {
    let name = unique_name(prefix);
    harness()
        .sim
        .create_group(&name, GroupType::OktaGroup)
        .expect("group");
    name
}

/// The object as the apiserver serves it to Argo CD and Flux.
async fn served(client: &Client, name: &str) -> Value {
    let resource = ApiResource::erase::<OktaGroupBinding>(&());
    let object = Api::<DynamicObject>::all_with(client.clone(), &resource)
        .get(name)
        .await
        .expect("get");
    serde_json::to_value(object).expect("JSON")
}

struct Expect {
    what: &'static str,
    name: String,
    argo: &'static str,
    kstatus: &'static str,
}

fn view_ref() -> RoleRef {
    RoleRef {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "ClusterRole".into(),
        name: "view".into(),
    }
}

async fn judged_by_both(client: &Client, cases: &[Expect]) {
    let mut objects = Vec::new();
    for case in cases {
        objects.push(served(client, &case.name).await);
    }
    let argocd_cm = checkout().join("config/argocd/argocd-cm.yaml");
    let argo = argocd_health(&argocd_cm, &objects).expect("Argo CD's health evaluation");
    let flux = kstatus(&objects).expect("kstatus");
    for ((case, (argo, argo_message)), (flux, flux_message)) in cases.iter().zip(argo).zip(flux) {
        println!(
            "{:<40} Argo CD {argo:<12} kstatus {flux:<11} ({argo_message})",
            case.what
        );
        assert_eq!(
            (argo.as_str(), flux.as_str()),
            (case.argo, case.kstatus),
            "{}: Argo CD says {argo_message:?}, kstatus {flux_message:?}",
            case.what
        );
    }
}

#[tokio::test]
async fn argo_cd_and_flux_read_each_state_the_operator_reports() {
    let client = harness().plane.client().await.expect("client");
    let mut cases = Vec::new();
    let mut add = async |what: &'static str,
                         spec: OktaGroupBindingSpec,
                         condition: (&str, &str, &str),
                         argo: &'static str,
                         kstatus: &'static str| {
        let name = unique_name("health");
        apply_binding(&client, &name, spec).await;
        let (type_, status, reason) = condition;
        wait_condition(&client, &name, type_, status, Some(reason)).await;
        cases.push(Expect {
            what,
            name,
            argo,
            kstatus,
        });
    };

    add(
        "Ready",
        view_spec(&okta_group("k8s-healthy")),
        ("Ready", "True", "Ready"),
        "Healthy",
        "Current",
    )
    .await;
    add(
        "group missing in Okta",
        view_spec(&unique_name("k8s-nowhere")),
        ("Stalled", "True", "GroupMissing"),
        "Degraded",
        "Failed",
    )
    .await;
    add(
        "group outside the allowed prefix",
        view_spec(&okta_group("platform")),
        ("Stalled", "True", "OutsideAllowedPrefix"),
        "Degraded",
        "Failed",
    )
    .await;
    let mut missing_role = view_spec(&okta_group("k8s-norole"));
    missing_role.cluster_role_bindings[0].cluster_role = unique_name("no-such-role");
    add(
        "a role that does not exist yet",
        missing_role,
        ("Ready", "False", "RoleMissing"),
        "Progressing",
        "InProgress",
    )
    .await;
    let mut missing_namespace = view_spec(&okta_group("k8s-nons"));
    missing_namespace.role_bindings = vec![RoleBindingSpec {
        namespace: Some(unique_name("not-yet")),
        namespace_selector: None,
        role: None,
        cluster_role: Some("view".into()),
    }];
    add(
        "a namespace that does not exist yet",
        missing_namespace,
        ("BindingsApplied", "False", "NamespaceMissing"),
        "Progressing",
        "InProgress",
    )
    .await;
    // Time-bound grants ahead of their start and over: the declared state (no bindings)
    // is reached, so both are healthy and current.
    let now = k8s_openapi::jiff::Timestamp::now();
    let mut ahead = view_spec(&okta_group("k8s-ahead"));
    ahead.start_time = Some(Time(now + SignedDuration::from_hours(1)));
    add(
        "grant not yet active",
        ahead,
        ("Active", "False", "NotYetActive"),
        "Healthy",
        "Current",
    )
    .await;
    let mut over = view_spec(&okta_group("k8s-over"));
    over.end_time = Some(Time(now - SignedDuration::from_hours(1)));
    add(
        "grant expired",
        over,
        ("Active", "False", "Expired"),
        "Healthy",
        "Current",
    )
    .await;
    let mut paused = view_spec(&okta_group("k8s-paused"));
    paused.paused = true;
    add(
        "paused",
        paused,
        ("Paused", "True", "Paused"),
        "Suspended",
        "InProgress",
    )
    .await;

    // Someone else's binding holds the name the operator would write.
    let clash = unique_name("health-clash");
    let foreign = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(binding_name(&clash, &Scope::Cluster, &view_ref())),
            ..Default::default()
        },
        role_ref: view_ref(),
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Group".into(),
            name: "someone-else".into(),
            namespace: None,
        }]),
    };
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &foreign)
        .await
        .expect("foreign binding");
    apply_binding(&client, &clash, view_spec(&okta_group("k8s-clash"))).await;
    wait_condition(&client, &clash, "Stalled", "True", Some("Conflict")).await;
    cases.push(Expect {
        what: "a binding name someone else owns",
        name: clash,
        argo: "Degraded",
        kstatus: "Failed",
    });
    judged_by_both(&client, &cases).await;

    // A changed object is Progressing until the operator has looked at it, and Healthy
    // again after.
    let ready = cases[0].name.clone();
    Api::<OktaGroupBinding>::all(client.clone())
        .patch(
            &ready,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"onGroupMissing": "Retain"}})),
        )
        .await
        .expect("patch");
    let objects = Api::<OktaGroupBinding>::all(client.clone());
    eventually(
        Duration::from_secs(30),
        "the new generation observed",
        || {
            let objects = objects.clone();
            let ready = ready.clone();
            async move {
                let object = objects.get(&ready).await.ok()?;
                let observed = object.status.as_ref()?.observed_generation;
                (observed == object.metadata.generation).then_some(())
            }
        },
    )
    .await;
    judged_by_both(
        &client,
        &[Expect {
            what: "changed, and looked at again",
            name: ready.clone(),
            argo: "Healthy",
            kstatus: "Current",
        }],
    )
    .await;

    // Okta down: the objects that were Ready are Progressing, not Degraded.
    harness().sim.set_faults(FaultSettings {
        outage_seconds: 600,
        ..Default::default()
    });
    wait_condition(
        &client,
        &ready,
        "GroupVerified",
        "Unknown",
        Some("OktaServerError"),
    )
    .await;
    judged_by_both(
        &client,
        &[Expect {
            what: "Okta down",
            name: ready,
            argo: "Progressing",
            kstatus: "InProgress",
        }],
    )
    .await;
    harness().sim.clear_faults();
}
