//! `/healthz` (the process answers) and `/readyz` (an upstream answers too;
//! each upstream's answer, and whether this replica polls).

use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};

use crate::auth::ClientIp;
use crate::providers::Upstreams;
use crate::state::AppState;
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

/// The last readiness probes of the upstreams, reused for a few seconds:
/// `/readyz` answers anyone, and must not spend the organisation's rate
/// limits on every request. Callers at the same time wait for one round.
#[derive(Default)]
pub struct ProbeCache(tokio::sync::Mutex<Option<(Instant, Probes)>>);

/// Each upstream's name (`""` for the first) and answer, in order.
pub type Probes = Vec<(String, Reachability)>;

impl ProbeCache {
    const FRESH: Duration = Duration::from_secs(5);

    pub async fn get(&self, upstreams: &Upstreams) -> Probes {
        let mut last = self.0.lock().await;
        if let Some((at, r)) = last.as_ref() {
            if at.elapsed() < Self::FRESH {
                return r.clone();
            }
        }
        let r: Probes = upstreams.probe_all().await;
        *last = Some((Instant::now(), r.clone()));
        r
    }
}

/// `/readyz`: 200 when an upstream answers (probed at most every 5 s;
/// one provider down must not take every replica out of service), else
/// 503. Anyone learns only that; signed-in users and the addresses in
/// `--metrics-allow` also get each upstream's answer and latency, whether
/// this replica polls and how many streams it serves.
pub async fn readyz(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    client: Option<Extension<ClientIp>>,
    user: Option<Extension<CurrentUser>>,
) -> impl IntoResponse {
    let probes = state.readiness.get(&state.upstreams).await;
    let ready = probes.iter().any(|(_, r)| r.ok);
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if user.is_none() && !crate::metrics::operator_address(&state, peer, client) {
        return (code, Json(serde_json::json!({ "ready": ready })));
    }
    let polling = state.polling.load(std::sync::atomic::Ordering::Relaxed) > 0;
    let first = probes.first().map(|(_, r)| r);
    let mut each = Vec::with_capacity(probes.len());
    for (name, r) in probes.iter() {
        // Whether its webhooks arrive (then its batches are polled slowly).
        let webhooks = match state.upstreams.named(name) {
            Some(u) => crate::webhooks_in::health(&state, &u).await,
            None => "off",
        };
        each.push(serde_json::json!({
            "name": batchboard_core::dashboard::display_upstream(name),
            "ready": r.ok,
            "upstream": r.detail,
            "latency_ms": r.latency_ms,
            "webhooks": webhooks,
        }));
    }
    (
        code,
        Json(serde_json::json!({
            "ready": ready,
            // The first upstream's, as before there were several.
            "upstream": first.map(|r| r.detail.as_str()),
            "latency_ms": first.map(|r| r.latency_ms),
            "upstreams": each,
            // Whether this replica is the one polling the upstreams.
            "watcher": if polling { "polling" } else { "standby" },
            "streams": state.hub.streams(),
        })),
    )
}
