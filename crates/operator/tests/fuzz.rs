//! OktaGroupBindings generated from the CRD's own OpenAPI schema, every field at and past
//! its limits (see `okta_rbac_testenv::schema_fuzz`), sent through the real apiserver.
//! Each must be refused at admission with a message a person understands, or be
//! reconciled by the operator; a status written over by hand with generated values must
//! be replaced by the operator's own. Through it all, a control object keeps being
//! granted, repaired and revoked, the plugin answers for its user, and the operator stays
//! healthy and ready.
//!
//! `make test` runs a fixed seed and a few hundred objects; `make fuzz` runs more
//! (FUZZ_CASES, FUZZ_SEED). Anything found becomes a named case in bad_input.rs.

mod common;

use common::{harness, owned_bindings, view_spec, wait_condition};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{CustomResourceExt, ResourceExt};
use okta_rbac_api::{OktaGroupBinding, OktaGroupBindingSpec, RoleBindingSpec};
use okta_rbac_testenv::schema_fuzz::{Hints, SchemaFuzz};
use okta_rbac_testenv::unique_name;
use okta_sim::{GroupType, UserStatus};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const CASES: usize = 240;
const SEED: u64 = 20_261_202;
/// Objects created before the operator's answers are awaited.
const BATCH: usize = 40;
/// An admitted object is reconciled within this long, even in a batch on a busy machine.
const RECONCILED_WITHIN: Duration = Duration::from_secs(90);

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Words that mean the apiserver could not evaluate a rule, rather than saying what is
/// wrong with the value: a person cannot act on them.
const UNCLEAR: &[&str] = &[
    "compilation",
    "no such overload",
    "no matching overload",
    "no such key",
    "failed to convert",
    "parsing time",
    "runtime error",
    "internal error",
    "cost budget",
    "panic",
    "evaluation error",
];

/// Why a refusal is not one a person understands, if it is not.
fn unclear(code: u16, message: &str) -> Option<String> {
    if ![400, 413, 422].contains(&code) {
        return Some(format!("HTTP {code}"));
    }
    if let Some(word) = UNCLEAR.iter().find(|w| message.to_lowercase().contains(*w)) {
        return Some(format!("says {word:?}"));
    }
    let names_a_field = ["spec", "metadata", "status", "unknown field", "body"]
        .iter()
        .any(|w| message.contains(w));
    (!names_a_field).then(|| "names no field".to_string())
}

/// The refusal's first words, to count refusals by kind.
fn kind_of(message: &str) -> String {
    let message = message.split_once(": ").map_or(message, |(_, rest)| rest);
    message.chars().take(70).collect()
}

#[derive(Default)]
struct Tally {
    refused: BTreeMap<String, usize>,
    reconciled: BTreeMap<String, usize>,
    statuses_refused: usize,
    statuses_replaced: usize,
    findings: Vec<String>,
}

async fn send(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: &Value,
) -> Result<Value, (u16, String)> {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(serde_json::to_vec(body).expect("JSON"))
        .expect("request");
    match client.request::<Value>(request).await {
        Ok(value) => Ok(value),
        Err(kube::Error::Api(status)) => Err((status.code, status.message.clone())),
        Err(other) => Err((0, other.to_string())),
    }
}

/// Every object, as the apiserver stores it (not decoded into the operator's types).
fn raw_objects(client: &kube::Client) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &ApiResource::erase::<OktaGroupBinding>(&()))
}

/// Reconciled: the status is of the current generation and has its Ready condition.
fn reconciled(object: &DynamicObject) -> Option<(String, String)> {
    let status = &object.data["status"];
    let generation = object.metadata.generation?;
    if status["observedGeneration"].as_i64() != Some(generation) {
        return None;
    }
    let ready = status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?;
    Some((
        format!(
            "{}/{}",
            ready["status"].as_str()?,
            ready["reason"].as_str()?
        ),
        status["subject"].as_str().unwrap_or_default().to_string(),
    ))
}

struct Control {
    name: String,
    group: String,
    user: String,
}

impl Control {
    fn spec(&self) -> OktaGroupBindingSpec {
        view_spec(&self.group)
    }

    async fn bindings(&self, client: &kube::Client) -> (usize, usize) {
        let ogb = Api::<OktaGroupBinding>::all(client.clone())
            .get(&self.name)
            .await
            .expect("the control object");
        let (crbs, rbs) = owned_bindings(client, &ogb).await;
        (crbs.len(), rbs.len())
    }

    async fn wait_bindings(&self, client: &kube::Client, want: (usize, usize), what: &str) {
        common::eventually(Duration::from_secs(30), what, || async {
            (self.bindings(client).await == want).then_some(())
        })
        .await;
    }

    /// `kubectl okta-rbac explain` for the control user, with the token's groups given:
    /// whether it says they may list pods in default (and that it answered at all).
    async fn plugin_allows(&self, kubeconfig: &std::path::Path) -> bool {
        let plugin =
            okta_rbac_testenv::paths::built_binary("kubectl-okta_rbac").expect("the plugin");
        let args = [
            "explain".to_string(),
            self.user.clone(),
            "--check".into(),
            "list pods -n default".into(),
            format!("--groups={}", self.group),
            // Generated objects carry prefixes of their own: the plugin would infer one.
            "--groups-prefix=".into(),
            format!("--kubeconfig={}", kubeconfig.display()),
            "-o".into(),
            "json".into(),
        ];
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(plugin)
                .args(args)
                .env_remove("OKTA_API_TOKEN")
                .env_remove("OKTA_ORG_URL")
                .output()
                .expect("the plugin runs")
        })
        .await
        .expect("plugin task");
        let code = output.status.code();
        assert!(
            matches!(code, Some(0 | 1)),
            "the plugin answers (allowed or denied), not {code:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let answer: Value = serde_json::from_slice(&output.stdout).expect("the plugin's JSON");
        println!("the plugin for {}: {}", self.user, answer["checks"][0]);
        answer["checks"][0]["allowed"] == json!(true)
    }

    /// Granted, repaired after its binding is deleted, revoked when the spec no longer
    /// declares it, and granted again; the plugin agreeing at each step.
    async fn exercise(&self, client: &kube::Client, kubeconfig: &std::path::Path) {
        self.wait_bindings(client, (1, 0), "the control object is granted")
            .await;
        assert!(self.plugin_allows(kubeconfig).await, "the plugin: allowed");
        let ogb = Api::<OktaGroupBinding>::all(client.clone())
            .get(&self.name)
            .await
            .expect("control");
        let (crbs, _) = owned_bindings(client, &ogb).await;
        Api::<ClusterRoleBinding>::all(client.clone())
            .delete(&crbs[0].name_any(), &DeleteParams::default())
            .await
            .expect("delete the control binding");
        common::eventually(
            Duration::from_secs(30),
            "the binding is repaired",
            || async {
                let (crbs, _) = owned_bindings(client, &ogb).await;
                crbs.iter()
                    .any(|b| b.metadata.deletion_timestamp.is_none())
                    .then_some(())
            },
        )
        .await;
        let mut narrowed = self.spec();
        narrowed.cluster_role_bindings.clear();
        narrowed.role_bindings = vec![RoleBindingSpec {
            namespace: Some("kube-public".into()),
            namespace_selector: None,
            role: None,
            cluster_role: Some("view".into()),
        }];
        self.set_spec(client, &narrowed).await;
        self.wait_bindings(client, (0, 1), "the grant is revoked")
            .await;
        assert!(
            !self.plugin_allows(kubeconfig).await,
            "the plugin: denied once revoked"
        );
        self.set_spec(client, &self.spec()).await;
        self.wait_bindings(client, (1, 0), "granted again").await;
    }

    async fn set_spec(&self, client: &kube::Client, spec: &OktaGroupBindingSpec) {
        Api::<OktaGroupBinding>::all(client.clone())
            .patch(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .expect("patch the control object");
    }
}

#[tokio::test]
async fn every_generated_object_is_refused_clearly_or_reconciled_while_a_control_object_keeps_working()
 {
    let h = harness();
    let client = h.plane.client().await.expect("client");
    let cases = setting("FUZZ_CASES", CASES as u64) as usize;
    let seed = setting("FUZZ_SEED", SEED);
    println!("fuzzing {cases} objects with seed {seed} (FUZZ_CASES, FUZZ_SEED)");

    let groups: Vec<String> = (0..2)
        .map(|i| {
            let name = unique_name(&format!("k8s-fuzz-{i}"));
            h.sim
                .create_group(&name, GroupType::OktaGroup)
                .expect("group");
            name
        })
        .collect();
    let control = Control {
        name: unique_name("fuzz-control"),
        group: unique_name("k8s-fuzz-control"),
        user: format!("{}@example.com", unique_name("control")),
    };
    let control_id = h
        .sim
        .create_group(&control.group, GroupType::OktaGroup)
        .expect("control group");
    h.sim
        .create_user(&control.user, UserStatus::Active, None)
        .expect("control user");
    h.sim
        .add_member(&control_id, &control.user)
        .expect("member");
    common::apply_binding(&client, &control.name, control.spec()).await;
    wait_condition(&client, &control.name, "Ready", "True", None).await;

    let crd = serde_json::to_value(OktaGroupBinding::crd()).expect("CRD");
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"];
    let now = Timestamp::now();
    let relative = |seconds: i64| (now + SignedDuration::from_secs(seconds)).to_string();
    let roles = vec!["view".to_string(), "edit".into(), "admin".into()];
    let mut fuzz = SchemaFuzz::new(
        seed,
        Hints {
            by_path: vec![
                (
                    "spec.group".into(),
                    groups
                        .iter()
                        .cloned()
                        .chain(["Everyone".into(), "k8s-nobody".into()])
                        .collect(),
                ),
                (
                    "spec.roleBindings[].namespace".into(),
                    vec!["default".into(), "kube-system".into()],
                ),
                ("spec.roleBindings[].clusterRole".into(), roles.clone()),
                ("spec.clusterRoleBindings[].clusterRole".into(), roles),
                ("spec.subject.prefix".into(), vec!["oidc:".into()]),
            ],
            // Whole items as the cross-field rules want them, selectors with every
            // operator among them.
            shapes: vec![
                (
                    "spec.roleBindings[]".into(),
                    vec![
                        json!({"namespace": "default", "clusterRole": "view"}),
                        json!({"namespace": "kube-system", "role": "fuzz-role"}),
                        json!({"namespaceSelector": {"matchLabels": {"team": "fuzz"}}, "clusterRole": "edit"}),
                        json!({"namespaceSelector": {}, "clusterRole": "view"}),
                        json!({"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In", "values": ["fuzz", "other"]}]}, "clusterRole": "view"}),
                        json!({"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["fuzz"]}]}, "clusterRole": "view"}),
                        json!({"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "Exists"}]}, "clusterRole": "view"}),
                        json!({"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}, "clusterRole": "admin"}),
                    ],
                ),
                (
                    "spec.roleBindings[].namespaceSelector.matchExpressions[]".into(),
                    vec![
                        json!({"key": "team", "operator": "In", "values": ["fuzz"]}),
                        json!({"key": "team", "operator": "NotIn", "values": ["fuzz"]}),
                        json!({"key": "team", "operator": "Exists"}),
                        json!({"key": "team", "operator": "DoesNotExist"}),
                    ],
                ),
                (
                    "spec.clusterRoleBindings[]".into(),
                    vec![
                        json!({"clusterRole": "view"}),
                        json!({"clusterRole": "admin"}),
                    ],
                ),
                (
                    "spec.subject".into(),
                    vec![
                        json!({"kind": "Group"}),
                        json!({"kind": "Users"}),
                        json!({"kind": "Group", "prefix": "oidc:"}),
                        json!({"kind": "Users", "userName": "login"}),
                    ],
                ),
            ],
            times: vec![
                relative(-3600),
                relative(20),
                relative(3600),
                relative(10 * 365 * 86_400),
            ],
        },
    );

    let objects = raw_objects(&client);
    let mut tally = Tally::default();
    let started = Instant::now();
    let mut made = 0;
    while made < cases {
        let batch = BATCH.min(cases - made);
        let mut admitted = Vec::new();
        for _ in 0..batch {
            made += 1;
            let name = unique_name("fuzz");
            let mut metadata = json!({"name": name});
            if let Some(annotations) = fuzz.annotations() {
                metadata["annotations"] = annotations;
            }
            let spec = fuzz.object(&schema["spec"], "spec");
            let object = json!({
                "apiVersion": "oktarbac.io/v1alpha1",
                "kind": "OktaGroupBinding",
                "metadata": metadata,
                "spec": spec,
            });
            let validation = if made % 2 == 0 { "Strict" } else { "Warn" };
            let path = format!(
                "/apis/oktarbac.io/v1alpha1/oktagroupbindings?fieldValidation={validation}"
            );
            match send(&client, "POST", &path, "application/json", &object).await {
                Ok(_) => admitted.push(name),
                Err((code, message)) => {
                    if let Some(why) = unclear(code, &message) {
                        tally.findings.push(format!(
                            "refused unclearly ({why}): {message}\n  spec: {spec}"
                        ));
                    }
                    *tally.refused.entry(kind_of(&message)).or_default() += 1;
                }
            }
        }

        // Every admitted object is reconciled: its status of the current generation.
        let deadline = Instant::now() + RECONCILED_WITHIN;
        let mut waiting: Vec<String> = admitted.clone();
        let mut subjects = BTreeMap::new();
        while !waiting.is_empty() && Instant::now() < deadline {
            let mut still = Vec::new();
            for name in waiting {
                match objects.get_opt(&name).await.expect("get") {
                    Some(object) => match reconciled(&object) {
                        Some((ready, subject)) => {
                            if ready.ends_with("/Unreadable") {
                                tally.findings.push(format!(
                                    "admitted but unreadable to the operator: {}",
                                    object.data["spec"]
                                ));
                            }
                            *tally.reconciled.entry(ready).or_default() += 1;
                            subjects.insert(name, subject);
                        }
                        None => still.push(name),
                    },
                    None => tally.findings.push(format!("{name} vanished")),
                }
            }
            waiting = still;
            if !waiting.is_empty() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        for name in &waiting {
            let object = objects.get(name).await.expect("get");
            tally.findings.push(format!(
                "not reconciled within {RECONCILED_WITHIN:?}: spec {} status {}",
                object.data["spec"], object.data["status"]
            ));
        }

        // A status written over by hand: refused, or replaced by the operator's own.
        let mut overwritten = Vec::new();
        for (i, name) in subjects.keys().enumerate() {
            if i % 3 != 0 {
                continue;
            }
            let mut status = fuzz.object(&schema["status"], "status");
            let marker = unique_name("hand-written");
            if let Some(fields) = status.as_object_mut() {
                fields.insert("subject".into(), json!(marker));
            }
            let path = format!("/apis/oktarbac.io/v1alpha1/oktagroupbindings/{name}/status");
            match send(
                &client,
                "PATCH",
                &path,
                "application/merge-patch+json",
                &json!({ "status": status }),
            )
            .await
            {
                Ok(_) => overwritten.push((name.clone(), marker)),
                Err((code, message)) => {
                    tally.statuses_refused += 1;
                    if let Some(why) = unclear(code, &message) {
                        tally.findings.push(format!(
                            "status refused unclearly ({why}): {message}\n  status: {status}"
                        ));
                    }
                }
            }
        }
        for (name, marker) in overwritten {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let object = objects.get(&name).await.expect("get");
                let subject = object.data["status"]["subject"]
                    .as_str()
                    .unwrap_or_default();
                if subject != marker && reconciled(&object).is_some() {
                    tally.statuses_replaced += 1;
                    break;
                }
                if Instant::now() > deadline {
                    tally.findings.push(format!(
                        "a hand-written status was not replaced within 30s: spec {} status {}",
                        object.data["spec"], object.data["status"]
                    ));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }

        control.exercise(&client, h.plane.kubeconfig_path()).await;
        for name in &admitted {
            let _ = objects.delete(name, &DeleteParams::default()).await;
        }
    }

    // The operator is alive, healthy and ready, and every object it was given is gone.
    for path in ["/healthz", "/readyz"] {
        let answer = okta_rbac_testenv::http_get(&format!("{}{path}", h.metrics)).await;
        assert_eq!(answer.map(|(code, _)| code), Some(200), "{path}");
    }
    common::eventually(
        Duration::from_secs(60),
        "the fuzzed objects are gone",
        || async {
            let left = objects.list(&ListParams::default()).await.ok()?;
            let fuzzed = left
                .items
                .iter()
                .filter(|o| o.name_any().starts_with("fuzz-") && o.name_any() != control.name)
                .count();
            (fuzzed == 0).then_some(())
        },
    )
    .await;

    println!(
        "{made} objects in {:.0}s: {} refused, {} reconciled; {} statuses refused, {} replaced",
        started.elapsed().as_secs_f64(),
        tally.refused.values().sum::<usize>(),
        tally.reconciled.values().sum::<usize>(),
        tally.statuses_refused,
        tally.statuses_replaced
    );
    for (kind, count) in &tally.refused {
        println!("  refused {count:>4}: {kind}");
    }
    for (ready, count) in &tally.reconciled {
        println!("  Ready {ready}: {count}");
    }
    assert!(
        tally.findings.is_empty(),
        "{} findings:\n{}",
        tally.findings.len(),
        tally.findings.join("\n")
    );
    assert!(
        tally.refused.values().sum::<usize>() > 0 && tally.reconciled.values().sum::<usize>() > 0,
        "the fuzzer reached both outcomes"
    );
}
