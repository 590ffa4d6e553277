//! The revocation authorizer's HTTPS endpoint: `POST /authorize` takes the
//! SubjectAccessReview (authorization.k8s.io/v1) the apiserver's Webhook authorizer sends
//! and answers Deny or NoOpinion, never allowed. Only a client presenting a certificate of
//! the client CA (the apiserver) is served ([`crate::https`]).

use super::decide::{self, Verdict};
use super::roster::Roster;
pub use crate::https::TlsFiles;
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
use std::sync::Arc;
use std::time::Instant;

pub struct Authorizer {
    pub roster: Arc<Roster>,
    /// The apiserver's `--oidc-username-prefix` (the operator's `--username-prefix`).
    pub username_prefix: String,
    /// Asks the apiserver whether a user's other groups allow a request.
    pub client: kube::Client,
    pub metrics: Arc<Metrics>,
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
    let app = Router::new()
        .route("/authorize", post(authorize))
        .with_state(authorizer);
    crate::https::serve(address, files, app, "the authorizer").await
}
