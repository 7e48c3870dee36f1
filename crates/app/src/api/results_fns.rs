//! Server functions of the results viewer and of "retry failures".

use leptos::prelude::*;

use super::AppError;
#[cfg(feature = "ssr")]
use super::{actor, state};
use batchboard_core::result_lines::{ResultsPage, ResultsQuery};
use batchboard_core::Batch;
#[cfg(feature = "ssr")]
use batchboard_server::http::actor::{Operator, Viewer};

pub use batchboard_core::dashboard::RETRY_OF;

/// A page of a finished batch's requests joined with their results.
#[server(endpoint = "batch_results")]
pub async fn batch_results(
    id: String,
    #[server(default)] query: ResultsQuery,
) -> Result<ResultsPage, AppError> {
    actor::<Viewer>().await?;
    let st = state()?;
    let b = batchboard_server::services::results::batch(&st, &id).await?;
    let joined = batchboard_server::services::results::joined(&st, &b).await?;
    tokio::task::spawn_blocking(move || joined.page(&query))
        .await?
        .map_err(AppError::from)
}

/// Creates a new batch from the requests of a finished, cancelled or
/// expired batch that failed or never ran; `retry_of` in its metadata names
/// the original.
#[server(endpoint = "retry_failed")]
pub async fn retry_failed(id: String) -> Result<Batch, AppError> {
    let actor = actor::<Operator>().await?;
    let (batch, n) = batchboard_server::services::retry::retry_failed(
        &state()?,
        &id,
        &actor.user.name,
        actor.user.role,
    )
    .await?;
    let detail = batchboard_core::i18n::Msg::new(batchboard_core::i18n::Key::AuditDetailRetry)
        .arg("id", &id)
        .arg("n", n);
    actor.audit("create", Some(&batch.id), Some(detail)).await;
    Ok(batch)
}
