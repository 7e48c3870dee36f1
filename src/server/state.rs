//! Shared server state handed to routes and server functions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::FromRef;
use leptos::prelude::*;
use leptos::server_fn::error::ServerFnError;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::config::{ServeArgs, OPENAI_BASE_URL};
use crate::api::{Reachability, UpstreamInfo};

#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub upstream: Arc<Upstream>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl AppState {
    /// The state, inside a server function.
    pub fn from_context() -> Result<Self, ServerFnError> {
        use_context::<Self>()
            .ok_or_else(|| ServerFnError::ServerError("server state missing".into()))
    }
}

/// The upstream API: where it is and how to authenticate. The key lives only
/// in the default headers of the HTTP client, from which it is never read back.
pub struct Upstream {
    base_url: Url,
    http: reqwest::Client,
    sandbox: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamConfigError {
    #[error("--organization/--project: not a valid header value")]
    BadHeader,
    #[error("OPENAI_API_KEY: not a valid header value")]
    BadKey,
    #[error("could not build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

impl Upstream {
    /// The upstream the arguments name: `--upstream-url`, or OpenAI when
    /// only a key is given. `None` when neither is set (use the sandbox).
    pub fn from_args(args: &ServeArgs) -> Result<Option<Self>, UpstreamConfigError> {
        let base_url = match (&args.upstream_url, &args.api_key) {
            (Some(url), _) => url.clone(),
            (None, Some(_)) => Url::parse(OPENAI_BASE_URL).expect("constant URL"),
            (None, None) => return Ok(None),
        };
        Self::new(
            base_url,
            args.api_key.as_ref(),
            args.organization.as_deref(),
            args.project.as_deref(),
            false,
        )
        .map(Some)
    }

    pub fn new(
        base_url: Url,
        key: Option<&SecretString>,
        organization: Option<&str>,
        project: Option<&str>,
        sandbox: bool,
    ) -> Result<Self, UpstreamConfigError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = key {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
                .map_err(|_| UpstreamConfigError::BadKey)?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        for (name, value) in [
            ("openai-organization", organization),
            ("openai-project", project),
        ] {
            if let Some(v) = value {
                let v = HeaderValue::from_str(v).map_err(|_| UpstreamConfigError::BadHeader)?;
                headers.insert(name, v);
            }
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("batchboard/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            base_url,
            http,
            sandbox,
        })
    }

    pub fn info(&self) -> UpstreamInfo {
        if self.sandbox {
            UpstreamInfo::Sandbox
        } else {
            UpstreamInfo::Remote {
                base_url: self.base_url.to_string(),
            }
        }
    }

    /// Asks the upstream for one batch: proves it answers, the path is an
    /// OpenAI-compatible API and the key is accepted.
    pub async fn probe(&self) -> Reachability {
        let started = Instant::now();
        let url = format!("{}/batches?limit=1", self.base_url);
        let result = self
            .http
            .get(&url)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (ok, detail) = match result {
            Ok(resp) if resp.status().is_success() => {
                (true, format!("Reachable ({latency_ms} ms)"))
            }
            Ok(resp) => {
                let status = resp.status();
                let hint = match status.as_u16() {
                    401 => "the API key was refused",
                    403 => "the key may not use the Batch API",
                    404 => "no Batch API at this URL",
                    429 => "rate limited",
                    _ => "unexpected answer",
                };
                (false, format!("Upstream answered {status}: {hint}"))
            }
            Err(e) if e.is_timeout() => (false, "Upstream did not answer within 10 s".into()),
            Err(e) if e.is_connect() => (false, "Could not connect to the upstream".into()),
            Err(_) => (false, "Request to the upstream failed".into()),
        };
        Reachability {
            ok,
            detail,
            latency_ms,
        }
    }
}
