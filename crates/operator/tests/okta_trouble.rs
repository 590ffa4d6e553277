//! When Okta is down, slow, failing, rate limiting or refusing the operator's token, an
//! OktaGroupBinding's existing bindings stay, a new one gets none, the condition says
//! why (GroupVerified=Unknown), and everything is Ready again once Okta answers.

mod common;

use common::{
    OKTA_CONCURRENCY, OKTA_TIMEOUT, OPERATOR_TOKEN, RESYNC, apply_binding, condition, harness,
    owned_bindings, view_spec, wait_condition,
};
use kube::Client;
use okta_rbac_api::SubjectKind;
use okta_rbac_testenv::unique_name;
use okta_sim::{FaultSettings, GroupType, OktaSim, RateLimitSettings, UserStatus};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The faults are injected into the one local Okta of this binary: one test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn okta_group(prefix: &str) -> String {
    let name = unique_name(&format!("k8s-{prefix}"));
    harness()
        .sim
        .create_group(&name, GroupType::OktaGroup)
        .expect("group");
    name
}

/// Runs its closure when dropped: a failed test must not leave Okta in trouble for the
/// tests after it.
struct Recover<F: FnOnce(&OktaSim)>(Option<F>);

impl<F: FnOnce(&OktaSim)> Recover<F> {
    fn now(mut self) {
        if let Some(recover) = self.0.take() {
            recover(&harness().sim);
        }
    }
}

impl<F: FnOnce(&OktaSim)> Drop for Recover<F> {
    fn drop(&mut self) {
        if let Some(recover) = self.0.take() {
            recover(&harness().sim);
        }
    }
}

/// An object that was Ready before the trouble keeps its binding for as long as the
/// trouble lasts (`hold`), one created during the trouble gets none, both say `reason`,
/// and both are Ready again within `recover_within` of `recover`.
async fn survives(
    trouble: impl FnOnce(&OktaSim),
    reason: &str,
    hold: Duration,
    recover: impl FnOnce(&OktaSim),
    recover_within: Duration,
) {
    let recover = Recover(Some(recover));
    let client: Client = harness().plane.client().await.expect("client");
    let sim = &harness().sim;
    let before = unique_name("before");
    apply_binding(&client, &before, view_spec(&okta_group("before"))).await;
    let ready = wait_condition(&client, &before, "Ready", "True", None).await;

    trouble(sim);
    let during = unique_name("during");
    apply_binding(&client, &during, view_spec(&okta_group("during"))).await;

    let kept = wait_condition(&client, &before, "GroupVerified", "Unknown", Some(reason)).await;
    assert_eq!(condition(&kept, "Ready").expect("ready").status, "Unknown");
    let new = wait_condition(&client, &during, "GroupVerified", "Unknown", Some(reason)).await;
    assert_eq!(
        condition(&new, "BindingsApplied").expect("applied").reason,
        "AwaitingVerification"
    );
    let held = Instant::now();
    loop {
        let (crbs, _) = owned_bindings(&client, &ready).await;
        assert_eq!(crbs.len(), 1, "{reason}: an outage never locks a team out");
        let (crbs, _) = owned_bindings(&client, &new).await;
        assert!(
            crbs.is_empty(),
            "{reason}: nothing is created for an unverified object"
        );
        if held.elapsed() >= hold {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    recover.now();
    let recovered_at = Instant::now();
    wait_condition(&client, &before, "Ready", "True", Some("Ready")).await;
    let recovered = wait_condition(&client, &during, "Ready", "True", Some("Ready")).await;
    let recovery = recovered_at.elapsed();
    let (crbs, _) = owned_bindings(&client, &recovered).await;
    assert_eq!(crbs.len(), 1, "{reason}: granted once Okta answers");
    println!("{reason}: held {hold:?}; Ready again {recovery:?} after recovery");
    assert!(
        recovery <= recover_within,
        "{reason}: Ready again within {recover_within:?}, took {recovery:?}"
    );
}

/// Retries back off to at most one interval; a second more for the write and the watch
/// that shows it.
const ONE_INTERVAL: Duration = Duration::from_secs(RESYNC.as_secs() + 1);

/// The most requests to Okta the operator had in flight at once, by the local Okta's
/// log (requests the client gave up on included).
fn most_in_flight(sim: &OktaSim) -> usize {
    okta_sim::most_in_flight(&sim.requests())
}

#[tokio::test]
async fn okta_down_for_several_intervals_removes_nothing() {
    let _one_at_a_time = SERIAL.lock().await;
    survives(
        |sim| {
            sim.set_faults(FaultSettings {
                outage_seconds: 600,
                ..Default::default()
            })
        },
        "OktaServerError",
        RESYNC * 4,
        OktaSim::clear_faults,
        ONE_INTERVAL,
    )
    .await;
}

#[tokio::test]
async fn okta_server_errors_keep_bindings() {
    let _one_at_a_time = SERIAL.lock().await;
    harness().sim.clear_requests();
    survives(
        |sim| {
            sim.set_faults(FaultSettings {
                error_rate: 1.0,
                // Slow answers, so that requests overlap if anything piles up.
                latency_ms: 300,
                ..Default::default()
            })
        },
        "OktaServerError",
        RESYNC * 2,
        OktaSim::clear_faults,
        ONE_INTERVAL,
    )
    .await;
    assert_within_concurrency_bound();
}

#[tokio::test]
async fn hanging_okta_requests_time_out_and_keep_bindings() {
    let _one_at_a_time = SERIAL.lock().await;
    harness().sim.clear_requests();
    survives(
        |sim| {
            sim.set_faults(FaultSettings {
                hang_rate: 1.0,
                ..Default::default()
            })
        },
        "OktaTimeout",
        RESYNC * 2,
        OktaSim::clear_faults,
        // A request sent just before recovery still hangs until it times out.
        OKTA_TIMEOUT + ONE_INTERVAL,
    )
    .await;
    assert_within_concurrency_bound();
}

fn assert_within_concurrency_bound() {
    let sim = &harness().sim;
    let most = most_in_flight(sim);
    println!(
        "{} requests to Okta, at most {most} at once (bound {OKTA_CONCURRENCY})",
        sim.requests().len()
    );
    assert!(
        most <= OKTA_CONCURRENCY,
        "{most} requests in flight at once, more than --okta-concurrency {OKTA_CONCURRENCY}"
    );
}

#[tokio::test]
async fn a_revoked_okta_token_keeps_bindings() {
    let _one_at_a_time = SERIAL.lock().await;
    survives(
        |sim| sim.revoke_api_token(OPERATOR_TOKEN),
        "OktaUnauthorized",
        RESYNC,
        |sim| {
            sim.issue_api_token(
                "operator",
                OPERATOR_TOKEN,
                Some(vec!["okta.groups.read".into()]),
            )
        },
        ONE_INTERVAL,
    )
    .await;
}

#[tokio::test]
async fn rate_limits_keep_bindings_and_nothing_is_sent_before_the_reset() {
    const WINDOW_SECONDS: u64 = 20;
    let _one_at_a_time = SERIAL.lock().await;
    let sim = &harness().sim;
    sim.set_rate_limits(RateLimitSettings {
        window_seconds: WINDOW_SECONDS,
        per_minute: BTreeMap::from([("groups".into(), 1000)]),
        ..Default::default()
    });
    sim.clear_requests();
    survives(
        |sim| sim.exhaust_bucket(okta_sim::limits::Bucket::Groups),
        "OktaRateLimited",
        RESYNC,
        // Nothing to undo: the window resets by itself, then one interval.
        |_| {},
        Duration::from_secs(WINDOW_SECONDS) + ONE_INTERVAL,
    )
    .await;
    let log: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.bucket == Some("groups"))
        .collect();
    let refused: Vec<_> = log.iter().filter(|r| r.status == 429).collect();
    assert!(!refused.is_empty(), "the bucket was exhausted");
    for refusal in &refused {
        let reset_ms = refusal.rate_limit_reset.expect("a 429 names its reset") * 1000;
        let early: Vec<_> = log
            .iter()
            .filter(|r| r.started_ms > refusal.started_ms && r.started_ms < reset_ms)
            .collect();
        assert!(early.is_empty(), "sent into an exhausted window: {early:?}");
    }
    sim.set_rate_limits(RateLimitSettings::default());
}

#[tokio::test]
async fn unreadable_members_keep_a_users_mode_binding_until_okta_answers() {
    const WINDOW_SECONDS: u64 = 15;
    let _one_at_a_time = SERIAL.lock().await;
    let client: Client = harness().plane.client().await.expect("client");
    let sim = &harness().sim;
    let group = okta_group("members");
    let id = sim.group_id(&group, GroupType::OktaGroup).expect("group");
    let (amy, ben) = (
        format!("{}@example.com", unique_name("amy")),
        format!("{}@example.com", unique_name("ben")),
    );
    for login in [&amy, &ben] {
        sim.create_user(login, UserStatus::Active, None)
            .expect("user");
    }
    sim.add_member(&id, &amy).expect("member");
    let name = unique_name("members");
    let mut spec = view_spec(&group);
    spec.subject.kind = SubjectKind::Users;
    apply_binding(&client, &name, spec).await;
    let ready = wait_condition(&client, &name, "Ready", "True", None).await;

    // Member lists may not be read for a while; group lookups still answer.
    sim.set_rate_limits(RateLimitSettings {
        window_seconds: WINDOW_SECONDS,
        ..Default::default()
    });
    let recover = Recover(Some(|sim: &OktaSim| {
        sim.set_rate_limits(RateLimitSettings::default())
    }));
    sim.exhaust_bucket(okta_sim::limits::Bucket::GroupUsers);
    sim.add_member(&id, &ben).expect("member");

    let waiting = wait_condition(
        &client,
        &name,
        "BindingsApplied",
        "Unknown",
        Some("AwaitingMembers"),
    )
    .await;
    assert_eq!(
        condition(&waiting, "GroupVerified")
            .expect("verified")
            .status,
        "True"
    );
    assert_eq!(
        condition(&waiting, "Ready").expect("ready").reason,
        "AwaitingMembers"
    );
    let (crbs, _) = owned_bindings(&client, &ready).await;
    let subjects: Vec<String> = crbs[0]
        .subjects
        .iter()
        .flatten()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(
        subjects,
        std::slice::from_ref(&amy),
        "the existing binding is kept as it was"
    );

    // Once the window resets, the new member is bound.
    let recovered = wait_condition(&client, &name, "Ready", "True", None).await;
    let (crbs, _) = owned_bindings(&client, &recovered).await;
    let mut subjects: Vec<String> = crbs[0]
        .subjects
        .iter()
        .flatten()
        .map(|s| s.name.clone())
        .collect();
    subjects.sort();
    let mut expected = vec![amy, ben];
    expected.sort();
    assert_eq!(subjects, expected);
    recover.now();
}
