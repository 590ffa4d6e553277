//! The monitoring that ships: the alerting rules pass their `promtool test rules` cases,
//! the chart and `config/prometheus` ship the same rules and dashboard, and every query of
//! the dashboard and every alert evaluates, with Prometheus' own engine, against a scrape
//! of a running operator's real /metrics, selecting only metrics it serves.

mod common;

use common::world::World;
use common::{view_spec, wait_condition};
use okta_rbac_testenv::gotools::{helm, promql_check, promtool};
use okta_rbac_testenv::paths::checkout;
use serde_json::Value;

const RULES: &str = "config/prometheus/prometheusrule.yaml";
const RULE_TESTS: &str = "config/prometheus/alerts.test.yaml";
const DASHBOARD: &str = "config/prometheus/dashboard.json";
const CHART: &str = "charts/okta-rbac-operator";

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(checkout().join(path)).expect(path);
    serde_yaml_ng::from_str(&text).expect(path)
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(checkout().join(DASHBOARD)).expect(DASHBOARD);
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// The rule group of alerts on the apiserver's metrics (the revocation authorizer's
/// calls), which the operator's /metrics does not serve: the revocation tests check them
/// against a real apiserver's.
const APISERVER_GROUP: &str = "okta-rbac-operator.apiserver";

/// Every alert on the operator's metrics: its name and expression.
fn alerts() -> Vec<(String, String)> {
    alerts_of(|group| group != APISERVER_GROUP)
}

/// Every alert of the rule groups `chosen` names: its name and expression.
fn alerts_of(chosen: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    yaml(RULES)["spec"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter(|group| chosen(group["name"].as_str().unwrap_or_default()))
        .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
        .map(|rule| {
            (
                rule["alert"].as_str().unwrap_or_default().to_string(),
                rule["expr"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Every panel's queries, Grafana's variables replaced by what they select at most.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .expect("a Prometheus query")
                .replace("$__rate_interval", "5m")
                .replace("$job", ".*");
            queries.push((
                format!(
                    "{} / {}",
                    panel["title"].as_str().unwrap_or_default(),
                    target["refId"].as_str().unwrap_or_default()
                ),
                expr,
            ));
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if let Some(definition) = variable["definition"].as_str() {
            let metric = definition
                .strip_prefix("label_values(")
                .and_then(|rest| rest.split(',').next())
                .expect("label_values(metric, label)");
            queries.push((format!("variable {}", variable["name"]), metric.to_string()));
        }
    }
    queries
}

#[test]
fn the_alerting_rules_pass_promtool_and_the_chart_ships_the_same_rules_and_dashboard() {
    let rules = yaml(RULES);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_yaml_ng::to_string(&rules["spec"]).expect("yaml"),
    )
    .expect("rules.yaml");
    std::fs::copy(
        checkout().join(RULE_TESTS),
        dir.path().join("alerts.test.yaml"),
    )
    .expect("copy the rule tests");
    let checked = promtool(&["check", "rules", "rules.yaml"], dir.path()).expect("promtool runs");
    assert!(
        checked.as_ref().is_ok_and(|out| out.contains(&format!(
            "SUCCESS: {} rules found",
            alerts_of(|_| true).len()
        ))),
        "{checked:?}"
    );
    let tested =
        promtool(&["test", "rules", "alerts.test.yaml"], dir.path()).expect("promtool runs");
    println!("{}", tested.as_ref().unwrap_or_else(|e| e));
    assert!(tested.is_ok(), "promtool test rules failed:\n{tested:?}");

    // Every alert has a firing case in the tests.
    let tests = std::fs::read_to_string(checkout().join(RULE_TESTS)).expect("tests");
    for (alert, _) in alerts_of(|_| true) {
        assert!(
            tests.contains(&format!("alertname: {alert}")),
            "{alert} has no case in {RULE_TESTS}"
        );
    }

    // The chart renders the same rules and dashboard, behind their values.
    let rendered = match helm(&[
        "template",
        "okta-rbac-operator",
        CHART,
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--set",
        "metrics.grafanaDashboard.enabled=true",
        "--set",
        "metrics.prometheusRule.labels.release=prometheus",
    ])
    .expect("helm runs")
    {
        Ok(out) => out,
        Err(error) => panic!("helm template: {error}"),
    };
    let documents: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&rendered)
        .filter_map(|document| serde::Deserialize::deserialize(document).ok())
        .collect();
    let rule = documents
        .iter()
        .find(|d| d["kind"] == "PrometheusRule")
        .expect("a PrometheusRule");
    assert_eq!(
        rule["spec"], rules["spec"],
        "the chart's rules are config's"
    );
    assert_eq!(rule["metadata"]["labels"]["release"], "prometheus");
    let dashboard_map = documents
        .iter()
        .find(|d| {
            d["kind"] == "ConfigMap" && d["metadata"]["name"] == "okta-rbac-operator-dashboard"
        })
        .expect("the dashboard's ConfigMap");
    assert_eq!(
        dashboard_map["metadata"]["labels"]["grafana_dashboard"],
        "1"
    );
    let shipped: Value = serde_json::from_str(
        dashboard_map["data"]["okta-rbac-operator.json"]
            .as_str()
            .expect("the dashboard's JSON"),
    )
    .expect("JSON");
    assert_eq!(shipped, dashboard(), "the chart's dashboard is config's");

    // config/prometheus renders the same for kustomize users (and the release's manifest).
    let kubectl = okta_rbac_testenv::paths::controlplane_bin_dir().join("kubectl");
    let kustomized = std::process::Command::new(kubectl)
        .args(["kustomize", "config/prometheus"])
        .current_dir(checkout())
        .output()
        .expect("kubectl kustomize");
    assert!(
        kustomized.status.success(),
        "{}",
        String::from_utf8_lossy(&kustomized.stderr)
    );
    let kustomized: Vec<Value> =
        serde_yaml_ng::Deserializer::from_str(&String::from_utf8_lossy(&kustomized.stdout))
            .filter_map(|document| serde::Deserialize::deserialize(document).ok())
            .collect();
    let map = kustomized
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .expect("the dashboard's ConfigMap");
    assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
    let from_kustomize: Value = serde_json::from_str(
        map["data"]["okta-rbac-operator.json"]
            .as_str()
            .expect("json"),
    )
    .expect("JSON");
    assert_eq!(from_kustomize, dashboard());
    assert!(kustomized.iter().any(
        |d| d["kind"] == "PrometheusRule" && d["metadata"]["namespace"] == "okta-rbac-operator"
    ));

    // And neither without them.
    let plain = helm(&["template", "okta-rbac-operator", CHART])
        .expect("helm runs")
        .expect("helm template");
    assert!(!plain.contains("PrometheusRule") && !plain.contains("okta-rbac-operator-dashboard"));
}

#[tokio::test]
async fn the_dashboard_and_the_alerts_query_what_a_running_operator_serves() {
    let world = World::start().await;
    let ready = world.group("k8s-monitored");
    let _operator = world.operator(&["--resync-interval=5s"]).await;
    let metrics_url = _operator.metrics_url().to_string();
    world.create("monitored", view_spec(&ready)).await;
    world
        .create("monitored-missing", view_spec("k8s-not-in-okta"))
        .await;
    let mut ending = view_spec(&ready);
    ending.end_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now() + k8s_openapi::jiff::SignedDuration::from_mins(30),
    ));
    world.create("monitored-ending", ending).await;
    for name in ["monitored", "monitored-ending"] {
        wait_condition(&world.client, name, "Ready", "True", None).await;
    }
    wait_condition(&world.client, "monitored-missing", "Ready", "False", None).await;

    let answer = reqwest::get(format!("{metrics_url}/metrics"))
        .await
        .expect("metrics");
    let content_type = answer
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/plain; version=0.0.4")
        .to_string();
    let scrape = answer.text().await.expect("text");

    let dashboard = dashboard();
    let mut queries = dashboard_queries(&dashboard);
    let panel_queries = queries.len();
    queries.extend(alerts());
    let answers = promql_check(&scrape, &content_type, &queries).expect("promql-check runs");
    assert_eq!(answers.len(), queries.len());
    let series = |name: &str| {
        answers
            .iter()
            .find(|a| a["name"] == name)
            .and_then(|a| a["series"].as_u64())
            .unwrap_or_else(|| panic!("no answer for {name}"))
    };
    for (answer, (name, expr)) in answers.iter().zip(&queries) {
        println!("{name}: {} series", answer["series"]);
        assert!(
            answer["error"].is_null(),
            "{name}: {expr}: {}",
            answer["error"]
        );
        assert!(
            answer["unknownMetrics"].is_null(),
            "{name}: {expr} selects metrics /metrics does not serve: {}",
            answer["unknownMetrics"]
        );
    }

    let value = |name: &str| {
        answers
            .iter()
            .find(|a| a["name"] == name)
            .and_then(|a| a["values"][0].as_f64())
            .unwrap_or_else(|| panic!("no value for {name}"))
    };
    // The numbers are the cluster's: two objects Ready, one not, one grant ending soon, a
    // leader that reconciles.
    assert_eq!(value("Ready / A"), 2.0);
    assert_eq!(value("Not Ready / A"), 1.0);
    assert_eq!(value("Replicas leading / A"), 1.0);
    assert_eq!(value("Managed bindings / A"), 2.0);
    assert_eq!(
        series("OktaRbacObjectsNotReady"),
        1,
        "the missing group's object"
    );
    assert_eq!(
        series("OktaRbacGrantsEndingSoon"),
        1,
        "the grant ending in 30 minutes"
    );
    for quiet in [
        "OktaRbacOktaCredentialsRefused",
        "OktaRbacNoSuccessfulReconcile",
        "OktaRbacBindingsTerminating",
        "OktaRbacGroupsUnverified",
    ] {
        assert_eq!(series(quiet), 0, "{quiet} holds for a healthy operator");
    }
    // Every panel shows a line from the first scrape: counters and families are served at
    // 0 before anything happens, so no panel says "No data" on a healthy operator.
    let empty_panels: Vec<&Value> = answers[..panel_queries]
        .iter()
        .filter(|a| a["series"].as_u64().unwrap_or(0) == 0)
        .map(|a| &a["name"])
        .collect();
    assert!(
        empty_panels.is_empty(),
        "panels without data: {empty_panels:?}"
    );
}
