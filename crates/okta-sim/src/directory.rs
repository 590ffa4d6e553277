//! The simulated org's directory: groups, users and memberships, with Okta's ids,
//! timestamps and JSON shapes. Pure data; the HTTP layer lives elsewhere.

use super::seed::{GroupType, Seed, UserStatus};
use super::system_log::{SystemLog, Target};
use rand::Rng;

use std::collections::{BTreeMap, BTreeSet};

mod lifecycle;
mod people;

pub use lifecycle::{Lifecycle, Outcome};

#[derive(Clone, Debug)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub group_type: GroupType,
    pub created: String,
    pub last_updated: String,
    pub last_membership_updated: String,
    /// Fields merged into the group as the API returns it: an answer with a value no
    /// client expects, as a newer Okta, or a bug, may send.
    pub oddity: Option<serde_json::Value>,
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub login: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub status: UserStatus,
    pub password: Option<String>,
    pub created: String,
    pub status_changed: String,
    pub last_updated: String,
    /// As for groups.
    pub oddity: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DirectoryError {
    #[error("Not found: Resource not found: {0}")]
    NotFound(String),
    #[error("An object with this field already exists: {0}")]
    Conflict(String),
    #[error("Api validation failed: {0}")]
    Invalid(String),
}

/// Okta's timestamp format: UTC with milliseconds.
pub fn okta_time(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

pub fn now() -> String {
    okta_time(time::OffsetDateTime::now_utc())
}

const ID_ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Default)]
pub struct Directory {
    /// Keyed by id; ids sort in creation order, which is the order Okta lists them in.
    pub groups: BTreeMap<String, Group>,
    pub users: BTreeMap<String, User>,
    /// Group id -> member user ids.
    pub members: BTreeMap<String, BTreeSet<String>>,
    /// Differs between simulator runs, like ids of different orgs.
    id_salt: String,
    next_id: u64,
    /// What changed, as the System Log records it.
    pub system_log: SystemLog,
}

impl Directory {
    pub fn from_seed(seed: &Seed) -> Result<Self, DirectoryError> {
        let mut rng = rand::thread_rng();
        let salt: String = (0..5)
            .map(|_| ID_ALPHABET[rng.gen_range(0..ID_ALPHABET.len())] as char)
            .collect();
        let mut directory = Directory {
            id_salt: salt,
            ..Default::default()
        };
        directory.create_group(
            "Everyone",
            Some("All users in your organization".into()),
            GroupType::BuiltIn,
        )?;
        for user in &seed.users {
            directory.create_user(
                &user.login,
                user.email.clone(),
                user.first_name.clone(),
                user.last_name.clone(),
                user.status,
                user.password.clone(),
            )?;
        }
        for group in &seed.groups {
            let id =
                directory.create_group(&group.name, group.description.clone(), group.group_type)?;
            for login in &group.members {
                directory.add_member(&id, login)?;
            }
        }
        Ok(directory)
    }

    /// A 20-character id: Okta's 3-character type prefix, the org's salt, a sequence.
    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        let mut n = self.next_id;
        let mut digits = vec![b'0'; 12];
        for slot in digits.iter_mut().rev() {
            *slot = ID_ALPHABET[(n % 62) as usize];
            n /= 62;
        }
        format!(
            "{prefix}{}{}",
            self.id_salt,
            String::from_utf8_lossy(&digits)
        )
    }

    pub fn everyone_id(&self) -> Option<String> {
        self.groups
            .values()
            .find(|g| g.group_type == GroupType::BuiltIn && g.name == "Everyone")
            .map(|g| g.id.clone())
    }

    pub fn create_group(
        &mut self,
        name: &str,
        description: Option<String>,
        group_type: GroupType,
    ) -> Result<String, DirectoryError> {
        // Okta keeps OKTA_GROUP names unique; app groups may repeat a name.
        if group_type == GroupType::OktaGroup
            && self
                .groups
                .values()
                .any(|g| g.group_type == GroupType::OktaGroup && g.name.eq_ignore_ascii_case(name))
        {
            return Err(DirectoryError::Conflict(format!("profile.name {name}")));
        }
        let id = self.new_id("00g");
        let at = now();
        self.groups.insert(
            id.clone(),
            Group {
                id: id.clone(),
                name: name.into(),
                description,
                group_type,
                created: at.clone(),
                last_updated: at.clone(),
                last_membership_updated: at,
                oddity: None,
            },
        );
        self.members.insert(id.clone(), BTreeSet::new());
        let target = self.group_target(&id);
        self.system_log
            .record("group.lifecycle.create", "Create Okta group", target);
        Ok(id)
    }

    pub fn update_group(
        &mut self,
        id: &str,
        name: Option<String>,
        description: Option<Option<String>>,
    ) -> Result<(), DirectoryError> {
        let group = self
            .groups
            .get_mut(id)
            .ok_or_else(|| DirectoryError::NotFound(format!("{id} (UserGroup)")))?;
        if let Some(name) = name {
            group.name = name;
        }
        if let Some(description) = description {
            group.description = description;
        }
        group.last_updated = now();
        let target = self.group_target(id);
        self.system_log
            .record("group.profile.update", "Update group profile", target);
        Ok(())
    }

    /// The group as a log event's target (empty when there is no such group).
    fn group_target(&self, id: &str) -> Vec<Target> {
        self.groups
            .get(id)
            .map(|g| Target {
                id: g.id.clone(),
                kind: "UserGroup",
                alternate_id: "unknown".into(),
                display_name: g.name.clone(),
            })
            .into_iter()
            .collect()
    }

    pub fn delete_group(&mut self, id: &str) -> Result<(), DirectoryError> {
        let target = self.group_target(id);
        self.groups
            .remove(id)
            .ok_or_else(|| DirectoryError::NotFound(format!("{id} (UserGroup)")))?;
        self.members.remove(id);
        self.system_log
            .record("group.lifecycle.delete", "Delete Okta group", target);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::SeedGroup;

    fn seed() -> Seed {
        Seed {
            groups: vec![SeedGroup {
                name: "k8s-admins".into(),
                group_type: GroupType::OktaGroup,
                description: None,
                members: vec![],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn ids_are_okta_shaped_unique_and_in_creation_order() {
        let mut directory = Directory::from_seed(&seed()).expect("seed");
        let a = directory
            .create_group("k8s-a", None, GroupType::OktaGroup)
            .expect("a");
        let b = directory
            .create_group("k8s-b", None, GroupType::OktaGroup)
            .expect("b");
        assert_eq!(a.len(), 20);
        assert!(a.starts_with("00g"));
        assert!(a < b, "later groups sort later");
    }

    #[test]
    fn okta_group_names_are_unique_but_app_groups_may_repeat_them() {
        let mut directory = Directory::from_seed(&seed()).expect("seed");
        assert!(matches!(
            directory.create_group("K8S-admins", None, GroupType::OktaGroup),
            Err(DirectoryError::Conflict(_))
        ));
        assert!(
            directory
                .create_group("k8s-admins", None, GroupType::AppGroup)
                .is_ok()
        );
    }

    #[test]
    fn membership_changes_move_last_membership_updated_and_everyone_has_all_users() {
        let mut directory = Directory::from_seed(&seed()).expect("seed");
        let group = directory
            .groups
            .values()
            .find(|g| g.name == "k8s-admins")
            .expect("group")
            .id
            .clone();
        let user = directory
            .create_user(
                "ann@example.com",
                None,
                None,
                None,
                UserStatus::Active,
                None,
            )
            .expect("user");
        directory
            .groups
            .get_mut(&group)
            .expect("group")
            .last_membership_updated = "before".into();
        directory
            .add_member(&group, "ann@example.com")
            .expect("add");
        assert_ne!(directory.groups[&group].last_membership_updated, "before");
        assert_eq!(directory.member_count(&group), 1);
        let everyone = directory.everyone_id().expect("Everyone");
        assert!(directory.members[&everyone].contains(&user));
    }

    #[test]
    fn times_are_utc_with_milliseconds() {
        let at = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
        assert_eq!(okta_time(at), "2023-11-14T22:13:20.000Z");
    }
}
