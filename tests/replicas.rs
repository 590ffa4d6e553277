//! The operator as it runs in a cluster: its own process, two replicas with leader
//! election, probes and metrics, secrets kept out of the logs, a clean stop on SIGTERM.

mod common;

use common::{apply_binding, view_spec, wait_condition};
use k8s_openapi::api::coordination::v1::Lease;
use kube::CustomResourceExt;
use kube::api::Api;
use okta_rbac_operator::controlplane::{ControlPlane, unique_name};
use okta_rbac_operator::crd::OktaGroupBinding;
use okta_rbac_operator::sim::seed::SeedApiToken;
use okta_rbac_operator::sim::{GroupType, OktaSim, Seed, SimOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "00replica-secret-token";
const LEASE_SECONDS: u64 = 4;

struct Replica {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    metrics: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_replica(
    name: &str,
    plane: &ControlPlane,
    sim: &OktaSim,
    ca: &Path,
    lease: &str,
) -> Replica {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let log = plane.dir().join(format!("{name}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_okta-rbac-operator"))
        .args(["run", "--okta-org-url", sim.base_url(), "--okta-ca-file"])
        .arg(ca)
        .args([
            "--metrics-address",
            &format!("127.0.0.1:{port}"),
            "--resync-interval",
            "3s",
        ])
        .args([
            "--leader-election",
            "--lease-name",
            lease,
            "--lease-namespace",
            "default",
        ])
        .args(["--lease-duration", &format!("{LEASE_SECONDS}s")])
        .env("KUBECONFIG", plane.kubeconfig_path())
        .env("OKTA_API_TOKEN", TOKEN)
        .env("POD_NAME", name)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start a replica");
    Replica {
        name: name.into(),
        child: Some(child),
        log,
        metrics: format!("http://127.0.0.1:{port}"),
    }
}

async fn holder(leases: &Api<Lease>, lease: &str) -> Option<String> {
    leases.get(lease).await.ok()?.spec?.holder_identity
}

async fn get(http: &reqwest::Client, url: &str) -> Option<(u16, String)> {
    let response = http.get(url).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

#[tokio::test]
async fn two_replicas_elect_one_leader_and_the_standby_takes_over() {
    let plane = ControlPlane::shared(|| vec![OktaGroupBinding::crd()]);
    let client = plane.client().await.expect("client");
    let seed = Seed {
        api_tokens: vec![SeedApiToken {
            name: "operator".into(),
            token: TOKEN.into(),
            scopes: None,
        }],
        ..Default::default()
    };
    let sim = OktaSim::start(SimOptions::new(seed))
        .await
        .expect("local Okta");
    let ca = plane.dir().join(format!("{}.pem", unique_name("okta-ca")));
    sim.write_ca(&ca).expect("CA");
    let lease = unique_name("lease");
    let mut replicas = vec![
        start_replica("replica-a", plane, &sim, &ca, &lease),
        start_replica("replica-b", plane, &sim, &ca, &lease),
    ];
    let tls = okta_rbac_operator::pki::client_config_trusting(&[]).expect("TLS");
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .expect("HTTP");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");

    let leader = common::eventually(Duration::from_secs(30), "a leader", || {
        let leases = leases.clone();
        let lease = lease.clone();
        async move { holder(&leases, &lease).await }
    })
    .await;
    for replica in &replicas {
        let ready = common::eventually(Duration::from_secs(30), "every replica is ready", || {
            let url = format!("{}/readyz", replica.metrics);
            let http = http.clone();
            async move { get(&http, &url).await.filter(|(s, _)| *s == 200) }
        })
        .await;
        assert_eq!(ready.1, "ok");
    }

    let group = unique_name("k8s-replicas");
    sim.create_group(&group, GroupType::OktaGroup)
        .expect("group");
    let first = unique_name("first");
    apply_binding(&client, &first, view_spec(&group)).await;
    wait_condition(&client, &first, "Ready", "True", None).await;

    let index = replicas
        .iter()
        .position(|r| r.name == leader)
        .expect("the leader is a replica");
    let (_, metrics) = get(&http, &format!("{}/metrics", replicas[index].metrics))
        .await
        .expect("metrics");
    assert!(metrics.contains("okta_rbac_reconciles_total"), "{metrics}");
    assert!(
        metrics.contains(r#"okta_rbac_okta_requests_total{bucket="groups",status="200"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"okta_rbac_groups{state="verified"} 1"#),
        "{metrics}"
    );

    // SIGKILL the leader: the standby must take over within the lease duration.
    let killed_at = Instant::now();
    let mut old = replicas.remove(index);
    if let Some(child) = old.child.as_mut() {
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }
    let standby = replicas[0].name.clone();
    common::eventually(
        Duration::from_secs(LEASE_SECONDS * 3),
        "the standby takes the lease",
        || {
            let leases = leases.clone();
            let (lease, standby) = (lease.clone(), standby.clone());
            async move { (holder(&leases, &lease).await? == standby).then_some(()) }
        },
    )
    .await;
    let handover = killed_at.elapsed();
    println!(
        "leader handover after SIGKILL: {:.1} s (lease {LEASE_SECONDS} s)",
        handover.as_secs_f64()
    );
    assert!(
        handover <= Duration::from_secs(LEASE_SECONDS + 2),
        "handover took {handover:?}"
    );

    let second = unique_name("second");
    apply_binding(&client, &second, view_spec(&group)).await;
    wait_condition(&client, &second, "Ready", "True", None).await;

    for replica in [&old, &replicas[0]] {
        let log = std::fs::read_to_string(&replica.log).expect("log");
        assert!(
            !log.contains(TOKEN),
            "{}: the Okta token is never logged",
            replica.name
        );
    }

    // SIGTERM is a clean stop.
    let mut survivor = replicas.remove(0);
    let mut child = survivor.child.take().expect("running");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let stopped_at = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            stopped_at.elapsed() < Duration::from_secs(10),
            "SIGTERM did not stop the operator"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "a SIGTERM stop exits 0: {status}");
}
