//! What an admin does to register an event hook, done over the simulator's own
//! Management API (HTTPS, an SSWS token): create it, then verify it. For tests, the demo
//! and the benchmark, which would otherwise each write the same calls.

use crate::OktaSim;
use serde_json::{Value, json};

/// The admin token the registration uses, issued on first use.
const ADMIN_TOKEN: &str = "00sim-event-hook-admin";

/// An event hook to register.
pub struct HookRegistration<'a> {
    pub name: &'a str,
    pub uri: &'a str,
    /// The header Okta sends (`authScheme.key`) and its value.
    pub header: &'a str,
    pub secret: &'a str,
    pub event_types: &'a [&'a str],
}

impl OktaSim {
    /// Creates the hook and verifies it through the Management API, as an admin would;
    /// returns the verified hook as the API answers it. The receiver must be listening,
    /// with a certificate the simulator trusts ([`OktaSim::trust_hook_roots`]).
    pub async fn register_event_hook(&self, hook: HookRegistration<'_>) -> Result<Value, String> {
        self.issue_api_token("event hook admin", ADMIN_TOKEN, None);
        let ca = self.ca_pem().ok_or("the simulator serves plain HTTP")?;
        let config = okta_rbac_pki::client_config_trusting(&[ca])?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        let call = |request: reqwest::RequestBuilder| async move {
            let response = request
                .header("Authorization", format!("SSWS {ADMIN_TOKEN}"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let body: Value = response.json().await.map_err(|e| e.to_string())?;
            if status.is_success() {
                Ok(body)
            } else {
                Err(format!("{status}: {body}"))
            }
        };
        let base = self.base_url();
        let created = call(client.post(format!("{base}/api/v1/eventHooks")).json(&json!({
            "name": hook.name,
            "events": {"type": "EVENT_TYPE", "items": hook.event_types},
            "channel": {
                "type": "HTTP",
                "version": "1.0.0",
                "config": {
                    "uri": hook.uri,
                    "authScheme": {"type": "HEADER", "key": hook.header, "value": hook.secret},
                },
            },
        })))
        .await
        .map_err(|e| format!("creating the event hook: {e}"))?;
        let id = created["id"].as_str().ok_or("the event hook has no id")?;
        call(client.post(format!("{base}/api/v1/eventHooks/{id}/lifecycle/verify")))
            .await
            .map_err(|e| format!("verifying the event hook: {e}"))
    }
}
