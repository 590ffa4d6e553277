//! Objects as the apiserver stores them, decoded one at a time.
//!
//! The apiserver admits what its schema allows, and that can be more than a Rust type
//! holds: a time past what the time type represents, an enum value written through a
//! newer or older version of the CRD, a field a looser schema let in before a tighter one
//! was installed. Decoding a list or a watch as `Vec<K>` fails on the first such object,
//! and with it every other object. [`Decoded<K>`] never fails: each object is either read
//! or [`Unreadable`], with its metadata (so it can be named, reported on and owned) and
//! the field that could not be read, and why.
//!
//! An object whose status alone cannot be read is read without it: a status is what the
//! controller last wrote, and it writes a whole new one.

use kube::core::{ObjectMeta, Resource};
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use serde_json::Value;
use std::borrow::Cow;

/// An object as stored: read, or why not.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded<K> {
    Read(K),
    /// Boxed: rare, and an object's metadata is large.
    Unreadable(Box<Unreadable>),
}

/// A stored object that could not be read.
#[derive(Clone, Debug, PartialEq)]
pub struct Unreadable {
    pub metadata: ObjectMeta,
    /// Where in the object, as a path (`spec.endTime`, `spec.roleBindings[0].namespace`).
    pub field: String,
    /// Why, in the decoder's words.
    pub reason: String,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// `K` from `value`, or where and why not.
fn read<K: DeserializeOwned>(value: &Value) -> Result<K, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let field = error.path().to_string();
        let field = if field == "." {
            "(the object)".to_string()
        } else {
            field
        };
        (field, error.into_inner().to_string())
    })
}

impl<K: DeserializeOwned> Decoded<K> {
    pub fn from_value(mut value: Value) -> Self {
        let (field, reason) = match read(&value) {
            Ok(object) => return Decoded::Read(object),
            Err(problem) => problem,
        };
        if field == "status" || field.starts_with("status.") || field.starts_with("status[") {
            if let Some(object) = value.as_object_mut() {
                object.remove("status");
            }
            if let Ok(object) = read(&value) {
                return Decoded::Read(object);
            }
        }
        Decoded::Unreadable(Box::new(Unreadable {
            metadata: metadata_of(&value),
            field,
            reason,
        }))
    }

    /// The object, when it could be read.
    pub fn readable(&self) -> Option<&K> {
        match self {
            Decoded::Read(object) => Some(object),
            Decoded::Unreadable(_) => None,
        }
    }

    /// Splits objects into those read and those that could not be.
    pub fn split(objects: impl IntoIterator<Item = Self>) -> (Vec<K>, Vec<Unreadable>) {
        let mut read = Vec::new();
        let mut unreadable = Vec::new();
        for object in objects {
            match object {
                Decoded::Read(object) => read.push(object),
                Decoded::Unreadable(object) => unreadable.push(*object),
            }
        }
        (read, unreadable)
    }
}

/// The metadata of a stored object. The apiserver writes most of it itself, so it reads;
/// if it does not, the name and uid alone, so that the object can still be named.
fn metadata_of(value: &Value) -> ObjectMeta {
    let metadata = &value["metadata"];
    ObjectMeta::deserialize(metadata).unwrap_or_else(|_| ObjectMeta {
        name: metadata["name"].as_str().map(str::to_string),
        uid: metadata["uid"].as_str().map(str::to_string),
        resource_version: metadata["resourceVersion"].as_str().map(str::to_string),
        generation: metadata["generation"].as_i64(),
        ..Default::default()
    })
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Decoded<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::from_value)
    }
}

impl<K: Resource<DynamicType = ()>> Resource for Decoded<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        match self {
            Decoded::Read(object) => object.meta(),
            Decoded::Unreadable(object) => &object.metadata,
        }
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Decoded::Read(object) => object.meta_mut(),
            Decoded::Unreadable(object) => &mut object.metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OktaGroupBinding;
    use kube::ResourceExt;
    use serde_json::json;

    fn stored(spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "oktarbac.io/v1alpha1",
            "kind": "OktaGroupBinding",
            "metadata": {"name": "hostile", "uid": "u-1", "resourceVersion": "7", "generation": 2},
            "spec": spec,
            "status": status,
        })
    }

    fn spec() -> Value {
        json!({"group": "k8s-admins", "clusterRoleBindings": [{"clusterRole": "view"}]})
    }

    #[test]
    fn a_time_past_the_time_type_is_reported_with_its_field_and_metadata() {
        let mut hostile = spec();
        hostile["endTime"] = "9999-12-31T23:59:59Z".into();
        let Decoded::Unreadable(object) =
            Decoded::<OktaGroupBinding>::from_value(stored(hostile, json!({})))
        else {
            panic!("read");
        };
        assert_eq!(object.field, "spec.endTime");
        assert!(object.reason.contains("timestamp"), "{}", object.reason);
        assert_eq!(object.metadata.name.as_deref(), Some("hostile"));
        assert_eq!(object.metadata.uid.as_deref(), Some("u-1"));
    }

    #[test]
    fn an_enum_value_of_another_version_is_reported() {
        let mut newer = spec();
        newer["subject"] = json!({"kind": "ServiceAccounts"});
        let decoded = Decoded::<OktaGroupBinding>::from_value(stored(newer, json!({})));
        let Decoded::Unreadable(object) = &decoded else {
            panic!("read");
        };
        assert_eq!(object.field, "spec.subject.kind");
        assert!(
            object.reason.contains("ServiceAccounts"),
            "{}",
            object.reason
        );
        assert_eq!(decoded.name_any(), "hostile");
    }

    #[test]
    fn an_unreadable_status_is_dropped_and_the_object_read() {
        let decoded = Decoded::<OktaGroupBinding>::from_value(stored(
            spec(),
            json!({"bindingCount": 1e20, "conditions": []}),
        ));
        let object = decoded.readable().expect("read");
        assert_eq!(object.status, None);
        assert_eq!(object.spec.group, "k8s-admins");
    }

    /// One bad item among good ones: the list decodes, every item in its place.
    #[test]
    fn a_list_decodes_one_object_at_a_time() {
        let mut hostile = spec();
        hostile["endTime"] = "9999-12-31T23:59:59Z".into();
        let list = json!({
            "apiVersion": "oktarbac.io/v1alpha1",
            "kind": "OktaGroupBindingList",
            "metadata": {"resourceVersion": "9"},
            "items": [stored(spec(), json!({})), stored(hostile, json!({})), stored(spec(), json!({}))],
        });
        let list: kube::core::ObjectList<Decoded<OktaGroupBinding>> =
            serde_json::from_value(list).expect("the list decodes");
        let (read, unreadable) = Decoded::split(list.items);
        assert_eq!((read.len(), unreadable.len()), (2, 1));
    }
}
