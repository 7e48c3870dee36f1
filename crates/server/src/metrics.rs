//! Prometheus metrics at `GET /metrics` (OpenMetrics text), served only
//! when `--metrics-allow` lists the scraper's address: requests by route and
//! status, upstream calls by route and outcome, retries, watcher lag, open
//! streams, and bytes moved.
//!
//! The metrics are one process-wide set: the upstream client and the routes
//! record into it without carrying a handle around.

use std::sync::LazyLock;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::auth::ClientIp;
use super::state::AppState;
use batchboard_upstream::UpstreamError;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    http_requests: Family<Labels, Counter>,
    http_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    upstream_calls: Family<Labels, Counter>,
    upstream_retries: Family<Labels, Counter>,
    upload_bytes: Counter,
    download_bytes: Counter,
    transfers: Family<Labels, Gauge>,
    event_streams: Gauge,
    watcher_lag: Gauge,
    watcher_polling: Gauge,
}

fn latency_histogram() -> Histogram {
    // 1 ms … about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("batchboard");
    let m = Metrics {
        http_requests: Family::default(),
        http_seconds: Family::new_with_constructor(latency_histogram),
        upstream_calls: Family::default(),
        upstream_retries: Family::default(),
        upload_bytes: Counter::default(),
        download_bytes: Counter::default(),
        transfers: Family::default(),
        event_streams: Gauge::default(),
        watcher_lag: Gauge::default(),
        watcher_polling: Gauge::default(),
        registry: Registry::default(),
    };
    registry.register(
        "http_requests",
        "Requests answered, by route, method and status",
        m.http_requests.clone(),
    );
    registry.register(
        "http_request_duration_seconds",
        "Time to the response head, by route",
        m.http_seconds.clone(),
    );
    registry.register(
        "upstream_calls",
        "Calls to the upstream API (each attempt), by route and outcome (status code, transport, decode)",
        m.upstream_calls.clone(),
    );
    registry.register(
        "upstream_retries",
        "Upstream calls tried again after a failure, by route",
        m.upstream_retries.clone(),
    );
    registry.register(
        "upload_bytes",
        "Bytes of request files received from browsers",
        m.upload_bytes.clone(),
    );
    registry.register(
        "download_bytes",
        "Bytes of files streamed to browsers",
        m.download_bytes.clone(),
    );
    registry.register(
        "active_transfers",
        "Uploads and downloads in progress, by kind",
        m.transfers.clone(),
    );
    registry.register(
        "event_streams",
        "Open live-update (SSE) streams",
        m.event_streams.clone(),
    );
    registry.register(
        "watcher_lag_seconds",
        "Seconds since the upstream last answered the watcher",
        m.watcher_lag.clone(),
    );
    registry.register(
        "watcher_polling",
        "How many upstreams this replica polls (it holds their leases)",
        m.watcher_polling.clone(),
    );
    Metrics { registry, ..m }
});

fn metrics() -> &'static Metrics {
    &METRICS
}

/// Counts one upstream call (one attempt) and its outcome.
pub fn upstream_call(route: &'static str, error: Option<&UpstreamError>) {
    let outcome = error.map_or_else(|| "ok".to_string(), UpstreamError::outcome);
    metrics()
        .upstream_calls
        .get_or_create(&vec![("route", route.to_string()), ("outcome", outcome)])
        .inc();
}

pub fn upstream_retry(route: &'static str) {
    metrics()
        .upstream_retries
        .get_or_create(&vec![("route", route.to_string())])
        .inc();
}

/// Counts the upstream client's calls and retries in these metrics.
pub struct UpstreamMetrics;

impl batchboard_upstream::Observer for UpstreamMetrics {
    fn call(&self, route: &'static str, error: Option<&UpstreamError>) {
        upstream_call(route, error);
    }
    fn retry(&self, route: &'static str) {
        upstream_retry(route);
    }
    fn now(&self) -> i64 {
        crate::store::now()
    }
}

pub fn upload_bytes(n: u64) {
    metrics().upload_bytes.inc_by(n);
}

pub fn download_bytes(n: u64) {
    metrics().download_bytes.inc_by(n);
}

/// Marks a transfer (`upload`, `download`, `merged`) as running until dropped.
pub struct Transfer(Gauge);

impl Transfer {
    pub fn start(kind: &'static str) -> Self {
        let g = metrics()
            .transfers
            .get_or_create(&vec![("kind", kind.to_string())])
            .clone();
        g.inc();
        Self(g)
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Middleware: counts every request by matched route (never the raw path,
/// which anyone could vary without end), method and status.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let m = metrics();
    m.http_seconds
        .get_or_create(&vec![("route", route.clone())])
        .observe(started.elapsed().as_secs_f64());
    m.http_requests
        .get_or_create(&vec![
            ("route", route),
            ("method", method),
            ("status", resp.status().as_u16().to_string()),
        ])
        .inc();
    resp
}

/// `/metrics`, for the addresses `--metrics-allow` names.
pub fn router() -> axum::Router<crate::state::AppState> {
    axum::Router::new().route(crate::http::routes::METRICS, axum::routing::get(serve))
}

/// Whether the request comes from an address in `--metrics-allow` (the
/// operators' monitoring). Through a trusted proxy, the address it names: a
/// proxy on loopback must not open the metrics to everyone behind it.
pub fn operator_address(
    state: &AppState,
    peer: std::net::SocketAddr,
    client: Option<Extension<ClientIp>>,
) -> bool {
    let ip = client.map_or(peer.ip(), |Extension(c)| c.0);
    state.metrics_allow.iter().any(|n| n.contains(&ip))
}

/// `GET /metrics`: the OpenMetrics text, for addresses in `--metrics-allow`
/// only (404 for everyone else, as if there were no such route).
pub async fn serve(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    client: Option<Extension<ClientIp>>,
) -> Response {
    if !operator_address(&state, peer, client) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let m = metrics();
    m.event_streams.set(state.hub.streams() as i64);
    let polling = state.polling.load(std::sync::atomic::Ordering::Relaxed);
    m.watcher_polling
        .set(i64::try_from(polling).unwrap_or(i64::MAX));
    // The status the hub reads for every page (at most 2 s old).
    let lag = state
        .hub
        .status()
        .last_success_at
        .map_or(-1, |t| (crate::store::now() - t).max(0));
    m.watcher_lag.set(lag);
    let mut text = String::new();
    if encode(&mut text, &m.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
