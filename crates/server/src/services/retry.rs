//! "Retry failures": a new batch of the requests of a finished, cancelled
//! or expired batch that failed or never ran, linked to the original by
//! `retry_of` in its metadata.

use batchboard_core::dashboard::{BatchQuery, RETRY_OF};
use batchboard_core::error::ApiError;
use batchboard_core::i18n::{Key, Msg};
use batchboard_core::{Batch, CreateBatch};

use super::submit::{check_file, stamp_creator, submit};
use crate::http::HttpError;
use crate::services::results;
use crate::state::AppState;

/// The new batch, and how many requests it retries. `creator` is stamped
/// into its metadata.
pub async fn retry_failed(
    st: &AppState,
    id: &str,
    creator: &str,
    role: batchboard_core::access::Role,
) -> Result<(Batch, usize), HttpError> {
    let original = results::batch(st, id).await?;
    // The retry goes where the original ran, if the user may create there.
    let (upstream, _) = st.upstreams.route(id)?;
    upstream.check_may_create(role)?;
    let joined = results::joined(st, &original).await?;
    // One retry of a batch at a time, and only one: a second click (or a
    // colleague) gets the batch already made.
    let lock = st.results.lock_for(id);
    let _one = lock.lock().await;
    let earlier = st
        .db
        .query_batches(
            &BatchQuery {
                meta_key: Some(RETRY_OF.into()),
                meta_value: Some(id.to_owned()),
                limit: Some(1),
                ..Default::default()
            },
            Some(0),
        )
        .await?;
    if let Some(b) = earlier.0.first() {
        return Err(HttpError::invalid(
            Msg::new(Key::ServerAlreadyRetried)
                .arg("id", id)
                .arg("retry", &b.id),
        ));
    }
    if joined.failed_requests() == 0 {
        return Err(HttpError::invalid(
            Msg::new(Key::ServerNothingToRetry).arg("id", id),
        ));
    }
    let (file, n) = results::write_failed(joined, st.data_dir.join("uploads")).await?;
    let name = st
        .db
        .get_file_name(id)
        .await
        .ok()
        .flatten()
        .map(|n| format!("{}-retry.jsonl", n.trim_end_matches(".jsonl")))
        .unwrap_or_else(|| format!("{id}-retry.jsonl"));
    let mut metadata = original.metadata.clone();
    metadata
        .get_or_insert_with(Default::default)
        .insert(RETRY_OF.into(), id.to_owned());
    stamp_creator(&mut metadata, creator).map_err(HttpError::invalid)?;
    // A message batch: its kept requests, checked and sent the same way,
    // its metadata kept here.
    if upstream.kind().message_batches() {
        let (batch, _) =
            super::messages::create_from_file(st, &upstream, &file, &name, None, metadata).await?;
        return Ok((batch, n));
    }
    // The same check as any upload, before anything reaches the upstream.
    let report = check_file(&file, &original.endpoint).await?;
    if !report.is_ok() {
        let first = report
            .errors
            .first()
            .map(|e| e.message.clone())
            .unwrap_or_default();
        return Err(ApiError::Invalid(
            Msg::new(Key::ServerRetryFailsCheck)
                .arg("n", report.error_count)
                .arg("first", first),
        )
        .into());
    }
    let report = super::submit::estimate_tokens(report).await;
    let budget = super::spend::Guard::check(
        st,
        (creator, role),
        &upstream.name,
        &report,
        metadata.as_ref(),
        false,
    )
    .await?;
    let batch = submit(
        st,
        &upstream,
        &file,
        &name,
        CreateBatch {
            input_file_id: String::new(),
            endpoint: original.endpoint.clone(),
            completion_window: original.completion_window.clone(),
            metadata,
            output_expires_after: None,
        },
    )
    .await?;
    budget.created(st, &batch.id).await;
    Ok((batch, n))
}
