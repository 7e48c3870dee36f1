//! Typed HTTP client for the upstream Batch and Files API (server only).
//!
//! Configured by base URL, key and optional organization / project headers.
//! The key lives only in the client's default headers, marked sensitive.
//! Uploads and downloads stream: no file is held in memory.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use crate::batch::{ApiErrorBody, Batch, FileObject, List, Metadata};

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

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

fn transport(e: reqwest::Error) -> UpstreamError {
    // reqwest's message can contain the URL but never headers: no key.
    UpstreamError::Transport(e.without_url().to_string())
}

/// Parameters of `POST /batches`.
#[derive(Debug, Clone, Serialize)]
pub struct CreateBatch {
    pub input_file_id: String,
    pub endpoint: String,
    pub completion_window: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_expires_after: Option<serde_json::Value>,
}

pub struct Client {
    base: Url,
    http: reqwest::Client,
}

impl Client {
    pub fn new(
        base: Url,
        key: Option<&SecretString>,
        organization: Option<&str>,
        project: Option<&str>,
    ) -> Result<Self, UpstreamError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = key {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
                .map_err(|_| {
                    UpstreamError::Config("the API key is not a valid header value".into())
                })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        for (name, value) in [
            ("openai-organization", organization),
            ("openai-project", project),
        ] {
            if let Some(v) = value {
                let v = HeaderValue::from_str(v).map_err(|_| {
                    UpstreamError::Config(format!("{name} is not a valid header value"))
                })?;
                headers.insert(name, v);
            }
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("batchboard/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| UpstreamError::Config(e.to_string()))?;
        Ok(Self { base, http })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// Sends; turns an error status into [`UpstreamError::Api`].
    async fn send(&self, req: RequestBuilder) -> Result<Response, UpstreamError> {
        let resp = req.send().await.map_err(transport)?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(api_error(resp).await)
    }

    /// Sends with a 60 s limit for the whole exchange: right for API calls,
    /// not for uploads (see [`Client::upload_file`]).
    async fn json<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T, UpstreamError> {
        self.json_within(req, Duration::from_secs(60)).await
    }

    async fn json_within<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
        limit: Duration,
    ) -> Result<T, UpstreamError> {
        let resp = self.send(req.timeout(limit)).await?;
        let bytes = resp.bytes().await.map_err(transport)?;
        serde_json::from_slice(&bytes).map_err(|e| UpstreamError::Decode(e.to_string()))
    }

    pub async fn list_batches(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<List<Batch>, UpstreamError> {
        let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        if let Some(a) = after {
            query.push(("after", a.to_owned()));
        }
        self.json(self.request(Method::GET, "/batches").query(&query))
            .await
    }

    pub async fn get_batch(&self, id: &str) -> Result<Batch, UpstreamError> {
        self.json(self.request(Method::GET, &format!("/batches/{}", path_segment(id))))
            .await
    }

    pub async fn cancel_batch(&self, id: &str) -> Result<Batch, UpstreamError> {
        self.json(self.request(
            Method::POST,
            &format!("/batches/{}/cancel", path_segment(id)),
        ))
        .await
    }

    pub async fn create_batch(&self, req: &CreateBatch) -> Result<Batch, UpstreamError> {
        self.json(self.request(Method::POST, "/batches").json(req))
            .await
    }

    pub async fn get_file(&self, id: &str) -> Result<FileObject, UpstreamError> {
        self.json(self.request(Method::GET, &format!("/files/{}", path_segment(id))))
            .await
    }

    /// Uploads a file from disk, streaming it.
    pub async fn upload_file(
        &self,
        path: &std::path::Path,
        filename: &str,
        purpose: &str,
    ) -> Result<FileObject, UpstreamError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| UpstreamError::Transport(format!("cannot read the upload: {e}")))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| UpstreamError::Transport(e.to_string()))?
            .len();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            file,
            64 * 1024,
        ));
        let part = reqwest::multipart::Part::stream_with_length(body, len)
            .file_name(filename.to_owned())
            .mime_str("application/jsonl")
            .map_err(|e| UpstreamError::Config(e.to_string()))?;
        let form = reqwest::multipart::Form::new()
            .text("purpose", purpose.to_owned())
            .part("file", part);
        // 200 MB over a slow link takes a while: allow an hour, not a minute.
        self.json_within(
            self.request(Method::POST, "/files").multipart(form),
            Duration::from_secs(3600),
        )
        .await
    }

    /// Starts a download of a file's content; the caller streams the body.
    pub async fn file_content(&self, id: &str) -> Result<Response, UpstreamError> {
        self.send(self.request(Method::GET, &format!("/files/{}/content", path_segment(id))))
            .await
    }

    /// `GET /batches?limit=1`: answers, is an OpenAI-compatible API, accepts the key.
    pub async fn probe(&self) -> Result<(), UpstreamError> {
        let req = self
            .request(Method::GET, "/batches")
            .query(&[("limit", "1")])
            .timeout(Duration::from_secs(10));
        self.send(req).await.map(|_| ())
    }
}

/// Ids go into paths: keep them to one segment.
fn path_segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

async fn api_error(resp: Response) -> UpstreamError {
    let status = resp.status();
    let request_id = resp
        .headers()
        .get("x-request-id")
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
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<ApiErrorBody>(&text) {
        Ok(body) if !body.error.message.is_empty() => UpstreamError::Api {
            status: status.as_u16(),
            message: body.error.message,
            kind: Some(body.error.kind).filter(|k| !k.is_empty()),
            code: body.error.code,
            param: body.error.param,
            request_id,
            retry_after,
        },
        _ => UpstreamError::Api {
            status: status.as_u16(),
            message: fallback_message(status, &text),
            kind: None,
            code: None,
            param: None,
            request_id,
            retry_after,
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
