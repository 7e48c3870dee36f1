//! The routes the router adds besides the pages and server functions, each
//! path written once: the router, `batchboard routes` (so that the tests can
//! prove each one refuses a request without a session), the sign-in gate's
//! public paths and the body limits all name these.

use axum::Router;

use crate::state::AppState;
use crate::{auth, events, files, metrics};

pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";
pub const SIGN_IN: &str = "/auth/login";
pub const SIGN_OUT: &str = "/auth/logout";
pub const FILE_CONTENT: &str = "/files/{id}/content";
pub const EVENTS: &str = "/events";
pub const CREATE_BATCH: &str = "/api/batches";
pub const MERGED_RESULTS: &str = "/api/batches/{id}/merged";
pub const LOCALE: &str = "/locale";
pub const CREATE_JOB: &str = "/api/jobs";
pub const JOB_MERGED: &str = "/api/jobs/{id}/merged";
pub const SPEND_CSV: &str = "/api/spend.csv";
pub const WEBHOOKS_IN: &str = crate::webhooks_in::ROUTE;

/// `(method, path)` of every route [`router`] adds.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", HEALTHZ),
    ("GET", READYZ),
    ("GET", METRICS),
    ("GET", FILE_CONTENT),
    ("GET", EVENTS),
    ("POST", CREATE_BATCH),
    ("GET", MERGED_RESULTS),
    ("POST", CREATE_JOB),
    ("GET", JOB_MERGED),
    ("GET", SPEND_CSV),
    ("POST", SIGN_IN),
    ("POST", SIGN_OUT),
    ("POST", LOCALE),
];

/// Every feature's routes: health, metrics, sign-in, live events, files.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(super::health::router())
        .merge(metrics::router())
        .merge(auth::router())
        .merge(events::router())
        .merge(files::router())
        .merge(crate::services::jobs::router())
        .merge(crate::gateway::router())
        .route(
            WEBHOOKS_IN,
            axum::routing::post(crate::webhooks_in::receive),
        )
        .route(LOCALE, axum::routing::post(super::locale::choose))
        .route(SPEND_CSV, axum::routing::get(crate::services::spend::csv))
}
