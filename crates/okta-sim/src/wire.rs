//! Groups and users as Okta's API returns them, and the attributes `search` and `filter`
//! read.

use crate::directory::{Group, User};
use crate::seed::{GroupType, UserStatus};
use serde_json::{Value, json};

impl Group {
    /// An attribute as `search` and `filter` see it.
    pub fn attribute(&self, name: &str) -> Option<String> {
        match name {
            "id" => Some(self.id.clone()),
            "type" => Some(self.group_type.as_str().into()),
            "profile.name" => Some(self.name.clone()),
            "profile.description" => self.description.clone(),
            "created" => Some(self.created.clone()),
            "lastUpdated" => Some(self.last_updated.clone()),
            "lastMembershipUpdated" => Some(self.last_membership_updated.clone()),
            "source.id" if self.group_type == GroupType::AppGroup => Some(app_id(&self.id)),
            _ => None,
        }
    }

    /// The group as Okta's API returns it; `stats` adds `_embedded.stats` (`expand=stats`).
    pub fn to_json(&self, base_url: &str, stats: Option<usize>) -> Value {
        let mut profile = json!({"name": self.name, "description": self.description});
        let object_class = match self.group_type {
            GroupType::AppGroup => {
                profile["windowsDomainQualifiedName"] = json!(format!("EXAMPLE\\{}", self.name));
                profile["groupType"] = json!("Security");
                profile["groupScope"] = json!("Global");
                profile["samAccountName"] = json!(self.name);
                profile["dn"] = json!(format!("CN={},OU=Groups,DC=example,DC=com", self.name));
                profile["externalId"] = json!(self.id);
                json!(["okta:windows_security_principal"])
            }
            _ => json!(["okta:user_group"]),
        };
        let href = |suffix: &str| format!("{base_url}/api/v1/groups/{}{suffix}", self.id);
        let mut group = json!({
            "id": self.id,
            "created": self.created,
            "lastUpdated": self.last_updated,
            "lastMembershipUpdated": self.last_membership_updated,
            "objectClass": object_class,
            "type": self.group_type.as_str(),
            "profile": profile,
            "_links": {
                "logo": [
                    {"name": "medium", "href": format!("{base_url}/assets/img/logos/groups/odyssey/okta-medium.svg"), "type": "image/svg+xml"},
                    {"name": "large", "href": format!("{base_url}/assets/img/logos/groups/odyssey/okta-large.svg"), "type": "image/svg+xml"},
                ],
                "users": {"href": href("/users")},
                "apps": {"href": href("/apps")},
            },
        });
        if self.group_type == GroupType::AppGroup {
            group["source"] = json!({"id": app_id(&self.id)});
            group["_links"]["source"] =
                json!({"href": format!("{base_url}/api/v1/apps/{}", app_id(&self.id))});
        }
        if let Some(users) = stats {
            group["_embedded"] = json!({"stats": {
                "usersCount": users,
                "appsCount": 0,
                "groupPushMappingsCount": 0,
                "hasAdminPrivilege": false,
                "_links": {"self": {"href": href("/stats")}},
            }});
        }
        merge(&mut group, self.oddity.as_ref());
        group
    }
}

/// Merges `oddity` into `value` as a JSON merge patch does (objects field by field,
/// anything else replaced).
fn merge(value: &mut Value, oddity: Option<&Value>) {
    match (value, oddity) {
        (Value::Object(fields), Some(Value::Object(odd))) => {
            for (key, odd) in odd {
                merge(fields.entry(key.clone()).or_insert(Value::Null), Some(odd));
            }
        }
        (value, Some(odd)) => *value = odd.clone(),
        (_, None) => {}
    }
}

/// App groups come from an app; the simulator derives a stable app id from the group's.
fn app_id(group_id: &str) -> String {
    format!("0oa{}", &group_id[3..])
}

impl User {
    pub fn to_json(&self, base_url: &str) -> Value {
        let activated = match self.status {
            UserStatus::Staged | UserStatus::Provisioned => Value::Null,
            _ => json!(self.created),
        };
        let mut user = json!({
            "id": self.id,
            "status": self.status.as_str(),
            "created": self.created,
            "activated": activated,
            "statusChanged": self.status_changed,
            "lastLogin": null,
            "lastUpdated": self.last_updated,
            "passwordChanged": if self.password.is_some() { json!(self.created) } else { Value::Null },
            "type": {"id": "oty1simulatedusertype"},
            "profile": {
                "firstName": self.first_name,
                "lastName": self.last_name,
                "mobilePhone": null,
                "secondEmail": null,
                "login": self.login,
                "email": self.email,
            },
            "credentials": {
                "password": {},
                "provider": {"type": "OKTA", "name": "OKTA"},
            },
            "_links": {"self": {"href": format!("{base_url}/api/v1/users/{}", self.id)}},
        });
        merge(&mut user, self.oddity.as_ref());
        user
    }
}
