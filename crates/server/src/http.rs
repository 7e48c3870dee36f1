//! HTTP plumbing shared by every route: the server's one error type
//! ([`HttpError`]), its one JSON body, and how [`ApiError`] maps to a status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use batchboard_core::error::ApiError;
use batchboard_core::validate::Report;
use batchboard_core::BatchError;
use serde::{Deserialize, Serialize};

/// The one mapping of errors to HTTP status: 400 for refused input,
/// 401/403 for sign-in and role, the upstream's own 4xx, 502 when the
/// upstream failed otherwise, 500 when Batchboard itself failed.
pub fn status(e: &ApiError) -> StatusCode {
    match e {
        ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
        ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
        ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
        ApiError::Upstream {
            status: Some(s), ..
        } if (400..500).contains(s) => StatusCode::from_u16(*s).unwrap_or(StatusCode::BAD_GATEWAY),
        ApiError::Upstream { .. } => StatusCode::BAD_GATEWAY,
        ApiError::Internal(_) | ApiError::Transport(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What the browser (or curl) gets when a request is refused.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub message: String,
    /// Problems in the file, with line numbers (first ones only).
    #[serde(default)]
    pub errors: Vec<BatchError>,
    #[serde(default)]
    pub error_count: u64,
}

/// The one mapping of [`ApiError`] (and file problems) to HTTP.
pub struct HttpError {
    status: StatusCode,
    body: ErrorResponse,
}

impl HttpError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::with_status(StatusCode::BAD_REQUEST, message)
    }

    pub fn with_status(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorResponse {
                message: message.into(),
                errors: Vec::new(),
                error_count: 0,
            },
        }
    }

    pub fn file(report: Report) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: ErrorResponse {
                message: format!(
                    "The file has {} problem{}; nothing was uploaded.",
                    report.error_count,
                    if report.error_count == 1 { "" } else { "s" }
                ),
                errors: report.errors,
                error_count: report.error_count,
            },
        }
    }
}

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        Self::with_status(crate::http::status(&e), e.describe())
    }
}

impl From<batchboard_upstream::UpstreamError> for HttpError {
    fn from(e: batchboard_upstream::UpstreamError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        }
        resp
    }
}
