//! The credentials the operator proves itself to Okta with: an SSWS API token, or a
//! service app's private key (`private_key_jwt`). Read from files (a mounted Secret), and
//! read again when they change, so a rotated token or key is used without a restart.
//! Secrets never reach `Debug` or the log.

use super::OktaError;
use jsonwebtoken::{Algorithm, EncodingKey};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the files are looked at again. A Secret volume changes within a minute or
/// so of the Secret (the kubelet's sync); this adds little to that.
const RECHECK: Duration = Duration::from_secs(5);

/// What the operator authenticates with.
pub enum Secret {
    ApiToken(String),
    ServiceApp(ServiceAppKey),
}

/// A service app's client id and the private key its client assertions are signed with.
pub struct ServiceAppKey {
    pub client_id: String,
    pub key: EncodingKey,
    pub algorithm: Algorithm,
    /// The `kid` of the key in the app's JWKS, when it has several.
    pub key_id: Option<String>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::ApiToken(_) => f.write_str("ApiToken(<redacted>)"),
            Secret::ServiceApp(app) => f
                .debug_struct("ServiceApp")
                .field("client_id", &app.client_id)
                .field("key", &"<redacted>")
                .field("key_id", &app.key_id)
                .finish(),
        }
    }
}

/// Where the credentials come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Fixed for the life of the process (the environment, or a test).
    Fixed,
    /// An API token file.
    TokenFile(PathBuf),
    /// A service app: its client id, its PEM key file and, optionally, a file with the
    /// key's kid (absent file: no kid).
    ServiceAppFiles {
        client_id: String,
        key_file: PathBuf,
        key_id: Option<String>,
        key_id_file: Option<PathBuf>,
    },
}

struct Loaded {
    secret: Arc<Secret>,
    /// A hash of what was read, to tell a change from a re-read.
    digest: [u8; 32],
    generation: u64,
    checked: Instant,
}

/// The credentials in use, re-read from their files when they change.
pub struct Credentials {
    source: Source,
    loaded: Mutex<Loaded>,
    /// Whether Okta refused them the last time it judged them (for the log and metrics).
    refused: AtomicBool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("source", &self.source)
            .field("secret", &self.current().0)
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read(path: &Path, what: &str) -> Result<String, OktaError> {
    std::fs::read_to_string(path)
        .map_err(|e| OktaError::Config(format!("reading the {what} {}: {e}", path.display())))
}

/// A service app's key from its PEM (RSA or EC).
pub fn service_app_key(
    client_id: String,
    pem: &str,
    key_id: Option<String>,
) -> Result<ServiceAppKey, OktaError> {
    let (key, algorithm) = if let Ok(key) = EncodingKey::from_rsa_pem(pem.as_bytes()) {
        (key, Algorithm::RS256)
    } else if let Ok(key) = EncodingKey::from_ec_pem(pem.as_bytes()) {
        (key, Algorithm::ES256)
    } else {
        return Err(OktaError::Config(
            "the private key is neither an RSA nor an EC PEM key".into(),
        ));
    };
    Ok(ServiceAppKey {
        client_id,
        key,
        algorithm,
        key_id,
    })
}

impl Source {
    /// Reads the credentials and a digest of what was read.
    fn read(&self) -> Result<Option<(Secret, [u8; 32])>, OktaError> {
        let mut digest = Sha256::new();
        let secret = match self {
            Source::Fixed => return Ok(None),
            Source::TokenFile(path) => {
                let token = read(path, "Okta API token file")?.trim().to_string();
                if token.is_empty() {
                    return Err(OktaError::Config(format!(
                        "the Okta API token file {} is empty",
                        path.display()
                    )));
                }
                digest.update(token.as_bytes());
                Secret::ApiToken(token)
            }
            Source::ServiceAppFiles {
                client_id,
                key_file,
                key_id,
                key_id_file,
            } => {
                let pem = read(key_file, "Okta private key")?;
                let key_id = match key_id_file {
                    Some(path) if path.exists() => {
                        Some(read(path, "Okta private key id file")?.trim().to_string())
                            .filter(|kid| !kid.is_empty())
                    }
                    _ => key_id.clone(),
                };
                digest.update(pem.as_bytes());
                digest.update(key_id.as_deref().unwrap_or_default().as_bytes());
                Secret::ServiceApp(service_app_key(client_id.clone(), &pem, key_id)?)
            }
        };
        Ok(Some((secret, digest.finalize().into())))
    }
}

impl Credentials {
    /// Credentials that never change (the environment's, or a test's).
    pub fn fixed(secret: Secret) -> Self {
        Self {
            source: Source::Fixed,
            loaded: Mutex::new(Loaded {
                secret: Arc::new(secret),
                digest: [0; 32],
                generation: 0,
                checked: Instant::now(),
            }),
            refused: AtomicBool::new(false),
        }
    }

    pub fn api_token(token: impl Into<String>) -> Self {
        Self::fixed(Secret::ApiToken(token.into()))
    }

    pub fn service_app(
        client_id: impl Into<String>,
        pem: &str,
        key_id: Option<String>,
    ) -> Result<Self, OktaError> {
        Ok(Self::fixed(Secret::ServiceApp(service_app_key(
            client_id.into(),
            pem,
            key_id,
        )?)))
    }

    /// Credentials read from files now (an error names the file), and again whenever the
    /// files change.
    pub fn from_files(source: Source) -> Result<Self, OktaError> {
        let (secret, digest) = source
            .read()?
            .ok_or_else(|| OktaError::Config("no credential files given".into()))?;
        Ok(Self {
            source,
            loaded: Mutex::new(Loaded {
                secret: Arc::new(secret),
                digest,
                generation: 0,
                checked: Instant::now(),
            }),
            refused: AtomicBool::new(false),
        })
    }

    /// The credentials to use now and their generation (it grows with every change),
    /// looking at the files again when they were last looked at a while ago.
    pub fn current(&self) -> (Arc<Secret>, u64) {
        let mut loaded = lock(&self.loaded);
        if loaded.checked.elapsed() >= RECHECK {
            self.reread(&mut loaded);
        }
        (loaded.secret.clone(), loaded.generation)
    }

    /// Looks at the files now (Okta refused the credentials: they may have been rotated
    /// a moment ago). True when they changed.
    pub fn reread_now(&self) -> bool {
        let mut loaded = lock(&self.loaded);
        let before = loaded.generation;
        self.reread(&mut loaded);
        loaded.generation != before
    }

    fn reread(&self, loaded: &mut Loaded) {
        loaded.checked = Instant::now();
        match self.source.read() {
            Ok(Some((secret, digest))) if digest != loaded.digest => {
                tracing::info!(
                    credentials = ?secret,
                    "the Okta credentials changed; using them from the next request"
                );
                *loaded = Loaded {
                    secret: Arc::new(secret),
                    digest,
                    generation: loaded.generation + 1,
                    checked: loaded.checked,
                };
            }
            Ok(_) => {}
            // Mid-rotation a file may be missing for a moment: keep what works.
            Err(error) => tracing::warn!(
                %error,
                "reading the Okta credentials again failed; the ones read before stay in use"
            ),
        }
    }

    /// Records Okta's verdict on the credentials in use, logging when it changes.
    pub fn judged(&self, refused: bool, why: &str) {
        let before = self.refused.swap(refused, Ordering::SeqCst);
        if before == refused {
            return;
        }
        if refused {
            tracing::warn!(
                cause = why,
                "Okta refuses the credentials in use: every group stays unverified until \
                 they are replaced (rotate them in the Secret; no restart is needed)"
            );
        } else {
            tracing::info!("Okta accepts the credentials in use again");
        }
    }

    pub fn refused(&self) -> bool {
        self.refused.load(Ordering::SeqCst)
    }

    /// How many times the credentials changed since they were first read.
    pub fn generation(&self) -> u64 {
        lock(&self.loaded).generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_secret() {
        let token = Credentials::api_token("00very-secret");
        assert!(!format!("{token:?}").contains("very-secret"));
    }

    #[test]
    fn a_changed_token_file_is_a_new_generation_and_a_rewrite_of_the_same_is_not() {
        let dir = std::env::temp_dir().join(format!("okta-credentials-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("token");
        std::fs::write(&file, "00first\n").expect("write");
        let credentials = Credentials::from_files(Source::TokenFile(file.clone())).expect("load");
        std::fs::write(&file, "00first").expect("rewrite");
        assert!(!credentials.reread_now(), "the same token, rewritten");
        std::fs::write(&file, "00second").expect("rotate");
        assert!(credentials.reread_now());
        let (secret, generation) = credentials.current();
        assert!(matches!(&*secret, Secret::ApiToken(t) if t == "00second"));
        assert_eq!(generation, 1);
        std::fs::remove_file(&file).expect("remove");
        assert!(
            !credentials.reread_now(),
            "a missing file keeps the token in use"
        );
        assert!(matches!(&*credentials.current().0, Secret::ApiToken(t) if t == "00second"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn an_empty_token_file_is_refused_at_start() {
        let dir = std::env::temp_dir().join(format!("okta-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("token");
        std::fs::write(&file, "\n").expect("write");
        let error = Credentials::from_files(Source::TokenFile(file)).expect_err("empty");
        assert!(error.to_string().contains("is empty"), "{error}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
