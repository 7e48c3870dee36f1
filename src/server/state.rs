//! Shared server state handed to routes and server functions.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::FromRef;
use leptos::prelude::*;
use secrecy::SecretString;
use url::Url;

use super::config::{ServeArgs, OPENAI_BASE_URL};
use crate::api::{Reachability, UpstreamInfo};
use crate::upstream::{Client, UpstreamError};

#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub upstream: Arc<Upstream>,
    pub data_dir: Arc<std::path::PathBuf>,
    pub db: super::db::Db,
    pub auth: Arc<super::auth::Auth>,
}

impl AppState {
    /// Appends to the audit log. A failed write is logged (the action it
    /// records has already happened) but does not fail the request.
    pub async fn audit(&self, a: super::db::Audit<'_>) {
        let action = a.action.to_string();
        if let Err(e) = self.db.audit(a).await {
            tracing::error!(error = %e, action, "cannot write the audit log");
        }
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// The upstream API and whether it is the built-in sandbox.
pub struct Upstream {
    pub client: Client,
    sandbox: bool,
}

impl Upstream {
    /// The upstream the arguments name: `--upstream-url`, or OpenAI when
    /// only a key is given. `None` when neither is set (use the sandbox).
    pub fn from_args(args: &ServeArgs) -> Result<Option<Self>, UpstreamError> {
        let base_url = match (&args.upstream_url, &args.api_key) {
            (Some(url), _) => url.clone(),
            (None, Some(_)) => Url::parse(OPENAI_BASE_URL).expect("constant URL"),
            (None, None) => return Ok(None),
        };
        let client = Client::new(
            base_url,
            args.api_key.as_ref(),
            args.organization.as_deref(),
            args.project.as_deref(),
        )?;
        Ok(Some(Self {
            client,
            sandbox: false,
        }))
    }

    pub fn sandbox(base_url: Url, key: &SecretString) -> Result<Self, UpstreamError> {
        Ok(Self {
            client: Client::new(base_url, Some(key), None, None)?,
            sandbox: true,
        })
    }

    pub fn info(&self) -> UpstreamInfo {
        if self.sandbox {
            UpstreamInfo::Sandbox
        } else {
            UpstreamInfo::Remote {
                base_url: self.client.base_url().to_string(),
            }
        }
    }

    /// Asks the upstream for one batch: proves it answers, the path is an
    /// OpenAI-compatible API and the key is accepted.
    pub async fn probe(&self) -> Reachability {
        let started = Instant::now();
        let result = self.client.probe().await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (ok, detail) = match result {
            Ok(()) => (true, format!("Reachable ({latency_ms} ms)")),
            Err(UpstreamError::Api { status, .. }) => {
                let hint = match status {
                    401 => "the API key was refused",
                    403 => "the key may not use the Batch API",
                    404 => "no Batch API at this URL",
                    429 => "rate limited",
                    _ => "unexpected answer",
                };
                (false, format!("Upstream answered HTTP {status}: {hint}"))
            }
            Err(e) => (false, e.to_string()),
        };
        Reachability {
            ok,
            detail,
            latency_ms,
        }
    }
}
