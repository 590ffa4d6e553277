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
    #[error("getting an OAuth access token from Okta failed: {0}")]
    Token(String),
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
            OktaError::Api { status: 401, .. } | OktaError::Token(_) => Reason::OktaUnauthorized,
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
}
