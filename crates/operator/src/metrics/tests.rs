use super::*;

fn line(text: &str, name: &str) -> String {
    text.lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn every_failure_kind_is_served_at_zero_before_the_first_failure() {
    use crate::reconcile::apply::WriteFailure;
    let api = |code| WriteFailure::Api {
        doing: "creating",
        target: "t".into(),
        code,
        reason: String::new(),
        message: String::new(),
    };
    let failures = [
        WriteFailure::Conflict,
        WriteFailure::NotAsDeclared {
            target: "t".into(),
            found: "f".into(),
        },
        WriteFailure::NamespaceMissing("n".into()),
        api(403),
        api(409),
        api(422),
        api(429),
        api(503),
        api(404),
        WriteFailure::Transport {
            doing: "creating",
            target: "t".into(),
            message: String::new(),
        },
    ];
    let text = crate::reconcile::new_metrics().encode();
    for failure in failures {
        let kind = failure.kind();
        assert!(WriteFailure::KINDS.contains(&kind), "{kind} not in KINDS");
        let sample = format!("okta_rbac_binding_write_failures_total{{kind=\"{kind}\"}}");
        assert_eq!(line(&text, &sample), format!("{sample} 0"));
    }
    assert_eq!(
        line(
            &text,
            "okta_rbac_reconcile_failures_total{kind=\"StatusWrite\"}"
        ),
        "okta_rbac_reconcile_failures_total{kind=\"StatusWrite\"} 0"
    );
}

#[test]
fn the_object_gauges_follow_each_change_of_state() {
    let metrics = Metrics::default();
    let text = metrics.encode();
    assert_eq!(
        line(&text, "okta_rbac_groups{state=\"missing\"}"),
        "okta_rbac_groups{state=\"missing\"} 0"
    );
    let state = |verification, ready, bindings| {
        Some(ObjectState {
            verification,
            ready,
            bindings,
        })
    };
    metrics.object("a", state("verified", "True", 11));
    metrics.object("b", state("verified", "False", 2));
    metrics.object("a", state("missing", "False", 0));
    metrics.object("c", state("paused", "Unknown", 4));
    metrics.object("c", None);
    metrics.object("gone", None);
    let text = metrics.encode();
    assert_eq!(
        line(&text, "okta_rbac_managed_bindings "),
        "okta_rbac_managed_bindings 2"
    );
    assert_eq!(
        line(&text, "okta_rbac_groups{state=\"verified\"}"),
        "okta_rbac_groups{state=\"verified\"} 1"
    );
    assert_eq!(
        line(&text, "okta_rbac_groups{state=\"missing\"}"),
        "okta_rbac_groups{state=\"missing\"} 1"
    );
    assert_eq!(
        line(&text, "okta_rbac_groups{state=\"paused\"}"),
        "okta_rbac_groups{state=\"paused\"} 0"
    );
    assert_eq!(
        line(&text, "okta_rbac_objects{ready=\"False\"}"),
        "okta_rbac_objects{ready=\"False\"} 2"
    );
    assert_eq!(
        line(&text, "okta_rbac_objects{ready=\"True\"}"),
        "okta_rbac_objects{ready=\"True\"} 0"
    );
    assert_eq!(
        line(&text, "okta_rbac_objects{ready=\"Unknown\"}"),
        "okta_rbac_objects{ready=\"Unknown\"} 0"
    );
}
