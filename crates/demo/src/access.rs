//! What each example user may do: a real ID token from the local Okta, and the HTTP
//! status the apiserver gives that token for a few everyday actions.

use crate::{Demo, USERS};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use okta_rbac_testenv::unique_name;
use okta_sim::OktaSim;
use std::time::{Duration, Instant};

/// A real ID token for a user, from an authorization server of the local Okta.
pub async fn id_token(
    sim: &OktaSim,
    server: &str,
    user: &str,
    password: &str,
) -> Result<String, String> {
    let tls = okta_rbac_pki::client_config_trusting(&[sim.ca_pem().unwrap_or_default()])?;
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| e.to_string())?;
    let answer: serde_json::Value = http
        .post(format!("{}/v1/token", sim.issuer(server)))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "kubernetes"),
            ("username", user),
            ("password", password),
            ("scope", "openid email profile groups"),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    answer["id_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no ID token for {user}: {answer}"))
}

fn code<T>(result: Result<T, kube::Error>) -> u16 {
    match result {
        Ok(_) => 200,
        Err(kube::Error::Api(status)) => status.code,
        Err(_) => 0,
    }
}

pub const ACTIONS: [&str; 6] = [
    "list pods in default",
    "list services in default",
    "list secrets in default",
    "list pods in kube-system",
    "create a configmap in default",
    "list namespaces",
];

/// What a client may do: the HTTP status of each of [`ACTIONS`] (0: no answer).
pub async fn access(client: &Client) -> Vec<u16> {
    // A write no admission plugin gets in the way of (a pod would need a ServiceAccount).
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(unique_name("probe")),
            ..Default::default()
        },
        ..Default::default()
    };
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let default_pods = Api::<Pod>::namespaced(client.clone(), "default");
    vec![
        code(default_pods.list(&Default::default()).await),
        code(
            Api::<Service>::namespaced(client.clone(), "default")
                .list(&Default::default())
                .await,
        ),
        code(
            Api::<Secret>::namespaced(client.clone(), "default")
                .list(&Default::default())
                .await,
        ),
        code(
            Api::<Pod>::namespaced(client.clone(), "kube-system")
                .list(&Default::default())
                .await,
        ),
        code(
            Api::<ConfigMap>::namespaced(client.clone(), "default")
                .create(&dry_run, &config_map)
                .await,
        ),
        code(
            Api::<Namespace>::all(client.clone())
                .list(&Default::default())
                .await,
        ),
    ]
}

/// The access table, a row per user.
pub async fn access_table(demo: &Demo) -> Result<String, String> {
    // RBAC's authorizer follows new bindings within moments: wait until bob's shows.
    let bob = id_token(&demo.sim, "default", USERS[1].0, USERS[1].1).await?;
    let bob = demo
        .plane
        .client_with_token(&bob)
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while access(&bob).await[0] != 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut table = format!("{:<20}", "user");
    for action in ACTIONS {
        table.push_str(&format!(" | {action}"));
    }
    table.push('\n');
    for (user, password) in USERS {
        let token = id_token(&demo.sim, "default", user, password).await?;
        let client = demo
            .plane
            .client_with_token(&token)
            .await
            .map_err(|e| e.to_string())?;
        let statuses = access(&client).await;
        table.push_str(&format!("{user:<20}"));
        for (action, status) in ACTIONS.iter().zip(statuses) {
            let verdict = match status {
                200 => "allowed",
                403 => "Forbidden",
                401 => "Unauthorized",
                _ => "no answer",
            };
            table.push_str(&format!(" | {verdict:<width$}", width = action.len()));
        }
        table.push('\n');
    }
    Ok(table)
}
