//! The event hook receiver's flags.

use super::HookConfig;
use super::secret::HeaderSecret;
use crate::https::TlsFiles;
use crate::leader_endpoint::{LeaderEndpoint, PodIdentity};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Okta event hook")]
pub struct HookArgs {
    /// Receive Okta's event hook (HTTPS, GET and POST /okta/event-hook) on this address;
    /// off without it. Needs the certificate, its key and the secret file.
    #[arg(long, env = "EVENT_HOOK_ADDRESS", requires_all = ["event_hook_tls_cert_file", "event_hook_tls_key_file", "event_hook_secret_file"])]
    pub event_hook_address: Option<SocketAddr>,
    /// Its serving certificate (PEM, with the chain; Okta needs one a public CA issued,
    /// or an Ingress in front that has one), read again when it changes.
    #[arg(long, env = "EVENT_HOOK_TLS_CERT_FILE")]
    pub event_hook_tls_cert_file: Option<PathBuf>,
    #[arg(long, env = "EVENT_HOOK_TLS_KEY_FILE")]
    pub event_hook_tls_key_file: Option<PathBuf>,
    /// File holding the value of the header Okta sends (the hook's authScheme.value), one
    /// value per line: during a rotation, both the old and the new. Read again when it
    /// changes.
    #[arg(long, env = "EVENT_HOOK_SECRET_FILE")]
    pub event_hook_secret_file: Option<PathBuf>,
    /// The header Okta sends it in (the hook's authScheme.key).
    #[arg(long, env = "EVENT_HOOK_HEADER", default_value = "Authorization")]
    pub event_hook_header: String,
    /// The largest delivery taken, in bytes (Okta sends at most 50 events in one).
    #[arg(long, env = "EVENT_HOOK_BODY_LIMIT", default_value_t = 1 << 20)]
    pub event_hook_body_limit: usize,
    /// How often the System Log is read while the hook delivers every event before the
    /// log has it (it stays the safety net; back to --okta-system-log-interval as soon
    /// as the log finds an event the hook did not deliver).
    #[arg(long, env = "EVENT_HOOK_SYSTEM_LOG_INTERVAL", default_value = "2m", value_parser = humantime::parse_duration)]
    pub event_hook_system_log_interval: Duration,
    /// The receiver's Service, without a selector, in the operator's namespace: the
    /// leader points its EndpointSlice (`<name>-leader`) at its own Pod, so that Okta's
    /// deliveries reach the replica that acts on them. Needs `--pod-ip`.
    #[arg(long, env = "EVENT_HOOK_SERVICE", requires = "pod_ip")]
    pub event_hook_service: Option<String>,
}

impl HookArgs {
    /// `None` unless an address is given (clap requires the files with it); an error when
    /// the secret file cannot be read or holds no value.
    pub fn into_config(
        self,
        namespace: &str,
        pod: PodIdentity,
    ) -> Result<Option<HookConfig>, String> {
        let HookArgs {
            event_hook_address: Some(address),
            event_hook_tls_cert_file: Some(cert),
            event_hook_tls_key_file: Some(key),
            event_hook_secret_file: Some(secret_file),
            ..
        } = self
        else {
            return Ok(None);
        };
        let secret = HeaderSecret::from_file(secret_file)
            .map_err(|e| format!("the event hook's secret: {e}"))?;
        Ok(Some(HookConfig {
            address,
            files: TlsFiles {
                cert,
                key,
                client_ca: None,
            },
            header: self.event_hook_header,
            secret: Arc::new(secret),
            body_limit: self.event_hook_body_limit,
            system_log_interval: self.event_hook_system_log_interval,
            leader_endpoint: self
                .event_hook_service
                .zip(pod.ip)
                .map(|(service, pod_ip)| LeaderEndpoint {
                    service,
                    namespace: namespace.to_string(),
                    pod_ip,
                    pod_name: pod.name,
                    port: address.port(),
                    port_name: "event-hook".into(),
                }),
        }))
    }
}
