//! The sandbox's one error type, answered in OpenAI's error shape.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use batchboard_core::OpenAiErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{message}")]
    BadRequest {
        message: String,
        param: Option<&'static str>,
        code: Option<&'static str>,
    },
    #[error("You didn't provide an API key. Provide it in an Authorization header (Bearer auth).")]
    MissingKey,
    #[error("Incorrect API key provided.")]
    WrongKey,
    #[error("No {kind} found with id '{id}'.")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("The file is larger than {0} bytes.")]
    TooLarge(u64),
    #[error("internal error: {0}")]
    Internal(String),
    /// An injected fault (tests only).
    #[error("{message}")]
    Injected {
        status: StatusCode,
        message: String,
        retry_after: Option<u64>,
    },
}

impl SandboxError {
    pub fn bad(message: impl Into<String>, param: &'static str) -> Self {
        Self::BadRequest {
            message: message.into(),
            param: Some(param),
            code: None,
        }
    }

    pub fn not_found(kind: &'static str, id: &str) -> Self {
        Self::NotFound {
            kind,
            id: id.to_owned(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::MissingKey | Self::WrongKey => StatusCode::UNAUTHORIZED,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Injected { status, .. } => *status,
        }
    }
}

impl From<std::io::Error> for SandboxError {
    fn from(e: std::io::Error) -> Self {
        Self::Internal(e.to_string())
    }
}

impl IntoResponse for SandboxError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (kind, param, code) = match &self {
            Self::BadRequest { param, code, .. } => ("invalid_request_error", *param, *code),
            Self::MissingKey => ("invalid_request_error", None, None),
            Self::WrongKey => ("invalid_request_error", None, Some("invalid_api_key")),
            Self::NotFound { .. } => ("invalid_request_error", None, None),
            Self::Conflict(_) => ("invalid_request_error", None, None),
            Self::TooLarge(_) => (
                "invalid_request_error",
                Some("file"),
                Some("file_too_large"),
            ),
            Self::Internal(_) => ("server_error", None, None),
            Self::Injected { status, .. } if *status == StatusCode::TOO_MANY_REQUESTS => {
                ("requests", None, Some("rate_limit_exceeded"))
            }
            Self::Injected { .. } => ("server_error", None, None),
        };
        if let Self::Internal(msg) = &self {
            tracing::error!(error = %msg, "sandbox internal error");
        }
        let body = OpenAiErrorBody::new(kind, self.to_string(), param, code);
        let mut resp = (status, Json(body)).into_response();
        if let Self::Injected {
            retry_after: Some(s),
            ..
        } = &self
        {
            if let Ok(v) = s.to_string().parse() {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        resp
    }
}

pub type Result<T> = std::result::Result<T, SandboxError>;
