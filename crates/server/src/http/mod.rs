//! HTTP plumbing shared by every route and server function: the server's one
//! error type ([`HttpError`]), the one mapping of errors to a status and the
//! one JSON body ([`ErrorBody`]), and the request id that internal errors
//! name instead of their detail.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use batchboard_core::error::{ApiError, ErrorBody};
use batchboard_core::i18n::{Key, Msg};
use batchboard_core::validate::Report;

pub mod actor;
pub mod assets;
pub mod headers;
pub mod health;
pub mod limits;
pub mod locale;
pub mod render;
pub mod routes;

/// The server's one error type: what routes return and server functions
/// turn into their error. Failures of Batchboard itself (database, disk, a
/// task) answer 500 with the request id; their detail goes to the log only.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database: {0}")]
    Db(#[from] crate::store::DbError),
    #[error("disk: {0}")]
    Io(#[from] std::io::Error),
    #[error("task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl From<batchboard_upstream::UpstreamError> for HttpError {
    fn from(e: batchboard_upstream::UpstreamError) -> Self {
        Self::Api(e.into())
    }
}

impl HttpError {
    pub fn invalid(msg: Msg) -> Self {
        Self::Api(ApiError::Invalid(msg))
    }

    /// A file that failed the check, with its problems by line.
    pub fn file(report: Report) -> Self {
        Self::Api(ApiError::Problems {
            message: Msg::counted(
                Key::ServerFileProblemsOne,
                Key::ServerFileProblemsOther,
                report.error_count,
            ),
            errors: report.errors,
            error_count: report.error_count,
        })
    }

    /// The error as the client sees it: internal failures are logged here,
    /// with their detail, and answered without it.
    pub fn into_api(self) -> ApiError {
        match self {
            Self::Api(e) => e,
            // A query the caller asked for that cannot run is their mistake.
            Self::Db(crate::store::DbError::Query(m)) => ApiError::Invalid(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// The one mapping of errors to HTTP status: 400 for refused input, 422 for
/// a file with problems, 401/403 for sign-in and role, 413 and 503 for the
/// server's own limits, the upstream's own 4xx, 502 when the upstream failed
/// otherwise, 500 when Batchboard itself failed.
pub fn status(e: &ApiError) -> StatusCode {
    match e {
        ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
        ApiError::Problems { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
        ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
        ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::Upstream {
            status: Some(s), ..
        } if (400..500).contains(s) => StatusCode::from_u16(*s).unwrap_or(StatusCode::BAD_GATEWAY),
        ApiError::Upstream { .. } => StatusCode::BAD_GATEWAY,
        ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The body for `e`, and its status. An internal error's detail is logged
/// here, under the request id, and replaced by a pointer to the log.
pub fn body(e: &ApiError) -> (StatusCode, ErrorBody) {
    let status = status(e);
    if let ApiError::Internal(detail) = e {
        let id = request_id();
        tracing::error!(request_id = id.as_deref().unwrap_or("-"), error = %detail, "internal error");
        let mut body = ApiError::Internal(String::new()).to_body(status.as_u16());
        let msg = match &id {
            Some(id) => Msg::new(Key::ErrorsInternalId).arg("id", id),
            None => Msg::new(Key::ErrorsInternal),
        };
        body.message = msg.to_string();
        body.msg = Some(msg);
        body.request_id = id;
        return (status, body);
    }
    (status, e.to_body(status.as_u16()))
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let e = self.into_api();
        let (status, body) = body(&e);
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        }
        resp
    }
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being answered (`x-request-id`), when there is one.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Middleware: makes the request's `x-request-id` readable by
/// [`request_id`] while the request is answered.
/// Middleware (outermost): drops a client's `x-request-id` unless it is a
/// plain id (1–64 of letters, digits, `.`, `_`, `-`), so that one is made
/// instead: the id goes into logs and error bodies.
pub async fn plain_request_id(mut req: Request, next: Next) -> Response {
    let plain = req
        .headers()
        .get("x-request-id")
        .map(|v| v.as_bytes())
        .is_none_or(|v| {
            (1..=64).contains(&v.len())
                && v.iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
        });
    if !plain {
        req.headers_mut().remove("x-request-id");
    }
    next.run(req).await
}

pub async fn with_request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    REQUEST_ID.scope(id, next.run(req)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use batchboard_core::i18n::I18n;

    #[test]
    fn bodies_carry_their_text_untranslated() {
        let report = |n| Report {
            error_count: n,
            ..Default::default()
        };
        let one = HttpError::file(report(1)).into_api();
        assert_eq!(
            one.to_string(),
            "The file has 1 problem; nothing was uploaded."
        );
        let (status, b) = body(&HttpError::file(report(3)).into_api());
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(b.message, "The file has 3 problems; nothing was uploaded.");
        let msg = b.msg.expect("the file's problems have their text");
        assert_eq!(
            I18n::get("ko").msg(&msg),
            "파일에 문제가 3건 있습니다. 아무것도 업로드하지 않았습니다."
        );

        let (_, b) = body(&ApiError::Internal("disk full".into()));
        assert_eq!(b.msg, Some(Msg::new(Key::ErrorsInternal)));
        assert_eq!(b.message, Msg::new(Key::ErrorsInternal).to_string());
        assert!(!b.message.contains("disk"));
    }
}
