//! Workload S: every object is one Okta group with one ClusterRoleBinding and
//! RoleBindings in 10 of 100 namespaces.

use okta_rbac_api::{ClusterRoleBindingSpec, OktaGroupBindingSpec, RoleBindingSpec};
use std::time::Duration;

pub const TOKEN: &str = "00bench-token";
pub const NAMESPACES: usize = 100;
pub const NAMESPACES_PER_OBJECT: usize = 10;
/// The operator's default --reconcile-concurrency, used by the limit too.
pub const CONCURRENCY: usize = 16;
/// The resync interval: 30 s, or longer when re-verifying every group within it would
/// need more than half of the local Okta's default budget (100 group searches a minute,
/// the tightest Okta org), as it would in a real org. BENCH_RESYNC_SECONDS sets it (a
/// quick run's shorter steady-state windows).
pub fn resync_for(objects: usize) -> Duration {
    let searches = objects.div_ceil(okta_rbac_operator::okta::client::NAMES_PER_SEARCH) as u64;
    Duration::from_secs(env_number(
        "BENCH_RESYNC_SECONDS",
        30.max(searches * 60 * 2 / 100),
    ))
}

/// The number in the environment variable `name`, or `default` when it is unset or not one.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
pub const MANAGED: &str = "app.kubernetes.io/managed-by=okta-rbac-operator";
pub const LIMIT_LABEL: &str = "bench";

/// The workload's namespaces.
pub async fn create_namespaces(client: &kube::Client) {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, ObjectMeta, PostParams};
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
}

pub fn group(i: usize) -> String {
    format!("k8s-team-{i:05}")
}

pub fn namespace(n: usize) -> String {
    format!("bench-{n:03}")
}

/// Object i's 10 namespaces, spread over all 100.
pub fn namespaces_of(i: usize) -> impl Iterator<Item = String> {
    (0..NAMESPACES_PER_OBJECT).map(move |k| namespace((i + k * NAMESPACES_PER_OBJECT) % NAMESPACES))
}

pub fn spec(i: usize) -> OktaGroupBindingSpec {
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
        start_time: None,
        end_time: None,
    }
}

/// Creates these objects, CONCURRENCY at a time, as a GitOps sync would.
pub async fn create_objects(
    api: kube::Api<okta_rbac_api::OktaGroupBinding>,
    objects: impl Iterator<Item = (String, OktaGroupBindingSpec)>,
) {
    use futures::StreamExt;
    futures::stream::iter(objects)
        .map(|(name, spec)| {
            let api = api.clone();
            async move {
                api.create(
                    &kube::api::PostParams::default(),
                    &okta_rbac_api::OktaGroupBinding::new(&name, spec),
                )
                .await
                .expect("create an OktaGroupBinding");
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
}
