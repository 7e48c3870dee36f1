//! The routes the router adds besides the pages and server functions, each
//! path written once: the router, `batchboard routes` (so that the tests can
//! prove each one refuses a request without a session), the sign-in gate's
//! public paths and the body limits all name these.

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;
use crate::{auth, events, files, metrics, services};

pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";
pub const SIGN_IN: &str = "/auth/login";
pub const SIGN_OUT: &str = "/auth/logout";
pub const FILE_CONTENT: &str = "/files/{id}/content";
pub const EVENTS: &str = "/events";
pub const CREATE_BATCH: &str = "/api/batches";
pub const MERGED_RESULTS: &str = "/api/batches/{id}/merged";

/// `(method, path)` of every route [`router`] adds.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", HEALTHZ),
    ("GET", READYZ),
    ("GET", METRICS),
    ("GET", FILE_CONTENT),
    ("GET", EVENTS),
    ("POST", CREATE_BATCH),
    ("GET", MERGED_RESULTS),
    ("POST", SIGN_IN),
    ("POST", SIGN_OUT),
];

/// Health, metrics, sign-in, live events, uploads and downloads.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(HEALTHZ, get(super::health::healthz))
        .route(READYZ, get(super::health::readyz))
        .route(METRICS, get(metrics::serve))
        .route(SIGN_IN, post(auth::login))
        .route(SIGN_OUT, post(auth::logout))
        .route(EVENTS, get(events::stream))
        .route(FILE_CONTENT, get(files::download))
        .route(MERGED_RESULTS, get(services::results::merged))
        .route(
            CREATE_BATCH,
            post(files::create).layer(DefaultBodyLimit::max(
                super::limits::UPLOAD_BODY_LIMIT as usize,
            )),
        )
}
