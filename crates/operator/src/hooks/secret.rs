//! The value Okta sends in the event hook's authorization header, read from a file (a
//! mounted Secret) and read again when it changes. The file may hold several values, one
//! per line, so that a rotation has no gap: add the new value, change the hook in Okta,
//! remove the old one. Compared in constant time, as digests, so that neither the value
//! nor its length leaks through timing.

use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// How often the file is looked at again (on a delivery). A Secret volume changes within
/// a minute or so of the Secret; this adds little to that.
const RECHECK: Duration = Duration::from_secs(5);

struct Loaded {
    accepted: Vec<[u8; 32]>,
    checked: Instant,
}

pub struct HeaderSecret {
    /// `None`: fixed for the life of the process.
    file: Option<PathBuf>,
    loaded: Mutex<Loaded>,
}

impl std::fmt::Debug for HeaderSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderSecret")
            .field("file", &self.file)
            .field("values", &"<redacted>")
            .finish()
    }
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// The values in a file's text: one per line, surrounding blanks and empty lines dropped.
fn values(text: &str) -> Vec<[u8; 32]> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(digest)
        .collect()
}

impl HeaderSecret {
    /// Reads the file; it must hold at least one value.
    pub fn from_file(file: PathBuf) -> Result<Self, String> {
        let accepted = Self::read(&file)?;
        Ok(Self {
            file: Some(file),
            loaded: Mutex::new(Loaded {
                accepted,
                checked: Instant::now(),
            }),
        })
    }

    /// Fixed values (tests, or a value from the environment).
    pub fn fixed(accepted: &[&str]) -> Self {
        Self {
            file: None,
            loaded: Mutex::new(Loaded {
                accepted: accepted.iter().map(|v| digest(v)).collect(),
                checked: Instant::now(),
            }),
        }
    }

    fn read(file: &PathBuf) -> Result<Vec<[u8; 32]>, String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let accepted = values(&text);
        if accepted.is_empty() {
            return Err(format!("{}: holds no value", file.display()));
        }
        Ok(accepted)
    }

    /// Whether `presented` is one of the values. A file that changed is read again first;
    /// one that cannot be read keeps the values read before.
    pub fn accepts(&self, presented: &str) -> bool {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = &self.file
            && loaded.checked.elapsed() >= RECHECK
        {
            loaded.checked = Instant::now();
            match Self::read(file) {
                Ok(accepted) => {
                    if accepted != loaded.accepted {
                        tracing::info!("the event hook's secret changed on disk and was taken up");
                    }
                    loaded.accepted = accepted;
                }
                Err(error) => {
                    tracing::warn!(%error, "the event hook's secret cannot be read; keeping the values read before");
                }
            }
        }
        let presented = digest(presented);
        // Every value is compared, whichever matches.
        loaded
            .accepted
            .iter()
            .fold(subtle::Choice::from(0), |any, value| {
                any | value.ct_eq(&presented)
            })
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_listed_value_is_accepted_and_nothing_else() {
        let secret = HeaderSecret::fixed(&["Bearer old", "Bearer new"]);
        assert!(secret.accepts("Bearer old"));
        assert!(secret.accepts("Bearer new"));
        assert!(!secret.accepts("Bearer ol"));
        assert!(!secret.accepts(""));
        assert!(!secret.accepts("bearer new"), "case counts");
    }

    #[test]
    fn a_file_holds_one_value_per_line() {
        assert_eq!(values("a\n\n  b  \n"), vec![digest("a"), digest("b")]);
        assert!(values("\n \n").is_empty());
    }

    #[test]
    fn an_empty_file_is_refused_with_its_name() {
        let dir = std::env::temp_dir().join(format!("hook-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("event-hook-secret");
        std::fs::write(&file, "\n").expect("write");
        let error = HeaderSecret::from_file(file.clone()).expect_err("empty");
        assert!(error.contains("event-hook-secret") && error.contains("no value"));
        std::fs::write(&file, "s3cret\n").expect("write");
        let secret = HeaderSecret::from_file(file).expect("read");
        assert!(secret.accepts("s3cret"));
        assert!(format!("{secret:?}").contains("<redacted>"));
        std::fs::remove_dir_all(dir).expect("clean");
    }
}
