use super::*;
use crate::binding::BindingRef;
use crate::reconcile::apply::{Done, WriteResult};
use crate::reconcile::fixtures::{group, ogb, policy, spec};
use crate::reconcile::judge::Grant;
use crate::reconcile::schedule::Window;
use k8s_openapi::jiff::Timestamp;
use okta_rbac_api::ManagedBinding;

fn at(seconds: i64) -> Time {
    Time(Timestamp::from_second(seconds).expect("time"))
}

fn target(name: &str) -> BindingRef {
    BindingRef {
        namespace: None,
        name: name.into(),
    }
}

fn bound(names: &[&str]) -> Plan {
    Plan {
        bound: names
            .iter()
            .map(|name| {
                (
                    target(name),
                    ManagedBinding {
                        kind: "ClusterRoleBinding".into(),
                        namespace: None,
                        name: name.to_string(),
                        role_ref: "ClusterRole/view".into(),
                    },
                )
            })
            .collect(),
        ..Default::default()
    }
}

fn verified() -> Judgement {
    Judgement {
        outcome: Outcome::Verified(group("k8s-restricted-users", "OKTA_GROUP")),
        subjects: vec![],
        members_unknown: None,
        grant: Grant::Declared,
        claim: None,
    }
}

fn report_at(
    old: &OktaGroupBindingStatus,
    judgement: &Judgement,
    plan: &Plan,
    results: &[WriteResult],
    now: i64,
) -> Report {
    report_in(&Window::Unbounded, old, judgement, plan, results, now)
}

fn report_in(
    window: &Window,
    old: &OktaGroupBindingStatus,
    judgement: &Judgement,
    plan: &Plan,
    results: &[WriteResult],
    now: i64,
) -> Report {
    let object = ogb(spec());
    report(
        &Inputs {
            ogb: &object,
            policy: &policy(),
            old,
            judgement,
            plan,
            results,
            window,
        },
        &at(now),
    )
}

#[test]
fn a_time_bound_grant_says_when_and_tells_its_start_and_end_once() {
    let starts = at(1_000).0;
    let ends = at(2_000).0;
    let pending = Window::NotYetActive {
        starts,
        ends: Some(ends),
    };
    let before = Judgement {
        grant: Grant::RevokeAll,
        ..verified()
    };
    let first = report_in(
        &pending,
        &Default::default(),
        &before,
        &Plan::default(),
        &[],
        500,
    );
    assert_eq!(
        condition(&first.status, "Active"),
        ("False", "NotYetActive")
    );
    assert_eq!(condition(&first.status, "Ready"), ("True", "NotYetActive"));
    assert_eq!(first.status.active_since, None);
    assert!(first.events.iter().any(|e| e.reason == "NotYetActive"));
    let again = report_in(&pending, &first.status, &before, &Plan::default(), &[], 700);
    assert_eq!(
        again.status, first.status,
        "nothing to write until the start"
    );
    assert!(again.events.is_empty());

    let during = Window::Active {
        since: starts,
        until: Some(ends),
    };
    let active = report_in(
        &during,
        &first.status,
        &verified(),
        &Plan::default(),
        &[],
        1_000,
    );
    assert_eq!(condition(&active.status, "Active"), ("True", "Active"));
    assert_eq!(active.status.active_since, Some(at(1_000)));
    assert_eq!(active.status.active_until, Some(at(2_000)));
    assert!(
        active
            .events
            .iter()
            .any(|e| e.reason == "Active" && e.type_ == EventType::Normal),
        "{:?}",
        active.events
    );

    let over = Window::Expired { ended: ends };
    let expired = Judgement {
        outcome: Outcome::NotChecked,
        grant: Grant::RevokeAll,
        ..verified()
    };
    let ended = report_in(
        &over,
        &active.status,
        &expired,
        &Plan::default(),
        &[],
        2_000,
    );
    assert_eq!(condition(&ended.status, "Active"), ("False", "Expired"));
    assert_eq!(condition(&ended.status, "Ready"), ("True", "Expired"));
    assert_eq!(
        condition(&ended.status, "GroupVerified"),
        condition(&active.status, "GroupVerified"),
        "the last verification is kept"
    );
    assert_eq!(ended.state, "expired");
    assert!(ended.events.iter().any(|e| e.reason == "Expired"));
    assert_eq!(ended.status.active_until, None);
}

#[test]
fn an_object_without_times_has_no_active_condition() {
    let plain = report_at(&Default::default(), &verified(), &Plan::default(), &[], 100);
    assert!(plain.status.conditions.iter().all(|c| c.type_ != "Active"));
}

fn condition<'a>(status: &'a OktaGroupBindingStatus, type_: &str) -> (&'a str, &'a str) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .expect("condition");
    (c.status.as_str(), c.reason.as_str())
}

#[test]
fn a_first_grant_is_ready_with_a_granted_event_and_a_quiet_resync_changes_nothing() {
    let plan = bound(&["a", "b"]);
    let created = [
        WriteResult {
            target: target("a"),
            result: Ok(Done::Created),
        },
        WriteResult {
            target: target("b"),
            result: Ok(Done::Created),
        },
    ];
    let first = report_at(&Default::default(), &verified(), &plan, &created, 100);
    assert_eq!(condition(&first.status, "Ready"), ("True", "Ready"));
    assert_eq!(first.status.binding_count, 2);
    assert_eq!(first.status.group.as_ref().unwrap().id, "00g1");
    assert_eq!(
        first.status.subject.as_deref(),
        Some("oidc:k8s-restricted-users")
    );
    assert_eq!(first.status.last_verified, Some(at(100)));
    assert_eq!(first.retry, Retry::Resync);
    assert_eq!(first.state, "verified");
    assert!(
        matches!(first.events.as_slice(), [Note { reason: "Granted", note, .. }] if note == "2 bindings created, 0 repaired")
    );

    let resync = report_at(&first.status, &verified(), &plan, &[], 400);
    assert_eq!(
        resync.status, first.status,
        "nothing changed, so the status is the same, time included"
    );
    assert!(resync.events.is_empty());
}

#[test]
fn failed_writes_are_typed_counted_and_not_listed_as_bound() {
    let plan = bound(&["a", "b", "c"]);
    let results = [
        WriteResult {
            target: target("a"),
            result: Ok(Done::Created),
        },
        WriteResult {
            target: target("b"),
            result: Err(WriteFailure::Conflict),
        },
        WriteResult {
            target: target("c"),
            result: Err(WriteFailure::Api {
                doing: "creating",
                target: "ClusterRoleBinding/c".into(),
                code: 403,
                reason: "Forbidden".into(),
                message: "cannot bind".into(),
            }),
        },
    ];
    let report = report_at(&Default::default(), &verified(), &plan, &results, 100);
    assert_eq!(report.failed_writes, ["Conflict", "Forbidden"]);
    assert_eq!(report.status.binding_count, 1);
    assert_eq!(
        condition(&report.status, "BindingsApplied"),
        ("False", "Conflict")
    );
    assert_eq!(
        report.retry,
        Retry::Backoff,
        "a failed write is retried soon"
    );
    let warnings: Vec<_> = report
        .events
        .iter()
        .filter(|n| n.type_ == EventType::Warning)
        .collect();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].note.contains("ClusterRoleBinding/b"),
        "{}",
        warnings[0].note
    );
}

#[test]
fn an_outage_keeps_the_recorded_group_and_the_time_of_verification() {
    let plan = bound(&["a"]);
    let verified_status = report_at(&Default::default(), &verified(), &plan, &[], 100).status;
    let outage = Judgement {
        outcome: Outcome::Unknown(crate::okta::OktaError::Timeout(
            std::time::Duration::from_secs(5),
        )),
        subjects: vec![],
        members_unknown: None,
        grant: Grant::KeepExisting,
        claim: None,
    };
    let report = report_at(&verified_status, &outage, &plan, &[], 200);
    assert_eq!(report.status.group, verified_status.group);
    assert_eq!(report.status.last_verified, Some(at(100)));
    assert_eq!(
        condition(&report.status, "GroupVerified"),
        ("Unknown", "OktaTimeout")
    );
    assert_eq!(
        condition(&report.status, "BindingsApplied"),
        ("Unknown", "AwaitingVerification")
    );
    assert_eq!(report.status.binding_count, 1, "kept");
    assert_eq!(report.retry, Retry::Backoff);
    assert_eq!(report.state, "unknown");
    assert_eq!(report.events[0].reason, "OktaTimeout");
}

#[test]
fn a_rate_limited_lookup_is_retried_at_the_window_reset_not_with_backoff() {
    let plan = bound(&["a"]);
    let limited = Judgement {
        outcome: Outcome::Unknown(crate::okta::OktaError::RateLimited {
            reset: 1_900_000_000,
        }),
        subjects: vec![],
        members_unknown: None,
        grant: Grant::KeepExisting,
        claim: None,
    };
    let report = report_at(&Default::default(), &limited, &plan, &[], 100);
    assert_eq!(report.retry, Retry::AtReset(1_900_000_000));
    assert_eq!(
        condition(&report.status, "GroupVerified"),
        ("Unknown", "OktaRateLimited")
    );
}

#[test]
fn thousands_of_bindings_are_counted_and_only_the_first_hundred_listed() {
    let names: Vec<String> = (0..10_000).map(|i| format!("b{i:05}")).collect();
    let plan = bound(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let report = report_at(&Default::default(), &verified(), &plan, &[], 100);
    let status = &report.status;
    assert_eq!(status.binding_count, 10_000);
    assert_eq!(status.bindings.len(), LISTED_BINDINGS);
    assert_eq!(status.bindings[0].name, "b00000");
    assert_eq!(
        status.bindings_not_listed,
        Some(10_000 - LISTED_BINDINGS as i32)
    );
    let size = serde_json::to_vec(status).expect("json").len();
    assert!(size < 20_000, "the status stays small: {size} bytes");

    let few = report_at(&Default::default(), &verified(), &bound(&["a"]), &[], 100);
    assert_eq!(few.status.bindings_not_listed, None, "all listed: no count");
}
