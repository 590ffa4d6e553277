//! Okta's user lifecycle over real HTTPS: the User Lifecycle API moves a user only from
//! the statuses Okta allows, the System Log records each move with the user as target,
//! group member lists show each member's status, and the authorization server refuses
//! new tokens and refresh tokens for a user who is not ACTIVE, and serves them again
//! once the user is.

use okta_sim::seed::{SeedApiToken, SeedAuthorizationServer, SeedClient, SeedGroup, SeedUser};
use okta_sim::{GroupType, OktaSim, RateLimitSettings, Seed, SimOptions, UserStatus};
use reqwest::StatusCode;
use serde_json::Value;

const ADMIN: &str = "00lifecycle-admin";
const READER: &str = "00lifecycle-reader";

fn seed() -> Seed {
    let user = |login: &str| SeedUser {
        login: login.into(),
        email: None,
        first_name: None,
        last_name: None,
        status: UserStatus::Active,
        password: Some(format!("{login}-pw")),
    };
    Seed {
        users: vec![user("ann@example.com"), user("ben@example.com")],
        groups: vec![SeedGroup {
            name: "k8s-ops".into(),
            description: None,
            group_type: GroupType::OktaGroup,
            members: vec!["ann@example.com".into(), "ben@example.com".into()],
        }],
        api_tokens: vec![
            SeedApiToken {
                name: "admin".into(),
                token: ADMIN.into(),
                scopes: None,
            },
            SeedApiToken {
                name: "reader".into(),
                token: READER.into(),
                scopes: Some(vec!["okta.users.read".into(), "okta.groups.read".into()]),
            },
        ],
        clients: vec![SeedClient {
            public_key_pem: None,
            scopes: vec![],
            redirect_uris: vec!["http://localhost:8000".into()],
            ..SeedClient::service_app("kubernetes", String::new(), &[])
        }],
        authorization_servers: vec![SeedAuthorizationServer {
            id: "default".into(),
            audience: "api://default".into(),
            groups_claim: Default::default(),
        }],
        rate_limits: RateLimitSettings::default(),
        oauth: Default::default(),
    }
}

struct Org {
    sim: OktaSim,
    http: reqwest::Client,
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
            .build()
            .expect("client");
        Self { sim, http }
    }

    async fn lifecycle(&self, token: &str, user: &str, operation: &str) -> reqwest::Response {
        self.http
            .post(format!(
                "{}/api/v1/users/{user}/lifecycle/{operation}?sendEmail=false",
                self.sim.base_url()
            ))
            .header("authorization", format!("SSWS {token}"))
            .send()
            .await
            .expect("lifecycle")
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.sim.base_url()))
            .header("authorization", format!("SSWS {ADMIN}"))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.expect("json")
    }

    async fn status_of(&self, login: &str) -> String {
        self.get(&format!("/api/v1/users/{login}")).await["status"]
            .as_str()
            .expect("status")
            .to_string()
    }

    /// A password grant with a refresh token: the access token and the refresh token, or
    /// the OAuth error.
    async fn sign_in(&self, login: &str) -> Result<String, String> {
        self.token(&[
            ("grant_type", "password"),
            ("username", login),
            ("password", &format!("{login}-pw")),
            ("scope", "openid groups offline_access"),
        ])
        .await
        .map(|body| body["refresh_token"].as_str().expect("refresh").to_string())
    }

    async fn refresh(&self, refresh_token: &str) -> Result<Value, String> {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    async fn token(&self, fields: &[(&str, &str)]) -> Result<Value, String> {
        let mut form = fields.to_vec();
        form.push(("client_id", "kubernetes"));
        let response = self
            .http
            .post(format!("{}/v1/token", self.sim.issuer("default")))
            .form(&form)
            .send()
            .await
            .expect("token");
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        if status == StatusCode::OK {
            Ok(body)
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            Err(format!(
                "{}: {}",
                body["error"].as_str().unwrap_or_default(),
                body["error_description"].as_str().unwrap_or_default()
            ))
        }
    }

    /// The user lifecycle events of the log: (event type, target user id).
    async fn lifecycle_events(&self) -> Vec<(String, String)> {
        let events = self
            .get("/api/v1/logs?filter=eventType%20sw%20%22user.lifecycle.%22")
            .await;
        events
            .as_array()
            .expect("events")
            .iter()
            .map(|e| {
                (
                    e["eventType"].as_str().expect("type").to_string(),
                    e["target"][0]["id"].as_str().expect("target").to_string(),
                )
            })
            .collect()
    }
}

#[tokio::test]
async fn suspension_refuses_new_tokens_and_refresh_tokens_until_unsuspended_and_is_logged() {
    let org = Org::start().await;
    let ann = org.get("/api/v1/users/ann@example.com").await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let refresh_token = org.sign_in("ann@example.com").await.expect("signed in");

    let refused = org.lifecycle(READER, &ann, "suspend").await;
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "suspending needs okta.users.manage"
    );
    let suspended = org.lifecycle(ADMIN, &ann, "suspend").await;
    assert_eq!(suspended.status(), StatusCode::OK);
    assert_eq!(org.status_of("ann@example.com").await, "SUSPENDED");
    assert_eq!(
        org.sign_in("ann@example.com").await,
        Err("invalid_grant: The credentials provided were invalid.".into()),
        "a sign-in does not tell why"
    );
    assert_eq!(
        org.refresh(&refresh_token).await.map(|_| ()),
        Err("invalid_grant: The user is not active.".into())
    );
    let again = org.lifecycle(ADMIN, &ann, "suspend").await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let error: Value = again.json().await.expect("json");
    assert_eq!(error["errorCode"], "E0000001");
    assert!(
        error["errorCauses"][0]["errorSummary"]
            .as_str()
            .is_some_and(|s| s.contains("SUSPENDED") && s.contains("ACTIVE users")),
        "{error}"
    );

    let group = org
        .sim
        .group_id("k8s-ops", GroupType::OktaGroup)
        .expect("group");
    let members = org.get(&format!("/api/v1/groups/{group}/users")).await;
    let statuses: Vec<(&str, &str)> = members
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["profile"]["login"].as_str().expect("login"),
                m["status"].as_str().expect("status"),
            )
        })
        .collect();
    assert!(
        statuses.contains(&("ann@example.com", "SUSPENDED"))
            && statuses.contains(&("ben@example.com", "ACTIVE")),
        "member lists show each member's status: {statuses:?}"
    );

    let unsuspended = org.lifecycle(ADMIN, "ann@example.com", "unsuspend").await;
    assert_eq!(unsuspended.status(), StatusCode::OK);
    assert!(
        org.refresh(&refresh_token).await.is_ok(),
        "the same refresh token works again"
    );
    assert_eq!(
        org.lifecycle_events().await,
        [
            ("user.lifecycle.suspend".to_string(), ann.clone()),
            ("user.lifecycle.unsuspend".to_string(), ann),
        ]
    );
}

#[tokio::test]
async fn deactivation_activation_and_deletion_follow_okta_s_rules_and_are_logged() {
    let org = Org::start().await;
    let ben = org.get("/api/v1/users/ben@example.com").await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let refresh_token = org.sign_in("ben@example.com").await.expect("signed in");
    let group = org
        .sim
        .group_id("k8s-ops", GroupType::OktaGroup)
        .expect("group");

    assert_eq!(
        org.lifecycle(ADMIN, &ben, "deactivate").await.status(),
        StatusCode::OK
    );
    assert_eq!(org.status_of(&ben).await, "DEPROVISIONED");
    assert!(org.refresh(&refresh_token).await.is_err());
    let members = org.get(&format!("/api/v1/groups/{group}/users")).await;
    assert!(
        members
            .as_array()
            .expect("members")
            .iter()
            .any(|m| m["id"] == ben.as_str() && m["status"] == "DEPROVISIONED"),
        "a deactivated user stays a member, as in Okta: {members}"
    );
    assert_eq!(
        org.lifecycle(ADMIN, &ben, "unsuspend").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        org.lifecycle(ADMIN, &ben, "rename").await.status(),
        StatusCode::NOT_FOUND
    );

    let activated = org.lifecycle(ADMIN, &ben, "activate").await;
    assert_eq!(activated.status(), StatusCode::OK);
    let link: Value = activated.json().await.expect("json");
    assert!(link["activationToken"].is_string(), "{link}");
    assert_eq!(
        org.status_of(&ben).await,
        "ACTIVE",
        "a user with a password is ACTIVE at once"
    );
    assert!(org.refresh(&refresh_token).await.is_ok());

    let delete = || async {
        org.http
            .delete(format!("{}/api/v1/users/{ben}", org.sim.base_url()))
            .header("authorization", format!("SSWS {ADMIN}"))
            .send()
            .await
            .expect("delete")
            .status()
    };
    assert_eq!(delete().await, StatusCode::NO_CONTENT);
    assert_eq!(
        org.status_of(&ben).await,
        "DEPROVISIONED",
        "the first delete deactivates"
    );
    assert_eq!(delete().await, StatusCode::NO_CONTENT);
    let gone = org
        .http
        .get(format!("{}/api/v1/users/{ben}", org.sim.base_url()))
        .header("authorization", format!("SSWS {ADMIN}"))
        .send()
        .await
        .expect("get");
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert!(org.refresh(&refresh_token).await.is_err());
    let members = org.get(&format!("/api/v1/groups/{group}/users")).await;
    assert!(
        !members.to_string().contains(&ben),
        "a deleted user is no member: {members}"
    );
    let events: Vec<String> = org
        .lifecycle_events()
        .await
        .into_iter()
        .map(|(event_type, target)| {
            assert_eq!(target, ben);
            event_type
        })
        .collect();
    assert_eq!(
        events,
        [
            "user.lifecycle.deactivate",
            "user.lifecycle.activate",
            "user.lifecycle.deactivate",
            "user.lifecycle.delete.initiated",
            "user.lifecycle.delete.completed",
        ]
    );
}
