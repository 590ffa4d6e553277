//! Answers as a person reads them in a terminal (aligned columns, a reason for each "no"),
//! or as JSON or YAML for scripts.

use crate::cli::Output;
use crate::explain::{CheckFinding, Explanation};
use crate::who_can::WhoCan;
use serde::Serialize;

/// Columns padded to their widest cell, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::from("  ");
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            text.push_str(cell);
            if i < last {
                text.push_str(&" ".repeat(width - cell.chars().count() + 2));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut text = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        text.push_str(&line(row.clone()));
    }
    text
}

fn data<T: Serialize>(value: &T, output: Output) -> Result<String, String> {
    match output {
        Output::Json => serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string()),
        _ => serde_yaml_ng::to_string(value).map_err(|e| e.to_string()),
    }
}

/// The checks, each with the apiserver's answer and why.
fn checks_table(checks: &[CheckFinding]) -> String {
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| vec![c.check.clone(), yes_no(c.allowed), c.why.clone()])
        .collect();
    table(&["CHECK", "ALLOWED", "WHY"], &rows)
}

fn yes_no(allowed: bool) -> String {
    if allowed { "yes" } else { "no" }.to_string()
}

pub fn explanation(e: &Explanation, output: Output) -> Result<String, String> {
    if output != Output::Table {
        return data(e, output);
    }
    let mut text = format!("User {}", e.user);
    match (e.in_okta, &e.okta_status) {
        (Some(false), _) => text.push_str(": not in Okta"),
        (Some(true), Some(status)) => text.push_str(&format!(": {status} in Okta")),
        _ => {}
    }
    text.push_str(&format!("; the apiserver sees {}\n\n", e.username));
    if e.groups.is_empty() {
        text.push_str("Groups: none\n\n");
    } else {
        let rows: Vec<Vec<String>> = e
            .groups
            .iter()
            .map(|g| {
                let objects = if g.objects.is_empty() {
                    "-".to_string()
                } else {
                    g.objects
                        .iter()
                        .map(|o| format!("{} ({}): {}", o.name, o.state, o.grants.join(", ")))
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                vec![
                    g.name.clone(),
                    g.token.clone(),
                    g.subject.clone().unwrap_or_else(|| "-".into()),
                    objects,
                ]
            })
            .collect();
        text.push_str("Groups\n");
        text.push_str(&table(
            &["GROUP", "IN TOKEN", "AS", "OKTAGROUPBINDINGS"],
            &rows,
        ));
        text.push('\n');
    }
    text.push_str("Checks\n");
    text.push_str(&checks_table(&e.checks));
    if let Some(earlier) = &e.earlier_tokens {
        let changes: Vec<String> = earlier
            .changes
            .iter()
            .map(|c| format!("{} at {}", c.what, c.at))
            .collect();
        text.push_str(&format!(
            "\nTokens issued before {} (valid until {} at the latest), carrying [{}]\n",
            changes.join(", "),
            earlier.valid_until,
            earlier.groups.join(", ")
        ));
        text.push_str(&checks_table(&earlier.checks));
    }
    for note in &e.unchecked {
        text.push_str(&format!("\nNot checked: {note}\n"));
    }
    Ok(text)
}

pub fn who_can(w: &WhoCan, output: Output) -> Result<String, String> {
    if output != Output::Table {
        return data(w, output);
    }
    let mut text = format!("Who may {}\n", w.check);
    if w.holders.is_empty() {
        text.push_str("  nobody a binding names\n");
    } else {
        let rows: Vec<Vec<String>> = w
            .holders
            .iter()
            .map(|h| {
                let subject = match &h.namespace {
                    Some(namespace) => format!("{} {namespace}/{}", h.kind, h.name),
                    None => format!("{} {}", h.kind, h.name),
                };
                let through = match (&h.okta_group_binding, &h.okta_group) {
                    (Some(object), Some(group)) => {
                        format!("OktaGroupBinding {object} (Okta group {group})")
                    }
                    _ => "not managed by okta-rbac-operator".to_string(),
                };
                let members = match &h.members {
                    Some(members) if members.is_empty() => "(no active members)".to_string(),
                    Some(members) => members.join(", "),
                    None => "-".to_string(),
                };
                vec![subject, through, members]
            })
            .collect();
        text.push_str(&table(
            &["SUBJECT", "GRANTED THROUGH", "OKTA MEMBERS"],
            &rows,
        ));
        let former: Vec<Vec<String>> = w
            .holders
            .iter()
            .flat_map(|h| {
                h.former_members.iter().map(|f| {
                    vec![
                        f.user.clone(),
                        format!("{} at {}", f.change.what, f.change.at),
                        h.name.clone(),
                        yes_no(f.allowed),
                        f.why.clone(),
                    ]
                })
            })
            .collect();
        if !former.is_empty() {
            text.push_str("\nTokens issued before a change in Okta (they carry the group until they expire)\n");
            text.push_str(&table(
                &["USER", "CHANGE", "GROUP IN TOKEN", "ALLOWED", "WHY"],
                &former,
            ));
        }
    }
    for note in &w.unchecked {
        text.push_str(&format!("\nNot checked: {note}\n"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up_and_the_last_is_not_padded() {
        let text = super::table(
            &["A", "BB"],
            &[
                vec!["long cell".into(), "x".into()],
                vec!["s".into(), "yy".into()],
            ],
        );
        assert_eq!(text, "  A          BB\n  long cell  x\n  s          yy\n");
    }
}
