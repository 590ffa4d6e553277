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

fn event(event_type: &str, user: Option<&str>, group: Option<&str>) -> LogEvent {
    LogEvent {
        uuid: "e1".into(),
        event_type: event_type.into(),
        published: Some("2026-12-03T14:02:11.000Z".into()),
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
    let suspended = Standing::Gone("was suspended in Okta at 14:02:11Z on 2026-12-03".into());
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
    assert_eq!(
        roster.standing("oidc:k8s-admins", "alice@example.com"),
        Standing::Active,
        "a newer list says she is back"
    );
}

#[test]
fn removal_addition_and_group_deletion() {
    let roster = roster_with_admins();
    roster.listed(
        "00g1",
        &[user("00u1", "alice@example.com", "ACTIVE")],
        Instant::now(),
    );
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
        Standing::Gone("left k8s-admins in Okta at 14:02:11Z on 2026-12-03".into())
    );
    roster.apply(
        &[event(
            "group.user_membership.add",
            Some("00u1"),
            Some("00g1"),
        )],
        Instant::now(),
    );
    assert_eq!(
        roster.standing("oidc:k8s-admins", "alice@example.com"),
        Standing::Active
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
    assert_eq!(
        roster.standing("oidc:k8s-admins", "alice@example.com"),
        Standing::Active,
        "an object that keeps its bindings when the group is deleted keeps them for tokens too"
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
