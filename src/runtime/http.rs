//! The operator's HTTP endpoints: `/livez`, `/readyz` and `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::core::orphans::Inventory;
use crate::runtime::metrics::Metrics;

/// Readiness as the endpoints report it.
#[derive(Default)]
pub struct Health {
    ready: AtomicBool,
    shutting_down: AtomicBool,
}

impl Health {
    /// Ready: the watch cache has synced (or this replica stands by for leadership).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// From now on, never ready again.
    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.shutting_down.load(Ordering::Acquire)
    }
}

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    metrics: Metrics,
    inventory: Arc<Inventory>,
}

pub fn router(health: Arc<Health>, metrics: Metrics, inventory: Arc<Inventory>) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/orphans", get(orphans))
        .with_state(AppState {
            health,
            metrics,
            inventory,
        })
}

/// The orphaned collections the last inventory found, as JSON.
async fn orphans(State(state): State<AppState>) -> impl IntoResponse {
    axum::Json(state.inventory.orphans())
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.health.is_ready() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// Binds `addr` and serves until `shutdown` resolves. Returns the bound address (useful when the
/// port is 0) and the serving task.
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    metrics: Metrics,
    inventory: Arc<Inventory>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(health, metrics, inventory);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((bound, task))
}
