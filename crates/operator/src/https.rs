//! HTTPS servers of the operator (the revocation authorizer, the event hook receiver):
//! TLS from certificate files that are read again when they change (a Secret renewed by
//! cert-manager), without a restart, and, when a client CA is given, only clients with a
//! certificate of it served. HTTP/1.1 and HTTP/2.

use axum::Router;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How often the certificate files are checked for a change.
const RELOAD_CHECK: Duration = Duration::from_secs(30);
/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA whose client certificates alone are served; `None`: any client.
    pub client_ca: Option<PathBuf>,
}

/// The TLS configuration from the files.
fn server_config(files: &TlsFiles) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let named = |path: &PathBuf, e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| named(&files.cert, &e))?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| named(&files.key, &e))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &files.client_ca {
        Some(client_ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in CertificateDer::pem_file_iter(client_ca).map_err(|e| named(client_ca, &e))? {
                roots
                    .add(ca.map_err(|e| named(client_ca, &e))?)
                    .map_err(|e| named(client_ca, &e))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| named(client_ca, &e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| named(&files.cert, &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn contents(files: &TlsFiles) -> Vec<Option<Vec<u8>>> {
    [
        Some(&files.cert),
        Some(&files.key),
        files.client_ca.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|path| std::fs::read(path).ok())
    .collect()
}

/// The TLS configuration new connections get; replaced when the files change.
type CurrentConfig = Arc<RwLock<Arc<rustls::ServerConfig>>>;

/// Takes up changed certificate files; a change that cannot be read keeps the old ones.
async fn reload_when_changed(files: TlsFiles, current: CurrentConfig, name: &'static str) {
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
                tracing::info!(
                    server = name,
                    "the certificates changed on disk and were taken up"
                );
                last = now;
            }
            Err(error) => {
                tracing::warn!(server = name, %error, "the certificates changed but cannot be used; keeping the old ones");
            }
        }
    }
}

/// Serves one connection: the TLS handshake (with a client CA, a client without a
/// certificate of it ends here), then HTTP/1.1 or HTTP/2.
async fn connection(
    tcp: tokio::net::TcpStream,
    config: Arc<rustls::ServerConfig>,
    app: Router,
    name: &'static str,
) {
    let handshake = tokio_rustls::TlsAcceptor::from(config).accept(tcp);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(server = name, %error, "a client failed the TLS handshake");
            return;
        }
        Err(_) => return,
    };
    let service = hyper_util::service::TowerToHyperService::new(app);
    let served = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
        .await;
    if let Err(error) = served {
        tracing::debug!(server = name, %error, "a connection ended with an error");
    }
}

/// Binds `address` and returns the bound address and the server `name` (for the log),
/// which serves `app` until it fails (it is supervised: see [`crate::tasks`]).
pub async fn serve(
    address: SocketAddr,
    files: TlsFiles,
    app: Router,
    name: &'static str,
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
    let accepting = {
        let current = current.clone();
        async move {
            loop {
                let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
                let config = current.read().unwrap_or_else(|e| e.into_inner()).clone();
                tokio::spawn(connection(tcp, config, app.clone(), name));
            }
        }
    };
    let serving = async move {
        tokio::select! {
            accepted = accepting => accepted,
            () = reload_when_changed(files, current, name) => Err("the certificate reloader stopped".into()),
        }
    };
    Ok((bound, serving))
}
