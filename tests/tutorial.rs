//! The tutorial, end to end: the kube-apiserver trusts the local Okta as its OIDC issuer,
//! the operator turns the example OktaGroupBindings into RBAC, and each example user's
//! real ID token gets exactly what their Okta groups were granted.

mod common;

use common::{eventually, wait_condition};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::{Client, CustomResourceExt};
use okta_rbac_operator::controller::desired::Policy;
use okta_rbac_operator::controlplane::{
    ControlPlane, ControlPlaneOptions, OidcOptions, bin_dir, unique_name,
};
use okta_rbac_operator::crd::{OktaGroupBinding, UserNameAttribute};
use okta_rbac_operator::okta::auth::Credentials;
use okta_rbac_operator::operator::{OperatorConfig, run};
use okta_rbac_operator::sim::{GroupType, OktaSim, Seed, SimOptions};
use std::process::Command;
use std::time::Duration;

const OPERATOR_TOKEN: &str = "00simulated-operator-token";

struct Tutorial {
    plane: ControlPlane,
    sim: OktaSim,
}

/// The example org, a control plane trusting it with these prefixes, the operator, and
/// the samples applied.
async fn tutorial(prefix: &str) -> Tutorial {
    let seed = Seed::from_yaml(include_str!("../examples/okta-org.yaml")).expect("example org");
    let sim = OktaSim::start(SimOptions::new(seed))
        .await
        .expect("local Okta");
    let plane = ControlPlane::start(ControlPlaneOptions {
        crds: vec![OktaGroupBinding::crd()],
        oidc: Some(OidcOptions {
            issuer_url: sim.issuer("default"),
            client_id: "kubernetes".into(),
            ca_pem: sim.ca_pem().expect("CA").into(),
            username_claim: "email".into(),
            username_prefix: prefix.into(),
            groups_claim: "groups".into(),
            groups_prefix: prefix.into(),
        }),
        ..Default::default()
    })
    .await
    .expect("control plane trusting the local Okta");
    let config = OperatorConfig {
        okta_org_url: sim.base_url().parse().expect("url"),
        okta_credentials: Credentials::ApiToken(OPERATOR_TOKEN.into()),
        okta_ca_pem: sim.ca_pem().map(str::to_string),
        okta_concurrency: 4,
        okta_timeout: Duration::from_secs(5),
        policy: Policy {
            allowed_group_prefix: "k8s-".into(),
            groups_prefix: prefix.into(),
            username_prefix: prefix.into(),
            user_name: UserNameAttribute::Email,
        },
        resync: Duration::from_secs(3),
        metrics_address: "127.0.0.1:0".parse().expect("address"),
        leader_election: None,
        reconcile_concurrency: 4,
    };
    let client = plane.client().await.expect("client");
    tokio::spawn(run(client.clone(), config, |_| {}, std::future::pending()));
    let applied = kubectl(&plane, &["apply", "-k", "config/samples"]);
    assert!(applied.0, "applying the samples: {}", applied.2);
    for name in ["k8s-admins", "k8s-restricted-users"] {
        wait_condition(&client, name, "Ready", "True", None).await;
    }
    Tutorial { plane, sim }
}

fn kubectl(plane: &ControlPlane, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(bin_dir().join("kubectl"))
        .arg("--kubeconfig")
        .arg(plane.kubeconfig_path())
        .args(args)
        .output()
        .expect("kubectl");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A real ID token for an example user, from the local Okta's token endpoint.
async fn id_token(sim: &OktaSim, user: &str) -> String {
    let tls =
        okta_rbac_operator::pki::client_config_trusting(&[sim.ca_pem().expect("CA")]).expect("TLS");
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .expect("HTTP");
    let password = format!("{}-password", user.split('@').next().expect("login"));
    let answer: serde_json::Value = http
        .post(format!("{}/v1/token", sim.issuer("default")))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "kubernetes"),
            ("username", user),
            ("password", &password),
            ("scope", "openid email profile groups"),
        ])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token answer");
    answer["id_token"]
        .as_str()
        .expect("an ID token")
        .to_string()
}

fn code(result: Result<impl Sized, kube::Error>) -> u16 {
    match result {
        Ok(_) => 200,
        Err(kube::Error::Api(status)) => status.code,
        Err(other) => panic!("no answer from the apiserver: {other}"),
    }
}

/// What a user's token may do, as (action, HTTP status) pairs.
async fn access(client: &Client) -> Vec<(&'static str, u16)> {
    // A write that no admission plugin gets in the way of (a pod needs a ServiceAccount).
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(unique_name("cm")),
            ..Default::default()
        },
        ..Default::default()
    };
    vec![
        (
            "list pods in default",
            code(
                Api::<Pod>::namespaced(client.clone(), "default")
                    .list(&Default::default())
                    .await,
            ),
        ),
        (
            "list services in default",
            code(
                Api::<Service>::namespaced(client.clone(), "default")
                    .list(&Default::default())
                    .await,
            ),
        ),
        (
            "list secrets in default",
            code(
                Api::<Secret>::namespaced(client.clone(), "default")
                    .list(&Default::default())
                    .await,
            ),
        ),
        (
            "list pods in kube-system",
            code(
                Api::<Pod>::namespaced(client.clone(), "kube-system")
                    .list(&Default::default())
                    .await,
            ),
        ),
        (
            "create a configmap in default",
            code(
                Api::<ConfigMap>::namespaced(client.clone(), "default")
                    .create(
                        &PostParams {
                            dry_run: true,
                            ..Default::default()
                        },
                        &config_map,
                    )
                    .await,
            ),
        ),
        (
            "list namespaces",
            code(
                Api::<Namespace>::all(client.clone())
                    .list(&Default::default())
                    .await,
            ),
        ),
    ]
}

fn expect(statuses: &[(&'static str, u16)], allowed: &[&str]) -> Vec<(&'static str, u16)> {
    statuses
        .iter()
        .map(|(action, _)| (*action, if allowed.contains(action) { 200 } else { 403 }))
        .collect()
}

const EVERYTHING: &[&str] = &[
    "list pods in default",
    "list services in default",
    "list secrets in default",
    "list pods in kube-system",
    "create a configmap in default",
    "list namespaces",
];
const BOB: &[&str] = &["list pods in default", "list services in default"];

async fn check_matrix(t: &Tutorial) {
    for (user, allowed) in [
        ("alice@example.com", EVERYTHING),
        ("bob@example.com", BOB),
        ("carol@example.com", &[][..]),
        ("dave@example.com", &[][..]),
    ] {
        let token = id_token(&t.sim, user).await;
        let client = t
            .plane
            .client_with_token(&token)
            .await
            .expect("token client");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let seen = loop {
            let seen = access(&client).await;
            if seen == expect(&seen, allowed) {
                break seen;
            }
            assert!(std::time::Instant::now() < deadline, "{user}: saw {seen:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        println!("{user}: {seen:?}");
    }
}

#[tokio::test]
async fn each_example_user_gets_exactly_what_their_groups_were_granted() {
    let t = tutorial("").await;
    check_matrix(&t).await;

    // kubectl with a real token, as a person would call it.
    let bob = id_token(&t.sim, "bob@example.com").await;
    let server = t.plane.server_url().to_string();
    let ca = t.plane.dir().join("ca.crt");
    let as_bob = |args: &[&str]| {
        let output = Command::new(bin_dir().join("kubectl"))
            .args(["--server", &server, "--certificate-authority"])
            .arg(&ca)
            .args(["--token", &bob])
            .args(args)
            .output()
            .expect("kubectl");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert!(
        as_bob(&["get", "pods", "-n", "default"]).0,
        "bob may list pods in default"
    );
    let (ok, stderr) = as_bob(&["get", "secrets", "-n", "default"]);
    assert!(
        !ok && stderr.contains("Forbidden"),
        "bob may not list secrets: {stderr}"
    );
    let (ok, stderr) = as_bob(&["auth", "whoami"]);
    assert!(ok, "{stderr}");

    // The group is deleted in Okta: its bindings are revoked, even for a token that
    // still names the group.
    let alice = id_token(&t.sim, "alice@example.com").await;
    let alice_client = t.plane.client_with_token(&alice).await.expect("alice");
    let admins = t
        .sim
        .group_id("k8s-admins", GroupType::OktaGroup)
        .expect("group");
    t.sim.delete_group(&admins).expect("delete");
    let admin = t.plane.client().await.expect("admin");
    wait_condition(
        &admin,
        "k8s-admins",
        "GroupVerified",
        "False",
        Some("GroupMissing"),
    )
    .await;
    eventually(Duration::from_secs(20), "alice loses cluster-admin", || {
        let client = alice_client.clone();
        async move {
            (code(
                Api::<Secret>::namespaced(client, "default")
                    .list(&Default::default())
                    .await,
            ) == 403)
                .then_some(())
        }
    })
    .await;

    // The OktaGroupBinding is deleted: bob's access is gone.
    let bob_client = t.plane.client_with_token(&bob).await.expect("bob");
    Api::<OktaGroupBinding>::all(admin)
        .delete("k8s-restricted-users", &DeleteParams::default())
        .await
        .expect("delete the binding");
    eventually(Duration::from_secs(30), "bob loses access", || {
        let client = bob_client.clone();
        async move {
            (code(
                Api::<Pod>::namespaced(client, "default")
                    .list(&Default::default())
                    .await,
            ) == 403)
                .then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn with_oidc_prefixes_the_subject_shows_the_prefix_and_access_still_matches() {
    let t = tutorial("oidc:").await;
    let (ok, table, stderr) = kubectl(&t.plane, &["get", "ogb"]);
    assert!(ok, "{stderr}");
    assert!(
        table.contains("oidc:k8s-admins") && table.contains("oidc:k8s-restricted-users"),
        "{table}"
    );
    check_matrix(&t).await;
}
