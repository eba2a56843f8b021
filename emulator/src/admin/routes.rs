//! Handlers of the admin endpoint.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{CollectionView, FaultRule, NextFailure, QuotaUpdate};
use crate::server::{Shared, lock};

type AppState = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/admin/healthz", get(|| async { "ok" }))
        .route("/admin/counters", get(counters))
        .route("/admin/calls", get(calls))
        .route(
            "/admin/faults",
            get(faults).put(put_fault).delete(delete_faults),
        )
        .route("/admin/faults/next", post(post_next_failure))
        .route("/admin/quotas", get(quotas).put(put_quota))
        .route("/admin/collections", get(collections))
        .route("/admin/reset", post(reset))
        .with_state(shared)
}

/// A refused admin request.
struct AdminError(StatusCode, String);

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn bad_request(message: impl Into<String>) -> AdminError {
    AdminError(StatusCode::BAD_REQUEST, message.into())
}

// Parsed by hand rather than with axum's `Json` so every refusal has the same JSON shape.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    serde_json::from_slice(body).map_err(|err| bad_request(format!("invalid request body: {err}")))
}

async fn counters(State(shared): AppState) -> impl IntoResponse {
    Json(lock(&shared.ledger).counters())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallsQuery {
    collection_id: Option<String>,
}

async fn calls(State(shared): AppState, Query(query): Query<CallsQuery>) -> impl IntoResponse {
    Json(lock(&shared.ledger).calls(query.collection_id.as_deref()))
}

async fn faults(State(shared): AppState) -> impl IntoResponse {
    Json(lock(&shared.faults).view())
}

async fn put_fault(State(shared): AppState, body: Bytes) -> Result<impl IntoResponse, AdminError> {
    let rule: FaultRule = parse(&body)?;
    let mut faults = lock(&shared.faults);
    faults.set_rule(rule).map_err(bad_request)?;
    Ok(Json(faults.view()))
}

async fn post_next_failure(
    State(shared): AppState,
    body: Bytes,
) -> Result<impl IntoResponse, AdminError> {
    let next: NextFailure = parse(&body)?;
    let mut faults = lock(&shared.faults);
    faults.push_next(next);
    Ok(Json(faults.view()))
}

async fn delete_faults(State(shared): AppState) -> StatusCode {
    lock(&shared.faults).clear();
    StatusCode::NO_CONTENT
}

async fn quotas(State(shared): AppState) -> impl IntoResponse {
    Json(lock(&shared.quotas).view())
}

async fn put_quota(State(shared): AppState, body: Bytes) -> Result<impl IntoResponse, AdminError> {
    let update: QuotaUpdate = parse(&body)?;
    let mut quotas = lock(&shared.quotas);
    quotas
        .update(&update, Instant::now())
        .map_err(bad_request)?;
    Ok(Json(quotas.view()))
}

async fn collections(State(shared): AppState) -> impl IntoResponse {
    let views: Vec<CollectionView> = shared
        .service
        .collections()
        .into_iter()
        .map(|c| CollectionView {
            collection_arn: shared.service.arn(&c.collection_id).to_arn(),
            collection_id: c.collection_id,
            tags: c.tags,
            face_count: c.face_count,
            user_count: c.user_count,
            face_model_version: c.face_model_version,
            created_at: c.created_at,
        })
        .collect();
    Json(views)
}

async fn reset(State(shared): AppState) -> Result<StatusCode, AdminError> {
    shared
        .service
        .reset()
        .map_err(|err| AdminError(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?;
    lock(&shared.ledger).clear();
    lock(&shared.faults).clear();
    lock(&shared.quotas).refill(Instant::now());
    tracing::info!(account_id = %shared.config.account_id, "emulator reset");
    Ok(StatusCode::NO_CONTENT)
}
