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
    /// A short, bounded name: for condition reasons and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            OktaError::Unreachable(_) => "OktaUnreachable",
            OktaError::Timeout(_) => "OktaTimeout",
            OktaError::RateLimited { .. } => "OktaRateLimited",
            OktaError::Api { status: 401, .. } | OktaError::Token(_) => "OktaUnauthorized",
            OktaError::Api { status: 403, .. } => "OktaForbidden",
            OktaError::Api { status, .. } if *status >= 500 => "OktaServerError",
            OktaError::Api { .. } => "OktaBadRequest",
            OktaError::Decode(_) => "OktaBadAnswer",
            OktaError::Config(_) => "OktaConfig",
        }
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
