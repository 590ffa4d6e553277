//! The directory's users and their memberships: creating and finding users,
//! adding and removing members (with the System Log's events).

use super::{Directory, DirectoryError, Group, User, now};
use crate::seed::UserStatus;
use crate::system_log::Target;
use std::collections::BTreeSet;

impl Directory {
    pub(super) fn user_target(&self, id: &str) -> Vec<Target> {
        self.users
            .get(id)
            .map(|u| Target {
                id: u.id.clone(),
                kind: "User",
                alternate_id: u.login.clone(),
                display_name: format!("{} {}", u.first_name, u.last_name),
            })
            .into_iter()
            .collect()
    }

    pub fn create_user(
        &mut self,
        login: &str,
        email: Option<String>,
        first_name: Option<String>,
        last_name: Option<String>,
        status: UserStatus,
        password: Option<String>,
    ) -> Result<String, DirectoryError> {
        if self
            .users
            .values()
            .any(|u| u.login.eq_ignore_ascii_case(login))
        {
            return Err(DirectoryError::Conflict(format!("login {login}")));
        }
        let id = self.new_id("00u");
        let at = now();
        // Okta requires both names; derive them from the login when the seed has none.
        let local = login.split('@').next().unwrap_or(login).to_string();
        self.users.insert(
            id.clone(),
            User {
                id: id.clone(),
                login: login.into(),
                email: email.unwrap_or_else(|| login.into()),
                first_name: first_name
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| local.clone()),
                last_name: last_name
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "User".into()),
                status,
                password,
                created: at.clone(),
                status_changed: at.clone(),
                last_updated: at,
                oddity: None,
            },
        );
        if let Some(everyone) = self.everyone_id() {
            self.members.entry(everyone).or_default().insert(id.clone());
        }
        Ok(id)
    }

    /// A user by id or login, as Okta's `/users/{idOrLogin}` resolves them.
    pub fn find_user(&self, id_or_login: &str) -> Option<&User> {
        self.users.get(id_or_login).or_else(|| {
            self.users
                .values()
                .find(|u| u.login.eq_ignore_ascii_case(id_or_login))
        })
    }

    pub(super) fn user_id(&self, id_or_login: &str) -> Result<String, DirectoryError> {
        self.find_user(id_or_login)
            .map(|u| u.id.clone())
            .ok_or_else(|| DirectoryError::NotFound(format!("{id_or_login} (User)")))
    }

    pub fn add_member(&mut self, group_id: &str, id_or_login: &str) -> Result<(), DirectoryError> {
        let user = self.user_id(id_or_login)?;
        let added = user.clone();
        if self.change_membership(group_id, |members| members.insert(added))? {
            let targets = [self.user_target(&user), self.group_target(group_id)].concat();
            self.system_log.record(
                "group.user_membership.add",
                "Add user to group membership",
                targets,
            );
        }
        Ok(())
    }

    pub fn remove_member(
        &mut self,
        group_id: &str,
        id_or_login: &str,
    ) -> Result<(), DirectoryError> {
        let user = self.user_id(id_or_login)?;
        if self.change_membership(group_id, |members| members.remove(&user))? {
            let targets = [self.user_target(&user), self.group_target(group_id)].concat();
            self.system_log.record(
                "group.user_membership.remove",
                "Remove user from group membership",
                targets,
            );
        }
        Ok(())
    }

    fn change_membership(
        &mut self,
        group_id: &str,
        change: impl FnOnce(&mut BTreeSet<String>) -> bool,
    ) -> Result<bool, DirectoryError> {
        let group = self
            .groups
            .get_mut(group_id)
            .ok_or_else(|| DirectoryError::NotFound(format!("{group_id} (UserGroup)")))?;
        let changed = change(self.members.entry(group_id.into()).or_default());
        if changed {
            group.last_membership_updated = now();
        }
        Ok(changed)
    }

    pub fn groups_of(&self, user_id: &str) -> impl Iterator<Item = &Group> {
        self.members
            .iter()
            .filter(move |(_, members)| members.contains(user_id))
            .filter_map(|(group_id, _)| self.groups.get(group_id))
    }

    pub fn member_count(&self, group_id: &str) -> usize {
        self.members.get(group_id).map_or(0, BTreeSet::len)
    }
}
