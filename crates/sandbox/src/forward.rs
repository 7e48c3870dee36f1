//! Forwarding: instead of the built-in models, each request of a batch goes
//! to an OpenAI-compatible server (a local model server, say), with bounded
//! concurrency. This gives a batch API to servers that have none.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use super::models::Reply;
use batchboard_core::Usage;

pub struct Forward {
    base: Url,
    key: Option<SecretString>,
    pub concurrency: usize,
    http: reqwest::Client,
}

impl Forward {
    pub fn new(base: Url, key: Option<SecretString>, concurrency: usize) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            base,
            key,
            concurrency,
            http,
        })
    }

    /// `POST {base}{endpoint without /v1}`; any answer becomes the line's
    /// response, a failure to get one a 502.
    pub async fn send(&self, endpoint: &str, body: &Value) -> Reply {
        let path = endpoint.strip_prefix("/v1").unwrap_or(endpoint);
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k.expose_secret());
        }
        let failed = |message: String| Reply {
            status: 502,
            body: super::models::error_body("server_error", message, None),
            usage: Usage::default(),
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return failed(format!(
                    "The forward server could not be reached: {}",
                    e.without_url()
                ))
            }
        };
        let status = resp.status().as_u16();
        let body: Value = match resp.json().await {
            Ok(v) => v,
            Err(e) => {
                return failed(format!(
                    "The forward server sent no JSON: {}",
                    e.without_url()
                ))
            }
        };
        let usage = usage_of(&body);
        Reply {
            status,
            body,
            usage,
        }
    }
}

/// Token counts from either usage shape (chat/completions or responses).
fn usage_of(body: &Value) -> Usage {
    let u = batchboard_core::result_lines::usage_of(body).unwrap_or_default();
    Usage {
        input_tokens: u.input,
        output_tokens: u.output,
        total_tokens: u.total,
        ..Usage::default()
    }
}
