//! The admin endpoint: unsigned JSON over the app's admin operations. Per-account routes take
//! `?accountId=` and `?region=`; without them they concern the default account and region.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::admin::{
    ExpireSession, FaultRule, LostResponseRule, NextFailure, NextLostResponse, QuotaUpdate,
};
use crate::app::{AdminRefusal, AdminScope, App};
use crate::config::{AccountConfig, OidcProviderConfig, PodIdentityAssociationConfig, RoleConfig};

type AppState = State<Arc<App>>;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/admin/healthz", get(|| async { "ok" }))
        .route("/admin/counters", get(counters))
        .route("/admin/counters/lost-responses", get(lost_responses))
        .route("/admin/calls", get(calls))
        .route(
            "/admin/faults",
            get(faults).put(put_fault).delete(delete_faults),
        )
        .route("/admin/faults/next", post(post_next_failure))
        .route("/admin/faults/lost-responses", put(put_lost_response))
        .route(
            "/admin/faults/lost-responses/next",
            post(post_next_lost_response),
        )
        .route("/admin/quotas", get(quotas).put(put_quota))
        .route("/admin/collections", get(collections))
        .route("/admin/reset", post(reset))
        .route("/admin/accounts", get(accounts).put(put_account))
        .route("/admin/roles", get(roles).put(put_role).delete(delete_role))
        .route(
            "/admin/oidc-providers",
            get(oidc_providers).put(put_oidc_provider),
        )
        .route(
            "/admin/pod-identity-associations",
            put(put_pod_identity_association),
        )
        .route("/admin/sessions", get(sessions))
        .route("/admin/sessions/expire", post(expire_session))
        .with_state(app)
}

/// A refused admin request: `{"error": "..."}` with a status saying why.
struct AdminError(StatusCode, String);

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<AdminRefusal> for AdminError {
    fn from(refusal: AdminRefusal) -> Self {
        match refusal {
            AdminRefusal::NotFound(message) => AdminError(StatusCode::NOT_FOUND, message),
            AdminRefusal::Invalid(message) => AdminError(StatusCode::BAD_REQUEST, message),
            AdminRefusal::Failed(message) => AdminError(StatusCode::INTERNAL_SERVER_ERROR, message),
        }
    }
}

// Parsed by hand rather than with axum's `Json` so every refusal has the same JSON shape.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    serde_json::from_slice(body).map_err(|err| {
        AdminError(
            StatusCode::BAD_REQUEST,
            format!("invalid request body: {err}"),
        )
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScopeQuery {
    account_id: Option<String>,
    region: Option<String>,
}

impl ScopeQuery {
    fn scope(&self) -> AdminScope<'_> {
        AdminScope {
            account_id: self.account_id.as_deref(),
            region: self.region.as_deref(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallsQuery {
    #[serde(flatten)]
    scope: ScopeQuery,
    collection_id: Option<String>,
}

#[derive(Deserialize)]
struct RoleQuery {
    arn: String,
}

type Answer = Result<Response, AdminError>;

fn json<T: serde::Serialize>(value: T) -> Answer {
    Ok(Json(value).into_response())
}

async fn counters(State(app): AppState, Query(q): Query<ScopeQuery>) -> Answer {
    json(app.counters(q.scope())?)
}

async fn lost_responses(State(app): AppState, Query(q): Query<ScopeQuery>) -> Answer {
    json(app.lost_responses(q.scope())?)
}

async fn calls(State(app): AppState, Query(q): Query<CallsQuery>) -> Answer {
    json(app.calls(q.scope.scope(), q.collection_id.as_deref())?)
}

async fn faults(State(app): AppState) -> Answer {
    json(app.faults())
}

async fn put_fault(State(app): AppState, body: Bytes) -> Answer {
    json(app.set_fault(parse::<FaultRule>(&body)?)?)
}

async fn post_next_failure(State(app): AppState, body: Bytes) -> Answer {
    json(app.fail_next(parse::<NextFailure>(&body)?))
}

async fn put_lost_response(State(app): AppState, body: Bytes) -> Answer {
    json(app.set_lost_response(parse::<LostResponseRule>(&body)?)?)
}

async fn post_next_lost_response(State(app): AppState, body: Bytes) -> Answer {
    json(app.lose_next(parse::<NextLostResponse>(&body)?))
}

async fn delete_faults(State(app): AppState) -> StatusCode {
    app.clear_faults();
    StatusCode::NO_CONTENT
}

async fn quotas(State(app): AppState, Query(q): Query<ScopeQuery>) -> Answer {
    json(app.quotas(q.scope())?)
}

async fn put_quota(State(app): AppState, Query(q): Query<ScopeQuery>, body: Bytes) -> Answer {
    let update: QuotaUpdate = parse(&body)?;
    json(app.update_quotas(q.scope(), &update)?)
}

async fn collections(State(app): AppState, Query(q): Query<ScopeQuery>) -> Answer {
    json(app.collections(q.scope())?)
}

async fn reset(State(app): AppState) -> Result<StatusCode, AdminError> {
    app.reset()?;
    Ok(StatusCode::NO_CONTENT)
}

async fn accounts(State(app): AppState) -> Answer {
    json(app.accounts())
}

async fn put_account(State(app): AppState, body: Bytes) -> Answer {
    json(app.put_account(&parse::<AccountConfig>(&body)?)?)
}

async fn roles(State(app): AppState) -> Answer {
    json(app.roles())
}

async fn put_role(State(app): AppState, body: Bytes) -> Answer {
    json(app.put_role(&parse::<RoleConfig>(&body)?)?)
}

async fn delete_role(
    State(app): AppState,
    Query(q): Query<RoleQuery>,
) -> Result<StatusCode, AdminError> {
    app.delete_role(&q.arn)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn oidc_providers(State(app): AppState) -> Answer {
    json(app.oidc_providers())
}

async fn put_oidc_provider(State(app): AppState, body: Bytes) -> Answer {
    json(app.put_oidc_provider(&parse::<OidcProviderConfig>(&body)?)?)
}

async fn put_pod_identity_association(
    State(app): AppState,
    body: Bytes,
) -> Result<StatusCode, AdminError> {
    app.put_pod_identity_association(&parse::<PodIdentityAssociationConfig>(&body)?)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn sessions(State(app): AppState) -> Answer {
    json(app.sessions())
}

async fn expire_session(State(app): AppState, body: Bytes) -> Result<StatusCode, AdminError> {
    let request: ExpireSession = parse(&body)?;
    app.expire_session(&request.access_key_id, Utc::now())?;
    Ok(StatusCode::NO_CONTENT)
}
