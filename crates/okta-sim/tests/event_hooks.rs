//! Okta's Event Hooks over real HTTPS: the Management API's shapes, rules and errors,
//! the one-time verification, deliveries of System Log events to an HTTPS receiver with
//! a certificate of its own (body, headers, batching, retries, the 3 s timeout, the
//! `event_hook.delivery` failure log), and each injected delivery fault.

mod hook_receiver;

use hook_receiver::{Receiver, Reply};
use okta_sim::seed::{SeedApiToken, SeedGroup, SeedUser};
use okta_sim::{
    AttemptOutcome, EventHookFaults, EventHookSettings, GroupType, OktaSim, Seed, SimOptions,
    UserStatus,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ADMIN: &str = "00hooks-admin";
const HOOK_READER: &str = "00hooks-reader";
const HOOK_MANAGER: &str = "00hooks-manager";
const SECRET: &str = "Basic c2VjcmV0OnZhbHVl";
const MEMBERSHIP_ADD: &str = "group.user_membership.add";

fn seed() -> Seed {
    let users: Vec<SeedUser> = (0..60)
        .map(|i| SeedUser {
            login: format!("user{i:02}@example.com"),
            email: None,
            first_name: None,
            last_name: None,
            status: UserStatus::Active,
            password: None,
        })
        .collect();
    let token = |name: &str, token: &str, scopes: Option<&[&str]>| SeedApiToken {
        name: name.into(),
        token: token.into(),
        scopes: scopes.map(|s| s.iter().map(|s| s.to_string()).collect()),
    };
    Seed {
        users,
        groups: vec![SeedGroup {
            name: "k8s-ops".into(),
            group_type: GroupType::OktaGroup,
            description: None,
            members: vec![],
        }],
        api_tokens: vec![
            token("admin", ADMIN, None),
            token("hook reader", HOOK_READER, Some(&["okta.eventHooks.read"])),
            token(
                "hook manager",
                HOOK_MANAGER,
                Some(&["okta.eventHooks.manage"]),
            ),
        ],
        ..Default::default()
    }
}

/// A simulator, a client of it, and a receiver it trusts.
struct Org {
    sim: OktaSim,
    http: reqwest::Client,
    receiver: Receiver,
    group: String,
}

impl Org {
    async fn start() -> Self {
        let sim = OktaSim::start(SimOptions::new(seed()))
            .await
            .expect("simulator");
        let config = okta_rbac_pki::client_config_trusting(&[sim.ca_pem().expect("HTTPS")])
            .expect("TLS config");
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .no_proxy()
            .build()
            .expect("client");
        let receiver = Receiver::start().await;
        sim.trust_hook_roots(&receiver.ca_pem).expect("trusted");
        let group = sim
            .group_id("k8s-ops", GroupType::OktaGroup)
            .expect("group");
        Self {
            sim,
            http,
            receiver,
            group,
        }
    }

    /// With a short timeout, for tests where waiting is not the point.
    async fn quick() -> Self {
        let org = Self::start().await;
        org.sim.set_event_hook_settings(EventHookSettings {
            timeout_ms: 500,
            ..Default::default()
        });
        org
    }

    async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.sim.base_url()))
            .header("Authorization", format!("SSWS {token}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn api(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(ADMIN, method, path, body).await
    }

    async fn create(&self, body: Value) -> Value {
        let (status, hook) = self
            .api(Method::POST, "/api/v1/eventHooks", Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{hook}");
        hook
    }

    async fn lifecycle(&self, id: &str, operation: &str) -> (StatusCode, Value) {
        self.api(
            Method::POST,
            &format!("/api/v1/eventHooks/{id}/lifecycle/{operation}"),
            None,
        )
        .await
    }

    /// A hook on the receiver for these events, verified (the verification request
    /// consumed) and ACTIVE.
    async fn verified_hook(&mut self, events: &[&str]) -> String {
        let hook = self.create(hook_body(&self.receiver.url, events)).await;
        let id = hook["id"].as_str().expect("id").to_string();
        let (status, verified) = self.lifecycle(&id, "verify").await;
        assert_eq!(status, StatusCode::OK, "{verified}");
        assert_eq!(self.receiver.next().await.method, Method::GET);
        id
    }

    fn add(&self, user: usize) {
        self.sim
            .add_member(&self.group, &format!("user{user:02}@example.com"))
            .expect("member added");
    }

    /// The System Log's events of this type, as `GET /api/v1/logs` answers them.
    async fn logged(&self, event_type: &str) -> Vec<Value> {
        let response = self
            .http
            .get(format!("{}/api/v1/logs", self.sim.base_url()))
            .query(&[("filter", format!("eventType eq \"{event_type}\""))])
            .header("Authorization", format!("SSWS {ADMIN}"))
            .send()
            .await
            .expect("logs");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("events")
    }

    /// Waits until the System Log has an event of this type (polling slowly: the
    /// System Log's bucket allows 60 requests a minute).
    async fn wait_logged(&self, event_type: &str) -> Vec<Value> {
        for _ in 0..40 {
            let events = self.logged(event_type).await;
            if !events.is_empty() {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("no {event_type} in the System Log within 10 s");
    }

    /// The delivery attempts, once there are `count` of them: the receiver sees a
    /// request before the simulator has its answer.
    async fn deliveries(&self, count: usize) -> Vec<okta_sim::DeliveryRecord> {
        for _ in 0..200 {
            let records = self.sim.hook_deliveries();
            if records.len() >= count {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fewer than {count} delivery attempts within 10 s");
    }
}

fn hook_body(uri: &str, events: &[&str]) -> Value {
    json!({
        "name": "membership changes",
        "events": {"type": "EVENT_TYPE", "items": events},
        "channel": {
            "type": "HTTP",
            "version": "1.0.0",
            "config": {
                "uri": uri,
                "headers": [{"key": "X-Other-Header", "value": "other-value"}],
                "authScheme": {"type": "HEADER", "key": "Authorization", "value": SECRET},
            },
        },
    })
}

fn error_code(body: &Value) -> &str {
    body["errorCode"].as_str().unwrap_or_default()
}

fn causes(body: &Value) -> String {
    body["errorCauses"].to_string()
}

#[tokio::test]
async fn hooks_are_created_listed_read_replaced_and_deleted_in_okta_s_shape() {
    let org = Org::start().await;
    let hook = org
        .create(hook_body(&org.receiver.url, &[MEMBERSHIP_ADD]))
        .await;
    let id = hook["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("who") && id.len() == 20, "{id}");
    assert_eq!(hook["status"], "ACTIVE");
    assert_eq!(hook["verificationStatus"], "UNVERIFIED");
    assert_eq!(hook["name"], "membership changes");
    assert_eq!(
        hook["events"],
        json!({"type": "EVENT_TYPE", "items": [MEMBERSHIP_ADD], "filter": null})
    );
    assert_eq!(
        hook["channel"],
        json!({
            "type": "HTTP",
            "version": "1.0.0",
            "config": {
                "uri": org.receiver.url,
                "headers": [{"key": "X-Other-Header", "value": "other-value"}],
                "method": "POST",
                "authScheme": {"type": "HEADER", "key": "Authorization"},
            },
        }),
        "the secret is never answered"
    );
    assert!(hook["created"].is_string() && hook["lastUpdated"].is_string());
    assert!(hook["createdBy"].is_string());
    let href = format!("{}/api/v1/eventHooks/{id}", org.sim.base_url());
    assert_eq!(hook["_links"]["self"]["href"], href);
    assert_eq!(
        hook["_links"]["verify"]["href"],
        format!("{href}/lifecycle/verify")
    );
    assert_eq!(
        hook["_links"]["deactivate"]["href"],
        format!("{href}/lifecycle/deactivate")
    );

    let (status, list) = org
        .call(HOOK_READER, Method::GET, "/api/v1/eventHooks", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([hook]));
    let (status, read) = org
        .call(
            HOOK_READER,
            Method::GET,
            &format!("/api/v1/eventHooks/{id}"),
            None,
        )
        .await;
    assert_eq!((status, &read), (StatusCode::OK, &hook));

    // A replace that does not repeat the secret keeps it.
    let mut replacement = hook_body(
        &org.receiver.url,
        &[MEMBERSHIP_ADD, "group.lifecycle.create"],
    );
    replacement["name"] = json!("renamed");
    replacement["channel"]["config"]["authScheme"] =
        json!({"type": "HEADER", "key": "Authorization"});
    let (status, replaced) = org
        .call(
            HOOK_MANAGER,
            Method::PUT,
            &format!("/api/v1/eventHooks/{id}"),
            Some(replacement),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["name"], "renamed");
    assert_eq!(
        replaced["events"]["items"].as_array().map(Vec::len),
        Some(2)
    );
    assert!(!replaced.to_string().contains(SECRET));

    let (status, refused) = org
        .api(Method::DELETE, &format!("/api/v1/eventHooks/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&refused), "E0000001");
    assert!(causes(&refused).contains("INACTIVE"), "{refused}");

    let (status, deactivated) = org.lifecycle(&id, "deactivate").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deactivated["status"], "INACTIVE");
    assert_eq!(
        deactivated["_links"]["activate"]["href"],
        format!("{href}/lifecycle/activate")
    );
    let (status, _) = org
        .api(Method::DELETE, &format!("/api/v1/eventHooks/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, gone) = org
        .api(Method::GET, &format!("/api/v1/eventHooks/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&gone), "E0000007");

    for (event_type, count) in [
        ("event_hook.created", 1),
        ("event_hook.updated", 1),
        ("event_hook.deactivated", 1),
        ("event_hook.deleted", 1),
    ] {
        let events = org.logged(event_type).await;
        assert_eq!(events.len(), count, "{event_type}");
        assert_eq!(events[0]["target"][0]["id"], id.as_str());
        assert_eq!(events[0]["target"][0]["type"], "EventHook");
    }
    let requests = org.sim.requests();
    assert!(
        requests
            .iter()
            .filter(|r| r.path.starts_with("/api/v1/eventHooks"))
            .all(|r| r.bucket == Some("event-hooks")),
        "the Event Hooks API has a rate-limit bucket of its own"
    );
}

#[tokio::test]
async fn invalid_hooks_and_callers_without_the_scope_are_refused_as_okta_refuses_them() {
    let org = Org::start().await;
    let insecure = hook_body("http://127.0.0.1:9/okta/events", &[MEMBERSHIP_ADD]);
    let (status, refused) = org
        .api(Method::POST, "/api/v1/eventHooks", Some(insecure))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&refused), "E0000001");
    assert!(causes(&refused).contains("HTTPS only"), "{refused}");

    let ineligible = hook_body(
        &org.receiver.url,
        &["event_hook.delivery", "user.session.start"],
    );
    let (status, refused) = org
        .api(Method::POST, "/api/v1/eventHooks", Some(ineligible))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused["errorCauses"].as_array().map(Vec::len),
        Some(2),
        "one cause per ineligible type: {refused}"
    );
    assert!(causes(&refused).contains("not an event type eligible for event hooks"));

    let mut nameless = hook_body(&org.receiver.url, &[MEMBERSHIP_ADD]);
    nameless["name"] = json!(" ");
    let (_, refused) = org
        .api(Method::POST, "/api/v1/eventHooks", Some(nameless))
        .await;
    assert!(causes(&refused).contains("name: The field cannot be left blank"));

    let response = org
        .http
        .post(format!("{}/api/v1/eventHooks", org.sim.base_url()))
        .header("Authorization", format!("SSWS {ADMIN}"))
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("error");
    assert_eq!(error_code(&body), "E0000003");

    let (status, missing) = org.lifecycle("who00000000000000000", "activate").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&missing), "E0000007");

    let (status, forbidden) = org
        .call(
            HOOK_READER,
            Method::POST,
            "/api/v1/eventHooks",
            Some(hook_body(&org.receiver.url, &[MEMBERSHIP_ADD])),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "reading is not managing");
    assert_eq!(error_code(&forbidden), "E0000006");
    let (status, _) = org
        .call("00nobody", Method::GET, "/api/v1/eventHooks", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_26th_active_hook_is_refused() {
    let org = Org::start().await;
    let mut ids = Vec::new();
    for _ in 0..okta_sim::event_hooks::MAX_ACTIVE {
        let hook = org
            .create(hook_body(&org.receiver.url, &[MEMBERSHIP_ADD]))
            .await;
        ids.push(hook["id"].as_str().expect("id").to_string());
    }
    assert_eq!(ids.len(), 25);
    let (status, refused) = org
        .api(
            Method::POST,
            "/api/v1/eventHooks",
            Some(hook_body(&org.receiver.url, &[MEMBERSHIP_ADD])),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&refused), "E0000001");
    assert!(
        causes(&refused).contains("25 ACTIVE event hooks"),
        "{refused}"
    );

    let (status, _) = org.lifecycle(&ids[0], "deactivate").await;
    assert_eq!(status, StatusCode::OK);
    org.create(hook_body(&org.receiver.url, &[MEMBERSHIP_ADD]))
        .await;
    let (status, refused) = org.lifecycle(&ids[0], "activate").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "activating a 26th");
    assert!(
        causes(&refused).contains("25 ACTIVE event hooks"),
        "{refused}"
    );
}

#[tokio::test]
async fn verification_echoes_the_challenge_sent_with_the_registered_headers() {
    let mut org = Org::quick().await;
    let hook = org
        .create(hook_body(&org.receiver.url, &[MEMBERSHIP_ADD]))
        .await;
    let id = hook["id"].as_str().expect("id");
    let (status, verified) = org.lifecycle(id, "verify").await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    assert_eq!(verified["verificationStatus"], "VERIFIED");
    assert_eq!(verified["id"], id);
    let request = org.receiver.next().await;
    assert_eq!(request.method, Method::GET);
    let challenge = request
        .header("x-okta-verification-challenge")
        .expect("a challenge");
    assert!(challenge.len() >= 32, "random: {challenge}");
    assert_eq!(request.header("authorization"), Some(SECRET));
    assert_eq!(request.header("x-other-header"), Some("other-value"));
    let logged = org.logged("event_hook.verified").await;
    assert_eq!(logged[0]["outcome"]["result"], "SUCCESS");
}

#[tokio::test]
async fn a_hook_that_does_not_answer_the_challenge_stays_unverified_and_gets_no_events() {
    let mut org = Org::quick().await;
    let hook = org
        .create(hook_body(&org.receiver.url, &[MEMBERSHIP_ADD]))
        .await;
    let id = hook["id"].as_str().expect("id");
    org.receiver
        .script(&[Reply::WrongChallenge, Reply::Status(500)]);
    for _ in 0..2 {
        let (status, refused) = org.lifecycle(id, "verify").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error_code(&refused), "E0000001");
        assert!(causes(&refused).contains("Verification"), "{refused}");
        org.receiver.next().await;
    }
    let (_, read) = org
        .api(Method::GET, &format!("/api/v1/eventHooks/{id}"), None)
        .await;
    assert_eq!(read["verificationStatus"], "UNVERIFIED");

    // An endpoint whose certificate the simulator does not trust fails too.
    let untrusted = Receiver::start().await;
    let other = org
        .create(hook_body(&untrusted.url, &[MEMBERSHIP_ADD]))
        .await;
    let (status, refused) = org
        .lifecycle(other["id"].as_str().expect("id"), "verify")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        causes(&refused).to_lowercase().contains("certificate"),
        "{refused}"
    );

    org.add(1);
    assert!(
        org.receiver
            .next_within(Duration::from_millis(500))
            .await
            .is_none(),
        "an UNVERIFIED hook gets no events"
    );
    let failed = org.logged("event_hook.verified").await;
    assert!(failed.iter().all(|e| e["outcome"]["result"] == "FAILURE"));
}

#[tokio::test]
async fn a_membership_change_is_delivered_with_the_documented_body_and_headers() {
    let mut org = Org::quick().await;
    let id = org.verified_hook(&[MEMBERSHIP_ADD]).await;
    org.add(7);
    let delivery = org.receiver.next().await;
    assert_eq!(delivery.method, Method::POST);
    assert_eq!(delivery.header("content-type"), Some("application/json"));
    assert_eq!(delivery.header("authorization"), Some(SECRET));
    assert_eq!(delivery.header("x-other-header"), Some("other-value"));
    let body = &delivery.body;
    assert_eq!(body["eventType"], "com.okta.event_hook");
    assert_eq!(body["eventTypeVersion"], "1.0");
    assert_eq!(body["cloudEventsVersion"], "0.1");
    assert_eq!(body["contentType"], "application/json");
    assert_eq!(
        body["source"],
        format!("{}/api/v1/eventHooks/{id}", org.sim.base_url())
    );
    let event_id = body["eventId"].as_str().expect("eventId");
    assert_eq!(event_id.len(), 36, "a UUID: {event_id}");
    assert!(
        time::OffsetDateTime::parse(
            body["eventTime"].as_str().expect("eventTime"),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );
    let logged = org.logged(MEMBERSHIP_ADD).await;
    assert_eq!(
        delivery.events(),
        logged,
        "the LogEvent exactly as GET /api/v1/logs answers it"
    );
    let event = &logged[0];
    assert_eq!(event["target"][0]["alternateId"], "user07@example.com");
    assert_eq!(event["target"][1]["id"], org.group.as_str());

    let records = org.deliveries(1).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].hook_id, id);
    assert_eq!(records[0].event_id, event_id);
    assert_eq!(records[0].event_uuids, delivery.event_uuids());
    assert_eq!(
        (records[0].attempt, &records[0].outcome),
        (1, &AttemptOutcome::Status(200))
    );
}

#[tokio::test]
async fn events_recorded_close_together_share_a_delivery_of_at_most_50() {
    let mut org = Org::quick().await;
    org.sim.set_event_hook_settings(EventHookSettings {
        timeout_ms: 500,
        batch_window_ms: 300,
    });
    org.verified_hook(&[MEMBERSHIP_ADD, "user.lifecycle.suspend"])
        .await;
    org.add(0);
    org.add(1);
    org.sim
        .user_lifecycle("user02@example.com", okta_sim::Lifecycle::Suspend)
        .expect("suspended");
    org.sim
        .rename_group(&org.group, "k8s-ops-renamed")
        .expect("renamed: an event the hook is not subscribed to");
    let delivery = org.receiver.next().await;
    let types: Vec<Value> = delivery
        .events()
        .iter()
        .map(|e| e["eventType"].clone())
        .collect();
    assert_eq!(
        types,
        [MEMBERSHIP_ADD, MEMBERSHIP_ADD, "user.lifecycle.suspend"],
        "one delivery, in the order logged"
    );

    for user in 3..60 {
        org.add(user);
    }
    let first = org.receiver.next().await;
    let second = org.receiver.next().await;
    assert_eq!(
        first.events().len(),
        okta_sim::event_hooks::MAX_EVENTS_PER_DELIVERY
    );
    assert_eq!(second.events().len(), 7);
    assert_eq!(
        first.events()[0]["target"][0]["alternateId"],
        "user03@example.com"
    );
    assert_eq!(
        second.events()[6]["target"][0]["alternateId"],
        "user59@example.com"
    );
}

#[tokio::test]
async fn a_5xx_is_retried_once_and_then_delivered() {
    let mut org = Org::quick().await;
    org.verified_hook(&[MEMBERSHIP_ADD]).await;
    org.receiver.script(&[Reply::Status(503)]);
    org.add(1);
    let first = org.receiver.next().await;
    let retry = org.receiver.next().await;
    assert_eq!(first.body, retry.body, "the same delivery, same eventId");
    let outcomes: Vec<(u32, AttemptOutcome)> = org
        .deliveries(2)
        .await
        .into_iter()
        .map(|d| (d.attempt, d.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            (1, AttemptOutcome::Status(503)),
            (2, AttemptOutcome::Status(200))
        ]
    );
    assert!(
        org.receiver
            .next_within(Duration::from_millis(300))
            .await
            .is_none()
    );
    assert!(org.logged("event_hook.delivery").await.is_empty());
}

#[tokio::test]
async fn a_4xx_is_never_retried_and_the_failure_is_in_the_system_log() {
    let mut org = Org::quick().await;
    let id = org.verified_hook(&[MEMBERSHIP_ADD]).await;
    org.receiver.script(&[Reply::Status(400)]);
    org.add(1);
    org.receiver.next().await;
    assert!(
        org.receiver
            .next_within(Duration::from_millis(700))
            .await
            .is_none(),
        "no retry after a 4xx"
    );
    let failures = org.wait_logged("event_hook.delivery").await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["outcome"]["result"], "FAILURE");
    assert!(
        failures[0]["outcome"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("400"))
    );
    assert_eq!(failures[0]["target"][0]["id"], id.as_str());
    assert_eq!(failures[0]["target"][0]["type"], "EventHook");
    let records = org.deliveries(1).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, AttemptOutcome::Status(400));
}

#[tokio::test]
async fn a_receiver_that_never_answers_is_given_up_after_3_s_and_tried_once_more() {
    let mut org = Org::start().await;
    assert_eq!(org.sim.event_hook_settings().timeout_ms, 3_000, "Okta's");
    let settings: Value = org
        .http
        .get(format!("{}/_sim/eventHooks/settings", org.sim.base_url()))
        .send()
        .await
        .expect("settings")
        .json()
        .await
        .expect("JSON");
    assert_eq!(settings, json!({"timeoutMs": 3000, "batchWindowMs": 50}));
    org.verified_hook(&[MEMBERSHIP_ADD]).await;
    org.receiver.script(&[Reply::Hang, Reply::Hang]);

    let started = Instant::now();
    let response = org
        .http
        .put(format!(
            "{}/_sim/groups/{}/members/user01@example.com",
            org.sim.base_url(),
            org.group
        ))
        .send()
        .await
        .expect("membership change");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a delivery never holds up the change that caused it"
    );

    let records = org.deliveries(2).await;
    assert_eq!(records.len(), 2, "{records:?}");
    for (attempt, record) in records.iter().enumerate() {
        assert_eq!(record.attempt as usize, attempt + 1);
        assert_eq!(
            record.outcome,
            AttemptOutcome::Error("no answer within 3000 ms".into())
        );
        let waited = record.finished_ms - record.started_ms;
        assert!((3_000..4_000).contains(&waited), "waited {waited} ms");
    }
    let failures = org.wait_logged("event_hook.delivery").await;
    assert_eq!(failures[0]["outcome"]["result"], "FAILURE");
    assert!(
        failures[0]["outcome"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no answer within 3000 ms"))
    );
}

#[tokio::test]
async fn a_late_delivery_waits_the_injected_delay() {
    let mut org = Org::quick().await;
    org.verified_hook(&[MEMBERSHIP_ADD]).await;
    org.sim.set_event_hook_faults(EventHookFaults {
        delay_ms: 800,
        ..Default::default()
    });
    let changed = Instant::now();
    org.add(1);
    let delivery = org.receiver.next().await;
    assert!(delivery.at - changed >= Duration::from_millis(800));
}

#[tokio::test]
async fn a_duplicated_delivery_arrives_twice_with_the_same_event_id() {
    let mut org = Org::quick().await;
    org.verified_hook(&[MEMBERSHIP_ADD]).await;
    org.sim.set_event_hook_faults(EventHookFaults {
        duplicate_every: 1,
        ..Default::default()
    });
    org.add(1);
    let first = org.receiver.next().await;
    let copy = org.receiver.next().await;
    assert_eq!(first.body, copy.body);
    let duplicates: Vec<bool> = org
        .deliveries(2)
        .await
        .iter()
        .map(|d| d.duplicate)
        .collect();
    assert_eq!(duplicates, [false, true]);
}

#[tokio::test]
async fn a_reordered_delivery_arrives_after_the_next_one_or_alone_after_the_hold() {
    let mut org = Org::quick().await;
    org.verified_hook(&[MEMBERSHIP_ADD]).await;
    let faults = json!({"reorderEvery": 1, "reorderHoldMs": 5000});
    let response = org
        .http
        .put(format!("{}/_sim/eventHooks/faults", org.sim.base_url()))
        .json(&faults)
        .send()
        .await
        .expect("faults");
    assert_eq!(response.status(), StatusCode::OK);
    org.add(1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    org.add(2);
    let first = org.receiver.next().await;
    let second = org.receiver.next().await;
    let login = |d: &hook_receiver::Received| d.events()[0]["target"][0]["alternateId"].clone();
    assert_eq!(
        (login(&first), login(&second)),
        (json!("user02@example.com"), json!("user01@example.com")),
        "the first change arrives second"
    );

    org.sim.set_event_hook_faults(EventHookFaults {
        reorder_every: 1,
        reorder_hold_ms: 400,
        ..Default::default()
    });
    let changed = Instant::now();
    org.add(3);
    let alone = org.receiver.next().await;
    assert!(alone.at - changed >= Duration::from_millis(400));
}

#[tokio::test]
async fn dropped_deliveries_never_arrive() {
    let mut org = Org::quick().await;
    org.verified_hook(&[MEMBERSHIP_ADD]).await;
    org.sim.set_event_hook_faults(EventHookFaults {
        drop_next: 1,
        ..Default::default()
    });
    org.add(1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    org.add(2);
    let delivery = org.receiver.next().await;
    assert_eq!(
        delivery.events()[0]["target"][0]["alternateId"],
        "user02@example.com"
    );
    let outcomes: Vec<AttemptOutcome> = org
        .deliveries(2)
        .await
        .into_iter()
        .map(|d| d.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [AttemptOutcome::Dropped, AttemptOutcome::Status(200)]
    );

    org.sim.set_event_hook_faults(EventHookFaults {
        drop_every: 2,
        ..Default::default()
    });
    for user in 3..7 {
        org.add(user);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let arrived: Vec<Value> = org
        .receiver
        .all_within(Duration::from_millis(500))
        .await
        .iter()
        .map(|d| d.events()[0]["target"][0]["alternateId"].clone())
        .collect();
    assert_eq!(
        arrived,
        [json!("user03@example.com"), json!("user05@example.com")]
    );
    assert!(
        org.logged("event_hook.delivery").await.is_empty(),
        "silently"
    );
}

#[tokio::test]
async fn the_admin_api_trusts_roots_and_shows_settings_faults_and_deliveries() {
    let mut org = Org::quick().await;
    let base_url = org.sim.base_url().to_string();
    let admin = |path: &str| format!("{base_url}/_sim/eventHooks/{path}");
    let response = org
        .http
        .post(admin("trust"))
        .body("not a certificate")
        .send()
        .await
        .expect("trust");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let other = Receiver::start().await;
    let response = org
        .http
        .post(admin("trust"))
        .body(other.ca_pem.clone())
        .send()
        .await
        .expect("trust");
    assert_eq!(response.status(), StatusCode::OK);
    let hook = org.create(hook_body(&other.url, &[MEMBERSHIP_ADD])).await;
    let (status, _) = org
        .lifecycle(hook["id"].as_str().expect("id"), "verify")
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a root trusted through the admin API"
    );

    let response = org
        .http
        .put(admin("settings"))
        .json(&json!({"timeoutMs": 250, "batchWindowMs": 10}))
        .send()
        .await
        .expect("settings");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(org.sim.event_hook_settings().timeout_ms, 250);

    org.sim.set_event_hook_faults(EventHookFaults {
        drop_next: 3,
        ..Default::default()
    });
    let faults: Value = org
        .http
        .get(admin("faults"))
        .send()
        .await
        .expect("faults")
        .json()
        .await
        .expect("JSON");
    assert_eq!(faults["dropNext"], 3);
    org.http
        .delete(admin("faults"))
        .send()
        .await
        .expect("cleared");
    assert_eq!(org.sim.event_hook_faults(), EventHookFaults::default());

    let id = org.verified_hook(&[MEMBERSHIP_ADD]).await;
    org.add(1);
    org.receiver.next().await;
    org.deliveries(2).await;
    let deliveries: Vec<Value> = org
        .http
        .get(admin("deliveries"))
        .send()
        .await
        .expect("deliveries")
        .json()
        .await
        .expect("JSON");
    let mine = deliveries
        .iter()
        .find(|d| d["hookId"] == id.as_str())
        .expect("a delivery to the receiver");
    assert_eq!(mine["attempt"], 1);
    assert_eq!(mine["outcome"], json!({"status": 200}));
    assert_eq!(deliveries.len(), 2, "both hooks got the event");
    org.http
        .delete(admin("deliveries"))
        .send()
        .await
        .expect("cleared");
    assert!(org.sim.hook_deliveries().is_empty());
}
