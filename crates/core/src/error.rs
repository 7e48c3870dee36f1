//! The one error shape on the wire: what Batchboard's routes and server
//! functions answer when they fail.

use serde::{Deserialize, Serialize};

/// The one error body of Batchboard's own API: what every route and server
/// function answers on failure, and what the UI shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApiError {
    /// The request was refused before reaching the upstream.
    #[error("{0}")]
    Invalid(String),
    /// The upstream answered with an error, or could not be reached.
    #[error("{message}")]
    Upstream {
        status: Option<u16>,
        message: String,
        code: Option<String>,
        request_id: Option<String>,
    },
    /// No one is signed in.
    #[error("Sign in first.")]
    Unauthenticated,
    /// Signed in, but the role does not allow it.
    #[error("{0}")]
    Forbidden(String),
    /// Batchboard itself failed (its database, say); details are in its log.
    #[error("internal error: {0}")]
    Internal(String),
    /// Transport between browser and server (the request never got an answer).
    #[error("{0}")]
    Transport(String),
}

impl ApiError {
    /// One line for the user, with the upstream's code and request id when
    /// there are some (for support).
    pub fn describe(&self) -> String {
        match self {
            Self::Upstream {
                status,
                message,
                code,
                request_id,
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
}
