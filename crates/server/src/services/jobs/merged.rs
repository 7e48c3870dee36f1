//! `GET /api/jobs/{id}/merged?format=jsonl|csv`: one result for a job, in
//! input order, each request once: from the last attempt that has it (a
//! request whose part never ran is `not_run`). JSONL rows carry the
//! attempt. Streamed part by part: one part's results in memory at a time.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Response;

use crate::http::actor::{Actor, Viewer};
use crate::http::HttpError;
use crate::services::results::{self, Joined, MergedQuery};
use crate::state::AppState;
use crate::store::jobs::PartRow;
use batchboard_core::error::ApiError;

pub async fn merged(
    State(state): State<AppState>,
    actor: Actor<Viewer>,
    Path(id): Path<String>,
    Query(q): Query<MergedQuery>,
) -> Result<Response, HttpError> {
    let csv = q.is_csv()?;
    let (_, _) = super::get(&state, &id).await?;
    let parts = state.db.parts(&id).await.map_err(super::db_error)?;
    results::audit_merged(&actor, &id, csv).await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let origins: Vec<&PartRow> = parts.iter().filter(|p| p.retry_of.is_none()).collect();
        for (n, origin) in origins.iter().enumerate() {
            let chain = match chain(&state, &parts, origin).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(job = %origin.job_id, part = origin.part, error = %e, "jobs: merged result broke off");
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            let (tx2, first) = (tx.clone(), origin.first_line.max(1) as u64);
            let went = tokio::task::spawn_blocking(move || {
                results::chain_rows(&chain, first, csv, n == 0, &tx2)
            })
            .await;
            if !matches!(went, Ok(true)) {
                return;
            }
        }
    });
    Ok(results::merged_download(rx, &id, csv))
}

/// A first-attempt part's joined results, then its retries' that ran.
async fn chain(
    state: &AppState,
    parts: &[PartRow],
    origin: &PartRow,
) -> Result<Vec<(u32, Arc<Joined>)>, ApiError> {
    let mut out = vec![(origin.attempt as u32, ran(state, origin).await?)];
    let mut retries: Vec<&PartRow> = parts
        .iter()
        .filter(|p| p.origin == origin.part && p.retry_of.is_some() && p.state == "done")
        .collect();
    retries.sort_by_key(|p| p.attempt);
    for r in retries {
        out.push((r.attempt as u32, ran(state, r).await?));
    }
    Ok(out)
}

/// A part's results: its ended batch's, or its file's requests unrun.
async fn ran(state: &AppState, p: &PartRow) -> Result<Arc<Joined>, ApiError> {
    if let (Some(id), false) = (p.batch_id.as_deref(), super::is_open(&p.state)) {
        let batch = results::batch(state, id).await?;
        if batch.status.is_terminal() {
            return results::joined(state, &batch).await;
        }
    }
    results::joined_input(state, &p.input_file_id).await
}
