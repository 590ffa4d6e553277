//! How soon access ends by how the operator hears of Okta's changes: Okta's event hook
//! (the System Log the safety net, read every 2 min while the hook delivers), the System
//! Log alone (read every 30 s), or neither (every group verified again each resync, every
//! 5 min), all three with the operator's defaults and the revocation authorizer, at
//! SOURCES_GROUPS bound groups (1,000 by default). For each change (member removed, user
//! suspended, group deleted, group renamed out of the prefix) SOURCES_CHANGES rounds (100
//! by default; 0 skips the case), each its own group, member and ID token issued before
//! the change: the time until the apiserver refuses the token, and, where the change
//! removes a binding, until the binding is gone. And the Okta requests an hour in a quiet
//! window of SOURCES_QUIET_SECONDS (330 by default: one resync and a little).
//! SOURCES_RESYNC_SECONDS shortens the resync interval to try the case quickly.

use crate::revocation::{Change, Round, Setup, apply_change, lists_pods, prepare};
use crate::watch::reflect;
use crate::workload::env_number;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::Store;
use okta_rbac_api::OktaGroupBinding;
use okta_rbac_demo::{Demo, DemoConfig};
use okta_sim::GroupType;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The changes of one kind are this far apart, so that they fall at every phase of a poll.
const SPACING: Duration = Duration::from_millis(370);
/// Polled this often for the first seconds after a change, then every second.
const FAST_POLL: Duration = Duration::from_millis(250);
const FAST_FOR: Duration = Duration::from_secs(10);
/// Waited after the setup before the quiet window, at most: one System Log read (30 s)
/// and its verifications. SOURCES_SETTLE_SECONDS sets it (0 in a quick run, which does
/// not quote its request counts).
fn settle_at_most() -> Duration {
    Duration::from_secs(env_number("SOURCES_SETTLE_SECONDS", 45))
}
/// Settled once Okta was asked nothing but System Log reads for this long.
const SETTLED_FOR: Duration = Duration::from_secs(3);

/// The operator's resync interval (SOURCES_RESYNC_SECONDS, 300 by default: the operator's
/// default; shorter only to try the case quickly).
fn resync() -> Duration {
    Duration::from_secs(env_number("SOURCES_RESYNC_SECONDS", 300) as u64)
}

/// Still in this long after the change (a fifth past one resync, and ten seconds): kept.
fn give_up() -> Duration {
    resync().mul_f64(1.2) + Duration::from_secs(10)
}

const CHANGES: [Change; 4] = [
    Change::Removed,
    Change::Suspended,
    Change::GroupDeleted,
    Change::Renamed,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    EventHook,
    SystemLog,
    Neither,
}

impl Source {
    fn describe(self) -> &'static str {
        match self {
            Source::EventHook => "event hook (System Log every 2 min as the safety net)",
            Source::SystemLog => "System Log alone (every 30 s)",
            Source::Neither => "neither (every group verified each resync)",
        }
    }
}

pub struct Row {
    pub change: Change,
    /// Seconds from the change until the binding was gone (`None`: still there at
    /// [`give_up`]); empty where the change leaves the binding (Group mode keeps it: the
    /// authorizer refuses the token).
    pub binding: Vec<Option<f64>>,
    /// Seconds from the change until the apiserver refused the old token.
    pub token: Vec<Option<f64>>,
}

pub struct SourceResult {
    pub source: Source,
    pub rows: Vec<Row>,
    /// Okta requests an hour in the quiet window, by what they asked for.
    pub requests_per_hour: BTreeMap<&'static str, f64>,
    pub deliveries: usize,
}

/// What an Okta request asked for, by its path.
fn request_kind(path: &str) -> &'static str {
    if path == "/api/v1/logs" {
        "System Log"
    } else if path == "/api/v1/groups" {
        "group searches"
    } else if path.starts_with("/api/v1/groups/") && path.ends_with("/users") {
        "member lists"
    } else if path.starts_with("/api/v1/groups/") {
        "group reads"
    } else if path.starts_with("/api/v1/authorizationServers") {
        "claims check"
    } else if path.starts_with("/oauth2") {
        "tokens"
    } else {
        "other"
    }
}

/// Objects granting `view` in default to groups no change touches, up to `total`.
async fn bind_background(demo: &Demo, count: usize) -> Result<(), String> {
    let admin = demo.plane.client().await.map_err(|e| e.to_string())?;
    let objects: Api<OktaGroupBinding> = Api::all(admin);
    for i in 0..count {
        let group = format!("k8s-bg-{i:04}");
        demo.sim
            .create_group(&group, GroupType::OktaGroup)
            .map_err(|e| e.to_string())?;
        let object: OktaGroupBinding = serde_json::from_value(serde_json::json!({
            "apiVersion": "oktarbac.io/v1alpha1",
            "kind": "OktaGroupBinding",
            "metadata": {"name": format!("bg-{i:04}")},
            "spec": {"group": group, "roleBindings": [{"namespace": "default", "clusterRole": "view"}]},
        }))
        .map_err(|e| e.to_string())?;
        objects
            .create(&PostParams::default(), &object)
            .await
            .map_err(|e| format!("creating bg-{i:04}: {e}"))?;
    }
    Ok(())
}

/// Whether the object's RoleBinding is still in the bench's view.
fn bound(bindings: &Store<RoleBinding>, object: &str) -> bool {
    bindings.state().iter().any(|rb| {
        rb.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("oktarbac.io/owner"))
            .is_some_and(|owner| owner == object)
    })
}

/// Seconds from `changed` until `done` holds, polled; `None` past [`give_up`].
async fn until<F, Done>(changed: Instant, mut done: F) -> Option<f64>
where
    F: FnMut() -> Done,
    Done: std::future::Future<Output = bool>,
{
    loop {
        if done().await {
            return Some(changed.elapsed().as_secs_f64());
        }
        if changed.elapsed() > give_up() {
            return None;
        }
        tokio::time::sleep(if changed.elapsed() < FAST_FOR {
            FAST_POLL
        } else {
            Duration::from_secs(1)
        })
        .await;
    }
}

async fn measure(
    demo: &Demo,
    bindings: &Store<RoleBinding>,
    change: Change,
    rounds: Vec<Round>,
) -> Result<Row, String> {
    let removes_binding = matches!(change, Change::GroupDeleted | Change::Renamed);
    let mut watchers = tokio::task::JoinSet::new();
    for round in rounds {
        tokio::time::sleep(SPACING).await;
        apply_change(&demo.sim, change, &round)?;
        let changed = Instant::now();
        let bindings = bindings.clone();
        watchers.spawn(async move {
            let token = until(changed, || {
                let token = round.token.clone();
                async move { lists_pods(&token).await == 403 }
            });
            let binding = async {
                if removes_binding {
                    Some(
                        until(changed, || {
                            let gone = !bound(&bindings, &round.object);
                            async move { gone }
                        })
                        .await,
                    )
                } else {
                    None
                }
            };
            tokio::join!(token, binding)
        });
    }
    let mut row = Row {
        change,
        binding: Vec::new(),
        token: Vec::new(),
    };
    while let Some(joined) = watchers.join_next().await {
        let (token, binding) = joined.map_err(|e| e.to_string())?;
        row.token.push(token);
        row.binding.extend(binding);
    }
    Ok(row)
}

/// Waits out the catch-up after the setup, a one-off, not the steady state: the System
/// Log's first read after the setup (if it is read) names every group the setup created
/// or changed, and they are verified again. Done once that read has come and Okta was
/// then asked nothing else for [`SETTLED_FOR`]; [`settle_at_most`] in any case.
async fn settle(demo: &Demo, reads_log: bool) {
    let epoch_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    };
    let set_up = epoch_ms();
    let deadline = Instant::now() + settle_at_most();
    while Instant::now() < deadline {
        let requests = demo.sim.requests();
        let log_read = if reads_log {
            requests
                .iter()
                .filter(|r| r.path == "/api/v1/logs" && r.started_ms >= set_up)
                .map(|r| r.finished_ms)
                .min()
        } else {
            Some(set_up)
        };
        let last_other = requests
            .iter()
            .filter(|r| r.path != "/api/v1/logs")
            .map(|r| r.finished_ms)
            .max()
            .unwrap_or(0);
        // Quiet since the read, so that the verifications it starts are waited for too.
        if let Some(read) = log_read
            && epoch_ms().saturating_sub(read.max(last_other)) >= SETTLED_FOR.as_millis() as u64
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn run_source(
    operator_bin: &Path,
    source: Source,
    groups: usize,
    changes: usize,
    quiet: Duration,
) -> Result<SourceResult, String> {
    let resync = format!("--resync-interval={}s", resync().as_secs());
    let mut flags = vec![resync.as_str()];
    if source == Source::Neither {
        flags.push("--okta-system-log=false");
    }
    let demo = Demo::start_configured(
        operator_bin,
        DemoConfig {
            operator_flags: &flags,
            authorizer: Some("no-opinion"),
            event_hook: source == Source::EventHook,
            ..Default::default()
        },
    )
    .await?;
    // A large org's group limit: verifying a thousand new objects at once is not what is
    // measured here.
    demo.sim.set_rate_limits(okta_sim::seed::RateLimitSettings {
        per_minute: ["groups", "group", "group-users"]
            .map(|bucket| (bucket.to_string(), 1000))
            .into(),
        ..Default::default()
    });
    let started = Instant::now();
    let mut prepared = Vec::new();
    for change in CHANGES {
        let ends = vec![None; changes];
        prepared.push((
            change,
            prepare(&demo, Setup::GroupWithAuthorizer, change, &ends).await?,
        ));
    }
    bind_background(&demo, groups.saturating_sub(CHANGES.len() * changes)).await?;
    let admin = demo.plane.client().await.map_err(|e| e.to_string())?;
    let objects = reflect(
        Api::<OktaGroupBinding>::all(admin.clone()),
        Default::default(),
    )
    .await;
    let bindings = reflect(
        Api::<RoleBinding>::namespaced(admin, "default"),
        kube::runtime::watcher::Config::default()
            .labels("app.kubernetes.io/managed-by=okta-rbac-operator"),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let state = objects.state();
        let bound_objects = state
            .iter()
            .filter(|o| bound(&bindings, o.metadata.name.as_deref().unwrap_or_default()))
            .count();
        if bound_objects >= groups.max(CHANGES.len() * changes) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{bound_objects} of {groups} objects bound after 10 minutes"
            ));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    eprintln!(
        ">> sources: {}: {} objects bound in {:.0}s",
        source.describe(),
        groups,
        started.elapsed().as_secs_f64()
    );
    settle(&demo, source != Source::Neither).await;
    demo.sim.clear_requests();
    tokio::time::sleep(quiet).await;

    let mut requests_per_hour = BTreeMap::new();
    for request in demo.sim.requests() {
        *requests_per_hour
            .entry(request_kind(&request.path))
            .or_insert(0.0) += 3600.0 / quiet.as_secs_f64();
    }
    demo.sim.clear_hook_deliveries();
    let mut rows = Vec::new();
    for (change, rounds) in prepared {
        let began = Instant::now();
        rows.push(measure(&demo, &bindings, change, rounds).await?);
        eprintln!(
            ">> sources: {} / {}: {changes} changes in {:.0}s",
            source.describe(),
            change.describe(),
            began.elapsed().as_secs_f64()
        );
    }
    let deliveries = demo.sim.hook_deliveries().len();
    demo.stop()?;
    Ok(SourceResult {
        source,
        rows,
        requests_per_hour,
        deliveries,
    })
}

/// Every source; `None` when SOURCES_CHANGES=0.
pub async fn run(operator_bin: &Path) -> Option<Vec<SourceResult>> {
    let changes = env_number("SOURCES_CHANGES", 100);
    if changes == 0 {
        return None;
    }
    let groups = env_number("SOURCES_GROUPS", 1000);
    let quiet = Duration::from_secs(env_number("SOURCES_QUIET_SECONDS", 330) as u64);
    // SOURCES=hook,log,neither (all by default): some of them only.
    let chosen = std::env::var("SOURCES").unwrap_or_else(|_| "hook,log,neither".into());
    let mut results = Vec::new();
    for (name, source) in [
        ("hook", Source::EventHook),
        ("log", Source::SystemLog),
        ("neither", Source::Neither),
    ] {
        if !chosen.split(',').any(|c| c.trim() == name) {
            continue;
        }
        match run_source(operator_bin, source, groups, changes, quiet).await {
            Ok(result) => results.push(result),
            Err(error) => panic!("{}: {error}", source.describe()),
        }
    }
    Some(results)
}

/// `p50 / p99` of the rounds, or how many kept their access.
fn percentiles(samples: &[Option<f64>]) -> String {
    if samples.is_empty() {
        return "binding kept (Group mode)".into();
    }
    let mut ended: Vec<f64> = samples.iter().flatten().copied().collect();
    ended.sort_by(f64::total_cmp);
    let kept = samples.len() - ended.len();
    let at = |q: f64| {
        let index = ((samples.len() as f64 * q).ceil() as usize).saturating_sub(1);
        ended
            .get(index)
            .map_or(format!("kept past {} s", give_up().as_secs()), |s| {
                format!("{s:.1} s")
            })
    };
    let mut text = format!("{} / {}", at(0.5), at(0.99));
    if kept > 0 {
        text.push_str(&format!(" ({kept} of {} kept)", samples.len()));
    }
    text
}

pub fn table(results: &[SourceResult]) -> String {
    let mut text = String::from(
        "| how the operator hears of Okta's changes | change in Okta | changes | binding gone, p50 / p99 | old token refused, p50 / p99 |\n|---|---|---|---|---|\n",
    );
    for result in results {
        for row in &result.rows {
            text.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                result.source.describe(),
                row.change.describe(),
                row.token.len(),
                percentiles(&row.binding),
                percentiles(&row.token),
            ));
        }
    }
    text.push_str(
        "\n| how the operator hears of Okta's changes | Okta requests an hour, quiet (by kind) | hook deliveries during the changes |\n|---|---|---|\n",
    );
    for result in results {
        let total: f64 = result.requests_per_hour.values().sum();
        let kinds: Vec<String> = result
            .requests_per_hour
            .iter()
            .map(|(kind, n)| format!("{kind} {n:.0}"))
            .collect();
        text.push_str(&format!(
            "| {} | {total:.0} ({}) | {} |\n",
            result.source.describe(),
            kinds.join(", "),
            result.deliveries
        ));
    }
    text
}

/// `docs/bench/sources.md`: what was run, and the tables.
pub fn write(path: &Path, cpus: usize, table: &str) {
    let groups = env_number("SOURCES_GROUPS", 1000);
    let changes = env_number("SOURCES_CHANGES", 100);
    let quiet = env_number("SOURCES_QUIET_SECONDS", 330);
    std::fs::write(
        path,
        format!(
            "# Revocation by event hook, System Log, or neither\n\nOn one machine with {cpus} \
             CPUs, the demo world (kube-apiserver trusting the local Okta's ID tokens, the \
             revocation authorizer before RBAC, the operator as its release binary with its \
             defaults, a resync interval of {} s) with {groups} bound groups, each an OktaGroupBinding granting `view` in \
             default in Group mode, and the local Okta at a large org's group limit (1,000 a \
             minute). Per change in Okta {changes} rounds, {} ms apart, each its own group, \
             member and real ID token issued before the change: the time from the change until \
             the binding is gone (where the change removes it) and until the apiserver refuses \
             the token (the authorizer where the binding stays), polled every {} ms for {} s, \
             then every second (so a time is at best the first poll, 0.25 s). Okta requests \
             an hour from a quiet window of {quiet} s (one resync and a little; the hourly \
             full re-verification of every group is not in it), begun once the System Log's \
             first read after the setup and the verifications it started were over (Okta \
             asked nothing else for 3 s; at most 45 s), so that this catch-up is not counted. Reproduce with `SIZES= LARGE_CASES= AUTHORIZER_SECONDS=0 REVOCATION_ROUNDS=0 \
             CLUSTERS=0 make bench`.\n\n{table}",
            resync().as_secs(),
            SPACING.as_millis(),
            FAST_POLL.as_millis(),
            FAST_FOR.as_secs(),
        ),
    )
    .expect("sources.md");
}
