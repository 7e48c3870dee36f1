//! Server functions: the browser's only way to reach the upstream. They run on
//! the server, which alone holds the API key, and check their input there.

use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

use crate::batch::Batch;

pub mod auth;
pub mod checks;
pub mod results;

#[cfg(feature = "ssr")]
use auth::{CurrentUser, Role};

/// Which upstream the dashboard talks to, as the browser may know it: the
/// base URL, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpstreamInfo {
    /// The built-in sandbox (no key and no upstream URL configured).
    Sandbox,
    /// An OpenAI-compatible API at this base URL.
    Remote { base_url: String },
}

/// The result of asking the upstream whether it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reachability {
    pub ok: bool,
    /// What happened, in words a user can act on.
    pub detail: String,
    pub latency_ms: u64,
}

/// The error every server function returns: what the UI shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
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
    /// Transport between browser and server.
    #[error("{0}")]
    ServerFn(ServerFnErrorErr),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;
    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        Self::ServerFn(value)
    }
}

impl AppError {
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

#[cfg(feature = "ssr")]
impl From<crate::upstream::UpstreamError> for AppError {
    fn from(e: crate::upstream::UpstreamError) -> Self {
        use crate::upstream::UpstreamError as U;
        match e {
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
            },
            other => Self::Upstream {
                status: None,
                message: other.to_string(),
                code: None,
                request_id: None,
            },
        }
    }
}

/// What the batch table asks for: filters, search, sort and page. Every
/// field is optional; the URL's query string holds the same names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchQuery {
    /// Statuses, comma-separated (`in_progress,finalizing`).
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// Who created it (`metadata.created_by`).
    #[serde(default)]
    pub creator: Option<String>,
    /// A metadata key; with `meta_value`, that pair.
    #[serde(default)]
    pub meta_key: Option<String>,
    #[serde(default)]
    pub meta_value: Option<String>,
    /// Created on or after this day (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    pub from: Option<String>,
    /// Created on or before this day (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    pub to: Option<String>,
    /// Part of a batch id, file id or input file name.
    #[serde(default)]
    pub q: Option<String>,
    /// `created` (default), `status`, `endpoint`, `model` or `creator`.
    #[serde(default)]
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    #[serde(default)]
    pub dir: Option<String>,
    #[serde(default)]
    pub offset: Option<u32>,
    #[serde(default)]
    pub limit: Option<u32>,
}

pub const SORT_KEYS: &[&str] = &["created", "status", "endpoint", "model", "creator"];

impl BatchQuery {
    /// The same query as URL parameters (empty ones left out), for links.
    pub fn to_query_string(&self) -> String {
        let pairs: [(&str, Option<String>); 13] = [
            ("status", self.status.clone()),
            ("endpoint", self.endpoint.clone()),
            ("model", self.model.clone()),
            ("creator", self.creator.clone()),
            ("meta_key", self.meta_key.clone()),
            ("meta_value", self.meta_value.clone()),
            ("from", self.from.clone()),
            ("to", self.to.clone()),
            ("q", self.q.clone()),
            ("sort", self.sort.clone()),
            ("dir", self.dir.clone()),
            (
                "offset",
                self.offset.filter(|o| *o > 0).map(|o| o.to_string()),
            ),
            ("limit", self.limit.map(|l| l.to_string())),
        ];
        let mut out = String::new();
        for (k, v) in pairs {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                out.push(if out.is_empty() { '?' } else { '&' });
                out.push_str(k);
                out.push('=');
                out.push_str(&encode(&v));
            }
        }
        out
    }

    /// Whether any filter or search is set (sort and page aside).
    pub fn is_filtered(&self) -> bool {
        [
            &self.status,
            &self.endpoint,
            &self.model,
            &self.creator,
            &self.meta_key,
            &self.meta_value,
            &self.from,
            &self.to,
            &self.q,
        ]
        .iter()
        .any(|f| f.as_deref().is_some_and(|v| !v.is_empty()))
    }
}

/// Percent-encodes a query-string value.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How current the index is: what the pages say about the upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatcherStatus {
    /// When the watcher last heard from the upstream (unix seconds).
    pub last_success_at: Option<i64>,
    /// The last failure, if it came after the last success.
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    /// Batches not yet in a final state.
    pub running: i64,
}

/// A page of the batch table, read from the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchPage {
    pub batches: Vec<Batch>,
    /// Rows matching the query, over all pages.
    pub total: u64,
    pub offset: u32,
    pub limit: u32,
    pub watcher: WatcherStatus,
}

/// The values the filters offer, from the index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facets {
    pub statuses: Vec<String>,
    pub endpoints: Vec<String>,
    pub models: Vec<String>,
    pub creators: Vec<String>,
}

pub const PAGE_SIZES: &[u32] = &[10, 20, 50, 100];

#[cfg(feature = "ssr")]
fn state() -> Result<crate::server::state::AppState, AppError> {
    use_context::<crate::server::state::AppState>()
        .ok_or_else(|| AppError::Invalid("server state missing".into()))
}

#[cfg(feature = "ssr")]
impl AppError {
    /// The one mapping of errors to HTTP status: 400 for refused input,
    /// 401/403 for sign-in and role, the upstream's own 4xx, 502 when the
    /// upstream failed otherwise.
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Upstream {
                status: Some(s), ..
            } if (400..500).contains(s) => {
                StatusCode::from_u16(*s).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            Self::Upstream { .. } => StatusCode::BAD_GATEWAY,
            Self::Internal(_) | Self::ServerFn(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Sets the HTTP status of a failed server function call (see
/// [`AppError::status`]); during server rendering, the page's status.
#[cfg(feature = "ssr")]
fn fail(e: AppError) -> AppError {
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.set_status(e.status());
    }
    e
}

/// The user the sign-in middleware found for this request, if any.
#[cfg(feature = "ssr")]
pub async fn current_user() -> Option<CurrentUser> {
    leptos_axum::extract::<axum::Extension<CurrentUser>>()
        .await
        .ok()
        .map(|axum::Extension(u)| u)
}

/// The signed-in user if their role allows `role`; otherwise 401/403, and a
/// refusal in the audit log (the same check as the routes').
#[cfg(feature = "ssr")]
pub async fn require(role: Role) -> Result<CurrentUser, AppError> {
    let user = current_user().await;
    let path = leptos_axum::extract::<axum::http::Uri>()
        .await
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    crate::server::auth::require(
        &state()?,
        user.as_ref(),
        client_ip().await.as_ref(),
        &path,
        role,
    )
    .await
}

/// The client's address the sign-in middleware found.
#[cfg(feature = "ssr")]
async fn client_ip() -> Option<crate::server::auth::ClientIp> {
    leptos_axum::extract::<axum::Extension<crate::server::auth::ClientIp>>()
        .await
        .ok()
        .map(|axum::Extension(ip)| ip)
}

/// Records what `user` did; a failing audit write is logged, not shown.
#[cfg(feature = "ssr")]
pub async fn audit(user: &CurrentUser, action: &str, target: Option<&str>, detail: Option<&str>) {
    let ip = client_ip().await.map(|ip| ip.0.to_string());
    if let Ok(st) = state() {
        st.audit(crate::server::db::Audit {
            actor: &user.name,
            action,
            target,
            detail,
            ip: ip.as_deref(),
        })
        .await;
    }
}

/// A batch id as the upstream makes them: one path segment, no surprises.
pub fn check_batch_id(id: &str) -> Result<(), AppError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(AppError::Invalid(format!("'{id}' is not a batch id")))
    }
}

#[server(endpoint = "upstream_info")]
pub async fn get_upstream_info() -> Result<UpstreamInfo, AppError> {
    async {
        require(Role::Viewer).await?;
        Ok(state()?.upstream.info())
    }
    .await
    .map_err(fail)
}

#[server(endpoint = "check_upstream")]
pub async fn check_upstream() -> Result<Reachability, AppError> {
    async {
        require(Role::Viewer).await?;
        Ok(state()?.upstream.probe().await)
    }
    .await
    .map_err(fail)
}

/// A page of the batch table, from the local index (never the upstream:
/// its cost does not grow with the number of viewers).
#[server(endpoint = "list_batches")]
pub async fn list_batches(#[server(default)] query: BatchQuery) -> Result<BatchPage, AppError> {
    async {
        require(Role::Viewer).await?;
        let st = state()?;
        let (batches, total, offset, limit) =
            st.db.query_batches(&query).await.map_err(|e| match e {
                crate::server::db::DbError::Query(m) => AppError::Invalid(m),
                other => AppError::Internal(other.to_string()),
            })?;
        Ok(BatchPage {
            batches,
            total,
            offset,
            limit,
            watcher: st.hub.status(),
        })
    }
    .await
    .map_err(fail)
}

/// The values the table's filters offer.
#[server(endpoint = "batch_facets")]
pub async fn batch_facets() -> Result<Facets, AppError> {
    async {
        require(Role::Viewer).await?;
        let st = state()?;
        if let Some(f) = st.facets.get() {
            return Ok(f);
        }
        let f = st.db.facets().await.map_err(internal)?;
        st.facets.put(f.clone());
        Ok(f)
    }
    .await
    .map_err(fail)
}

#[cfg(feature = "ssr")]
fn internal(e: impl std::fmt::Display) -> AppError {
    tracing::error!(error = %e, "database");
    AppError::Internal("the database failed; see the server log".into())
}

/// When the watcher last reached the upstream, and its last failure: what
/// the banner on every page says while the upstream does not answer.
#[server(endpoint = "watcher_status")]
pub async fn get_watcher_status() -> Result<WatcherStatus, AppError> {
    async {
        require(Role::Viewer).await?;
        Ok(state()?.hub.status())
    }
    .await
    .map_err(fail)
}

/// One batch: from the index when it is there; otherwise (not yet seen by
/// the watcher) from the upstream, and then indexed.
#[server(endpoint = "get_batch")]
pub async fn get_batch(id: String) -> Result<Batch, AppError> {
    async {
        require(Role::Viewer).await?;
        check_batch_id(&id)?;
        let st = state()?;
        if let Some(b) = st.db.get_indexed(&id).await.map_err(internal)? {
            return Ok(b);
        }
        let b = st.upstream.client.get_batch(&id).await?;
        st.index(&b).await;
        Ok(b)
    }
    .await
    .map_err(fail)
}

#[server(endpoint = "cancel_batch")]
pub async fn cancel_batch(id: String) -> Result<Batch, AppError> {
    async {
        let user = require(Role::Operator).await?;
        check_batch_id(&id)?;
        let st = state()?;
        let batch = st.upstream.client.cancel_batch(&id).await?;
        st.index(&batch).await;
        audit(&user, "cancel", Some(&id), None).await;
        Ok(batch)
    }
    .await
    .map_err(fail)
}
