//! docs/reference/api.md is written from the CRD's schema, the same one the apiserver
//! validates with: this test fails when the committed page is not what the schema says
//! (`make docs-reference` rewrites it).

use kube::CustomResourceExt;
use okta_rbac_api::OktaGroupBinding;
use serde_json::Value;
use std::fmt::Write;

const PAGE: &str = "docs/reference/api.md";

#[test]
fn the_api_reference_is_the_crd_schema() {
    okta_rbac_testenv::paths::check_generated(PAGE, &page());
}

fn page() -> String {
    let crd = serde_json::to_value(OktaGroupBinding::crd()).expect("the CRD as JSON");
    let spec = &crd["spec"];
    let version = &spec["versions"][0];
    let schema = &version["schema"]["openAPIV3Schema"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# API reference\n\n\
         <!-- Written from the CRD by `make docs-reference`; a test fails when it is stale. -->\n\n\
         `{group}/{version}`, kind `{kind}`: {description}\n\n\
         | | |\n|---|---|\n\
         | scope | {scope} (no namespace) |\n\
         | plural, short name | `{plural}`, `{short}` |\n\
         | served and stored version | `{version}` |\n",
        group = text(&spec["group"]),
        version = text(&version["name"]),
        kind = text(&spec["names"]["kind"]),
        description = text(&schema["description"]),
        scope = text(&spec["scope"]),
        plural = text(&spec["names"]["plural"]),
        short = spec["names"]["shortNames"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect::<Vec<_>>()
            .join("`, `"),
    );

    let _ = writeln!(
        out,
        "## Columns of `kubectl get oktagroupbindings`\n\n| column | shows |\n|---|---|"
    );
    for column in version["additionalPrinterColumns"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let description = column["description"].as_str().unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | `{}`{} |",
            text(&column["name"]).to_uppercase(),
            text(&column["jsonPath"]),
            if description.is_empty() {
                String::new()
            } else {
                format!(": {}", cell(description))
            }
        );
    }

    for (part, title) in [
        ("spec", "## spec\n\nWhat you declare."),
        (
            "status",
            "## status\n\nWhat the operator reports; see [conditions and reasons](conditions.md).",
        ),
    ] {
        let _ = writeln!(
            out,
            "\n{title}\n\n| field | type | description |\n|---|---|---|"
        );
        let node = &schema["properties"][part];
        fields(&mut out, part, node);
    }
    let rules: Vec<&Value> = schema["properties"]["spec"]["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    if !rules.is_empty() {
        let _ = writeln!(
            out,
            "\n## Rules across fields\n\nThe apiserver refuses an object that breaks one, with the message shown.\n\n| rule (CEL) | message |\n|---|---|"
        );
        for rule in rules {
            let _ = writeln!(
                out,
                "| {} | {} |",
                shown_rule(text(&rule["rule"])),
                cell(text(&rule["message"]))
            );
        }
    }
    out
}

/// One row per field below `node`, depth first, each named by its path.
fn fields(out: &mut String, path: &str, node: &Value) {
    let Some(properties) = node["properties"].as_object() else {
        return;
    };
    let required: Vec<&str> = node["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (name, field) in properties {
        let field_path = format!("{path}.{name}");
        let _ = writeln!(
            out,
            "| `{field_path}` | {} | {} |",
            type_of(field),
            describe(field, required.contains(&name.as_str()))
        );
        fields(out, &field_path, field);
        if field["type"] == "array" {
            let items = &field["items"];
            let item_path = format!("{field_path}[]");
            for rule in rules_of(items) {
                let _ = writeln!(out, "| `{item_path}` | | {rule} |");
            }
            fields(out, &item_path, items);
        }
    }
}

fn type_of(field: &Value) -> String {
    let kind = field["type"].as_str().unwrap_or("object");
    match (kind, field["format"].as_str()) {
        ("array", _) => format!("[]{}", field["items"]["type"].as_str().unwrap_or("object")),
        ("string", Some("date-time")) => "string (RFC 3339 time)".into(),
        ("string", Some(format)) => format!("string ({format})"),
        ("integer", Some(format)) => format!("integer ({format})"),
        _ => kind.to_string(),
    }
}

/// The description and every constraint the apiserver enforces on the field.
fn describe(field: &Value, required: bool) -> String {
    let mut parts = Vec::new();
    if let Some(description) = field["description"].as_str() {
        parts.push(cell(description));
    }
    if required {
        parts.push("**Required.**".into());
    }
    if let Some(values) = field["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .map(|v| match text(v) {
                "" => "`\"\"` (the operator's setting)".to_string(),
                value => code(value),
            })
            .collect();
        parts.push(format!("One of {}.", values.join(", ")));
    }
    if let Some(default) = field.get("default") {
        parts.push(format!("Default {}.", code(&default.to_string())));
    }
    for (key, says) in [
        ("minLength", "At least {} characters."),
        ("maxLength", "At most {} characters."),
        ("minItems", "At least {} items."),
        ("maxItems", "At most {} items."),
        ("minimum", "At least {}."),
        ("maximum", "At most {}."),
    ] {
        if let Some(limit) = field[key].as_u64() {
            let says = if limit == 1 {
                says.replace("characters", "character")
                    .replace("items", "item")
            } else {
                says.to_string()
            };
            parts.push(says.replace("{}", &limit.to_string()));
        }
    }
    if let Some(pattern) = field["pattern"].as_str() {
        parts.push(format!("Matches {}.", code(pattern)));
    }
    parts.extend(rules_of(field));
    parts.join(" ")
}

/// The messages of the field's CEL rules.
fn rules_of(field: &Value) -> Vec<String> {
    field["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|rule| {
            format!(
                "Refused unless {}: \"{}\".",
                shown_rule(text(&rule["rule"])),
                cell(text(&rule["message"]))
            )
        })
        .collect()
}

/// Longer rules than this (the generated time rules run to 1,900 characters) say more in
/// their message than in CEL: the page points at the CRD for them.
const LONGEST_RULE_SHOWN: usize = 200;

fn shown_rule(rule: &str) -> String {
    if rule.len() > LONGEST_RULE_SHOWN {
        format!("a rule of {} characters (in the CRD)", rule.len())
    } else {
        code(rule)
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// Text fit for one table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// Inline code that survives a table cell: with a pipe or a backtick in it, HTML code
/// with the pipe as an entity (the table would split at a pipe, on GitHub and in the
/// site alike).
fn code(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.contains(['|', '`']) {
        let escaped = text
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('|', "&#124;");
        format!("<code>{escaped}</code>")
    } else {
        format!("`{text}`")
    }
}
