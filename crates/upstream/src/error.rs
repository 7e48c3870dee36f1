//! The upstream client's one error type, how an error answer is read
//! (OpenAI's, Anthropic's and Azure's shapes and request-id headers), and
//! how it maps to the API's error for browsers.

use std::time::Duration;

use reqwest::{Response, StatusCode};

use batchboard_core::OpenAiErrorBody;

/// What went wrong talking to the upstream.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream answered with an error.
    #[error("{message} (HTTP {status}{})", request_id.as_deref().map(|r| format!(", request {r}")).unwrap_or_default())]
    Api {
        status: u16,
        message: String,
        kind: Option<String>,
        code: Option<String>,
        param: Option<String>,
        request_id: Option<String>,
        /// How long the upstream asked us to wait (`retry-after-ms` or
        /// `retry-after` in seconds).
        retry_after: Option<Duration>,
        /// The upstream's own advice (`x-should-retry: true|false`), which
        /// wins over the status code.
        should_retry: Option<bool>,
    },
    /// No answer: connection refused, timeout, broken transfer.
    #[error("the upstream could not be reached: {0}")]
    Transport(String),
    /// An answer we could not read.
    #[error("the upstream sent an unreadable answer: {0}")]
    Decode(String),
    #[error("configuration: {0}")]
    Config(String),
}

impl UpstreamError {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Worth trying again later: rate limits, server errors, no answer.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            Self::Transport(_) => true,
            Self::Decode(_) | Self::Config(_) => false,
        }
    }

    /// Worth repeating a call that is safe to repeat: the upstream's
    /// `x-should-retry` when it says, else [`Self::is_transient`]; an
    /// unreadable answer (a cut or garbled transfer) too.
    pub fn should_retry(&self) -> bool {
        match self {
            Self::Api {
                should_retry: Some(advice),
                ..
            } => *advice,
            Self::Decode(_) => true,
            other => other.is_transient(),
        }
    }

    /// The call may have taken effect upstream although we got no good
    /// answer: no answer at all, an unreadable one, or a server error.
    /// Rate limits and other 4xx answers mean it did not.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status >= 500,
            Self::Transport(_) | Self::Decode(_) => true,
            Self::Config(_) => false,
        }
    }

    /// How the metrics name the outcome: the status code, or the kind of failure.
    pub fn outcome(&self) -> String {
        match self {
            Self::Api { status, .. } => status.to_string(),
            Self::Transport(_) => "transport".into(),
            Self::Decode(_) => "decode".into(),
            Self::Config(_) => "config".into(),
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

pub(crate) fn transport(e: reqwest::Error) -> UpstreamError {
    // reqwest's message can contain the URL but never headers: no key.
    let timeout = e.is_timeout();
    let mut text = e.without_url().to_string();
    if timeout && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    UpstreamError::Transport(text)
}

pub(crate) async fn api_error(resp: Response) -> UpstreamError {
    let status = resp.status();
    // OpenAI's name, Anthropic's, Azure's.
    let request_id = ["x-request-id", "request-id", "apim-request-id"]
        .into_iter()
        .find_map(|name| resp.headers().get(name))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    let retry_after = header("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| header("retry-after").map(Duration::from_secs_f64));
    let should_retry = match resp
        .headers()
        .get("x-should-retry")
        .and_then(|v| v.to_str().ok())
    {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<OpenAiErrorBody>(&text) {
        Ok(body) if !body.error.message.is_empty() => UpstreamError::Api {
            status: status.as_u16(),
            message: body.error.message,
            kind: Some(body.error.kind).filter(|k| !k.is_empty()),
            code: body.error.code,
            param: body.error.param,
            request_id,
            retry_after,
            should_retry,
        },
        _ => UpstreamError::Api {
            status: status.as_u16(),
            message: fallback_message(status, &text),
            kind: None,
            code: None,
            param: None,
            request_id,
            retry_after,
            should_retry,
        },
    }
}

fn fallback_message(status: StatusCode, text: &str) -> String {
    let reason = status.canonical_reason().unwrap_or("error");
    let snippet: String = text.chars().take(200).collect();
    if snippet.trim().is_empty() {
        reason.to_owned()
    } else {
        format!("{reason}: {}", snippet.trim())
    }
}

impl From<UpstreamError> for batchboard_core::error::ApiError {
    fn from(e: UpstreamError) -> Self {
        use UpstreamError as U;
        match e {
            // Refusals of the key itself: fixed text for browsers, as the
            // upstream's own (OpenAI's names the key, masked) is the
            // administrator's business; it goes to the log.
            U::Api {
                status: status @ (401 | 403),
                message,
                code,
                request_id,
                ..
            } => {
                tracing::warn!(status, code = code.as_deref().unwrap_or("-"), upstream_message = %message, "upstream refused the key");
                let wording = batchboard_core::i18n::Msg::new(if status == 401 {
                    batchboard_core::i18n::Key::UpstreamKeyRefused
                } else {
                    batchboard_core::i18n::Key::UpstreamKeyForbidden
                });
                Self::Upstream {
                    status: Some(status),
                    message: wording.to_string(),
                    code,
                    request_id,
                    wording: Some(Box::new(wording)),
                }
            }
            U::Api {
                status,
                message,
                code,
                request_id,
                ..
            } => Self::Upstream {
                status: Some(status),
                message,
                code,
                request_id,
                wording: None,
            },
            other => Self::Upstream {
                status: None,
                message: other.to_string(),
                code: None,
                request_id: None,
                wording: None,
            },
        }
    }
}
