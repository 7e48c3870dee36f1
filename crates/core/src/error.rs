//! The one error shape on the wire: what Batchboard's routes and server
//! functions answer when they fail ([`ErrorBody`]), and the errors the
//! server reasons with before it answers ([`ApiError`]).

use serde::{Deserialize, Serialize};

use crate::i18n::{Key, Msg};
use crate::BatchError;

/// What went wrong, for a program reading an [`ErrorBody`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request was refused before reaching the upstream.
    Invalid,
    /// The file has problems, listed with their lines in `errors`.
    Problems,
    /// No one is signed in.
    Unauthenticated,
    /// Signed in, but the role does not allow it.
    Forbidden,
    /// The request or upload is larger than Batchboard takes.
    TooLarge,
    /// Batchboard is busy (too many uploads at once); try again later.
    Busy,
    /// Batchboard has no such thing (a job id that is not one).
    NotFound,
    /// The upstream answered with an error, or could not be reached.
    Upstream,
    /// Batchboard itself failed; the details are in its log only.
    Internal,
    /// The request never got an answer (browser side).
    Transport,
}

/// The one JSON body every failed route and server function answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ErrorBody {
    pub kind: ErrorKind,
    /// One line for the user (with the upstream's status, code and request
    /// id when there are some).
    pub message: String,
    /// The HTTP status this was answered with.
    #[serde(default)]
    pub status: u16,
    /// Batchboard's own request id, for internal errors: the log has the
    /// details under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The upstream's HTTP status, when it answered with an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    /// The upstream's error code, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_code: Option<String>,
    /// Problems in the file, with line numbers (the first ones only).
    #[serde(default)]
    pub errors: Vec<BatchError>,
    /// How many problems the file has in all.
    #[serde(default)]
    pub error_count: u64,
    /// `message`, untranslated: what the dashboard shows, in its reader's
    /// language (`message` is English, for scripts and logs).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::i18n::lenient"
    )]
    pub msg: Option<Msg>,
}

impl ErrorBody {
    /// A body made in the browser (the server never answered).
    pub fn transport(message: String) -> Self {
        Self {
            kind: ErrorKind::Transport,
            message,
            status: 0,
            request_id: None,
            upstream_status: None,
            upstream_code: None,
            errors: Vec::new(),
            error_count: 0,
            msg: None,
        }
    }
}

/// The errors the server's routes and server functions reason with; the
/// server turns each into an [`ErrorBody`] in one place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request was refused before reaching the upstream.
    #[error("{0}")]
    Invalid(Msg),
    /// The file has problems (the first ones, and how many in all).
    #[error("{message}")]
    Problems {
        message: Msg,
        errors: Vec<BatchError>,
        error_count: u64,
    },
    /// The upstream answered with an error, or could not be reached.
    #[error("{message}")]
    Upstream {
        status: Option<u16>,
        message: String,
        code: Option<String>,
        request_id: Option<String>,
        /// `message` untranslated, when Batchboard worded it instead of
        /// passing on the upstream's own text.
        wording: Option<Box<Msg>>,
    },
    /// No one is signed in.
    #[error("{}", Msg::new(Key::ErrorsSignInFirst))]
    Unauthenticated,
    /// Signed in, but the role does not allow it.
    #[error("{0}")]
    Forbidden(Msg),
    /// Larger than Batchboard takes.
    #[error("{0}")]
    TooLarge(Msg),
    /// Too much at once; the client should try again later.
    #[error("{0}")]
    Busy(Msg),
    /// Batchboard's own record of it does not exist.
    #[error("{0}")]
    NotFound(Msg),
    /// Batchboard itself failed. The text is for the log only: the body
    /// says where to look instead.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::Invalid,
            Self::Problems { .. } => ErrorKind::Problems,
            Self::Upstream { .. } => ErrorKind::Upstream,
            Self::Unauthenticated => ErrorKind::Unauthenticated,
            Self::Forbidden(_) => ErrorKind::Forbidden,
            Self::TooLarge(_) => ErrorKind::TooLarge,
            Self::Busy(_) => ErrorKind::Busy,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Internal(_) => ErrorKind::Internal,
        }
    }

    /// One line for the user, with the upstream's status, code and request
    /// id when there are some (for support).
    pub fn describe(&self) -> String {
        match self {
            Self::Upstream {
                status,
                message,
                code,
                request_id,
                ..
            } => {
                let mut s = message.clone();
                let mut extra = Vec::new();
                if let Some(st) = status {
                    extra.push(format!("HTTP {st}"));
                }
                if let Some(c) = code {
                    extra.push(format!("code {c}"));
                }
                if let Some(r) = request_id {
                    extra.push(format!("request {r}"));
                }
                if !extra.is_empty() {
                    s.push_str(&format!(" ({})", extra.join(", ")));
                }
                s
            }
            other => other.to_string(),
        }
    }

    /// The text to show, untranslated (none for the upstream's own words).
    pub fn msg(&self) -> Option<Msg> {
        match self {
            Self::Invalid(m)
            | Self::Forbidden(m)
            | Self::TooLarge(m)
            | Self::Busy(m)
            | Self::NotFound(m) => Some(m.clone()),
            Self::Problems { message, .. } => Some(message.clone()),
            Self::Unauthenticated => Some(Msg::new(Key::ErrorsSignInFirst)),
            Self::Upstream { wording, .. } => wording.as_deref().cloned(),
            Self::Internal(_) => None,
        }
    }

    /// The body for this error, answered with `status`. Internal errors must
    /// not reach here with their detail: the server replaces them first.
    pub fn to_body(&self, status: u16) -> ErrorBody {
        let (errors, error_count) = match self {
            Self::Problems {
                errors,
                error_count,
                ..
            } => (errors.clone(), *error_count),
            _ => (Vec::new(), 0),
        };
        ErrorBody {
            kind: self.kind(),
            message: self.describe(),
            status,
            request_id: None,
            upstream_status: match self {
                Self::Upstream { status, .. } => *status,
                _ => None,
            },
            upstream_code: match self {
                Self::Upstream { code, .. } => code.clone(),
                _ => None,
            },
            errors,
            error_count,
            msg: self.msg(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_errors_name_status_code_and_request() {
        let e = ApiError::Upstream {
            status: Some(429),
            message: "slow down".into(),
            code: Some("rate_limit".into()),
            request_id: Some("req_1".into()),
            wording: None,
        };
        let body = e.to_body(429);
        assert_eq!(body.kind, ErrorKind::Upstream);
        assert_eq!(
            body.message,
            "slow down (HTTP 429, code rate_limit, request req_1)"
        );
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["kind"], "upstream");
        assert_eq!(json["upstream_code"], "rate_limit");
        assert_eq!(json["upstream_status"], 429);
        let back: ErrorBody = serde_json::from_value(json).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn file_problems_travel_with_their_lines() {
        let e = ApiError::Problems {
            message: Msg::text("The file has 1 problem"),
            errors: vec![BatchError {
                code: "duplicate_custom_id".into(),
                message: "again".into(),
                param: Some("custom_id".into()),
                line: Some(2),
                msg: None,
            }],
            error_count: 1,
        };
        let json = serde_json::to_value(e.to_body(422)).unwrap();
        assert_eq!(json["kind"], "problems");
        assert_eq!(json["errors"][0]["line"], 2);
        assert_eq!(json["error_count"], 1);
    }
}
