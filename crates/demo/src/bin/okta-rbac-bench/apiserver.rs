//! What the apiserver counted: writes by resource, verb and code, from its own metrics.

use kube::Client;
use std::collections::BTreeMap;

/// Writes the apiserver counted for the resources either contender touches, by
/// resource and verb.
pub async fn apiserver_writes_by_kind(client: &Client) -> BTreeMap<(String, String, String), u64> {
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
                "rbacdefinitions",
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

pub async fn apiserver_writes(client: &Client) -> u64 {
    apiserver_writes_by_kind(client).await.values().sum()
}

pub fn describe_writes(
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
