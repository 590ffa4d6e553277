//! An hour's worth of objects coming and going, compressed: created, renamed (deleted and
//! created again under another name), some naming groups Okta does not have (typos), and
//! deleted again. Afterwards the operator's memory and what it keeps (Okta answers,
//! member lists, bindings) must be back near where they were before.
//!
//! A deleted object's bindings are deleted by the controller manager's garbage collector,
//! whose client is rate limited (about 8 deletes a second here). Compressing an hour into
//! minutes would leave tens of thousands of bindings waiting for it, which the operator
//! rightly keeps watching; so the churned objects have one ClusterRoleBinding each, and
//! every round waits until the collector has caught up.

use crate::large::{objects_store, okta, plane, started, until_ready};
use crate::workload::{create_namespaces, create_objects, spec};
use kube::api::{Api, DeleteParams, ListParams};
use okta_rbac_api::OktaGroupBinding;
use okta_rbac_testenv::OperatorProcess;
use std::path::Path;
use std::time::Duration;

/// Objects that stay throughout.
const STEADY: usize = 200;
/// Rounds of churn, each: create, rename, delete.
const ROUNDS: usize = 12;
const PER_ROUND: usize = 100;
/// Of each round's objects, these name groups Okta does not have.
const TYPOS: usize = 10;
/// The operator drops what no object names every 5 s; a little more than that.
const SETTLE: Duration = Duration::from_secs(15);

pub struct ChurnCase {
    pub steady: usize,
    pub churned: usize,
    pub before_mib: f64,
    pub after_mib: f64,
    pub before_answers: f64,
    pub after_answers: f64,
    pub peak_answers: f64,
    pub before_caches: String,
    pub after_caches: String,
    /// Resident memory after each round.
    pub rounds_mib: Vec<f64>,
}

/// A churned object: the workload's group, one ClusterRoleBinding.
fn churned_spec(i: usize) -> okta_rbac_api::OktaGroupBindingSpec {
    okta_rbac_api::OktaGroupBindingSpec {
        role_bindings: Vec::new(),
        ..spec(i)
    }
}

/// Until the garbage collector has deleted the bindings of the round's deleted objects
/// (the operator's cache holds no more ClusterRoleBindings than before the churn).
async fn until_collected(operator: &OperatorProcess, before: f64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while cached_count(operator, "ClusterRoleBinding")
        .await
        .is_none_or(|count| count > before)
    {
        if std::time::Instant::now() > deadline {
            eprintln!("   the garbage collector is still behind after 300 s");
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every `okta_rbac_cached_objects` sample, as `kind=count` pairs in the kinds' order.
async fn every_cache(operator: &OperatorProcess) -> String {
    let (_, text) = operator.get("/metrics").await.unwrap_or_default();
    let mut caches: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("okta_rbac_cached_objects{kind=\""))
        .map(|l| l.replacen("\"} ", "=", 1))
        .collect();
    caches.sort();
    caches.join(", ")
}

/// The cache's count of this kind; None when /metrics did not answer.
async fn cached_count(operator: &OperatorProcess, kind: &str) -> Option<f64> {
    let (status, text) = operator.get("/metrics").await?;
    if status != 200 {
        return None;
    }
    let prefix = format!("okta_rbac_cached_objects{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

async fn cached(operator: &OperatorProcess, kind: &str) -> f64 {
    cached_count(operator, kind).await.unwrap_or(0.0)
}

pub async fn churn(operator_bin: &Path) -> ChurnCase {
    eprintln!(
        ">> large: churn, {STEADY} objects staying and {ROUNDS} rounds of {PER_ROUND} created, renamed and deleted"
    );
    let (plane, client) = plane().await;
    let sim = okta(STEADY + ROUNDS * PER_ROUND).await;
    create_namespaces(&client).await;
    let objects = objects_store(&client).await;
    let api = Api::<OktaGroupBinding>::all(client.clone());
    create_objects(
        api.clone(),
        (0..STEADY).map(|i| (format!("steady-{i:05}"), spec(i))),
    )
    .await;
    let operator = started(&plane, &sim, operator_bin, "churn").await;
    until_ready(&objects, STEADY, "churn, before").await;
    tokio::time::sleep(SETTLE).await;
    let before_mib = operator.memory_kib().unwrap_or_default() as f64 / 1024.0;
    let before_answers = cached(&operator, "OktaGroupAnswer").await;
    let mut peak_answers = before_answers;
    let before_cluster_bindings = cached(&operator, "ClusterRoleBinding").await;
    let before_caches = every_cache(&operator).await;
    eprintln!("   before: {before_mib:.1} MiB; caches {before_caches}");
    let mut rounds_mib = Vec::with_capacity(ROUNDS);

    for round in 0..ROUNDS {
        let first = STEADY + round * PER_ROUND;
        let made = (first..first + PER_ROUND).map(|i| {
            let mut spec = churned_spec(i);
            if i - first < TYPOS {
                spec.group = format!("k8s-tpyo-{i:05}");
            }
            (format!("churn-{i:05}"), spec)
        });
        create_objects(api.clone(), made).await;
        until_ready(&objects, STEADY + PER_ROUND - TYPOS, "churn, a round").await;
        // Renamed: each object deleted and created again under a new name.
        for i in first..first + PER_ROUND {
            let _ = api
                .delete(&format!("churn-{i:05}"), &DeleteParams::default())
                .await;
        }
        create_objects(
            api.clone(),
            (first..first + PER_ROUND).map(|i| (format!("renamed-{i:05}"), churned_spec(i))),
        )
        .await;
        until_ready(&objects, STEADY + PER_ROUND, "churn, renamed").await;
        peak_answers = peak_answers.max(cached(&operator, "OktaGroupAnswer").await);
        for i in first..first + PER_ROUND {
            let _ = api
                .delete(&format!("renamed-{i:05}"), &DeleteParams::default())
                .await;
        }
        while api
            .list(&ListParams::default())
            .await
            .map(|l| l.items.len())
            .unwrap_or(0)
            > STEADY
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        until_collected(&operator, before_cluster_bindings).await;
        // Whether resident memory levels off over the rounds or keeps growing.
        let mib = operator.memory_kib().unwrap_or_default() as f64 / 1024.0;
        eprintln!("   after round {}: {mib:.1} MiB", round + 1);
        rounds_mib.push(mib);
    }
    tokio::time::sleep(SETTLE).await;
    let after_mib = operator.memory_kib().unwrap_or_default() as f64 / 1024.0;
    let after_answers = cached(&operator, "OktaGroupAnswer").await;
    let after_caches = every_cache(&operator).await;
    eprintln!("   after: {after_mib:.1} MiB; caches {after_caches}");
    eprintln!(
        "   before {before_mib:.1} MiB, {before_answers} Okta answers; after {after_mib:.1} MiB, {after_answers} (at most {peak_answers} meanwhile)"
    );
    ChurnCase {
        steady: STEADY,
        churned: ROUNDS * PER_ROUND * 2,
        before_mib,
        after_mib,
        before_answers,
        after_answers,
        peak_answers,
        before_caches,
        after_caches,
        rounds_mib,
    }
}

pub fn line(c: &ChurnCase) -> String {
    format!(
        "- **Churn**: {} objects staying while {} others, one ClusterRoleBinding each, were \
         created, renamed and deleted in {ROUNDS} rounds (one in ten naming a group Okta does \
         not have): memory {:.1} MiB before, {:.1} MiB after ({:+.0}%; after each round: {}); \
         Okta answers kept {} before, {} after (at most {} meanwhile); {}.\n",
        c.steady,
        c.churned,
        c.before_mib,
        c.after_mib,
        (c.after_mib / c.before_mib - 1.0) * 100.0,
        c.rounds_mib
            .iter()
            .map(|m| format!("{m:.1}"))
            .collect::<Vec<_>>()
            .join(", "),
        c.before_answers,
        c.after_answers,
        c.peak_answers,
        if c.before_caches == c.after_caches {
            "every cache back to its count before".to_string()
        } else {
            format!(
                "caches before: {}; after: {}",
                c.before_caches, c.after_caches
            )
        }
    )
}
