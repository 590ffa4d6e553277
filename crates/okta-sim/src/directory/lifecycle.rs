//! A user's lifecycle as Okta's User Lifecycle API moves it: each operation is allowed
//! only from the statuses Okta allows it from, and records the System Log event a real
//! org records for it, with the user as the target.

use super::{Directory, DirectoryError, now};
use crate::seed::UserStatus;

/// An operation of `/api/v1/users/{id}/lifecycle/...`, or the deletion of a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Suspend,
    Unsuspend,
    Deactivate,
    /// STAGED or DEPROVISIONED to ACTIVE (PROVISIONED while the user has no password).
    Activate,
    /// Sends a PROVISIONED user's activation again.
    Reactivate,
    /// `DELETE /api/v1/users/{id}`: deactivates a user who is not DEPROVISIONED, and
    /// deletes one who is.
    Delete,
}

impl Lifecycle {
    /// The operation's name in the API's path.
    pub fn parse(operation: &str) -> Option<Self> {
        Some(match operation {
            "suspend" => Self::Suspend,
            "unsuspend" => Self::Unsuspend,
            "deactivate" => Self::Deactivate,
            "activate" => Self::Activate,
            "reactivate" => Self::Reactivate,
            _ => return None,
        })
    }
}

/// What a lifecycle operation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The user's status is now this.
    Now(UserStatus),
    Deleted,
}

impl Directory {
    /// Applies `operation` to the user (by id or login) as Okta does, or refuses it as
    /// Okta does for the user's status.
    pub fn user_lifecycle(
        &mut self,
        id_or_login: &str,
        operation: Lifecycle,
    ) -> Result<Outcome, DirectoryError> {
        let id = self.user_id(id_or_login)?;
        let user = &self.users[&id];
        let from = user.status;
        let has_password = user.password.is_some();
        let refused = |what: &str, allowed: &str| {
            Err(DirectoryError::Invalid(format!(
                "{what}: the user's status is {}; this operation is allowed only for {allowed}",
                from.as_str()
            )))
        };
        let (to, events): (UserStatus, &[(&'static str, &'static str)]) = match operation {
            Lifecycle::Suspend if from == UserStatus::Active => (
                UserStatus::Suspended,
                &[("user.lifecycle.suspend", "Suspend Okta user")],
            ),
            Lifecycle::Suspend => return refused("suspendUser", "ACTIVE users"),
            Lifecycle::Unsuspend if from == UserStatus::Suspended => (
                UserStatus::Active,
                &[("user.lifecycle.unsuspend", "Unsuspend Okta user")],
            ),
            Lifecycle::Unsuspend => return refused("unsuspendUser", "SUSPENDED users"),
            Lifecycle::Deactivate | Lifecycle::Delete if from != UserStatus::Deprovisioned => (
                UserStatus::Deprovisioned,
                &[("user.lifecycle.deactivate", "Deactivate Okta user")],
            ),
            Lifecycle::Deactivate => {
                return refused("deactivateUser", "users who are not DEPROVISIONED");
            }
            Lifecycle::Activate
                if matches!(from, UserStatus::Staged | UserStatus::Deprovisioned) =>
            {
                let to = if has_password {
                    UserStatus::Active
                } else {
                    UserStatus::Provisioned
                };
                (to, &[("user.lifecycle.activate", "Activate Okta user")])
            }
            Lifecycle::Activate => {
                return refused("activateUser", "STAGED or DEPROVISIONED users");
            }
            Lifecycle::Reactivate if from == UserStatus::Provisioned => (
                UserStatus::Provisioned,
                &[("user.lifecycle.reactivate", "Reactivate Okta user")],
            ),
            Lifecycle::Reactivate => return refused("reactivateUser", "PROVISIONED users"),
            Lifecycle::Delete => {
                let target = self.user_target(&id);
                self.users.remove(&id);
                for members in self.members.values_mut() {
                    members.remove(&id);
                }
                self.system_log.record(
                    "user.lifecycle.delete.initiated",
                    "Delete Okta user",
                    target.clone(),
                );
                self.system_log.record(
                    "user.lifecycle.delete.completed",
                    "Delete Okta user completed",
                    target,
                );
                return Ok(Outcome::Deleted);
            }
        };
        let at = now();
        if let Some(user) = self.users.get_mut(&id) {
            if user.status != to {
                user.status_changed = at.clone();
            }
            user.status = to;
            user.last_updated = at;
        }
        let target = self.user_target(&id);
        for (event_type, message) in events {
            self.system_log.record(event_type, message, target.clone());
        }
        Ok(Outcome::Now(to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::Seed;

    fn directory_with(status: UserStatus, password: Option<&str>) -> (Directory, String) {
        let mut directory = Directory::from_seed(&Seed::default()).expect("directory");
        let id = directory
            .create_user(
                "ann@example.com",
                None,
                None,
                None,
                status,
                password.map(str::to_string),
            )
            .expect("user");
        (directory, id)
    }

    /// The user lifecycle events logged.
    fn logged(directory: &Directory) -> Vec<&'static str> {
        directory
            .system_log
            .events()
            .iter()
            .map(|e| e.event_type)
            .filter(|t| t.starts_with("user.lifecycle."))
            .collect()
    }

    #[test]
    fn suspend_and_unsuspend_move_an_active_user_and_are_logged_with_the_user_as_target() {
        let (mut directory, id) = directory_with(UserStatus::Active, None);
        assert_eq!(
            directory.user_lifecycle("ann@example.com", Lifecycle::Suspend),
            Ok(Outcome::Now(UserStatus::Suspended))
        );
        assert_eq!(
            directory.user_lifecycle(&id, Lifecycle::Unsuspend),
            Ok(Outcome::Now(UserStatus::Active))
        );
        assert_eq!(
            logged(&directory),
            ["user.lifecycle.suspend", "user.lifecycle.unsuspend"]
        );
        let event = directory
            .system_log
            .events()
            .iter()
            .find(|e| e.event_type == "user.lifecycle.suspend")
            .expect("logged");
        assert_eq!(event.targets[0].id, id);
        assert_eq!(event.targets[0].kind, "User");
    }

    #[test]
    fn operations_from_a_status_okta_does_not_allow_are_refused_and_not_logged() {
        let (mut directory, _) = directory_with(UserStatus::Suspended, None);
        for refused in [
            Lifecycle::Suspend,
            Lifecycle::Activate,
            Lifecycle::Reactivate,
        ] {
            let error = directory
                .user_lifecycle("ann@example.com", refused)
                .expect_err("refused");
            assert!(error.to_string().contains("SUSPENDED"), "{error}");
        }
        let (mut active, _) = directory_with(UserStatus::Active, None);
        assert!(
            active
                .user_lifecycle("ann@example.com", Lifecycle::Unsuspend)
                .is_err()
        );
        assert!(logged(&directory).is_empty() && logged(&active).is_empty());
    }

    #[test]
    fn delete_deactivates_first_then_deletes_with_the_memberships() {
        let (mut directory, id) = directory_with(UserStatus::Active, Some("pw"));
        let group = directory
            .create_group("k8s-x", None, crate::seed::GroupType::OktaGroup)
            .expect("group");
        directory.add_member(&group, &id).expect("member");
        assert_eq!(
            directory.user_lifecycle(&id, Lifecycle::Delete),
            Ok(Outcome::Now(UserStatus::Deprovisioned))
        );
        assert_eq!(
            directory.member_count(&group),
            1,
            "a deactivated user stays"
        );
        assert!(
            directory
                .user_lifecycle(&id, Lifecycle::Deactivate)
                .is_err()
        );
        assert_eq!(
            directory.user_lifecycle(&id, Lifecycle::Delete),
            Ok(Outcome::Deleted)
        );
        assert!(directory.find_user(&id).is_none());
        assert_eq!(directory.member_count(&group), 0);
        assert!(matches!(
            directory.user_lifecycle(&id, Lifecycle::Activate),
            Err(DirectoryError::NotFound(_))
        ));
        assert_eq!(
            logged(&directory),
            [
                "user.lifecycle.deactivate",
                "user.lifecycle.delete.initiated",
                "user.lifecycle.delete.completed"
            ]
        );
    }

    #[test]
    fn activation_makes_a_user_with_a_password_active_and_one_without_provisioned() {
        let (mut with, id) = directory_with(UserStatus::Deprovisioned, Some("pw"));
        assert_eq!(
            with.user_lifecycle(&id, Lifecycle::Activate),
            Ok(Outcome::Now(UserStatus::Active))
        );
        let (mut without, id) = directory_with(UserStatus::Staged, None);
        assert_eq!(
            without.user_lifecycle(&id, Lifecycle::Activate),
            Ok(Outcome::Now(UserStatus::Provisioned))
        );
        assert_eq!(
            without.user_lifecycle(&id, Lifecycle::Reactivate),
            Ok(Outcome::Now(UserStatus::Provisioned))
        );
    }
}
