//! `/healthz` (the process answers) and `/readyz` (the upstream answers too,
//! and whether this replica polls it).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;

use crate::state::AppState;

/// `/healthz` and `/readyz`.
pub fn router() -> axum::Router<AppState> {
    use super::routes::{HEALTHZ, READYZ};
    use axum::routing::get;
    axum::Router::new()
        .route(HEALTHZ, get(healthz))
        .route(READYZ, get(readyz))
}

pub async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let r = state.upstream.probe().await;
    let code = if r.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let polling = state.polling.load(std::sync::atomic::Ordering::Relaxed);
    (
        code,
        Json(serde_json::json!({
            "ready": r.ok,
            "upstream": r.detail,
            "latency_ms": r.latency_ms,
            // Whether this replica is the one polling the upstream.
            "watcher": if polling { "polling" } else { "standby" },
            "streams": state.hub.streams(),
        })),
    )
}
