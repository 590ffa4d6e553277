//! Okta's answers read one item at a time: a group, user, event or claim with a field the
//! operator cannot read is set aside (named as far as it can be, and why) and the rest of
//! its page is used. One odd item never fails a page, and with it every group on it.
//! Fields the operator can do without are read leniently ([`or_none`]), so that an odd
//! value there does not even set the item aside.

use serde::de::{Deserialize, DeserializeOwned, Deserializer};
use serde_json::Value;

/// The kinds of items, as the `okta_unreadable_items` metric counts them.
pub const UNREADABLE_KINDS: [&str; 4] = ["group", "user", "event", "claim"];

/// An item of Okta's answers.
pub trait Item: DeserializeOwned {
    /// One of [`UNREADABLE_KINDS`].
    const KIND: &'static str;

    /// What names the item for a person (a group's name, a user's login), from its JSON.
    fn label(value: &Value) -> Option<String>;
}

/// An item set aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadableItem {
    pub id: Option<String>,
    pub label: Option<String>,
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for UnreadableItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = self.id.as_deref().unwrap_or("(no id)");
        match &self.label {
            Some(label) => write!(f, "{id} ({label})")?,
            None => write!(f, "{id}")?,
        }
        write!(f, ", {}: {}", self.field, self.reason)
    }
}

/// The items of one or more pages: those read, and those set aside.
#[derive(Debug)]
pub struct Items<T> {
    pub read: Vec<T>,
    pub unreadable: Vec<UnreadableItem>,
}

impl<T> Default for Items<T> {
    fn default() -> Self {
        Self {
            read: Vec::new(),
            unreadable: Vec::new(),
        }
    }
}

impl<T: Item> Items<T> {
    /// Reads each value on its own.
    pub fn decode(values: Vec<Value>) -> Self {
        let mut items = Self::default();
        for value in values {
            match serde_path_to_error::deserialize::<_, T>(&value) {
                Ok(item) => items.read.push(item),
                Err(error) => items.unreadable.push(UnreadableItem {
                    id: value["id"]
                        .as_str()
                        .or_else(|| value["uuid"].as_str())
                        .map(str::to_string),
                    label: T::label(&value),
                    field: error.path().to_string(),
                    reason: error.into_inner().to_string(),
                }),
            }
        }
        for item in &items.unreadable {
            tracing::warn!(kind = T::KIND, %item, "an item of Okta's answer cannot be read; the rest of the page is used");
        }
        items
    }

    pub fn extend(&mut self, more: Self) {
        self.read.extend(more.read);
        self.unreadable.extend(more.unreadable);
    }
}

/// A field the operator can do without: absent, null, or of a shape it does not expect
/// are all `None`.
pub fn or_none<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(T::deserialize(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okta::{LogEvent, OktaGroup, OktaUser};
    use serde_json::json;

    #[test]
    fn one_odd_group_is_set_aside_and_the_page_is_used() {
        let page = vec![
            json!({"id": "00g1", "type": "OKTA_GROUP", "profile": {"name": "k8s-a"}}),
            json!({"id": "00g2", "type": "OKTA_GROUP", "profile": {"name": 42}}),
            json!({"id": "00g3", "type": "OKTA_GROUP", "profile": {"name": "k8s-c"},
                   "lastMembershipUpdated": 17, "_embedded": {"stats": {"usersCount": -1}}}),
        ];
        let items = Items::<OktaGroup>::decode(page);
        let names: Vec<&str> = items.read.iter().map(|g| g.profile.name.as_str()).collect();
        assert_eq!(
            names,
            ["k8s-a", "k8s-c"],
            "odd optional fields are only None"
        );
        assert_eq!(items.read[1].last_membership_updated, None);
        assert_eq!(items.read[1].member_count(), None);
        assert_eq!(items.unreadable.len(), 1);
        let odd = &items.unreadable[0];
        assert_eq!(odd.id.as_deref(), Some("00g2"));
        assert_eq!(odd.field, "profile.name");
        assert_eq!(odd.label, None);
    }

    #[test]
    fn a_user_without_a_login_and_an_event_without_a_type_are_set_aside() {
        let users = Items::<OktaUser>::decode(vec![
            json!({"id": "00u1", "status": "ACTIVE", "profile": {"login": "a@example.com", "email": ["x"]}}),
            json!({"id": "00u2", "status": "ACTIVE", "profile": {"login": null}}),
        ]);
        assert_eq!(users.read.len(), 1);
        assert_eq!(users.read[0].profile.email, None);
        assert_eq!(users.unreadable[0].field, "profile.login");
        let events = Items::<LogEvent>::decode(vec![
            json!({"uuid": "e1", "eventType": "group.lifecycle.delete", "target": [{"id": "00g1", "type": "UserGroup", "displayName": {"x": 1}}]}),
            json!({"uuid": "e2", "eventType": null}),
        ]);
        assert_eq!(events.read.len(), 1);
        assert_eq!(events.read[0].target[0].display_name, None);
        assert_eq!(events.unreadable[0].id.as_deref(), Some("e2"));
    }
}
