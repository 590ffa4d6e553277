use okta_rbac_api::conditions::Reason;
use std::time::Duration;

/// What can go wrong talking to Okta. Only [`OktaError::is_definite`] answers say
/// something about a group; everything else leaves it unknown.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum OktaError {
    #[error("Okta is unreachable: {0}")]
    Unreachable(String),
    #[error("Okta did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Okta's rate limit is exhausted until {reset} (epoch seconds)")]
    RateLimited { reset: u64 },
    #[error("Okta answered {status} {code}: {summary}")]
    Api {
        status: u16,
        code: String,
        summary: String,
    },
    /// Okta's token endpoint refused the service app itself: a bad or removed key, a
    /// scope not granted, a DPoP refusal.
    #[error("Okta refused the service app's token request ({status} {error}): {description}")]
    TokenRefused {
        status: u16,
        error: String,
        description: String,
    },
    #[error("unexpected answer from Okta: {0}")]
    Decode(String),
    #[error("Okta client configuration: {0}")]
    Config(String),
}

impl OktaError {
    /// The condition reason this error gives.
    pub fn reason(&self) -> Reason {
        match self {
            OktaError::Unreachable(_) => Reason::OktaUnreachable,
            OktaError::Timeout(_) => Reason::OktaTimeout,
            OktaError::RateLimited { .. } => Reason::OktaRateLimited,
            OktaError::Api { status: 401, .. } | OktaError::TokenRefused { .. } => {
                Reason::OktaUnauthorized
            }
            OktaError::Api { status: 403, .. } => Reason::OktaForbidden,
            OktaError::Api { status, .. } if *status >= 500 => Reason::OktaServerError,
            OktaError::Api { .. } => Reason::OktaBadRequest,
            OktaError::Decode(_) => Reason::OktaBadAnswer,
            OktaError::Config(_) => Reason::OktaConfig,
        }
    }

    /// A short, bounded name, for metric labels: the reason's.
    pub fn kind(&self) -> &'static str {
        self.reason().as_str()
    }

    /// Worth another attempt soon: timeouts, connection trouble, 5xx and 429.
    pub fn is_transient(&self) -> bool {
        match self {
            OktaError::Unreachable(_) | OktaError::Timeout(_) | OktaError::RateLimited { .. } => {
                true
            }
            OktaError::Api { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// A request that got no answer: timed out, or failed with its whole cause chain
    /// (DNS, refused connection, the TLS reason) in the message.
    pub fn transport(error: &reqwest::Error, timeout: Duration) -> Self {
        if error.is_timeout() {
            OktaError::Timeout(timeout)
        } else {
            OktaError::Unreachable(cause_chain(error))
        }
    }
}

/// An error and each of its causes, outermost first, joined by ": " (a cause whose text
/// its outer error already shows is not repeated).
pub fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<Layer>>,
    }

    #[test]
    fn every_cause_is_kept_once() {
        let inner = Layer {
            text: "invalid peer certificate: UnknownIssuer",
            source: None,
        };
        let middle = Layer {
            text: "client error (Connect)",
            source: Some(Box::new(inner)),
        };
        let outer = Layer {
            text: "error sending request for url (https://example.okta.com/)",
            source: Some(Box::new(middle)),
        };
        assert_eq!(
            cause_chain(&outer),
            "error sending request for url (https://example.okta.com/): client error \
             (Connect): invalid peer certificate: UnknownIssuer"
        );
    }

    #[test]
    fn only_refusals_of_the_client_itself_are_unauthorized() {
        let refused = OktaError::TokenRefused {
            status: 401,
            error: "invalid_client".into(),
            description: "The client_assertion signature is invalid.".into(),
        };
        assert_eq!(refused.reason(), Reason::OktaUnauthorized);
        assert!(!refused.is_transient());
        for trouble in [
            OktaError::Unreachable("connection refused".into()),
            OktaError::Timeout(Duration::from_secs(10)),
            OktaError::RateLimited { reset: 0 },
            OktaError::Api {
                status: 503,
                code: "E0000010".into(),
                summary: "Service is temporarily unavailable".into(),
            },
        ] {
            assert_ne!(trouble.reason(), Reason::OktaUnauthorized, "{trouble}");
            assert!(trouble.is_transient(), "{trouble}");
        }
    }
}
