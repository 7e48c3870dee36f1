//! Server functions: the browser's only way to reach the upstream. They run on
//! the server, which alone holds the API key, and check their input there.

use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

use batchboard_core::error::{ApiError, ErrorBody};
use batchboard_core::i18n::Msg;
use batchboard_core::progress::ProgressPoint;
use batchboard_core::Batch;

pub mod auth;
pub mod checks;
pub mod jobs_fns;
pub mod results_fns;
pub mod spend_fns;
pub mod tokens_fns;

#[cfg(feature = "ssr")]
use auth::CurrentUser;
pub use batchboard_core::dashboard::{
    check_id, BatchPage, BatchQuery, Facets, Reachability, TableRow, UpstreamInfo, UpstreamView,
    WatcherStatus, PAGE_SIZES, SORT_KEYS,
};
#[cfg(feature = "ssr")]
use batchboard_server::http::actor::{Actor, Needs, Operator, Viewer};

/// The error every server function returns: Batchboard's one error body
/// ([`ErrorBody`]), carried by Leptos' server-function transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(transparent)]
#[error("{0}")]
pub struct AppError(pub ErrorBody);

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;
    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        Self(ErrorBody::transport(value.to_string()))
    }
}

impl AppError {
    /// One line for the user, in their language (the upstream's own words
    /// and transport failures as they came).
    pub fn describe(&self) -> String {
        let b = &self.0;
        let Some(m) = &b.msg else {
            return b.message.clone();
        };
        let mut text = crate::i18n::msg(m);
        // Batchboard's wording of an upstream refusal keeps the upstream's
        // status and code beside it, for whoever investigates.
        if let Some(status) = b.upstream_status {
            text.push_str(&format!(" (HTTP {status}"));
            if let Some(code) = &b.upstream_code {
                text.push_str(&format!(", {code}"));
            }
            text.push(')');
        }
        text
    }

    pub fn invalid(msg: Msg) -> Self {
        ApiError::Invalid(msg).into()
    }

    /// Batchboard's own failure: `message` goes to the log only.
    pub fn internal(message: String) -> Self {
        ApiError::Internal(message).into()
    }
}

/// The one mapping of a server function's failure to its answer: the body
/// and status the routes use (internal detail goes to the log only), and
/// during server rendering, the page's status.
#[cfg(feature = "ssr")]
impl From<ApiError> for AppError {
    fn from(e: ApiError) -> Self {
        let (status, body) = batchboard_server::http::body(&e);
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(status);
        }
        Self(body)
    }
}

#[cfg(not(feature = "ssr"))]
impl From<ApiError> for AppError {
    fn from(e: ApiError) -> Self {
        Self(e.to_body(0))
    }
}

#[cfg(feature = "ssr")]
impl From<batchboard_server::http::HttpError> for AppError {
    fn from(e: batchboard_server::http::HttpError) -> Self {
        e.into_api().into()
    }
}

/// Database and task failures are Batchboard's own: 500, detail logged.
#[cfg(feature = "ssr")]
impl From<batchboard_server::store::DbError> for AppError {
    fn from(e: batchboard_server::store::DbError) -> Self {
        batchboard_server::http::HttpError::from(e).into()
    }
}

#[cfg(feature = "ssr")]
impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> Self {
        batchboard_server::http::HttpError::from(e).into()
    }
}

#[cfg(feature = "ssr")]
impl From<batchboard_upstream::UpstreamError> for AppError {
    fn from(e: batchboard_upstream::UpstreamError) -> Self {
        ApiError::from(e).into()
    }
}

#[cfg(feature = "ssr")]
pub(crate) fn state() -> Result<batchboard_server::state::AppState, AppError> {
    use_context::<batchboard_server::state::AppState>()
        .ok_or_else(|| AppError::internal("server state missing".into()))
}

/// The user the sign-in middleware found for this request, if any.
#[cfg(feature = "ssr")]
pub async fn current_user() -> Option<CurrentUser> {
    leptos_axum::extract::<axum::Extension<CurrentUser>>()
        .await
        .ok()
        .map(|axum::Extension(u)| u)
}

/// The caller of this server function, if their role allows `R`; otherwise
/// 401/403 and a refusal in the audit log: the routes' own extractor.
#[cfg(feature = "ssr")]
pub async fn actor<R: Needs>() -> Result<Actor<R>, AppError> {
    use axum::extract::FromRequestParts;
    let st = state()?;
    let mut parts = use_context::<axum::http::request::Parts>()
        .ok_or_else(|| AppError::internal("server function without its request".into()))?;
    Ok(Actor::<R>::from_request_parts(&mut parts, &st).await?)
}

#[server(endpoint = "upstream_info")]
pub async fn get_upstream_info() -> Result<UpstreamInfo, AppError> {
    actor::<Viewer>().await?;
    Ok(state()?.upstreams.first().info())
}

/// Asks every upstream whether it answers and takes the key: each one's
/// shown name and answer, in order.
#[server(endpoint = "check_upstream")]
pub async fn check_upstream() -> Result<Vec<(String, Reachability)>, AppError> {
    actor::<Viewer>().await?;
    let probes = state()?.upstreams.probe_all().await;
    Ok(probes
        .into_iter()
        .map(|(name, r)| {
            (
                batchboard_core::dashboard::display_upstream(&name).to_owned(),
                r,
            )
        })
        .collect())
}

/// A page of the batch table, from the local index (never the upstream:
/// its cost does not grow with the number of viewers).
#[server(endpoint = "list_batches")]
pub async fn list_batches(#[server(default)] query: BatchQuery) -> Result<BatchPage, AppError> {
    actor::<Viewer>().await?;
    let st = state()?;
    let page = batchboard_server::services::table::page(&st, &query).await?;
    Ok(BatchPage {
        batches: page.rows.clone(),
        total: page.total,
        offset: page.offset,
        limit: page.limit,
        watcher: st.hub.status(),
    })
}

/// The values the table's filters offer.
#[server(endpoint = "batch_facets")]
pub async fn batch_facets() -> Result<Facets, AppError> {
    actor::<Viewer>().await?;
    let st = state()?;
    st.facets
        .get_or_read(|| async {
            let mut f = st.db.facets().await?;
            let all = st.upstreams.all();
            if all.len() > 1 {
                f.upstreams = all.iter().map(|u| u.display_name().to_owned()).collect();
            }
            Ok(f)
        })
        .await
}

/// The upstreams, what they are and where (never a key), and whether the
/// caller may create batches on each.
#[server(endpoint = "upstreams")]
pub async fn list_upstreams() -> Result<Vec<UpstreamView>, AppError> {
    let actor = actor::<Viewer>().await?;
    let st = state()?;
    Ok(st
        .upstreams
        .all()
        .iter()
        .map(|u| u.view(actor.user.role))
        .collect())
}

/// When the watcher last reached the upstream, and its last failure: what
/// the banner on every page says while the upstream does not answer.
#[server(endpoint = "watcher_status")]
pub async fn get_watcher_status() -> Result<WatcherStatus, AppError> {
    actor::<Viewer>().await?;
    Ok(state()?.hub.status())
}

/// One batch: from the index when it is there; otherwise (not yet seen by
/// the watcher) from the upstream, and then indexed.
#[server(endpoint = "get_batch")]
pub async fn get_batch(id: String) -> Result<Batch, AppError> {
    actor::<Viewer>().await?;
    check_id("batch", &id)?;
    Ok(state()?.batch(&id).await?)
}

/// Batch `id`'s request counts over time, as the watcher saw them change.
#[server(endpoint = "batch_progress")]
pub async fn batch_progress(id: String) -> Result<Vec<ProgressPoint>, AppError> {
    actor::<Viewer>().await?;
    check_id("batch", &id)?;
    Ok(state()?.db.progress(&id).await?)
}

#[server(endpoint = "cancel_batch")]
pub async fn cancel_batch(id: String) -> Result<Batch, AppError> {
    let actor = actor::<Operator>().await?;
    check_id("batch", &id)?;
    let st = state()?;
    let (upstream, own) = st.upstreams.route(&id)?;
    let batch = upstream.qualify_batch(upstream.client.cancel_batch(own).await?);
    st.index(&batch).await;
    actor.audit("cancel", Some(&id), None).await;
    Ok(batch)
}
