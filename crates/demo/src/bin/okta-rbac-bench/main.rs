//! The benchmark behind `make bench`: a workload where every object is one Okta group, one
//! ClusterRoleBinding and RoleBindings in 10 of 100 namespaces, at several sizes, on a
//! fresh control plane per size with the local Okta at its default (tightest) rate limits.
//!
//! Side by side on the same control plane:
//! - **the true limit**: a direct client that creates the same bindings, at several
//!   concurrencies, the best run counting;
//! - **the operator**: the release binary as its own process, from the first
//!   OktaGroupBinding created to every object Ready and every binding present;
//! - **the floor**: a direct client that writes everything the operator's run writes
//!   (objects, bindings, statuses, events);
//!
//! and rbac-manager on a fresh control plane of its own.
//!
//! It prints a table and writes `docs/bench/results.md`, `docs/bench/bench.svg` and, for
//! the large-cluster cases, `docs/bench/large.md`. SIZES=100,1000,5000 by default;
//! BENCH_NO_PEER, BENCH_PEER_MAX, LARGE_CASES, AUTHORIZER_RATE, AUTHORIZER_SECONDS,
//! REVOCATION_ROUNDS, SOURCES_CHANGES, SOURCES_GROUPS, SOURCES_QUIET_SECONDS, CLUSTERS,
//! CLUSTER_GROUPS, CLUSTER_CHANGES, CLUSTER_QUIET_SECONDS, BENCH_OUT,
//! OPERATOR_ARGS (see
//! docs/contributing/benchmark.md).

mod apiserver;
mod authorizer;
mod churn;
mod clusters;
mod cpu;
mod floor;
mod large;
mod limit;
mod output;
mod peer;
mod results;
mod revocation;
mod sources;
mod watch;
mod workload;

use apiserver::{apiserver_writes, apiserver_writes_by_kind, describe_writes};
use floor::run_floor;
use kube::CustomResourceExt;
use kube::api::{Api, PostParams};
use limit::run_limit;
use okta_rbac_api::OktaGroupBinding;
use okta_rbac_api::reasons::Reason;
use okta_rbac_testenv::{ControlPlane, ControlPlaneOptions, OperatorLaunch};
use okta_sim::{GroupType, OktaSim, Seed, SimOptions};
use output::table;
use peer::run_rbac_manager;
use results::{Latency, OperatorResult, SizeResult};
use std::path::Path;
use std::time::{Duration, Instant};
use watch::{reflect, watch_bindings};
use workload::*;

fn ready(ogb: &OktaGroupBinding) -> bool {
    ogb.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// Single objects applied and deleted one at a time on the busy cluster.
const SAMPLES: usize = 20;

fn launch(
    plane: &ControlPlane,
    sim: &OktaSim,
    operator_bin: &Path,
    objects: usize,
    extra: &[&str],
) -> OperatorLaunch {
    let ca = plane.dir().join("okta-ca.pem");
    sim.write_ca(&ca).expect("write CA");
    let mut args = vec![
        "--resync-interval".to_string(),
        format!("{}s", resync_for(objects).as_secs()),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    // OPERATOR_ARGS: more flags for every operator the bench starts (experiments).
    if let Ok(more) = std::env::var("OPERATOR_ARGS") {
        args.extend(more.split_whitespace().map(str::to_string));
    }
    OperatorLaunch::new(operator_bin, plane.kubeconfig_path(), sim.base_url())
        .okta_ca_file(&ca)
        .okta_token(TOKEN)
        .log_filter(&std::env::var("OPERATOR_LOG").unwrap_or_else(|_| "warn".into()))
        .args(args)
}

/// Okta requests in steady state, per hour, from a quiet window of one resync interval
/// (plus 5 s): the group requests and, apart, the System Log's reads.
async fn quiet_window(sim: &OktaSim, objects: usize) -> (f64, f64, Duration) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    sim.clear_requests();
    let window = resync_for(objects) + Duration::from_secs(5);
    tokio::time::sleep(window).await;
    let requests = sim.requests();
    let per_hour = |n: usize| n as f64 * 3600.0 / window.as_secs_f64();
    let logs = requests.iter().filter(|r| r.path == "/api/v1/logs").count();
    (per_hour(requests.len() - logs), per_hour(logs), window)
}

async fn run_operator(
    plane: &ControlPlane,
    sim: &OktaSim,
    operator_bin: &Path,
    objects: usize,
) -> OperatorResult {
    let client = plane.client().await.expect("client");
    let mut operator = launch(plane, sim, operator_bin, objects, &[])
        .start(&plane.dir().join("operator.log"))
        .expect("start the operator");
    operator
        .wait_ready(Duration::from_secs(60))
        .await
        .expect("operator ready");

    let objects_seen = reflect(
        Api::<OktaGroupBinding>::all(client.clone()),
        Default::default(),
    )
    .await;
    let (crbs, rbs) = watch_bindings(&client, MANAGED).await;

    sim.clear_requests();
    let by_kind_before = apiserver_writes_by_kind(&client).await;
    let before: u64 = by_kind_before.values().sum();
    let mut processes = cpu::plane_processes(plane);
    processes.push(("operator".into(), operator.pid()));
    let cpu = cpu::CpuMeter::start(processes);
    let started = Instant::now();
    let api: Api<OktaGroupBinding> = Api::all(client.clone());
    let creating = create_objects(
        api.clone(),
        (0..objects).map(|i| (format!("team-{i:05}"), spec(i))),
    );
    let creator = tokio::spawn(creating);
    let expected_rbs = objects * NAMESPACES_PER_OBJECT;
    loop {
        let ready_count = objects_seen.state().iter().filter(|o| ready(o)).count();
        if ready_count == objects && crbs.len() == objects && rbs.len() == expected_rbs {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "not converged after 30 minutes: {ready_count} ready, {} + {} bindings",
            crbs.len(),
            rbs.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("   {}", cpu.report(seconds));
    creator.await.expect("creates");
    let okta_requests = sim.requests().len();
    // The bench's own creates of the objects are not the operator's writes.
    let by_kind_after = apiserver_writes_by_kind(&client).await;
    eprintln!(
        "   writes: {}",
        describe_writes(&by_kind_before, &by_kind_after)
    );
    let writes = by_kind_after.values().sum::<u64>() - before - objects as u64;
    let peak_mib = operator.peak_memory_kib().unwrap_or_default() as f64 / 1024.0;
    let cpu_seconds = operator.cpu_seconds();

    // A quiet resync interval: nothing changes, so nothing may be written.
    let quiet_before = apiserver_writes(&client).await;
    let (quiet_group_requests, quiet_log_reads, window) = quiet_window(sim, objects).await;
    let quiet_writes = apiserver_writes(&client).await - quiet_before;
    let steady_mib = operator.memory_kib().unwrap_or_default() as f64 / 1024.0;
    // At the local Okta's tightest limits, steady state must not run into them.
    let rate_limited = objects_seen
        .state()
        .iter()
        .filter(|o| {
            o.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.reason == Reason::OktaRateLimited.as_str())
            })
        })
        .count();

    // One object at a time on the busy cluster: applied until Ready, deleted until its
    // bindings are gone.
    let mut apply_to_ready = Vec::new();
    let mut delete_to_revoked = Vec::new();
    for i in objects..objects + SAMPLES {
        let name = format!("team-{i:05}");
        let applied = Instant::now();
        api.create(
            &PostParams::default(),
            &OktaGroupBinding::new(&name, spec(i)),
        )
        .await
        .expect("create one more");
        while !objects_seen
            .state()
            .iter()
            .any(|o| o.metadata.name.as_deref() == Some(name.as_str()) && ready(o))
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        apply_to_ready.push(applied.elapsed().as_secs_f64());
        let deleted = Instant::now();
        api.delete(&name, &Default::default())
            .await
            .expect("delete it");
        while crbs.len() > objects || rbs.len() > expected_rbs {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        delete_to_revoked.push(deleted.elapsed().as_secs_f64());
    }

    // A group deleted in Okta: until its object's bindings are revoked. The System Log
    // names it; nothing else looks at the group before the next full re-verification.
    let doomed = sim
        .group_id(&group(0), GroupType::OktaGroup)
        .expect("the first object's group");
    let deleted = Instant::now();
    sim.delete_group(&doomed).expect("delete the group in Okta");
    while crbs.len() >= objects || rbs.len() > expected_rbs - NAMESPACES_PER_OBJECT {
        assert!(
            deleted.elapsed() < Duration::from_secs(600),
            "the deleted group's bindings are still there after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let group_deleted_to_revoked = deleted.elapsed().as_secs_f64();
    eprintln!("   group deleted in Okta -> bindings revoked: {group_deleted_to_revoked:.1} s");

    if let Some((200, text)) = operator.get("/metrics").await {
        let value = |name: &str| -> f64 {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next()?.parse().ok())
                .unwrap_or(0.0)
        };
        let cached: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("okta_rbac_cached_objects{kind=\""))
            .map(|l| l.replace("\"} ", ": "))
            .collect();
        eprintln!("   cached objects: {}", cached.join(", "));
        eprintln!(
            "   events dropped (queue full): {}",
            value("okta_rbac_events_dropped_total")
        );
        let count = value("okta_rbac_reconcile_duration_seconds_count");
        eprintln!(
            "   reconciles: {count}, mean {:.1} ms",
            value("okta_rbac_reconcile_duration_seconds_sum") / count.max(1.0) * 1000.0
        );
    }
    drop(operator);

    // The same quiet window with the System Log turned off: every group verified again
    // each resync, as before the operator followed the log.
    let without_log = launch(
        plane,
        sim,
        operator_bin,
        objects,
        &["--okta-system-log=false"],
    )
    .start(&plane.dir().join("operator-without-log.log"))
    .expect("start the operator");
    let mut without_log = without_log;
    without_log
        .wait_ready(Duration::from_secs(60))
        .await
        .expect("operator ready");
    // Its first verification of every group is not steady state.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (without_log_requests, _, _) = quiet_window(sim, objects).await;
    eprintln!(
        "   Okta requests per hour in steady state: {quiet_group_requests:.0} + {quiet_log_reads:.0} log reads with the System Log, {without_log_requests:.0} without (window {:?})",
        window
    );
    eprintln!("   memory: peak {peak_mib:.1} MiB, steady {steady_mib:.1} MiB");

    OperatorResult {
        seconds,
        okta_requests,
        writes,
        peak_mib,
        steady_mib,
        cpu_seconds,
        quiet_writes,
        quiet_okta_requests_per_hour: quiet_group_requests
            + quiet_log_reads
            + (objects.div_ceil(okta_rbac_operator::okta::client::NAMES_PER_SEARCH)) as f64,
        quiet_okta_requests_per_hour_without_log: without_log_requests,
        apply_to_ready: Latency::of(apply_to_ready),
        delete_to_revoked: Latency::of(delete_to_revoked),
        group_deleted_to_revoked,
        rate_limited,
    }
}

async fn bench(objects: usize, operator_bin: &Path) -> Option<SizeResult> {
    eprintln!(">> {objects} objects: starting a control plane and the local Okta");
    let plane = ControlPlane::start(ControlPlaneOptions {
        crds: vec![OktaGroupBinding::crd()],
        ..Default::default()
    })
    .await
    .expect("control plane");
    let seed = Seed::groups_only(TOKEN, (0..objects + SAMPLES).map(group));
    let sim = OktaSim::start(SimOptions::new(seed))
        .await
        .expect("local Okta");
    let client = plane.client().await.expect("client");
    create_namespaces(&client).await;

    // BENCH_OPERATOR_ONLY: the operator's run alone, printed and not written (memory
    // and speed experiments take minutes instead of a quarter of an hour).
    let operator_only = std::env::var_os("BENCH_OPERATOR_ONLY").is_some();
    let limit = if operator_only {
        None
    } else {
        eprintln!(">> {objects} objects: the limit");
        let limit = run_limit(&client, &cpu::plane_processes(&plane), objects).await;
        eprintln!("   {:.2} s", limit.seconds);
        Some(limit)
    };
    eprintln!(">> {objects} objects: the operator");
    let operator = run_operator(&plane, &sim, operator_bin, objects).await;
    eprintln!("   {:.2} s", operator.seconds);
    // Operator only: nothing more to measure.
    let limit = limit?;
    let template = Api::<OktaGroupBinding>::all(client.clone())
        // The last object: the first one's group was deleted in Okta.
        .get_status(&format!("team-{:05}", objects - 1))
        .await
        .expect("an object the operator reconciled")
        .status
        .expect("its status");
    drop(plane);
    // The floor on a control plane of its own, as fresh as the operator's was when it
    // started: an etcd holding the operator's run would make every write dearer.
    eprintln!(
        ">> {objects} objects: the floor (objects, bindings, statuses and events written directly), on a fresh control plane"
    );
    let (plane, client) = large::plane().await;
    create_namespaces(&client).await;
    let floor = run_floor(&client, &cpu::plane_processes(&plane), objects, &template).await;
    eprintln!("   {:.2} s", floor.seconds);
    drop(plane);
    // BENCH_PEER_MAX: rbac-manager only up to this size (it takes over half an hour at
    // 5,000 objects).
    let peer_max = std::env::var("BENCH_PEER_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let peer = if std::env::var_os("BENCH_NO_PEER").is_some() || objects > peer_max {
        None
    } else {
        eprintln!(">> {objects} objects: rbac-manager on a fresh control plane");
        let peer = run_rbac_manager(objects).await;
        eprintln!("   {:.2} s", peer.seconds);
        Some(peer)
    };
    Some(SizeResult {
        objects,
        limit,
        floor,
        operator,
        peer,
    })
}

/// Runs one case and says how long it took, so that every run's log shows where its time
/// went.
async fn timed<T>(case: &str, run: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let outcome = run.await;
    eprintln!(
        ">> {case}: {:.0} s of wall time",
        started.elapsed().as_secs_f64()
    );
    outcome
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::var("SIZES")
        .unwrap_or_else(|_| "100,1000,5000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let operator_bin = okta_rbac_testenv::paths::operator_binary()
        .expect("the operator binary (make bench builds it)");
    let mut results = Vec::new();
    for objects in sizes {
        let case = format!("{objects} objects");
        results.extend(timed(&case, bench(objects, &operator_bin)).await);
    }
    let large = timed("large cases", large::run(&operator_bin)).await;
    let large_table = large::table(&large);
    let authorizer = timed("authorizer", authorizer::run(&operator_bin)).await;
    let authorizer_table = authorizer.as_ref().map(authorizer::table);
    let revocation_table = timed("revocation", revocation::run(&operator_bin))
        .await
        .map(|rows| revocation::table(&rows));
    let sources_table = timed("sources", sources::run(&operator_bin))
        .await
        .map(|results| sources::table(&results));
    let clusters_table = timed("clusters", clusters::run(&operator_bin))
        .await
        .map(|result| clusters::table(&result));
    println!(
        "{}\n{large_table}\n{}\n{}\n{}\n{}",
        table(&results),
        authorizer_table.as_deref().unwrap_or_default(),
        revocation_table.as_deref().unwrap_or_default(),
        sources_table.as_deref().unwrap_or_default(),
        clusters_table.as_deref().unwrap_or_default()
    );
    // BENCH_OUT: elsewhere than docs/bench (CI's quick run).
    let docs = std::env::var_os("BENCH_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| okta_rbac_testenv::paths::checkout().join("docs/bench"));
    std::fs::create_dir_all(&docs).expect("docs/bench");
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    // Each file only when its runs ran, so that the sizes and the large cases can be run
    // apart (LARGE_CASES= or SIZES=) without erasing the other's results.
    if !large_table.is_empty() {
        output::write_large(&docs.join("large.md"), cpus, &large_table);
    }
    if let (Some(result), Some(table)) = (&authorizer, &authorizer_table) {
        authorizer::write(&docs.join("authorizer.md"), cpus, result, table);
    }
    if let Some(table) = &revocation_table {
        revocation::write(&docs.join("revocation.md"), cpus, table);
    }
    if let Some(table) = &sources_table {
        sources::write(&docs.join("sources.md"), cpus, table);
    }
    if let Some(table) = &clusters_table {
        clusters::write(&docs.join("clusters.md"), cpus, table);
    }
    if !results.is_empty() {
        output::write_results(&docs, cpus, &results);
    }
}
