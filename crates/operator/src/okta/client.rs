//! The Okta Management API client: one place that knows Okta's rate limits, errors and
//! pagination. It follows every `Link rel="next"`, never sends into a window it knows is
//! exhausted, holds at most `concurrency` requests in flight, and retries 429, 5xx and
//! timeouts with backoff.

use super::auth::Authenticator;
use super::credentials::Credentials;
use super::dpop::DpopMode;
use super::error::cause_chain;
use super::items::{Item, Items};
use super::ratelimit::{RateLimits, Window, epoch_seconds};
use super::{LogEvent, OktaClaim, OktaError, OktaGroup, OktaUser};
use rand::Rng;
use reqwest::{Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use url::Url;

/// A group search term per name; 50 keep the URL well under Okta's limits.
pub const NAMES_PER_SEARCH: usize = 50;
const GROUPS_PAGE: u32 = 200;
const MEMBERS_PAGE: u32 = 1000;
/// The System Log's largest page.
pub const LOG_PAGE: usize = 1000;
/// Wait this long at most for an exhausted rate-limit window to reset; a longer wait is
/// reported as `RateLimited` (nothing is sent) and the object retried after the reset.
const LONGEST_WAIT: Duration = Duration::from_secs(5);

pub struct OktaConfig {
    pub org_url: Url,
    pub credentials: Arc<Credentials>,
    /// A service app's scopes (an API token's admin has what it has).
    pub scopes: Vec<String>,
    pub dpop: DpopMode,
    pub dpop_key_rotation: Duration,
    /// PEM CA certificates trusted besides the public roots (a private CA, the local Okta).
    pub extra_ca_pem: Option<String>,
    pub concurrency: usize,
    pub request_timeout: Duration,
    pub max_attempts: u32,
    /// The fraction of each rate-limit window this client may spend, in (0, 1].
    pub rate_limit_share: f64,
}

/// What the client tells its observer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Observed {
    /// An answer: bucket (`token` for the token endpoint), HTTP status (0: none) and
    /// `X-Rate-Limit-Remaining`.
    Answer {
        bucket: &'static str,
        status: u16,
        remaining: Option<u64>,
    },
    /// Okta judged the credentials in use: refused or accepted; `changes`: how many times
    /// they changed on disk since the start.
    Credentials { refused: bool, changes: u64 },
    /// Items of a page that could not be read, set aside (see [`super::items`]).
    Unreadable { kind: &'static str, count: usize },
}

type Observer = Arc<dyn Fn(Observed) + Send + Sync>;

pub struct OktaClient {
    http: reqwest::Client,
    org_url: Url,
    auth: Authenticator,
    /// Shared with [`OktaClient::with_credentials`] siblings: one org, one set of limits.
    limits: Arc<RateLimits>,
    in_flight: Arc<Semaphore>,
    request_timeout: Duration,
    max_attempts: u32,
    observer: Option<Observer>,
}

/// The rate-limit bucket of a request, as Okta counts them.
fn bucket(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", "v1", "groups"] => "groups",
        ["api", "v1", "groups", _] => "group",
        ["api", "v1", "groups", _, "users"] => "group-users",
        ["api", "v1", "authorizationServers", ..] => "authorization-servers",
        ["api", "v1", "logs"] => "logs",
        ["api", "v1", "users", ..] => "users",
        _ => "other",
    }
}

fn header_u64(response: &Response, name: &str) -> Option<u64> {
    response
        .headers()
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The `rel="next"` URL of a response, from any of its `Link` header lines.
fn next_link(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|link| link.contains("rel=\"next\""))
        .and_then(|link| {
            Some(
                link.trim()
                    .strip_prefix('<')?
                    .split('>')
                    .next()?
                    .to_string(),
            )
        })
}

/// Requests sent again at once, without counting as an attempt: after a DPoP nonce
/// challenge, or with credentials that changed on disk.
const RESENDS: u32 = 2;

/// Okta's error answer: its error object, or an OAuth error (a DPoP refusal) whose
/// description is the summary.
fn api_error(status: StatusCode, body: serde_json::Value) -> OktaError {
    let text = |key: &str| body[key].as_str().unwrap_or_default().to_string();
    let (code, summary) = match (text("errorCode"), text("error")) {
        (code, _) if !code.is_empty() => (code, text("errorSummary")),
        (_, error) if !error.is_empty() => (error, text("error_description")),
        _ => (String::new(), String::new()),
    };
    OktaError::Api {
        status: status.as_u16(),
        code,
        summary: if summary.is_empty() {
            "no error body".into()
        } else {
            summary
        },
    }
}

/// A resource asking for a DPoP nonce it just handed out.
fn is_nonce_challenge(error: &OktaError) -> bool {
    matches!(error, OktaError::Api { code, .. } if code == "use_dpop_nonce")
}

/// Okta refusing the credentials themselves.
fn is_refusal(error: &OktaError) -> bool {
    matches!(
        error,
        OktaError::Api { status: 401, .. } | OktaError::TokenRefused { .. }
    )
}

fn backoff(attempt: u32) -> Duration {
    let base = 250u64 << attempt.min(6);
    Duration::from_millis(base + rand::thread_rng().gen_range(0..=base / 2))
}

impl OktaClient {
    pub fn new(config: OktaConfig) -> Result<Self, OktaError> {
        let auth = Authenticator::new(
            config.credentials,
            config.scopes,
            &config.org_url,
            config.dpop,
            config.dpop_key_rotation,
        )?;
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = &config.extra_ca_pem {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert =
                    cert.map_err(|e| OktaError::Config(format!("reading the CA file: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| OktaError::Config(format!("adding a CA: {e}")))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| OktaError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(config.org_url.scheme() == "https")
            .user_agent(concat!("okta-rbac-operator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OktaError::Config(e.to_string()))?;
        Ok(Self {
            http,
            auth,
            org_url: config.org_url,
            limits: Arc::new(RateLimits::with_share(config.rate_limit_share)),
            in_flight: Arc::new(Semaphore::new(config.concurrency.max(1))),
            request_timeout: config.request_timeout,
            max_attempts: config.max_attempts.max(1),
            observer: None,
        })
    }

    /// Calls `observe` after every answer and every verdict on the credentials.
    pub fn with_observer(mut self, observe: impl Fn(Observed) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observe));
        self
    }

    /// A client of the same org and credentials asking for other scopes (a service app's
    /// token carries only the scopes asked for, and one not granted fails the whole
    /// request), sharing this one's connections, rate-limit windows, concurrency bound
    /// and observer.
    pub fn with_scopes(&self, scopes: Vec<String>) -> Result<Self, OktaError> {
        Ok(Self {
            http: self.http.clone(),
            org_url: self.org_url.clone(),
            auth: self.auth.with_scopes(scopes)?,
            limits: self.limits.clone(),
            in_flight: self.in_flight.clone(),
            request_timeout: self.request_timeout,
            max_attempts: self.max_attempts,
            observer: self.observer.clone(),
        })
    }

    /// Groups whose name equals one of `names` in Okta's search (which ignores case),
    /// with member counts: one request per [`NAMES_PER_SEARCH`] names, plus its pages.
    pub async fn search_groups(&self, names: &[String]) -> Result<Items<OktaGroup>, OktaError> {
        let expression = names
            .iter()
            .map(|name| {
                format!(
                    "profile.name eq \"{}\"",
                    name.replace('\\', "\\\\").replace('"', "\\\"")
                )
            })
            .collect::<Vec<_>>()
            .join(" or ");
        let mut url = self.url("/api/v1/groups")?;
        url.query_pairs_mut()
            .append_pair("search", &expression)
            .append_pair("expand", "stats")
            .append_pair("limit", &GROUPS_PAGE.to_string());
        self.get_all(url).await
    }

    /// Every member of a group that can be read, all pages (one that cannot is set aside,
    /// so not bound: only a member known to be ACTIVE is).
    pub async fn group_members(&self, group_id: &str) -> Result<Vec<OktaUser>, OktaError> {
        let mut url = self.url(&format!("/api/v1/groups/{group_id}/users"))?;
        url.query_pairs_mut()
            .append_pair("limit", &MEMBERS_PAGE.to_string());
        Ok(self.get_all(url).await?.read)
    }

    /// A user by login (or id); None when Okta has no such user.
    pub async fn user(&self, login: &str) -> Result<Option<OktaUser>, OktaError> {
        let mut url = self.url("/api/v1/users/")?;
        url.path_segments_mut()
            .map_err(|()| OktaError::Config("the org URL cannot take a path".into()))?
            .pop_if_empty()
            .push(login);
        match self.get(&url).await {
            Ok(response) => response
                .json()
                .await
                .map(Some)
                .map_err(|e| OktaError::Decode(cause_chain(&e))),
            Err(OktaError::Api { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Every group a user is in, all pages.
    pub async fn user_groups(&self, user_id: &str) -> Result<Vec<OktaGroup>, OktaError> {
        let mut url = self.url("/api/v1/users/")?;
        url.path_segments_mut()
            .map_err(|()| OktaError::Config("the org URL cannot take a path".into()))?
            .pop_if_empty()
            .extend([user_id, "groups"]);
        Ok(self.get_all(url).await?.read)
    }

    /// The claims of a custom authorization server, all pages.
    pub async fn authorization_server_claims(
        &self,
        server_id: &str,
    ) -> Result<Vec<OktaClaim>, OktaError> {
        let url = self.url(&format!("/api/v1/authorizationServers/{server_id}/claims"))?;
        let claims = self.get_all(url).await?;
        // The claim that cannot be read may be the one that decides: no guess.
        match claims.unreadable.first() {
            None => Ok(claims.read),
            Some(claim) => Err(OktaError::Decode(format!(
                "a claim of the authorization server cannot be read: {claim}"
            ))),
        }
    }

    /// The first page of a polling query of the System Log: the given events logged from
    /// `since` on, oldest first.
    pub fn system_log_query(
        &self,
        since: std::time::SystemTime,
        filter: &str,
    ) -> Result<Url, OktaError> {
        let mut url = self.url("/api/v1/logs")?;
        url.query_pairs_mut()
            .append_pair(
                "since",
                &humantime::format_rfc3339_millis(since).to_string(),
            )
            .append_pair("filter", filter)
            .append_pair("sortOrder", "ASCENDING")
            .append_pair("limit", &LOG_PAGE.to_string());
        Ok(url)
    }

    /// One page of a System Log query and the link to the next. A polling query always
    /// has a next link: following it later returns what was logged meanwhile.
    pub async fn system_log_page(
        &self,
        url: &Url,
    ) -> Result<(Items<LogEvent>, Option<Url>), OktaError> {
        let response = self.get(url).await?;
        let next = self.next_in_org(&response)?;
        let events = self.items(response).await?;
        Ok((events, next))
    }

    /// The response's `rel="next"` link, refused unless it stays in the org (the token goes
    /// wherever the link points).
    fn next_in_org(&self, response: &Response) -> Result<Option<Url>, OktaError> {
        let Some(link) = next_link(response) else {
            return Ok(None);
        };
        let link = Url::parse(&link).map_err(|e| OktaError::Decode(format!("next link: {e}")))?;
        if link.origin() != self.org_url.origin() {
            return Err(OktaError::Decode(format!(
                "next link leaves the org: {link}"
            )));
        }
        Ok(Some(link))
    }

    fn url(&self, path: &str) -> Result<Url, OktaError> {
        self.org_url
            .join(path)
            .map_err(|e| OktaError::Config(e.to_string()))
    }

    async fn get_all<T: Item>(&self, first: Url) -> Result<Items<T>, OktaError> {
        let mut items = Items::default();
        let mut next = Some(first);
        while let Some(url) = next.take() {
            let response = self.get(&url).await?;
            next = self.next_in_org(&response)?;
            items.extend(self.items(response).await?);
        }
        Ok(items)
    }

    /// A page's items, each read on its own. Only an answer that is not a JSON list at
    /// all fails.
    async fn items<T: Item>(&self, response: Response) -> Result<Items<T>, OktaError> {
        let values: Vec<serde_json::Value> = response
            .json()
            .await
            .map_err(|e| OktaError::Decode(cause_chain(&e)))?;
        let items = Items::decode(values);
        if let (Some(observer), false) = (&self.observer, items.unreadable.is_empty()) {
            observer(Observed::Unreadable {
                kind: T::KIND,
                count: items.unreadable.len(),
            });
        }
        Ok(items)
    }

    /// One GET with rate-limit waits, the concurrency bound and retries. A refusal of
    /// the credentials looks at their files again: when they were rotated a moment ago,
    /// the request goes out again at once with the new ones.
    async fn get(&self, url: &Url) -> Result<Response, OktaError> {
        let bucket = bucket(url.path());
        let mut attempt = 0;
        let mut resent = 0;
        loop {
            attempt += 1;
            let error = match self.send_once(url, bucket).await {
                Ok(response) => {
                    self.judge_credentials(false, "");
                    return Ok(response);
                }
                Err(error) => error,
            };
            if resent < RESENDS && is_nonce_challenge(&error) {
                resent += 1;
                attempt -= 1;
                continue;
            }
            if is_refusal(&error) {
                if resent < RESENDS && self.auth.refused().await {
                    resent += 1;
                    attempt -= 1;
                    continue;
                }
                self.judge_credentials(true, &error.to_string());
                return Err(error);
            }
            if attempt >= self.max_attempts || !error.is_transient() {
                return Err(error);
            }
            if !matches!(error, OktaError::RateLimited { .. }) {
                tokio::time::sleep(backoff(attempt)).await;
            }
            tracing::debug!(%error, attempt, bucket, "retrying an Okta request");
        }
    }

    fn judge_credentials(&self, refused: bool, why: &str) {
        let credentials = self.auth.credentials();
        credentials.judged(refused, why);
        if let Some(observer) = &self.observer {
            observer(Observed::Credentials {
                refused,
                changes: credentials.generation(),
            });
        }
    }

    async fn send_once(&self, url: &Url, bucket: &'static str) -> Result<Response, OktaError> {
        while let Err(wait) = self.limits.reserve(bucket, epoch_seconds()) {
            if wait > LONGEST_WAIT {
                return Err(OktaError::RateLimited {
                    reset: epoch_seconds().saturating_add(wait.as_secs()),
                });
            }
            tracing::debug!(bucket, ?wait, "waiting for Okta's rate-limit window");
            tokio::time::sleep(wait).await;
        }
        let _slot = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| OktaError::Config("client closed".into()))?;
        let authorization = self
            .auth
            .authorize(&self.http, self.request_timeout, "GET", url, |status| {
                self.observe("token", status, None)
            })
            .await?;
        let mut request = self
            .http
            .get(url.clone())
            .header("Authorization", authorization.header)
            .header("Accept", "application/json")
            .timeout(self.request_timeout);
        if let Some(proof) = authorization.dpop {
            request = request.header("DPoP", proof);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                self.observe(bucket, 0, None);
                return Err(OktaError::transport(&error, self.request_timeout));
            }
        };
        let status = response.status();
        self.observe(
            bucket,
            status.as_u16(),
            header_u64(&response, "x-rate-limit-remaining"),
        );
        if let (Some(remaining), Some(reset)) = (
            header_u64(&response, "x-rate-limit-remaining"),
            header_u64(&response, "x-rate-limit-reset"),
        ) {
            let limit = header_u64(&response, "x-rate-limit-limit");
            self.limits.record(
                bucket,
                Window {
                    limit,
                    remaining,
                    reset,
                },
            );
        }
        if status.is_success() {
            return Ok(response);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let reset = header_u64(&response, "x-rate-limit-reset")
                .unwrap_or_else(|| epoch_seconds().saturating_add(1));
            // A 429 means no budget until the reset, whatever the headers said.
            self.limits.record(
                bucket,
                Window {
                    limit: header_u64(&response, "x-rate-limit-limit"),
                    remaining: 0,
                    reset,
                },
            );
            return Err(OktaError::RateLimited { reset });
        }
        if let Some(nonce) = response
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
        {
            self.auth.dpop_nonce(nonce);
        }
        Err(api_error(status, response.json().await.unwrap_or_default()))
    }

    fn observe(&self, bucket: &'static str, status: u16, remaining: Option<u64>) {
        if let Some(observer) = &self.observer {
            observer(Observed::Answer {
                bucket,
                status,
                remaining,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_count_against_okta_s_buckets() {
        assert_eq!(bucket("/api/v1/groups"), "groups");
        assert_eq!(bucket("/api/v1/groups/00g1"), "group");
        assert_eq!(bucket("/api/v1/groups/00g1/users"), "group-users");
        assert_eq!(
            bucket("/api/v1/authorizationServers/aus1/claims"),
            "authorization-servers"
        );
        assert_eq!(bucket("/api/v1/logs"), "logs");
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert!(backoff(1) < backoff(4));
        assert!(backoff(30) <= Duration::from_millis((250 << 6) * 3 / 2));
    }
}
