//! The revocation authorizer's HTTPS endpoint: `POST /authorize` takes the
//! SubjectAccessReview (authorization.k8s.io/v1) the apiserver's Webhook authorizer sends
//! and answers Deny or NoOpinion, never allowed. Only a client presenting a certificate of
//! the client CA (the apiserver) is served. The certificate files are read again when
//! they change (a Secret renewed by cert-manager), without a restart.

use super::decide::{self, Verdict};
use super::roster::Roster;
use crate::metrics::{DecisionLabel, Metrics};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use k8s_openapi::api::authorization::v1::{
    SubjectAccessReview, SubjectAccessReviewSpec, SubjectAccessReviewStatus,
};
use kube::api::{Api, PostParams};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How often the certificate files are checked for a change.
const RELOAD_CHECK: Duration = Duration::from_secs(30);
/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Authorizer {
    pub roster: Arc<Roster>,
    /// The apiserver's `--oidc-username-prefix` (the operator's `--username-prefix`).
    pub username_prefix: String,
    /// Asks the apiserver whether a user's other groups allow a request.
    pub client: kube::Client,
    pub metrics: Arc<Metrics>,
}

#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA of the apiserver's client certificate.
    pub client_ca: PathBuf,
}

impl Authorizer {
    /// Denied (with the reason), or no opinion.
    async fn answer(&self, spec: &SubjectAccessReviewSpec) -> Option<String> {
        let user = spec.user.as_deref().unwrap_or_default();
        let groups = spec.groups.as_deref().unwrap_or_default();
        let Verdict::Stale { stale, kept } =
            decide::decide(&self.roster, &self.username_prefix, user, groups)
        else {
            return None;
        };
        let name = user.strip_prefix(&self.username_prefix).unwrap_or(user);
        let reason = decide::reason(name, &stale);
        match self.others_allow(spec, kept).await {
            // What the token's other groups (or the user) are granted is theirs to keep.
            Ok(true) => None,
            Ok(false) => Some(reason),
            Err(error) => {
                tracing::warn!(%error, user, "could not ask whether the user's other groups allow the request; denying it");
                Some(format!(
                    "{reason} (whether the user's other groups allow it could not be checked: {error})"
                ))
            }
        }
    }

    /// Whether RBAC allows the request without the groups the user no longer has: a
    /// SubjectAccessReview with the rest (it reaches this authorizer again, which then
    /// has no opinion).
    async fn others_allow(
        &self,
        spec: &SubjectAccessReviewSpec,
        kept: Vec<String>,
    ) -> Result<bool, kube::Error> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                groups: Some(kept),
                ..spec.clone()
            },
            ..Default::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}

async fn authorize(State(authorizer): State<Arc<Authorizer>>, body: Bytes) -> Response {
    let started = Instant::now();
    let review: SubjectAccessReview = match serde_json::from_slice(&body) {
        Ok(review) => review,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not a SubjectAccessReview: {error}"),
            )
                .into_response();
        }
    };
    let denial = authorizer.answer(&review.spec).await;
    let decision = if denial.is_some() {
        "Deny"
    } else {
        "NoOpinion"
    };
    if let Some(reason) = &denial {
        tracing::info!(
            user = review.spec.user.as_deref().unwrap_or_default(),
            %reason,
            "denied a request of a token that carries a group its user no longer has in Okta"
        );
    }
    authorizer
        .metrics
        .authorizer_decisions
        .get_or_create(&DecisionLabel {
            decision: decision.into(),
        })
        .inc();
    authorizer
        .metrics
        .authorizer_duration
        .observe(started.elapsed().as_secs_f64());
    let answer = SubjectAccessReview {
        metadata: Default::default(),
        spec: review.spec,
        status: Some(SubjectAccessReviewStatus {
            allowed: false,
            denied: Some(denial.is_some()),
            reason: denial,
            evaluation_error: None,
        }),
    };
    axum::Json(answer).into_response()
}

/// The TLS configuration from the files: the serving chain and key, and the client CA
/// whose certificates alone are served.
fn server_config(files: &TlsFiles) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let named = |path: &PathBuf, e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| named(&files.cert, &e))?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| named(&files.key, &e))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in
        CertificateDer::pem_file_iter(&files.client_ca).map_err(|e| named(&files.client_ca, &e))?
    {
        roots
            .add(ca.map_err(|e| named(&files.client_ca, &e))?)
            .map_err(|e| named(&files.client_ca, &e))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| named(&files.client_ca, &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| named(&files.cert, &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn contents(files: &TlsFiles) -> Vec<Option<Vec<u8>>> {
    [&files.cert, &files.key, &files.client_ca]
        .into_iter()
        .map(|path| std::fs::read(path).ok())
        .collect()
}

/// The TLS configuration new connections get; replaced when the files change.
type CurrentConfig = Arc<RwLock<Arc<rustls::ServerConfig>>>;

/// Takes up changed certificate files; a change that cannot be read keeps the old ones.
async fn reload_when_changed(files: TlsFiles, current: CurrentConfig) {
    let mut last = contents(&files);
    loop {
        tokio::time::sleep(RELOAD_CHECK).await;
        let now = contents(&files);
        if now == last {
            continue;
        }
        match server_config(&files) {
            Ok(new) => {
                *current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
                tracing::info!("the authorizer's certificates changed on disk and were taken up");
                last = now;
            }
            Err(error) => {
                tracing::warn!(%error, "the authorizer's certificates changed but cannot be used; keeping the old ones");
            }
        }
    }
}

/// Serves one connection: the TLS handshake (a client without a certificate of the
/// client CA ends here), then HTTP/1.1 or HTTP/2.
async fn connection(tcp: tokio::net::TcpStream, config: Arc<rustls::ServerConfig>, app: Router) {
    let handshake = tokio_rustls::TlsAcceptor::from(config).accept(tcp);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%error, "an authorizer client failed the TLS handshake");
            return;
        }
        Err(_) => return,
    };
    let service = hyper_util::service::TowerToHyperService::new(app);
    let served = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
        .await;
    if let Err(error) = served {
        tracing::debug!(%error, "an authorizer connection ended with an error");
    }
}

/// Binds `address` and returns the bound address and the server, which serves until it
/// fails (it is supervised: see [`crate::tasks`]).
pub async fn serve(
    address: SocketAddr,
    files: TlsFiles,
    authorizer: Arc<Authorizer>,
) -> Result<
    (
        SocketAddr,
        impl std::future::Future<Output = Result<(), String>>,
    ),
    String,
> {
    let current: CurrentConfig = Arc::new(RwLock::new(Arc::new(server_config(&files)?)));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("{address}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let app = Router::new()
        .route("/authorize", post(authorize))
        .with_state(authorizer);
    let accepting = {
        let current = current.clone();
        async move {
            loop {
                let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
                let config = current.read().unwrap_or_else(|e| e.into_inner()).clone();
                tokio::spawn(connection(tcp, config, app.clone()));
            }
        }
    };
    let serving = async move {
        tokio::select! {
            accepted = accepting => accepted,
            () = reload_when_changed(files, current) => Err("the certificate reloader stopped".into()),
        }
    };
    Ok((bound, serving))
}
