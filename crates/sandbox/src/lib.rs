//! The sandbox: an OpenAI-compatible Files + Batches API in the same binary.
//! It is the default upstream when no key is configured, and what the tests
//! talk to over real HTTP. The dashboard reaches it like any other upstream.
//!
//! It speaks three dialects, each an account of its own (its own files and
//! batches, under its own part of the data directory), with one key:
//! - OpenAI at `/v1`, and at the root as servers without `/v1` serve it
//!   (Bearer key);
//! - Azure OpenAI at `/azure/openai/v1` and `/azure/openai?api-version=…`
//!   (`api-key` header; a line's `model` is a deployment name; batches do
//!   not expire after their window);
//! - Anthropic Message Batches at `/anthropic/v1/messages/batches`
//!   (`x-api-key` and `anthropic-version` headers; see [`anthropic`]).
//!
//! It also holds the made-up data the tests and benchmarks use (example
//! request files, seeded batches).
//!
//! It is built on `batchboard-core` alone: it must never depend on the
//! upstream client, the server or the app, so that it emulates the API from
//! the shared wire types and not from the dashboard's own code.

pub mod anthropic;
pub mod batches;
pub mod error;
pub mod example;
pub mod faults;
pub mod files;
pub mod forward;
pub mod models;
pub mod quirks;
pub mod runner;
pub mod store;
pub mod synthetic;

use std::path::Path;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use batchboard_core::List;
use error::SandboxError;
pub use runner::Speed;
use store::Store;

/// Which provider's API a sandbox account speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Openai,
    Azure,
    Anthropic,
}

#[derive(Clone)]
pub struct Sandbox {
    pub dialect: Dialect,
    pub store: Arc<Store>,
    pub speed: Speed,
    /// Limits and failures imitated on request.
    pub quirks: Arc<quirks::Quirks>,
    key: Arc<SecretString>,
    faults: faults::Faults,
    forward: Option<Arc<forward::Forward>>,
    /// Requests received under `/v1`, for `GET /sandbox/stats`: tests and
    /// benchmarks measure what the dashboard costs the upstream with it.
    requests: Arc<std::sync::atomic::AtomicU64>,
    uploads: Arc<files::UploadStats>,
    /// The Azure and Anthropic accounts (held by the OpenAI one, which
    /// serves them all).
    others: Arc<Vec<Sandbox>>,
}

impl Sandbox {
    /// Opens the sandbox's state under `dir` (the OpenAI account; Azure's
    /// under `dir/azure`, Anthropic's under `dir/anthropic`) and resumes
    /// unfinished batches. Must be called inside a tokio runtime.
    pub fn open(
        dir: &Path,
        key: SecretString,
        speed: Speed,
        faults: Vec<faults::Fault>,
        forward: Option<forward::Forward>,
        quirks: quirks::Quirks,
    ) -> std::io::Result<Self> {
        let mut sb = Self {
            dialect: Dialect::Openai,
            store: Store::open(dir)?,
            speed,
            quirks: Arc::new(quirks),
            key: Arc::new(key),
            faults: Arc::new(std::sync::RwLock::new(
                faults.into_iter().map(Arc::new).collect(),
            )),
            forward: forward.map(Arc::new),
            requests: Arc::default(),
            uploads: Arc::default(),
            others: Arc::default(),
        };
        let mut others = Vec::new();
        for (dialect, sub) in [(Dialect::Azure, "azure"), (Dialect::Anthropic, "anthropic")] {
            let other = Self {
                dialect,
                store: Store::open(&dir.join(sub))?,
                ..sb.clone()
            };
            other.resume();
            others.push(other);
        }
        sb.others = Arc::new(others);
        sb.resume();
        Ok(sb)
    }

    /// Every account's state, written now (at shutdown).
    pub fn save_all(&self) -> std::io::Result<()> {
        self.store.save_now()?;
        for other in self.others.iter() {
            other.store.save_now()?;
        }
        Ok(())
    }

    fn resume(&self) {
        let unfinished: Vec<String> = self
            .store
            .lock()
            .batches
            .iter()
            .filter(|b| !b.status.is_terminal())
            .map(|b| b.id.clone())
            .collect();
        for id in unfinished {
            tracing::info!(batch = %id, "sandbox: resuming batch");
            self.start_runner(id);
        }
    }

    pub fn start_runner(&self, id: String) {
        tokio::spawn(self.clone().run_batch(id));
    }

    /// The API of every dialect: `/v1`, `/azure/openai[/v1]`, `/anthropic/v1`;
    /// OpenAI's also at the root (`/batches`, ...), as SGLang, LiteLLM and
    /// vLLM often serve it, for base URLs without `/v1`.
    pub fn router(&self) -> Router {
        let mut root = Router::new().nest("/v1", self.api()).merge(self.api());
        for other in self.others.iter() {
            root = match other.dialect {
                Dialect::Azure => root.nest("/azure/openai/v1", other.api()).nest(
                    "/azure/openai",
                    other
                        .api()
                        .route_layer(middleware::from_fn(azure_api_version)),
                ),
                Dialect::Anthropic => root.nest("/anthropic/v1", anthropic::router(other)),
                Dialect::Openai => root,
            };
        }
        root.route(
            "/sandbox/stats",
            get(stats)
                .route_layer(middleware::from_fn_with_state(self.clone(), auth))
                .with_state(self.clone()),
        )
        .route(
            "/sandbox/faults",
            axum::routing::put(set_faults)
                .route_layer(middleware::from_fn_with_state(self.clone(), auth))
                .with_state(self.clone()),
        )
    }

    /// OpenAI's Files and Batches API (also Azure's, in that dialect).
    fn api(&self) -> Router {
        Router::new()
            .route(
                "/files",
                post(files::upload)
                    .layer(DefaultBodyLimit::max(
                        files::ACCEPTED_FILE_BYTES as usize + 1024 * 1024,
                    ))
                    .get(files::list),
            )
            .route("/files/{id}", get(files::retrieve).delete(files::delete))
            .route("/files/{id}/content", get(files::content))
            .route("/batches", post(batches::create).get(batches::list))
            .route("/batches/{id}", get(batches::retrieve))
            .route("/batches/{id}/cancel", post(batches::cancel))
            // The built-in models, callable directly too (one request at a time).
            .route("/chat/completions", post(model))
            .route("/completions", post(model))
            .route("/responses", post(model))
            .route("/embeddings", post(model))
            .route("/moderations", post(model))
            .route("/images/generations", post(model))
            .route("/images/edits", post(model))
            .route("/videos", post(model))
            .fallback(|| async {
                SandboxError::NotFound {
                    kind: "route",
                    id: "this path".into(),
                }
            })
            .route_layer(middleware::from_fn_with_state(
                self.faults.clone(),
                faults::inject,
            ))
            .route_layer(middleware::from_fn_with_state(self.clone(), auth))
            .layer(middleware::from_fn_with_state(self.clone(), count))
            .with_state(self.clone())
    }

    /// Whether `given` is the sandbox's key (in constant time).
    pub fn key_is(&self, given: &str) -> bool {
        bool::from(given.as_bytes().ct_eq(self.key.expose_secret().as_bytes()))
    }
}

/// One request to a built-in model, outside any batch.
async fn model(
    // The path within the dialect's API (`/chat/completions`), wherever
    // the API is mounted.
    uri: axum::http::Uri,
    body: std::result::Result<
        axum::Json<serde_json::Value>,
        axum::extract::rejection::JsonRejection,
    >,
) -> Response {
    let Ok(axum::Json(body)) = body else {
        return SandboxError::bad("The body must be a JSON object.", "body").into_response();
    };
    let endpoint = format!("/v1{}", uri.path());
    let reply = models::run(&endpoint, &body, &store::new_id("req_"), store::now());
    let status = axum::http::StatusCode::from_u16(reply.status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(reply.body)).into_response()
}

async fn count(State(sb): State<Sandbox>, req: Request, next: Next) -> Response {
    sb.requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    next.run(req).await
}

/// `GET /sandbox/stats` (with the key): requests served under `/v1` so far,
/// and uploads begun and abandoned (with the bytes they had sent).
async fn stats(State(sb): State<Sandbox>) -> axum::Json<serde_json::Value> {
    use std::sync::atomic::Ordering::Relaxed;
    axum::Json(serde_json::json!({
        "requests": sb.requests.load(Relaxed),
        "uploads_begun": sb.uploads.begun.load(Relaxed),
        "uploads_abandoned": sb.uploads.abandoned.load(Relaxed),
        "uploads_abandoned_bytes": sb.uploads.abandoned_bytes.load(Relaxed),
    }))
}

/// `PUT /sandbox/faults` (with the key): replaces the fault rules with the
/// ones in the body, one per line; an empty body clears them.
async fn set_faults(State(sb): State<Sandbox>, body: String) -> Response {
    match faults::parse_rules(&body) {
        Ok(rules) => {
            let n = rules.len();
            if let Ok(mut current) = sb.faults.write() {
                *current = rules;
            }
            tracing::info!(rules = n, "sandbox: fault rules replaced");
            axum::Json(serde_json::json!({ "rules": n })).into_response()
        }
        Err(e) => SandboxError::bad(e, "body").into_response(),
    }
}

/// Authentication with the sandbox key: Bearer, or (Azure) an `api-key`
/// header.
async fn auth(State(sb): State<Sandbox>, req: Request, next: Next) -> Response {
    let refused = {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let bearer = header(axum::http::header::AUTHORIZATION.as_str())
            .and_then(|v| v.strip_prefix("Bearer "));
        let given = match sb.dialect {
            Dialect::Azure => header("api-key").or(bearer),
            _ => bearer,
        };
        match given {
            None => Some(SandboxError::MissingKey),
            Some(k) if !sb.key_is(k) => Some(SandboxError::WrongKey),
            Some(_) => None,
        }
    };
    match refused {
        Some(e) => e.into_response(),
        None => next.run(req).await,
    }
}

/// Azure's dated API (`/openai/batches?api-version=2024-10-21`): refused
/// without an `api-version`, as Azure does.
async fn azure_api_version(req: Request, next: Next) -> Response {
    let given = req.uri().query().is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "api-version" && !v.is_empty())
    });
    if given {
        next.run(req).await
    } else {
        SandboxError::bad(
            "Missing required query parameter 'api-version' (or use the /openai/v1 path).",
            "api-version",
        )
        .into_response()
    }
}

/// One page of a list in display order, starting after the item `after`.
pub fn page<T: Clone>(
    items: Vec<&T>,
    after: Option<&str>,
    limit: usize,
    id: impl Fn(&T) -> &String,
) -> List<T> {
    let start = match after {
        Some(a) => items
            .iter()
            .position(|x| id(x) == a)
            .map_or(items.len(), |i| i + 1),
        None => 0,
    };
    let rest = &items[start.min(items.len())..];
    let data: Vec<T> = rest.iter().take(limit).map(|x| (*x).clone()).collect();
    List {
        object: "list".into(),
        first_id: data.first().map(|x| id(x).clone()),
        last_id: data.last().map(|x| id(x).clone()),
        has_more: rest.len() > limit,
        data,
    }
}
