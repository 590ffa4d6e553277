//! The reference pages written from the code: docs/reference/configuration.md from the
//! command line's definition (what `--help` prints) and docs/reference/metrics.md from
//! the metrics registry (what `/metrics` serves). Each test fails when its committed page
//! is stale; `make docs-reference` rewrites them.

use clap::CommandFactory;
use okta_rbac_operator::cli::Cli;
use okta_rbac_testenv::paths::check_generated;
use std::collections::BTreeMap;
use std::fmt::Write;

const GENERATED: &str =
    "<!-- Written from the code by `make docs-reference`; a test fails when it is stale. -->";

#[test]
fn the_configuration_reference_is_the_command_line() {
    check_generated("docs/reference/configuration.md", &configuration_page());
}

#[test]
fn the_metrics_reference_is_the_registry() {
    check_generated("docs/reference/metrics.md", &metrics_page());
}

fn configuration_page() -> String {
    let root = Cli::command();
    let run = root
        .find_subcommand("run")
        .expect("the run subcommand")
        .clone();
    let mut out = format!(
        "# Configuration reference\n\n{GENERATED}\n\n\
         `okta-rbac-operator run` takes these flags. Each also reads the environment variable \
         shown (the flag wins when both are set); durations are written like `30s`, `5m`, \
         `1h30m`. The Helm chart sets every one of them through its values \
         ([below](#helm-chart-values)); with kustomize, patch the Deployment's `args`.\n"
    );
    let mut sections: BTreeMap<usize, (String, Vec<String>)> = BTreeMap::new();
    let headings = [
        "Okta",
        "Tokens and RBAC",
        "Reconciling",
        "Serving and leader election",
        "Revocation authorizer",
    ];
    let globals = root.get_arguments().filter(|arg| arg.is_global_set());
    for arg in run.get_arguments().chain(globals) {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        let heading = arg.get_help_heading().unwrap_or("Logging");
        let order = headings
            .iter()
            .position(|h| *h == heading)
            .unwrap_or(headings.len());
        let env = arg
            .get_env()
            .map(|env| format!("`{}`", env.to_string_lossy()))
            .unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|value| value.to_string_lossy().into_owned())
            .collect();
        let default = match defaults.join(",") {
            text if text.is_empty() => String::new(),
            text => format!("`{text}`"),
        };
        let mut help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|help| help.to_string())
            .unwrap_or_default();
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|value| !value.is_hide_set())
            .map(|value| format!("`{}`", value.get_name()))
            .collect();
        if !help.is_empty() && !help.ends_with('.') {
            help.push('.');
        }
        if !values.is_empty() && arg.get_action().takes_values() {
            help = format!("{help} One of {}.", values.join(", "));
        }
        let row = format!(
            "| `--{long}` | {env} | {default} | {} |",
            help.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace('|', "\\|")
        );
        sections
            .entry(order)
            .or_insert_with(|| (heading.to_string(), Vec::new()))
            .1
            .push(row);
    }
    for (heading, rows) in sections.values() {
        let _ = write!(
            out,
            "\n## {heading}\n\n| flag | environment | default | |\n|---|---|---|---|\n{}\n",
            rows.join("\n")
        );
    }
    let _ = write!(
        out,
        "\nOther subcommands: `okta-rbac-operator crd` prints the CRD, `okta-rbac-operator \
         version` the version and the Kubernetes release it is tested against, \
         `okta-rbac-operator authorization-config` the apiserver's AuthorizationConfiguration \
         for the [revocation authorizer](../usage/revocation-authorizer.md).\n\n\
         ## Helm chart values\n\n\
         The chart's README, written from its `values.yaml` by helm-docs (a test fails when \
         it is stale). `values.schema.json` refuses unknown keys and malformed values.\n\n\
         --8<-- \"charts/okta-rbac-operator/README.md:values\"\n"
    );
    out
}

fn metrics_page() -> String {
    let metrics = okta_rbac_operator::reconcile::new_metrics();
    // One of each labelled series, so that every family shows its labels.
    metrics.okta_request("groups", 200);
    metrics.binding_write_failed("Conflict");
    metrics
        .reconcile_failures
        .get_or_create(&okta_rbac_operator::metrics::KindLabel {
            kind: "StatusWrite".into(),
        })
        .inc();
    metrics
        .okta_rate_limit_remaining
        .get_or_create(&okta_rbac_operator::metrics::BucketLabel {
            bucket: "groups".into(),
        })
        .set(1);
    metrics.cached("Namespace", 1);
    let text = metrics.encode();

    struct Family {
        kind: String,
        help: String,
        labels: Vec<String>,
    }
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            current = name.to_string();
            families.insert(
                current.clone(),
                Family {
                    kind: String::new(),
                    help: help.trim_end_matches('.').to_string(),
                    labels: Vec::new(),
                },
            );
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let kind = rest.split_whitespace().nth(1).unwrap_or_default();
            if let Some(family) = families.get_mut(&current) {
                family.kind = kind.to_string();
            }
        } else if !line.starts_with('#') {
            let Some(family) = families.get_mut(&current) else {
                continue;
            };
            if let Some((_, labels)) = line.split_once('{') {
                for pair in labels.split('}').next().unwrap_or_default().split(',') {
                    let name = pair.split('=').next().unwrap_or_default();
                    if !name.is_empty() && name != "le" && !family.labels.iter().any(|l| l == name)
                    {
                        family.labels.push(name.to_string());
                    }
                }
            }
        }
    }
    let mut out = format!(
        "# Metrics reference\n\n{GENERATED}\n\n\
         What `/metrics` serves (OpenMetrics text, on `--metrics-address`). Every label comes \
         from a small fixed set; [monitoring](../monitoring.md) says what to watch and ships \
         alerts and a dashboard.\n\n\
         | metric | type | labels | |\n|---|---|---|---|\n"
    );
    for (name, family) in &families {
        let exposed = match family.kind.as_str() {
            "counter" => format!("{name}_total"),
            "histogram" => format!("{name}_bucket, _sum, _count"),
            _ => name.clone(),
        };
        let labels = family
            .labels
            .iter()
            .map(|label| format!("`{label}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "| `{exposed}` | {} | {labels} | {} |",
            family.kind, family.help
        );
    }
    out
}
