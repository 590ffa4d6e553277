//! The roster's rules, without a server.

use super::*;
use crate::okta::{LogTarget, UserProfile};

fn user(id: &str, email: &str, status: &str) -> OktaUser {
    OktaUser {
        id: id.into(),
        status: status.into(),
        profile: UserProfile {
            login: email.into(),
            email: Some(email.into()),
        },
    }
}

/// Okta's time `seconds` from now, as Okta writes it.
fn okta_time(seconds: i64) -> String {
    let at = Timestamp::now() + k8s_openapi::jiff::SignedDuration::from_secs(seconds);
    at.strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string()
}

/// How a denial names `okta_time(seconds)`.
fn said(seconds: i64) -> String {
    let at = okta_time(seconds);
    format!("{}Z on {}", &at[11..19], &at[..10])
}

fn event(event_type: &str, user: Option<&str>, group: Option<&str>) -> LogEvent {
    event_at(event_type, user, group, 0)
}

fn event_at(event_type: &str, user: Option<&str>, group: Option<&str>, seconds: i64) -> LogEvent {
    LogEvent {
        uuid: format!("{event_type}{seconds}"),
        event_type: event_type.into(),
        published: Some(okta_time(seconds)),
        target: user
            .map(|id| ("User", id))
            .into_iter()
            .chain(group.map(|id| ("UserGroup", id)))
            .map(|(kind, id)| LogTarget {
                id: id.into(),
                kind: kind.into(),
                display_name: None,
                alternate_id: None,
            })
            .collect(),
    }
}

pub(crate) fn grant(token_group: &str, id: &str) -> Grant {
    Grant {
        token_group: token_group.into(),
        group_id: id.into(),
        group_name: token_group.trim_start_matches("oidc:").into(),
        kept_if_deleted: false,
    }
}

/// A roster tracking k8s-admins, whose member list has alice ACTIVE.
fn admins_with_alice_active() -> Roster {
    let roster = roster_with_admins();
    roster.listed(
        "00g1",
        &[user("00u1", "alice@example.com", "ACTIVE")],
        Instant::now(),
    );
    roster
}

/// alice's standing in k8s-admins.
fn assert_alice(roster: &Roster, expected: Standing, why: &str) {
    assert_eq!(
        roster.standing("oidc:k8s-admins", "alice@example.com"),
        expected,
        "{why}"
    );
}

fn roster_with_admins() -> Roster {
    let roster = Roster::new(UserNameAttribute::Email);
    roster.track("uid-1", Some(grant("oidc:k8s-admins", "00g1")));
    roster
}

#[test]
fn nothing_is_known_until_the_members_are_listed_and_unbound_groups_are_not_its_business() {
    let roster = roster_with_admins();
    assert_eq!(
        roster.standing("oidc:k8s-other", "bob@example.com"),
        Standing::NotBound
    );
    assert_eq!(
        roster.standing("oidc:k8s-admins", "bob@example.com"),
        Standing::Unknown
    );
    roster.listed(
        "00g1",
        &[user("00u1", "Alice@example.com", "ACTIVE")],
        Instant::now(),
    );
    assert_eq!(
        roster.standing("oidc:k8s-admins", "alice@EXAMPLE.com"),
        Standing::Active
    );
    assert!(matches!(
        roster.standing("oidc:k8s-admins", "bob@example.com"),
        Standing::Gone(why) if why.contains("is not a member of k8s-admins")
    ));
}

#[test]
fn events_read_after_a_list_began_win_over_it_and_say_when() {
    let roster = roster_with_admins();
    let before_event = Instant::now();
    roster.listed(
        "00g1",
        &[user("00u1", "alice@example.com", "ACTIVE")],
        before_event,
    );
    roster.apply(
        &[event("user.lifecycle.suspend", Some("00u1"), None)],
        Instant::now(),
    );
    let suspended = Standing::Gone(format!("was suspended in Okta at {}", said(0)));
    assert_eq!(
        roster.standing("oidc:k8s-admins", "alice@example.com"),
        suspended
    );
    // A list that began before the event still shows her ACTIVE: the event stands.
    roster.listed(
        "00g1",
        &[user("00u1", "alice@example.com", "ACTIVE")],
        before_event,
    );
    assert_eq!(
        roster.standing("oidc:k8s-admins", "alice@example.com"),
        suspended
    );
    roster.listed(
        "00g1",
        &[user("00u1", "alice@example.com", "ACTIVE")],
        Instant::now(),
    );
    assert_alice(&roster, Standing::Active, "a newer list says she is back");
}

#[test]
fn removal_addition_and_group_deletion() {
    let roster = admins_with_alice_active();
    roster.apply(
        &[event(
            "group.user_membership.remove",
            Some("00u1"),
            Some("00g1"),
        )],
        Instant::now(),
    );
    assert_eq!(
        roster.standing("oidc:k8s-admins", "alice@example.com"),
        Standing::Gone(format!("left k8s-admins in Okta at {}", said(0)))
    );
    roster.apply(
        &[event_at(
            "group.user_membership.add",
            Some("00u1"),
            Some("00g1"),
            1,
        )],
        Instant::now(),
    );
    assert!(
        matches!(roster.standing("oidc:k8s-admins", "alice@example.com"), Standing::Gone(why) if why.starts_with("left k8s-admins")),
        "an event alone gives nothing back: Okta's member list must say so"
    );
    roster.listed(
        "00g1",
        &[user("00u1", "alice@example.com", "ACTIVE")],
        Instant::now(),
    );
    assert_alice(
        &roster,
        Standing::Active,
        "the list read after the addition has her",
    );
    roster.apply(
        &[event(
            "group.user_membership.add",
            Some("00u9"),
            Some("00g1"),
        )],
        Instant::now(),
    );
    assert_eq!(
        roster.standing("oidc:k8s-admins", "new@example.com"),
        Standing::Unknown,
        "someone added but not listed yet may be this user"
    );
    roster.apply(
        &[event("group.lifecycle.delete", None, Some("00g1"))],
        Instant::now(),
    );
    assert!(matches!(
        roster.standing("oidc:k8s-admins", "alice@example.com"),
        Standing::Gone(why) if why.starts_with("k8s-admins was deleted in Okta")
    ));
    roster.track(
        "uid-retain",
        Some(Grant {
            kept_if_deleted: true,
            ..grant("oidc:k8s-admins", "00g1")
        }),
    );
    assert_alice(
        &roster,
        Standing::Active,
        "an object that keeps its bindings when the group is deleted keeps them for tokens too",
    );
}

#[test]
fn a_group_no_object_grants_is_forgotten() {
    let roster = roster_with_admins();
    roster.track("uid-2", Some(grant("oidc:k8s-admins", "00g1")));
    roster.track("uid-1", None);
    assert_eq!(
        roster.standing("oidc:k8s-admins", "a@example.com"),
        Standing::Unknown
    );
    roster.track("uid-2", None);
    assert_eq!(
        roster.standing("oidc:k8s-admins", "a@example.com"),
        Standing::NotBound
    );
    assert!(roster.is_empty() && !roster.has_list("00g1"));
}

#[test]
fn an_older_event_delivered_late_does_not_undo_a_newer_one() {
    let roster = admins_with_alice_active();
    let removed = event_at(
        "group.user_membership.remove",
        Some("00u1"),
        Some("00g1"),
        5,
    );
    let added = event_at("group.user_membership.add", Some("00u1"), Some("00g1"), 4);
    roster.apply(&[removed], Instant::now());
    roster.apply(&[added], Instant::now());
    assert!(
        matches!(roster.standing("oidc:k8s-admins", "alice@example.com"), Standing::Gone(why) if why.starts_with("left k8s-admins")),
        "the removal was published last"
    );
    // Unsuspended (published later) before suspended arrives: the suspension, older, is
    // not applied; a list says where she stands.
    let unsuspended = event_at("user.lifecycle.unsuspend", Some("00u1"), None, 8);
    let suspended = event_at("user.lifecycle.suspend", Some("00u1"), None, 7);
    roster.apply(&[unsuspended, suspended], Instant::now());
    assert!(
        matches!(roster.standing("oidc:k8s-admins", "alice@example.com"), Standing::Gone(why) if why.starts_with("left k8s-admins")),
        "still out of the group; the older suspension left her status alone"
    );
    let removed_late = event_at(
        "group.user_membership.remove",
        Some("00u1"),
        Some("00g1"),
        3,
    );
    let added = event_at("group.user_membership.add", Some("00u1"), Some("00g1"), 9);
    roster.apply(&[added], Instant::now());
    let listed_at = Instant::now();
    roster.listed(
        "00g1",
        &[user("00u1", "alice@example.com", "ACTIVE")],
        listed_at,
    );
    roster.apply(&[removed_late], Instant::now());
    assert_alice(
        &roster,
        Standing::Active,
        "a removal older than the addition, delivered after it, is not applied",
    );
}

#[test]
fn events_only_take_access_away_and_a_list_gives_it_back() {
    let roster = admins_with_alice_active();
    roster.apply(
        &[event_at("user.lifecycle.suspend", Some("00u1"), None, 1)],
        Instant::now(),
    );
    for back in [
        "user.lifecycle.unsuspend",
        "user.lifecycle.activate",
        "user.lifecycle.reactivate",
    ] {
        roster.apply(&[event_at(back, Some("00u1"), None, 2)], Instant::now());
        assert!(
            matches!(roster.standing("oidc:k8s-admins", "alice@example.com"), Standing::Gone(why) if why.starts_with("was suspended")),
            "{back} alone gives nothing back"
        );
    }
    roster.listed(
        "00g1",
        &[user("00u1", "alice@example.com", "ACTIVE")],
        Instant::now(),
    );
    assert_eq!(
        roster.standing("oidc:k8s-admins", "alice@example.com"),
        Standing::Active
    );
}

#[test]
fn an_event_older_than_a_member_list_does_not_undo_it() {
    let roster = admins_with_alice_active();
    roster.apply(
        &[event_at(
            "group.user_membership.remove",
            Some("00u1"),
            Some("00g1"),
            -30,
        )],
        Instant::now(),
    );
    assert_alice(
        &roster,
        Standing::Active,
        "the list, read after the removal, has her back",
    );
}
