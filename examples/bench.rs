//! The benchmark behind `make bench`: workload S (every object: one Okta group, one
//! ClusterRoleBinding and RoleBindings in 10 of 100 namespaces) at several sizes, on a
//! fresh control plane per size with the local Okta at its default (tightest) rate limits.
//!
//! Side by side on the same control plane:
//! - **the limit**: a tight client that creates the same bindings directly, with the
//!   operator's concurrency (16 objects at a time, each object's bindings one by one);
//! - **the operator**: the release binary as its own process, from the first
//!   OktaGroupBinding created to every object Ready and every binding present.
//!
//! It prints a table and writes `docs/bench/results.md` and `docs/bench/bench.svg`.
//! SIZES=100,1000,5000 by default.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, CustomResourceExt};
use okta_rbac_operator::controlplane::{ControlPlane, ControlPlaneOptions};
use okta_rbac_operator::crd::{
    ClusterRoleBindingSpec, OktaGroupBinding, OktaGroupBindingSpec, RoleBindingSpec,
};
use okta_rbac_operator::sim::{OktaSim, Seed, SimOptions};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "00bench-token";
const NAMESPACES: usize = 100;
const NAMESPACES_PER_OBJECT: usize = 10;
/// The operator's default --reconcile-concurrency, used by the limit too.
const CONCURRENCY: usize = 16;
/// The resync interval: 30 s, or longer when re-verifying every group within it would
/// need more than half of the local Okta's default budget (100 group searches a minute,
/// the tightest Okta org), as it would in a real org.
fn resync_for(objects: usize) -> Duration {
    let searches = objects.div_ceil(50) as u64;
    Duration::from_secs(30.max(searches * 60 * 2 / 100))
}
const MANAGED: &str = "app.kubernetes.io/managed-by=okta-rbac-operator";
const LIMIT_LABEL: &str = "bench";

fn group(i: usize) -> String {
    format!("k8s-team-{i:05}")
}

fn namespace(n: usize) -> String {
    format!("bench-{n:03}")
}

/// Object i's 10 namespaces, spread over all 100.
fn namespaces_of(i: usize) -> impl Iterator<Item = String> {
    (0..NAMESPACES_PER_OBJECT).map(move |k| namespace((i + k * NAMESPACES_PER_OBJECT) % NAMESPACES))
}

fn spec(i: usize) -> OktaGroupBindingSpec {
    OktaGroupBindingSpec {
        group: group(i),
        subject: Default::default(),
        cluster_role_bindings: vec![ClusterRoleBindingSpec {
            cluster_role: "view".into(),
        }],
        role_bindings: namespaces_of(i)
            .map(|ns| RoleBindingSpec {
                namespace: Some(ns),
                namespace_selector: None,
                role: None,
                cluster_role: Some("view".into()),
            })
            .collect(),
        on_group_missing: Default::default(),
        paused: false,
    }
}

/// Writes the apiserver counted for the resources either contender touches, by
/// resource and verb.
async fn apiserver_writes_by_kind(client: &Client) -> BTreeMap<(String, String, String), u64> {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("request");
    let metrics = client
        .request_text(request)
        .await
        .expect("apiserver /metrics");
    let label = |line: &str, name: &str| -> Option<String> {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        let end = start + line[start..].find('"')?;
        Some(line[start..end].to_string())
    };
    let mut writes = BTreeMap::new();
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let (Some(verb), Some(resource), Some(code)) = (
            label(line, "verb"),
            label(line, "resource"),
            label(line, "code"),
        ) else {
            continue;
        };
        let counted = ["POST", "PUT", "PATCH", "DELETE", "APPLY"].contains(&verb.as_str())
            && [
                "clusterrolebindings",
                "rolebindings",
                "oktagroupbindings",
                "events",
            ]
            .contains(&resource.as_str());
        if let (true, Some(value)) = (counted, line.rsplit(' ').next()) {
            *writes.entry((resource, verb, code)).or_default() +=
                value.parse::<f64>().unwrap_or(0.0) as u64;
        }
    }
    writes
}

async fn apiserver_writes(client: &Client) -> u64 {
    apiserver_writes_by_kind(client).await.values().sum()
}

fn describe_writes(
    before: &BTreeMap<(String, String, String), u64>,
    after: &BTreeMap<(String, String, String), u64>,
) -> String {
    after
        .iter()
        .filter_map(|(key, count)| {
            let delta = count - before.get(key).copied().unwrap_or(0);
            (delta > 0).then(|| format!("{} {} {}: {delta}", key.1, key.0, key.2))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Peak resident memory (VmHWM) in MiB.
fn peak_memory_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_default();
    kib / 1024.0
}

/// User plus system CPU seconds. /proc counts in USER_HZ, 100 on Linux's mainstream
/// architectures.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct LimitResult {
    seconds: f64,
    writes: u64,
}

struct OperatorResult {
    seconds: f64,
    okta_requests: usize,
    writes: u64,
    peak_mib: f64,
    cpu_seconds: f64,
    quiet_writes: u64,
    quiet_okta_requests: usize,
}

struct SizeResult {
    objects: usize,
    limit: LimitResult,
    operator: OperatorResult,
}

fn subject(i: usize) -> Vec<Subject> {
    vec![Subject {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "Group".into(),
        name: group(i),
        namespace: None,
    }]
}

fn view() -> RoleRef {
    RoleRef {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "ClusterRole".into(),
        name: "view".into(),
    }
}

fn limit_meta(name: String, namespace: Option<String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace,
        labels: Some([(LIMIT_LABEL.to_string(), "limit".to_string())].into()),
        ..Default::default()
    }
}

/// The limit: the same bindings, created directly.
async fn run_limit(client: &Client, objects: usize) -> LimitResult {
    let (crbs, rbs) = watch_bindings(client, &format!("{LIMIT_LABEL}=limit")).await;
    let before = apiserver_writes(client).await;
    let started = Instant::now();
    futures::stream::iter(0..objects)
        .map(|i| {
            let client = client.clone();
            async move {
                let params = PostParams::default();
                let crb = ClusterRoleBinding {
                    metadata: limit_meta(format!("limit-{i:05}-view"), None),
                    role_ref: view(),
                    subjects: Some(subject(i)),
                };
                Api::<ClusterRoleBinding>::all(client.clone())
                    .create(&params, &crb)
                    .await
                    .expect("create ClusterRoleBinding");
                for ns in namespaces_of(i) {
                    let rb = RoleBinding {
                        metadata: limit_meta(format!("limit-{i:05}-view"), Some(ns.clone())),
                        role_ref: view(),
                        subjects: Some(subject(i)),
                    };
                    Api::<RoleBinding>::namespaced(client.clone(), &ns)
                        .create(&params, &rb)
                        .await
                        .expect("create RoleBinding");
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    // Measured as for the operator: until the bench's own watch has seen every binding.
    while crbs.len() < objects || rbs.len() < objects * NAMESPACES_PER_OBJECT {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let writes = apiserver_writes(client).await - before;

    // Clean up before the operator runs: one delete-collection per namespace.
    let selector = ListParams::default().labels(&format!("{LIMIT_LABEL}=limit"));
    Api::<ClusterRoleBinding>::all(client.clone())
        .delete_collection(&DeleteParams::default(), &selector)
        .await
        .expect("delete ClusterRoleBindings");
    for n in 0..NAMESPACES {
        Api::<RoleBinding>::namespaced(client.clone(), &namespace(n))
            .delete_collection(&DeleteParams::default(), &selector)
            .await
            .expect("delete RoleBindings");
    }
    LimitResult { seconds, writes }
}

fn reflect<K>(api: Api<K>, config: watcher::Config) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watcher(api, config).default_backoff().reflect(writer);
    tokio::spawn(async move {
        let _ = stream.try_for_each(|_| async { Ok(()) }).await;
    });
    store
}

/// The bench's view of the bindings with these labels, as a watch shows them.
async fn watch_bindings(
    client: &Client,
    labels: &str,
) -> (Store<ClusterRoleBinding>, Store<RoleBinding>) {
    let config = watcher::Config::default().labels(labels);
    let crbs = reflect(
        Api::<ClusterRoleBinding>::all(client.clone()),
        config.clone(),
    );
    let rbs = reflect(Api::<RoleBinding>::all(client.clone()), config);
    let ready = crbs.wait_until_ready().await.is_ok() && rbs.wait_until_ready().await.is_ok();
    assert!(ready, "bench watches started");
    (crbs, rbs)
}

fn ready(ogb: &OktaGroupBinding) -> bool {
    ogb.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

async fn run_operator(
    plane: &ControlPlane,
    sim: &OktaSim,
    operator_bin: &str,
    objects: usize,
) -> OperatorResult {
    let client = plane.client().await.expect("client");
    let ca = plane.dir().join("okta-ca.pem");
    sim.write_ca(&ca).expect("write CA");
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let operator = Stop(
        Command::new(operator_bin)
            .args(["run", "--okta-org-url", sim.base_url(), "--okta-ca-file"])
            .arg(&ca)
            .args([
                "--resync-interval",
                &format!("{}s", resync_for(objects).as_secs()),
                "--reconcile-concurrency",
                &CONCURRENCY.to_string(),
                "--metrics-address",
                &format!("127.0.0.1:{metrics_port}"),
            ])
            .env("KUBECONFIG", plane.kubeconfig_path())
            .env("OKTA_API_TOKEN", TOKEN)
            .env(
                "RUST_LOG",
                std::env::var("OPERATOR_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .spawn()
            .expect("start the operator"),
    );
    let pid = operator.0.id();
    let readyz = format!("http://127.0.0.1:{metrics_port}/readyz");
    let waited = Instant::now();
    while !reqwest::get(&readyz)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "operator not ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let objects_seen = reflect(
        Api::<OktaGroupBinding>::all(client.clone()),
        Default::default(),
    );
    assert!(objects_seen.wait_until_ready().await.is_ok(), "bench watch");
    let (crbs, rbs) = watch_bindings(&client, MANAGED).await;

    sim.clear_requests();
    let by_kind_before = apiserver_writes_by_kind(&client).await;
    let before: u64 = by_kind_before.values().sum();
    let started = Instant::now();
    let api: Api<OktaGroupBinding> = Api::all(client.clone());
    let creating = futures::stream::iter(0..objects)
        .map(move |i| {
            let api = api.clone();
            async move {
                api.create(
                    &PostParams::default(),
                    &OktaGroupBinding::new(&format!("team-{i:05}"), spec(i)),
                )
                .await
                .expect("create OktaGroupBinding");
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>();
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
    creator.await.expect("creates");
    let okta_requests = sim.requests().len();
    // The bench's own creates of the objects are not the operator's writes.
    let by_kind_after = apiserver_writes_by_kind(&client).await;
    eprintln!(
        "   writes: {}",
        describe_writes(&by_kind_before, &by_kind_after)
    );
    let writes = by_kind_after.values().sum::<u64>() - before - objects as u64;

    // A resync where nothing changed: every answer expires and is verified again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    sim.clear_requests();
    let quiet_before = apiserver_writes(&client).await;
    tokio::time::sleep(resync_for(objects) + Duration::from_secs(5)).await;
    let quiet_writes = apiserver_writes(&client).await - quiet_before;
    let quiet_okta_requests = sim.requests().len();

    if let Ok(metrics) = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics")).await
        && let Ok(text) = metrics.text().await
    {
        let value = |name: &str| -> f64 {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next()?.parse().ok())
                .unwrap_or(0.0)
        };
        let count = value("okta_rbac_reconcile_duration_seconds_count");
        eprintln!(
            "   reconciles: {count}, mean {:.1} ms",
            value("okta_rbac_reconcile_duration_seconds_sum") / count.max(1.0) * 1000.0
        );
    }
    OperatorResult {
        seconds,
        okta_requests,
        writes,
        peak_mib: peak_memory_mib(pid),
        cpu_seconds: cpu_seconds(pid),
        quiet_writes,
        quiet_okta_requests,
    }
}

async fn bench(objects: usize, operator_bin: &str) -> SizeResult {
    eprintln!(">> {objects} objects: starting a control plane and the local Okta");
    let plane = ControlPlane::start(ControlPlaneOptions {
        crds: vec![OktaGroupBinding::crd()],
        ..Default::default()
    })
    .await
    .expect("control plane");
    let seed = Seed::groups_only(TOKEN, (0..objects).map(group));
    let sim = OktaSim::start(SimOptions::new(seed))
        .await
        .expect("local Okta");
    let client = plane.client().await.expect("client");
    for n in 0..NAMESPACES {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace(n)),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace");
    }

    eprintln!(">> {objects} objects: the limit");
    let limit = run_limit(&client, objects).await;
    eprintln!("   {:.2} s", limit.seconds);
    eprintln!(">> {objects} objects: the operator");
    let operator = run_operator(&plane, &sim, operator_bin, objects).await;
    eprintln!("   {:.2} s", operator.seconds);
    SizeResult {
        objects,
        limit,
        operator,
    }
}

fn table(results: &[SizeResult]) -> String {
    let mut out = String::new();
    let header: Vec<String> = results
        .iter()
        .map(|r| format!("{} objects ({} bindings)", r.objects, r.objects * 11))
        .collect();
    let _ = writeln!(out, "| | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(results.len()));
    let mut row = |name: &str, cell: &dyn Fn(&SizeResult) -> String| {
        let cells: Vec<String> = results.iter().map(cell).collect();
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    };
    row("limit: all bindings created", &|r| {
        format!("{:.1} s", r.limit.seconds)
    });
    row("limit: apiserver writes", &|r| r.limit.writes.to_string());
    row("operator: all Ready, all bindings present", &|r| {
        format!("{:.1} s", r.operator.seconds)
    });
    row("operator ÷ limit", &|r| {
        format!("{:.2}×", r.operator.seconds / r.limit.seconds)
    });
    row("operator: Okta requests", &|r| {
        r.operator.okta_requests.to_string()
    });
    row(
        "operator: apiserver writes (bindings, status, events)",
        &|r| r.operator.writes.to_string(),
    );
    row("operator: peak memory (VmHWM)", &|r| {
        format!("{:.1} MiB", r.operator.peak_mib)
    });
    row("operator: CPU (user + system)", &|r| {
        format!("{:.1} s", r.operator.cpu_seconds)
    });
    row("quiet resync: apiserver writes", &|r| {
        r.operator.quiet_writes.to_string()
    });
    row("quiet resync: Okta requests", &|r| {
        r.operator.quiet_okta_requests.to_string()
    });
    out
}

fn chart(results: &[SizeResult], path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (960, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(480);
    let max_objects = results.iter().map(|r| r.objects).max().unwrap_or(1) as f64 * 1.05;

    let max_seconds = results
        .iter()
        .map(|r| r.operator.seconds.max(r.limit.seconds))
        .fold(0.0, f64::max)
        * 1.15;
    let mut time = ChartBuilder::on(&left)
        .caption("time to converge (s)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..max_objects, 0.0..max_seconds)?;
    time.configure_mesh()
        .x_desc("OktaGroupBindings (×11 bindings)")
        .draw()?;
    let series = |pick: fn(&SizeResult) -> f64| -> Vec<(f64, f64)> {
        results
            .iter()
            .map(|r| (r.objects as f64, pick(r)))
            .collect()
    };
    for (label, color, points) in [
        ("limit (direct creates)", BLUE, series(|r| r.limit.seconds)),
        ("okta-rbac-operator", RED, series(|r| r.operator.seconds)),
    ] {
        time.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        time.draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
    }
    time.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;

    let max_mib = results
        .iter()
        .map(|r| r.operator.peak_mib)
        .fold(0.0, f64::max)
        * 1.15;
    let mut memory = ChartBuilder::on(&right)
        .caption("operator peak memory (MiB)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..max_objects, 0.0..max_mib)?;
    memory
        .configure_mesh()
        .x_desc("OktaGroupBindings (×11 bindings)")
        .draw()?;
    let points = series(|r| r.operator.peak_mib);
    memory.draw_series(LineSeries::new(points.clone(), RED.stroke_width(2)))?;
    memory.draw_series(points.iter().map(|p| Circle::new(*p, 4, RED.filled())))?;
    root.present()?;
    Ok(())
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::var("SIZES")
        .unwrap_or_else(|_| "100,1000,5000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let operator_bin = std::env::var("OPERATOR_BIN")
        .unwrap_or_else(|_| "target/release/okta-rbac-operator".into());
    let mut results = Vec::new();
    for objects in sizes {
        results.push(bench(objects, &operator_bin).await);
    }
    let table = table(&results);
    println!("{table}");
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/bench");
    std::fs::create_dir_all(&docs).expect("docs/bench");
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let notes = format!(
        "Workload S on one machine with {cpus} CPUs: every object is one Okta group with one \
         ClusterRoleBinding and RoleBindings in {NAMESPACES_PER_OBJECT} of {NAMESPACES} \
         namespaces. A fresh control plane per size; the local Okta at its default rate \
         limits (100 group searches a minute); {CONCURRENCY} objects at a time for both; \
         resync 30 s (5,000 objects: 120 s, so that re-verifying fits the budget). \
         Reproduce with `make bench`.\n\n"
    );
    std::fs::write(docs.join("results.md"), format!("{notes}{table}")).expect("results.md");
    match chart(&results, &docs.join("bench.svg")) {
        Ok(()) => eprintln!(">> wrote docs/bench/results.md and docs/bench/bench.svg"),
        Err(error) => eprintln!(">> the chart failed: {error}"),
    }
}
