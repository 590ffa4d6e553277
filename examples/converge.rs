//! Measures the operator on the real control plane against the local Okta: time from
//! creating each OktaGroupBinding to Ready with its bindings, Okta requests to verify
//! the groups from cold, apiserver writes during a resync where nothing changed, and the
//! operator's peak memory. `make measure` runs it (OBJECTS=100 by default).

use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::CustomResourceExt;
use kube::api::{Api, ListParams, PostParams};
use okta_rbac_operator::controlplane::{ControlPlane, ControlPlaneOptions};
use okta_rbac_operator::crd::{ClusterRoleBindingSpec, OktaGroupBinding, OktaGroupBindingSpec};
use okta_rbac_operator::sim::seed::{SeedApiToken, SeedGroup};
use okta_rbac_operator::sim::{GroupType, OktaSim, Seed, SimOptions};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "00measure-token";
const RESYNC_SECONDS: u64 = 20;

fn writes_to_our_resources(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|line| line.starts_with("apiserver_request_total{"))
        .filter(|line| {
            ["POST", "PUT", "PATCH", "DELETE", "APPLY"]
                .iter()
                .any(|verb| line.contains(&format!("verb=\"{verb}\"")))
        })
        .filter(|line| {
            [
                "clusterrolebindings",
                "rolebindings",
                "oktagroupbindings",
                "events",
            ]
            .iter()
            .any(|resource| line.contains(&format!("resource=\"{resource}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn apiserver_metrics(client: &kube::Client) -> String {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("request");
    client
        .request_text(request)
        .await
        .expect("apiserver /metrics")
}

fn peak_memory_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or_default()
}

/// Stops the operator however this program ends.
struct Stop(std::process::Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() {
    let objects: usize = std::env::var("OBJECTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let operator_bin = std::env::var("OPERATOR_BIN")
        .unwrap_or_else(|_| "target/release/okta-rbac-operator".into());
    let plane = ControlPlane::start(ControlPlaneOptions {
        crds: vec![OktaGroupBinding::crd()],
        ..Default::default()
    })
    .await
    .expect("control plane");
    let mut seed = Seed {
        api_tokens: vec![SeedApiToken {
            name: "measure".into(),
            token: TOKEN.into(),
            scopes: None,
        }],
        groups: (0..objects)
            .map(|i| SeedGroup {
                name: format!("k8s-team-{i:05}"),
                group_type: GroupType::OktaGroup,
                description: None,
                members: vec![],
            })
            .collect(),
        ..Default::default()
    };
    seed.rate_limits.unlimited = true;
    let sim = OktaSim::start(SimOptions::new(seed))
        .await
        .expect("local Okta");
    let dir = plane.dir().to_path_buf();
    let ca = dir.join("okta-ca.pem");
    sim.write_ca(&ca).expect("write CA");
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let operator = Command::new(&operator_bin)
        .args(["run", "--okta-org-url", sim.base_url(), "--okta-ca-file"])
        .arg(&ca)
        .args([
            "--resync-interval",
            &format!("{RESYNC_SECONDS}s"),
            "--metrics-address",
            &format!("127.0.0.1:{metrics_port}"),
        ])
        .env("KUBECONFIG", plane.kubeconfig_path())
        .env("OKTA_API_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the operator");
    let operator = Stop(operator);
    let client = plane.client().await.expect("client");
    let tls = okta_rbac_operator::pki::client_config_trusting(&[]).expect("TLS");
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .expect("HTTP client");
    let readyz = format!("http://127.0.0.1:{metrics_port}/readyz");
    let started = Instant::now();
    while !http
        .get(&readyz)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the operator never became ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sim.clear_requests();

    let api: Api<OktaGroupBinding> = Api::all(client.clone());
    let mut created_at = HashMap::new();
    let begin = Instant::now();
    for i in 0..objects {
        let name = format!("team-{i:05}");
        let spec = OktaGroupBindingSpec {
            group: format!("k8s-team-{i:05}"),
            subject: Default::default(),
            cluster_role_bindings: vec![ClusterRoleBindingSpec {
                cluster_role: "view".into(),
            }],
            role_bindings: vec![],
            on_group_missing: Default::default(),
            paused: false,
        };
        api.create(&PostParams::default(), &OktaGroupBinding::new(&name, spec))
            .await
            .expect("create");
        created_at.insert(name, Instant::now());
    }
    let mut ready_after: HashMap<String, Duration> = HashMap::new();
    let crbs: Api<ClusterRoleBinding> = Api::all(client.clone());
    while ready_after.len() < objects {
        assert!(
            begin.elapsed() < Duration::from_secs(300),
            "not converged after 5 minutes"
        );
        let bound: std::collections::HashSet<String> = crbs
            .list(&ListParams::default().labels("app.kubernetes.io/managed-by=okta-rbac-operator"))
            .await
            .expect("list")
            .items
            .into_iter()
            .filter_map(|b| b.metadata.annotations?.get("oktarbac.io/owner").cloned())
            .collect();
        for ogb in api.list(&ListParams::default()).await.expect("list").items {
            let name = ogb.metadata.name.clone().unwrap_or_default();
            let ready = ogb.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            });
            if ready && bound.contains(&name) && !ready_after.contains_key(&name) {
                ready_after.insert(name.clone(), created_at[&name].elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let converged = begin.elapsed();
    let okta_cold = sim
        .requests()
        .iter()
        .filter(|r| r.bucket == Some("groups"))
        .count();
    let mut times: Vec<Duration> = ready_after.values().copied().collect();
    times.sort();

    // A resync with nothing to change: wait until every answer has expired and been
    // verified again, and count the writes in between.
    tokio::time::sleep(Duration::from_secs(2)).await;
    sim.clear_requests();
    let before = writes_to_our_resources(&apiserver_metrics(&client).await);
    tokio::time::sleep(Duration::from_secs(RESYNC_SECONDS + 5)).await;
    let after = writes_to_our_resources(&apiserver_metrics(&client).await);
    let okta_resync = sim
        .requests()
        .iter()
        .filter(|r| r.bucket == Some("groups"))
        .count();
    let peak = peak_memory_kib(operator.0.id());
    drop(operator);

    println!("objects                                   {objects}");
    println!(
        "all Ready with bindings after             {:.2} s",
        converged.as_secs_f64()
    );
    println!(
        "create -> Ready, median                   {:.0} ms",
        times[times.len() / 2].as_secs_f64() * 1000.0
    );
    println!(
        "create -> Ready, worst                    {:.0} ms",
        times[times.len() - 1].as_secs_f64() * 1000.0
    );
    println!("Okta requests to verify {objects} groups (cold)  {okta_cold}");
    println!(
        "quiet resync: apiserver writes            {}",
        after - before
    );
    println!("quiet resync: Okta requests               {okta_resync}");
    println!(
        "operator peak memory (VmHWM)              {:.1} MiB",
        peak as f64 / 1024.0
    );
}
