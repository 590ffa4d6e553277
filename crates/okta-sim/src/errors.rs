//! Okta's error responses: `{errorCode, errorSummary, errorLink, errorId, errorCauses}` for
//! the Management API, `{error, error_description}` for OAuth endpoints.

use crate::dpop::Refusal;
use axum::Json;
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::json;

#[derive(Clone, Debug)]
pub struct OktaError {
    pub status: StatusCode,
    pub code: &'static str,
    pub summary: String,
    pub causes: Vec<String>,
    /// A DPoP refusal (RFC 9449 section 7.1): answered with a `WWW-Authenticate: DPoP`
    /// challenge and the OAuth error in the body instead of Okta's error object.
    pub dpop: Option<Refusal>,
}

impl OktaError {
    fn new(status: StatusCode, code: &'static str, summary: impl Into<String>) -> Self {
        Self {
            status,
            code,
            summary: summary.into(),
            causes: Vec::new(),
            dpop: None,
        }
    }

    /// A Management API call refused for its DPoP proof or token binding.
    pub fn dpop(refusal: Refusal) -> Self {
        let mut error = Self::new(
            StatusCode::UNAUTHORIZED,
            "E0000011",
            refusal.description.clone(),
        );
        error.dpop = Some(refusal);
        error
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "E0000007",
            format!("Not found: Resource not found: {what}"),
        )
    }

    pub fn invalid_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "E0000011",
            "Invalid token provided",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "E0000006",
            "You do not have permission to perform the requested action",
        )
    }

    pub fn invalid_search(cause: impl Into<String>) -> Self {
        let mut error = Self::new(
            StatusCode::BAD_REQUEST,
            "E0000031",
            "Invalid search criteria.",
        );
        error.causes.push(cause.into());
        error
    }

    pub fn validation(cause: impl Into<String>) -> Self {
        Self::validation_causes(vec![cause.into()])
    }

    /// E0000001 with every problem Okta found in the request, one cause each.
    pub fn validation_causes(causes: Vec<String>) -> Self {
        let mut error = Self::new(StatusCode::BAD_REQUEST, "E0000001", "Api validation failed");
        error.causes = causes;
        error
    }

    pub fn rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "E0000009",
            "Internal Server Error",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "E0000010",
            "Service is temporarily unavailable",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "E0000022",
            "The endpoint does not support the provided HTTP method",
        )
    }

    pub fn malformed_body(cause: impl Into<String>) -> Self {
        let mut error = Self::new(
            StatusCode::BAD_REQUEST,
            "E0000003",
            "The request body was not well-formed.",
        );
        error.causes.push(cause.into());
        error
    }
}

/// Okta's `errorId` values look like `oaeXXXXXXXXXXXXXXXXXXX`.
pub fn random_id(prefix: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let tail: String = (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

impl IntoResponse for OktaError {
    fn into_response(self) -> Response {
        if let Some(refusal) = self.dpop {
            let challenge = format!(
                "DPoP algs=\"{}\", error=\"{}\", error_description=\"{}\"",
                crate::dpop::SIGNING_ALGORITHMS.join(" "),
                refusal.error,
                refusal.description
            );
            let mut response = (
                self.status,
                Json(json!({"error": refusal.error, "error_description": refusal.description})),
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert(WWW_AUTHENTICATE, value);
            }
            return response;
        }
        let causes: Vec<_> = self
            .causes
            .iter()
            .map(|c| json!({"errorSummary": c}))
            .collect();
        let body = json!({
            "errorCode": self.code,
            "errorSummary": self.summary,
            "errorLink": self.code,
            "errorId": random_id("oae", 19),
            "errorCauses": causes,
        });
        (self.status, Json(body)).into_response()
    }
}

/// An OAuth 2.0 error from a token or authorize endpoint.
#[derive(Clone, Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    /// Sent as `DPoP-Nonce` with a `use_dpop_nonce` answer.
    pub dpop_nonce: Option<String>,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            dpop_nonce: None,
        }
    }

    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response();
        if let Some(nonce) = self.dpop_nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
            response.headers_mut().insert("dpop-nonce", nonce);
        }
        response
    }
}
