//! `/healthz` (the process answers) and `/readyz` (the upstream answers too,
//! and whether this replica polls it).

use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};

use crate::auth::ClientIp;
use crate::state::{AppState, Upstream};
use batchboard_core::access::CurrentUser;
use batchboard_core::dashboard::Reachability;

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

/// The last readiness probe of the upstream, reused for a few seconds:
/// `/readyz` answers anyone, and must not spend the organisation's rate
/// limit on every request. Callers at the same time wait for one probe.
#[derive(Default)]
pub struct ProbeCache(tokio::sync::Mutex<Option<(Instant, Reachability)>>);

impl ProbeCache {
    const FRESH: Duration = Duration::from_secs(5);

    pub async fn get(&self, upstream: &Upstream) -> Reachability {
        let mut last = self.0.lock().await;
        if let Some((at, r)) = last.as_ref() {
            if at.elapsed() < Self::FRESH {
                return r.clone();
            }
        }
        let r = upstream.probe().await;
        *last = Some((Instant::now(), r.clone()));
        r
    }
}

/// `/readyz`: 200 when the upstream answers (probed at most every 5 s),
/// else 503. Anyone learns only that; signed-in users and the addresses in
/// `--metrics-allow` also get the upstream's answer, its latency, whether
/// this replica polls and how many streams it serves.
pub async fn readyz(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    client: Option<Extension<ClientIp>>,
    user: Option<Extension<CurrentUser>>,
) -> impl IntoResponse {
    let r = state.readiness.get(&state.upstream).await;
    let code = if r.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if user.is_none() && !crate::metrics::operator_address(&state, peer, client) {
        return (code, Json(serde_json::json!({ "ready": r.ok })));
    }
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
