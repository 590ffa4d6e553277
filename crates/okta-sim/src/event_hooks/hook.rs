//! An event hook as the Management API reads and writes it: the request body, its
//! validation (Okta's rules: HTTPS only, event-hook-eligible event types, header-only
//! authentication) and the JSON Okta answers with, which never carries the secret.

use crate::errors::OktaError;
use crate::system_log::Target;
use axum::http::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

/// The event types the simulator accepts in a subscription: the event-hook-eligible types
/// of Okta's catalog that concern users and groups, which include all the simulator's
/// System Log records. `event_hook.*` are not eligible: a failed delivery is logged, never
/// delivered.
pub const ELIGIBLE_EVENT_TYPES: &[&str] = &[
    "group.user_membership.add",
    "group.user_membership.remove",
    "group.lifecycle.create",
    "group.lifecycle.delete",
    "group.profile.update",
    "user.lifecycle.create",
    "user.lifecycle.activate",
    "user.lifecycle.deactivate",
    "user.lifecycle.suspend",
    "user.lifecycle.unsuspend",
    "user.lifecycle.reactivate",
    "user.lifecycle.delete.initiated",
    "user.lifecycle.delete.completed",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Active,
    Inactive,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "ACTIVE",
            Status::Inactive => "INACTIVE",
        }
    }
}

/// The header Okta sends with every request to the hook, as `authScheme` sets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthHeader {
    pub key: String,
    pub value: String,
}

/// Where and how Okta calls the hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub auth: Option<AuthHeader>,
}

impl Channel {
    /// The custom headers, then the authentication header.
    pub fn request_headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(self.auth.iter().map(|a| (a.key.as_str(), a.value.as_str())))
    }
}

/// What a create or replace request asks for, once valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookSpec {
    pub name: String,
    pub description: Option<String>,
    pub events: Vec<String>,
    pub channel: Channel,
}

#[derive(Clone, Debug)]
pub struct EventHook {
    pub id: String,
    pub spec: HookSpec,
    pub status: Status,
    pub verified: bool,
    pub created: String,
    pub created_by: String,
    pub last_updated: String,
}

impl EventHook {
    pub fn is_active(&self) -> bool {
        self.status == Status::Active
    }

    /// Whether events of this type go to the hook now.
    pub fn receives(&self, event_type: &str) -> bool {
        self.is_active() && self.verified && self.spec.events.iter().any(|e| e == event_type)
    }

    /// The hook as the target of a System Log event.
    pub fn target(&self) -> Target {
        Target {
            id: self.id.clone(),
            kind: "EventHook",
            alternate_id: self.spec.channel.uri.clone(),
            display_name: self.spec.name.clone(),
        }
    }

    pub fn to_json(&self, base_url: &str) -> Value {
        let href = format!("{base_url}/api/v1/eventHooks/{}", self.id);
        let lifecycle = |operation: &str| {
            json!({
                "href": format!("{href}/lifecycle/{operation}"),
                "hints": {"allow": ["POST"]},
            })
        };
        let switch = if self.is_active() {
            "deactivate"
        } else {
            "activate"
        };
        let channel = &self.spec.channel;
        let headers: Vec<Value> = channel
            .headers
            .iter()
            .map(|(key, value)| json!({"key": key, "value": value}))
            .collect();
        json!({
            "id": self.id,
            "status": self.status.as_str(),
            "verificationStatus": if self.verified { "VERIFIED" } else { "UNVERIFIED" },
            "name": self.spec.name,
            "description": self.spec.description,
            "created": self.created,
            "createdBy": self.created_by,
            "lastUpdated": self.last_updated,
            "events": {
                "type": "EVENT_TYPE",
                "items": self.spec.events,
                "filter": null,
            },
            "channel": {
                "type": "HTTP",
                "version": "1.0.0",
                "config": {
                    "uri": channel.uri,
                    "headers": headers,
                    "method": "POST",
                    // The secret is write-only.
                    "authScheme": channel.auth.as_ref().map(|a| json!({"type": "HEADER", "key": a.key})),
                },
            },
            "_links": {
                "self": {"href": href, "hints": {"allow": ["GET", "PUT", "DELETE"]}},
                "verify": lifecycle("verify"),
                switch: lifecycle(switch),
            },
        })
    }
}

/// The body of a create or replace request. Read-only fields (`id`, `status`,
/// `verificationStatus`, `created`, ...) are ignored, as Okta ignores them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    events: Option<EventsBody>,
    #[serde(default)]
    channel: Option<ChannelBody>,
}

#[derive(Deserialize)]
struct EventsBody {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    items: Option<Vec<String>>,
    #[serde(default)]
    filter: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChannelBody {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    config: Option<ConfigBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigBody {
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    headers: Option<Vec<Option<HeaderBody>>>,
    #[serde(default)]
    auth_scheme: Option<AuthSchemeBody>,
}

#[derive(Deserialize)]
struct HeaderBody {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
struct AuthSchemeBody {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

/// Collects every problem of a request, as Okta lists them in `errorCauses`.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, field: &str, problem: impl std::fmt::Display) {
        self.0.push(format!("{field}: {problem}"));
    }

    fn require<'a>(&mut self, field: &str, value: &'a Option<String>) -> &'a str {
        match value.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => text,
            _ => {
                self.add(field, "The field cannot be left blank");
                ""
            }
        }
    }

    fn must_be(&mut self, field: &str, value: &Option<String>, wanted: &str) {
        if value.as_deref() != Some(wanted) {
            self.add(
                field,
                format!(
                    "'{}' is not supported; the only value is {wanted}",
                    value.as_deref().unwrap_or_default()
                ),
            );
        }
    }
}

impl HookBody {
    /// The hook this body describes. `previous_auth` is the hook's current authentication
    /// header: a replace that names the same header without a value keeps its secret,
    /// since no client can read it back to send it again.
    pub fn validate(self, previous_auth: Option<&AuthHeader>) -> Result<HookSpec, OktaError> {
        let mut problems = Problems::default();
        let name = problems.require("name", &self.name).to_string();
        let events = match self.events {
            None => {
                problems.add("events", "The field cannot be left blank");
                Vec::new()
            }
            Some(events) => validate_events(events, &mut problems),
        };
        let channel = match self.channel {
            None => {
                problems.add("channel", "The field cannot be left blank");
                None
            }
            Some(channel) => validate_channel(channel, previous_auth, &mut problems),
        };
        match channel {
            Some(channel) if problems.0.is_empty() => Ok(HookSpec {
                name,
                description: self.description,
                events,
                channel,
            }),
            _ => Err(OktaError::validation_causes(problems.0)),
        }
    }
}

fn validate_events(events: EventsBody, problems: &mut Problems) -> Vec<String> {
    problems.must_be("events.type", &events.kind, "EVENT_TYPE");
    if events.filter.as_ref().is_some_and(|f| !f.is_null()) {
        problems.add(
            "events.filter",
            "event hook filters (an Early Access feature) are not supported",
        );
    }
    let items = events.items.unwrap_or_default();
    if items.is_empty() {
        problems.add("events.items", "subscribe to at least one event type");
    }
    for item in &items {
        if !ELIGIBLE_EVENT_TYPES.contains(&item.as_str()) {
            problems.add(
                "events.items",
                format!("'{item}' is not an event type eligible for event hooks"),
            );
        }
    }
    items
}

fn validate_channel(
    channel: ChannelBody,
    previous_auth: Option<&AuthHeader>,
    problems: &mut Problems,
) -> Option<Channel> {
    problems.must_be("channel.type", &channel.kind, "HTTP");
    problems.must_be("channel.version", &channel.version, "1.0.0");
    let Some(config) = channel.config else {
        problems.add("channel.config", "The field cannot be left blank");
        return None;
    };
    let uri = problems
        .require("channel.config.uri", &config.uri)
        .to_string();
    if !uri.is_empty() {
        check_uri(&uri, problems);
    }
    let mut headers = Vec::new();
    for header in config.headers.unwrap_or_default().into_iter().flatten() {
        let key = header.key.unwrap_or_default();
        let value = header.value.unwrap_or_default();
        check_header("channel.config.headers", &key, &value, problems);
        headers.push((key, value));
    }
    let auth = config
        .auth_scheme
        .and_then(|scheme| validate_auth(scheme, previous_auth, problems));
    Some(Channel { uri, headers, auth })
}

fn check_uri(uri: &str, problems: &mut Problems) {
    match url::Url::parse(uri) {
        Err(e) => problems.add("channel.config.uri", format!("'{uri}' is not a URL: {e}")),
        Ok(url) if url.scheme() != "https" => problems.add(
            "channel.config.uri",
            format!("'{uri}' is not an HTTPS URL: Okta calls event hooks over HTTPS only"),
        ),
        Ok(_) => {}
    }
}

fn check_header(field: &str, key: &str, value: &str, problems: &mut Problems) {
    if HeaderName::from_bytes(key.as_bytes()).is_err() {
        problems.add(field, format!("'{key}' is not a valid HTTP header name"));
    }
    if HeaderValue::from_str(value).is_err() {
        problems.add(
            field,
            format!("the value of '{key}' is not a valid HTTP header value"),
        );
    }
}

fn validate_auth(
    scheme: AuthSchemeBody,
    previous_auth: Option<&AuthHeader>,
    problems: &mut Problems,
) -> Option<AuthHeader> {
    problems.must_be("channel.config.authScheme.type", &scheme.kind, "HEADER");
    let key = problems
        .require("channel.config.authScheme.key", &scheme.key)
        .to_string();
    let value = match scheme.value {
        Some(value) => value,
        None => match previous_auth {
            Some(previous) if previous.key.eq_ignore_ascii_case(&key) => previous.value.clone(),
            _ => {
                problems.add(
                    "channel.config.authScheme.value",
                    "The field cannot be left blank",
                );
                String::new()
            }
        },
    };
    if !key.is_empty() {
        check_header("channel.config.authScheme", &key, &value, problems);
    }
    Some(AuthHeader { key, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> HookBody {
        serde_json::from_value(value).expect("body")
    }

    fn valid() -> Value {
        json!({
            "name": "membership",
            "events": {"type": "EVENT_TYPE", "items": ["group.user_membership.add"]},
            "channel": {
                "type": "HTTP",
                "version": "1.0.0",
                "config": {
                    "uri": "https://hooks.example.com/okta",
                    "headers": [{"key": "X-Other", "value": "other"}],
                    "authScheme": {"type": "HEADER", "key": "Authorization", "value": "secret"},
                },
            },
        })
    }

    fn causes(error: OktaError) -> Vec<String> {
        assert_eq!(error.code, "E0000001");
        error.causes
    }

    #[test]
    fn a_valid_body_gives_the_hook_with_its_headers() {
        let spec = body(valid()).validate(None).expect("valid");
        let headers: Vec<_> = spec.channel.request_headers().collect();
        assert_eq!(
            headers,
            [("X-Other", "other"), ("Authorization", "secret")],
            "custom headers, then authentication"
        );
    }

    #[test]
    fn http_uris_and_ineligible_event_types_are_refused_with_every_cause() {
        let mut request = valid();
        request["channel"]["config"]["uri"] = json!("http://hooks.example.com/okta");
        request["events"]["items"] = json!(["user.session.start", "group.user_membership.add"]);
        let causes = causes(body(request).validate(None).expect_err("refused"));
        assert_eq!(causes.len(), 2, "{causes:?}");
        assert!(causes[0].contains("user.session.start"), "{causes:?}");
        assert!(causes[1].contains("HTTPS only"), "{causes:?}");
    }

    #[test]
    fn a_replace_without_the_secret_keeps_it_for_the_same_header() {
        let previous = AuthHeader {
            key: "Authorization".into(),
            value: "kept".into(),
        };
        let mut request = valid();
        request["channel"]["config"]["authScheme"] =
            json!({"type": "HEADER", "key": "authorization"});
        let spec = body(request.clone())
            .validate(Some(&previous))
            .expect("valid");
        assert_eq!(spec.channel.auth.map(|a| a.value).as_deref(), Some("kept"));
        assert!(body(request).validate(None).is_err(), "a new hook needs it");
    }

    #[test]
    fn the_secret_is_never_answered() {
        let hook = EventHook {
            id: "who1".into(),
            spec: body(valid()).validate(None).expect("valid"),
            status: Status::Active,
            verified: false,
            created: "t".into(),
            created_by: "okta-sim".into(),
            last_updated: "t".into(),
        };
        let answer = hook.to_json("https://org");
        assert_eq!(
            answer["channel"]["config"]["authScheme"],
            json!({"type": "HEADER", "key": "Authorization"})
        );
        assert!(!answer.to_string().contains("secret"));
        assert!(answer["_links"]["deactivate"]["href"].is_string());
    }
}
