//! Server functions of the results viewer and of "retry failures".

use leptos::prelude::*;

use super::AppError;
#[cfg(feature = "ssr")]
use super::{actor, state};
use batchboard_core::result_lines::{ResultsPage, ResultsQuery};
use batchboard_core::Batch;
#[cfg(feature = "ssr")]
use batchboard_server::actor::{Operator, Viewer};

/// The metadata key that links a retry batch to the batch it retries.
pub const RETRY_OF: &str = "retry_of";

/// A page of a finished batch's requests joined with their results.
#[server(endpoint = "batch_results")]
pub async fn batch_results(
    id: String,
    #[server(default)] query: ResultsQuery,
) -> Result<ResultsPage, AppError> {
    actor::<Viewer>().await?;
    let st = state()?;
    let b = batchboard_server::results::batch(&st, &id).await?;
    let joined = batchboard_server::results::joined(&st, &b).await?;
    tokio::task::spawn_blocking(move || joined.page(&query))
        .await
        .map_err(|e| AppError::internal(e.to_string()))?
        .map_err(AppError::from)
}

/// Creates a new batch from the requests of a finished, cancelled or
/// expired batch that failed or never ran; `retry_of` in its metadata names
/// the original.
#[server(endpoint = "retry_failed")]
pub async fn retry_failed(id: String) -> Result<Batch, AppError> {
    use batchboard_server::files::{stamp_creator, submit};

    use batchboard_server::results;

    let actor = actor::<Operator>().await?;
    let st = state()?;
    let original = results::batch(&st, &id).await?;
    let joined = results::joined(&st, &original).await?;
    // One retry of a batch at a time, and only one: a second click (or a
    // colleague) gets the batch already made.
    let lock = st.results.lock_for(&id);
    let _one = lock.lock().await;
    let earlier = st
        .db
        .query_batches(&crate::api::BatchQuery {
            meta_key: Some(RETRY_OF.into()),
            meta_value: Some(id.clone()),
            limit: Some(1),
            ..Default::default()
        })
        .await
        .map_err(|e| AppError::internal(e.to_string()))?;
    if let Some(b) = earlier.0.first() {
        return Err(AppError::invalid(format!(
            "batch {id} was already retried as {}; retry that one's failures instead",
            b.id
        )));
    }
    if joined.failed_requests() == 0 {
        return Err(AppError::invalid(format!(
            "batch {id} has no failed or unfinished requests to retry"
        )));
    }
    let (file, n) = results::write_failed(joined, st.data_dir.join("uploads")).await?;
    // The same check as any upload, before anything reaches the upstream.
    let report = check_file(&file.0, &original.endpoint).await?;
    if !report.is_ok() {
        let first = report
            .errors
            .first()
            .map(|e| e.message.clone())
            .unwrap_or_default();
        return Err(AppError::invalid(format!(
            "the requests to retry do not pass the check ({} problems; first: {first})",
            report.error_count
        )));
    }
    let mut metadata = original.metadata.clone();
    metadata
        .get_or_insert_with(Default::default)
        .insert(RETRY_OF.into(), id.clone());
    stamp_creator(&mut metadata, &actor.user.name).map_err(AppError::invalid)?;
    let name = st
        .db
        .get_file_name(&id)
        .await
        .ok()
        .flatten()
        .map(|n| format!("{}-retry.jsonl", n.trim_end_matches(".jsonl")))
        .unwrap_or_else(|| format!("{id}-retry.jsonl"));
    let batch = submit(
        &st,
        &file.0,
        &name,
        batchboard_core::CreateBatch {
            input_file_id: String::new(),
            endpoint: original.endpoint.clone(),
            completion_window: original.completion_window.clone(),
            metadata,
            output_expires_after: None,
        },
    )
    .await?;
    drop(file);
    let detail = format!("retry of {id}: {n} requests");
    actor.audit("create", Some(&batch.id), Some(&detail)).await;
    Ok(batch)
}

#[cfg(feature = "ssr")]
async fn check_file(
    path: &std::path::Path,
    endpoint: &str,
) -> Result<batchboard_core::validate::Report, AppError> {
    use tokio::io::AsyncReadExt;
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| AppError::internal(format!("retry file: {e}")))?;
    let mut v = batchboard_core::validate::Validator::new(Some(endpoint))
        .with_token_counter(batchboard_server::tokens::counter());
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .await
            .map_err(|e| AppError::internal(format!("retry file: {e}")))?;
        if n == 0 {
            break;
        }
        tokio::task::block_in_place(|| v.chunk(&buf[..n]));
    }
    Ok(v.finish())
}
