//! Many clusters on one Okta org: CLUSTERS control planes (5 by default; 0 skips the
//! case), each with its own operator and API token, against one local Okta at the
//! smallest org's limits (System Log 20 requests a minute, groups 100), each operator
//! with an equal share of every window (`--okta-rate-limit-share 1/CLUSTERS`). Every
//! cluster binds the same CLUSTER_GROUPS groups (50 by default) and, in Users mode, one
//! shared group with CLUSTER_CHANGES members (20 by default). First with the System Log
//! alone, then with one event hook per cluster: the Okta requests of each cluster by
//! bucket in a quiet window of CLUSTER_QUIET_SECONDS (180 by default), every 429, and
//! the time from removing a member of the shared group until every cluster's binding has
//! dropped them.

use crate::workload::env_number;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::CustomResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::Store;
use okta_rbac_api::OktaGroupBinding;
use okta_rbac_demo::EventHookSetup;
use okta_rbac_testenv::{ControlPlane, ControlPlaneOptions, OperatorLaunch, OperatorProcess};
use okta_sim::{GroupType, OktaSim, Seed, SimOptions, UserStatus};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Members are removed this far apart.
const SPACING: Duration = Duration::from_millis(700);
const GIVE_UP: Duration = Duration::from_secs(120);
/// The smallest org's limits a minute, by the local Okta's bucket.
const SMALLEST_ORG: [(&str, u32); 4] = [
    ("logs", 20),
    ("groups", 100),
    ("group", 100),
    ("group-users", 100),
];

struct Cluster {
    // Dropped first: the operator stops before its control plane.
    operator: OperatorProcess,
    plane: ControlPlane,
    hook: EventHookSetup,
    bindings: Store<ClusterRoleBinding>,
}

/// One phase's figures.
pub struct Phase {
    pub hooks: bool,
    /// Requests a minute of one cluster, by bucket, the mean over the clusters.
    pub per_cluster_per_minute: BTreeMap<String, f64>,
    pub rate_limited_quiet: usize,
    pub rate_limited_changes: usize,
    /// Seconds from each removal until each cluster dropped the member.
    pub revocations: Vec<Option<f64>>,
}

pub struct ClustersResult {
    pub clusters: usize,
    pub phases: Vec<Phase>,
}

fn object(name: &str, group: &str, users: bool) -> Result<OktaGroupBinding, String> {
    let mut spec = serde_json::json!({
        "group": group,
        "clusterRoleBindings": [{"clusterRole": "view"}],
    });
    if users {
        spec["subject"] = serde_json::json!({"kind": "Users"});
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "oktarbac.io/v1alpha1",
        "kind": "OktaGroupBinding",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .map_err(|e| e.to_string())
}

/// Whether the cluster binds `user` through the shared group's object.
fn binds(bindings: &Store<ClusterRoleBinding>, user: &str) -> bool {
    bindings.state().iter().any(|crb| {
        crb.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("oktarbac.io/owner"))
            .is_some_and(|owner| owner == "shared")
            && crb.subjects.iter().flatten().any(|s| s.name == user)
    })
}

async fn start_cluster(
    sim: &OktaSim,
    operator_bin: &Path,
    index: usize,
    clusters: usize,
    groups: usize,
) -> Result<Cluster, String> {
    let plane = ControlPlane::start(ControlPlaneOptions {
        crds: vec![OktaGroupBinding::crd()],
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let ca = plane.dir().join("okta-ca.pem");
    sim.write_ca(&ca).map_err(|e| e.to_string())?;
    let token = format!("00cluster-{index}-token");
    sim.issue_api_token(
        &format!("cluster-{index}"),
        &token,
        Some(vec!["okta.groups.read".into(), "okta.logs.read".into()]),
    );
    let hook = EventHookSetup::prepare()?;
    let share = format!("{:.3}", 1.0 / clusters as f64);
    let mut operator = OperatorLaunch::new(operator_bin, plane.kubeconfig_path(), sim.base_url())
        .okta_ca_file(&ca)
        .okta_token(&token)
        .identity(&format!("cluster-{index}"))
        .log_filter("warn")
        .args(["--okta-rate-limit-share", share.as_str()])
        .args(hook.operator_flags())
        .start(&plane.dir().join("operator.log"))
        .map_err(|e| e.to_string())?;
    operator
        .wait_ready(Duration::from_secs(60))
        .await
        .map_err(|e| e.to_string())?;
    let client = plane.client().await.map_err(|e| e.to_string())?;
    let objects: Api<OktaGroupBinding> = Api::all(client.clone());
    for j in 0..groups {
        objects
            .create(
                &PostParams::default(),
                &object(&format!("team-{j:03}"), &format!("k8s-team-{j:03}"), false)?,
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    objects
        .create(
            &PostParams::default(),
            &object("shared", "k8s-shared", true)?,
        )
        .await
        .map_err(|e| e.to_string())?;
    let bindings = crate::watch::reflect(
        Api::<ClusterRoleBinding>::all(client),
        kube::runtime::watcher::Config::default()
            .labels("app.kubernetes.io/managed-by=okta-rbac-operator"),
    )
    .await;
    Ok(Cluster {
        operator,
        plane,
        hook,
        bindings,
    })
}

/// Requests a minute of one cluster by bucket (mean over clusters), and the 429s, since
/// the requests were last cleared, over `window`.
fn tally(sim: &OktaSim, clusters: usize, window: Duration) -> (BTreeMap<String, f64>, usize) {
    let requests = sim.requests();
    let mut per_bucket = BTreeMap::new();
    for request in requests
        .iter()
        .filter(|r| r.caller.as_deref().is_some_and(|c| c.contains("cluster-")))
    {
        *per_bucket
            .entry(request.bucket.unwrap_or("other").to_string())
            .or_insert(0.0) += 60.0 / window.as_secs_f64() / clusters as f64;
    }
    let limited = requests.iter().filter(|r| r.status == 429).count();
    (per_bucket, limited)
}

async fn phase(
    sim: &OktaSim,
    clusters: &[Cluster],
    members: &[String],
    shared: &str,
    hooks: bool,
    quiet: Duration,
) -> Result<Phase, String> {
    sim.clear_requests();
    tokio::time::sleep(quiet).await;
    let (per_cluster_per_minute, rate_limited_quiet) = tally(sim, clusters.len(), quiet);
    sim.clear_requests();
    let mut watchers = tokio::task::JoinSet::new();
    for user in members {
        tokio::time::sleep(SPACING).await;
        sim.remove_member(shared, user).map_err(|e| e.to_string())?;
        let removed = Instant::now();
        for cluster in clusters {
            let bindings = cluster.bindings.clone();
            let user = user.clone();
            watchers.spawn(async move {
                while binds(&bindings, &user) {
                    if removed.elapsed() > GIVE_UP {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Some(removed.elapsed().as_secs_f64())
            });
        }
    }
    let mut revocations = Vec::new();
    while let Some(joined) = watchers.join_next().await {
        revocations.push(joined.map_err(|e| e.to_string())?);
    }
    let rate_limited_changes = sim.requests().iter().filter(|r| r.status == 429).count();
    Ok(Phase {
        hooks,
        per_cluster_per_minute,
        rate_limited_quiet,
        rate_limited_changes,
        revocations,
    })
}

pub async fn run(operator_bin: &Path) -> Option<ClustersResult> {
    let count = env_number("CLUSTERS", 5);
    if count == 0 {
        return None;
    }
    let groups = env_number("CLUSTER_GROUPS", 50);
    let changes = env_number("CLUSTER_CHANGES", 20);
    let quiet = Duration::from_secs(env_number("CLUSTER_QUIET_SECONDS", 180) as u64);
    let sim = OktaSim::start(SimOptions::new(Seed::default()))
        .await
        .expect("the local Okta");
    sim.set_rate_limits(okta_sim::seed::RateLimitSettings {
        per_minute: SMALLEST_ORG
            .map(|(bucket, limit)| (bucket.to_string(), limit))
            .into(),
        ..Default::default()
    });
    for j in 0..groups {
        sim.create_group(&format!("k8s-team-{j:03}"), GroupType::OktaGroup)
            .expect("group");
    }
    let shared = sim
        .create_group("k8s-shared", GroupType::OktaGroup)
        .expect("group");
    let members: Vec<String> = (0..changes)
        .map(|k| format!("member-{k:03}@example.com"))
        .collect();
    for user in members
        .iter()
        .chain(["stays@example.com".to_string()].iter())
    {
        sim.create_user(user, UserStatus::Active, None)
            .expect("user");
        sim.add_member(&shared, user).expect("member");
    }
    let started = Instant::now();
    let mut clusters = Vec::new();
    for index in 0..count {
        clusters.push(
            start_cluster(&sim, operator_bin, index, count, groups)
                .await
                .expect("a cluster"),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    for cluster in &clusters {
        while !members.iter().all(|m| binds(&cluster.bindings, m)) {
            assert!(
                Instant::now() < deadline,
                "a cluster never bound the shared group's members"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    eprintln!(
        ">> clusters: {count} control planes and operators bound in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    let half = changes / 2;
    let log_alone = phase(&sim, &clusters, &members[..half], &shared, false, quiet)
        .await
        .expect("the System Log alone");
    for cluster in &clusters {
        cluster.hook.register(&sim).await.expect("the event hook");
    }
    let with_hooks = phase(&sim, &clusters, &members[half..], &shared, true, quiet)
        .await
        .expect("with event hooks");
    for cluster in clusters {
        let Cluster {
            mut operator,
            plane,
            ..
        } = cluster;
        let _ = operator.terminate(Duration::from_secs(10));
        drop(plane);
    }
    Some(ClustersResult {
        clusters: count,
        phases: vec![log_alone, with_hooks],
    })
}

fn percentile(samples: &[Option<f64>], q: f64) -> String {
    let mut ended: Vec<f64> = samples.iter().flatten().copied().collect();
    ended.sort_by(f64::total_cmp);
    let index = ((samples.len() as f64 * q).ceil() as usize).saturating_sub(1);
    ended
        .get(index)
        .map_or(format!("past {} s", GIVE_UP.as_secs()), |s| {
            format!("{s:.1} s")
        })
}

pub fn table(result: &ClustersResult) -> String {
    let mut text = format!(
        "| {} clusters, one org | System Log a minute, per cluster | groups a minute, per cluster | 429s quiet / during changes | member removed -> every cluster's binding, p50 / p99 (removals x clusters) |\n|---|---|---|---|---|\n",
        result.clusters
    );
    for phase in &result.phases {
        let rate = |bucket: &str| {
            phase
                .per_cluster_per_minute
                .get(bucket)
                .copied()
                .unwrap_or(0.0)
        };
        let groups = rate("groups") + rate("group") + rate("group-users");
        text.push_str(&format!(
            "| {} | {:.2} | {:.2} | {} / {} | {} / {} ({}) |\n",
            if phase.hooks {
                "event hooks (System Log every 2 min)"
            } else {
                "System Log alone (every 30 s)"
            },
            rate("logs"),
            groups,
            phase.rate_limited_quiet,
            phase.rate_limited_changes,
            percentile(&phase.revocations, 0.5),
            percentile(&phase.revocations, 0.99),
            phase.revocations.len(),
        ));
    }
    text.push('\n');
    text.push_str(&sizing(result));
    text
}

/// Clusters per org type from the measured System Log rate per cluster: the whole bucket,
/// and half of it (leaving the rest to other apps, as Okta's default per-app share does).
fn sizing(result: &ClustersResult) -> String {
    let mut text = String::from(
        "| System Log limit a minute (org type) | clusters, System Log alone | clusters, with event hooks |\n|---|---|---|\n",
    );
    let per_cluster = |hooks: bool| {
        result
            .phases
            .iter()
            .find(|p| p.hooks == hooks)
            .and_then(|p| p.per_cluster_per_minute.get("logs").copied())
            .filter(|rate| *rate > 0.0)
    };
    for limit in [20.0_f64, 60.0, 120.0] {
        let fits = |rate: Option<f64>, cap: Option<usize>| match rate {
            Some(rate) => {
                let whole = (limit / rate).floor() as usize;
                let half = (limit * 0.5 / rate).floor() as usize;
                match cap {
                    Some(cap) if whole > cap => format!(
                        "{} ({} with half the bucket); hooks for {cap}, the rest on the System Log",
                        whole.min(cap),
                        half.min(cap)
                    ),
                    _ => format!("{whole} ({half} with half the bucket)"),
                }
            }
            None => "-".into(),
        };
        text.push_str(&format!(
            "| {limit:.0} | {} | {} |\n",
            fits(per_cluster(false), None),
            fits(per_cluster(true), Some(25)),
        ));
    }
    text
}

/// `docs/bench/clusters.md`.
pub fn write(path: &Path, cpus: usize, table: &str) {
    std::fs::write(
        path,
        format!(
            "# Many clusters on one Okta org\n\nOn one machine with {cpus} CPUs: control \
             planes each with its own operator (release binary, defaults, an equal share of \
             every rate-limit window) and API token, against one local Okta at the smallest \
             org's limits (System Log 20 requests a minute, groups 100). Every cluster binds \
             the same {} groups and, in Users mode, one shared group whose members are \
             removed {} ms apart; first with the System Log alone, then with one event hook \
             per cluster. Requests are counted in a quiet window of {} s; with hooks it begins \
             as soon as they are verified, so it still holds each operator's last read at the \
             System Log's own pace (at the 2-minute pace alone a cluster reads it 0.5 times a \
             minute). The sizing table divides each org type's System Log limit (and half of \
             it, the share Okta lets one app use by default) by the measured rate per cluster, \
             and caps event hooks at Okta's 25 active per org. Reproduce with `SIZES= \
             LARGE_CASES= AUTHORIZER_SECONDS=0 REVOCATION_ROUNDS=0 SOURCES_CHANGES=0 make \
             bench`.\n\n{table}",
            env_number("CLUSTER_GROUPS", 50),
            SPACING.as_millis(),
            env_number("CLUSTER_QUIET_SECONDS", 180),
        ),
    )
    .expect("clusters.md");
}
