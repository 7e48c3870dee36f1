//! The scheduler: one round per poll of an upstream, by the replica that
//! holds its lease (so exactly one schedules). For each job with work left:
//!
//! 1. a part left `submitting` (the process died between deciding to
//!    create its batch and recording it) is looked for upstream by its tags
//!    (`batchboard_job`, `batchboard_part` = `part.try`): found, it runs;
//!    not found, it is queued again. So no part is ever submitted twice.
//! 2. a `running` part whose batch has ended is read: a batch that failed
//!    for the enqueued-token limit is queued again after a wait (not an
//!    attempt); otherwise its results are joined, and the requests worth
//!    sending again go into a retry part (until `max_attempts`), recorded
//!    in the same transaction that ends the part.
//! 3. queued parts are submitted in order while the model's enqueued-token
//!    limit leaves room for them.
//! 4. a job without open parts has ended.

use crate::providers::Upstream;
use crate::services::results;
use crate::state::AppState;
use crate::store::jobs::{JobRow, PartEnd, PartRow};
use crate::store::now;
use batchboard_core::dashboard::split_qualified;
use batchboard_core::error::ApiError;
use batchboard_core::jobs::{META_JOB, META_PART};
use batchboard_core::{Batch, BatchStatus, CreateBatch, Metadata};

use super::{db_error, is_open};

/// The longest wait before a part is tried again.
const MAX_WAIT_SECS: i64 = 60;

/// One round for every job on `upstream`; problems are logged, and the
/// next round starts over from the database.
pub async fn run(state: &AppState, upstream: &Upstream) {
    let jobs = match state.db.active_jobs(&upstream.name).await {
        Ok(j) => j,
        Err(e) => return tracing::warn!(error = %e, "jobs: cannot read the jobs"),
    };
    for job in jobs {
        if let Err(e) = round(state, upstream, &job).await {
            tracing::warn!(job = %job.id, error = %e, "jobs: scheduling round failed");
        }
    }
}

async fn round(state: &AppState, upstream: &Upstream, job: &JobRow) -> Result<(), ApiError> {
    let parts = state.db.parts(&job.id).await.map_err(db_error)?;
    for p in parts.iter().filter(|p| p.state == "submitting") {
        reconcile(state, upstream, job, p).await?;
    }
    for p in parts.iter().filter(|p| p.state == "running") {
        check(state, upstream, job, p).await?;
    }
    if job.status == "running" {
        submit_ready(state, upstream, job).await?;
    }
    let parts = state.db.parts(&job.id).await.map_err(db_error)?;
    if !parts.iter().any(|p| is_open(&p.state)) {
        let to = if job.status == "cancelling" {
            "cancelled"
        } else {
            "completed"
        };
        state
            .db
            .set_job_status(&job.id, &[job.status.as_str()], to, Some(now()))
            .await
            .map_err(db_error)?;
        tracing::info!(job = %job.id, status = to, "jobs: job ended");
    }
    Ok(())
}

/// The tag of a part's batch: the part and how many times it waited.
fn tag(p: &PartRow) -> String {
    format!("{}.{}", p.part, p.waits)
}

fn backoff(waits: i64) -> i64 {
    (1i64 << waits.clamp(0, 6)).min(MAX_WAIT_SECS)
}

/// A part left `submitting`: its batch, if the upstream made it.
async fn reconcile(
    state: &AppState,
    upstream: &Upstream,
    job: &JobRow,
    p: &PartRow,
) -> Result<(), ApiError> {
    let since = p.submitting_at.unwrap_or(0);
    let want = tag(p);
    let found = upstream
        .client
        .find_batch(since, |b| {
            b.metadata.as_ref().is_some_and(|m| {
                m.get(META_JOB) == Some(&job.id) && m.get(META_PART) == Some(&want)
            })
        })
        .await?;
    match found {
        Some(b) => {
            let b = upstream.qualify_batch(b);
            tracing::warn!(job = %job.id, part = p.part, batch = %b.id, "jobs: a part's batch was made before a restart; adopting it");
            state.index(&b).await;
            part_estimate(state, job, p, &b.id).await;
            state
                .db
                .part_running(&job.id, p.part, &b.id)
                .await
                .map_err(db_error)?;
        }
        None => {
            state
                .db
                .requeue_part(&job.id, p.part, now(), false)
                .await
                .map_err(db_error)?;
        }
    }
    Ok(())
}

/// A running part: read how its batch ended, if it has.
async fn check(
    state: &AppState,
    upstream: &Upstream,
    job: &JobRow,
    p: &PartRow,
) -> Result<(), ApiError> {
    let Some(id) = p.batch_id.as_deref() else {
        return Ok(());
    };
    let batch = match state.db.get_indexed(id).await.map_err(db_error)? {
        Some(b) => b,
        None => {
            let b = upstream.qualify_batch(upstream.client.get_batch(split_qualified(id).1).await?);
            state.index(&b).await;
            b
        }
    };
    if !batch.status.is_terminal() {
        // Submitted while the job was being cancelled.
        if job.status == "cancelling" && batch.status != BatchStatus::Cancelling {
            let own = split_qualified(id).1;
            let b = upstream.qualify_batch(upstream.client.cancel_batch(own).await?);
            state.index(&b).await;
        }
        return Ok(());
    }
    if batch.status == BatchStatus::Failed {
        return failed(state, job, p, &batch).await;
    }
    let joined = results::joined(state, &batch).await?;
    let (ok, failed, retryable) = joined.counts();
    let retry = if job.status == "running" && p.attempt < job.max_attempts && retryable > 0 {
        Some(retry_part(state, upstream, job, p, joined, retryable).await?)
    } else {
        None
    };
    let end = PartEnd {
        state: "done",
        ok: ok as i64,
        failed: failed as i64,
        retried: retry.as_ref().map_or(0, |r| r.requests),
        error: None,
    };
    state
        .db
        .end_part(&job.id, p.part, &end, retry.as_ref())
        .await
        .map_err(db_error)
}

/// A part whose batch failed as a whole.
async fn failed(
    state: &AppState,
    job: &JobRow,
    p: &PartRow,
    batch: &Batch,
) -> Result<(), ApiError> {
    let errors = batch
        .errors
        .as_ref()
        .map(|e| e.data.as_slice())
        .unwrap_or(&[]);
    if errors.iter().any(|e| e.code == "token_limit_exceeded") && job.status == "running" {
        tracing::info!(job = %job.id, part = p.part, "jobs: the enqueued-token limit is reached; the part waits");
        return state
            .db
            .requeue_part(&job.id, p.part, now() + backoff(p.waits), true)
            .await
            .map_err(db_error);
    }
    let end = PartEnd {
        state: "failed",
        failed: p.requests,
        error: Some(
            errors
                .first()
                .map(|e| format!("{}: {}", e.code, e.message))
                .unwrap_or_else(|| "the batch failed".into()),
        ),
        ..PartEnd::default()
    };
    state
        .db
        .end_part(&job.id, p.part, &end, None)
        .await
        .map_err(db_error)
}

/// Uploads the requests of `p` worth sending again as a new part.
async fn retry_part(
    state: &AppState,
    upstream: &Upstream,
    job: &JobRow,
    p: &PartRow,
    joined: std::sync::Arc<results::Joined>,
    retryable: u64,
) -> Result<PartRow, ApiError> {
    let dir = state.data_dir.join("uploads");
    let (path, n) = results::write_retryable(joined, dir).await?;
    let parts = state.db.parts(&job.id).await.map_err(db_error)?;
    let next = parts.iter().map(|q| q.part).max().unwrap_or(0) + 1;
    let stem = job.filename.strip_suffix(".jsonl").unwrap_or(&job.filename);
    let name = format!("{stem}.{}.part{next}.jsonl", job.id);
    let file = upstream.client.upload_file(&path, &name, "batch").await?;
    tracing::info!(job = %job.id, part = p.part, retry = next, requests = n, of = retryable, "jobs: sending failed requests again");
    Ok(PartRow {
        job_id: job.id.clone(),
        part: next,
        attempt: p.attempt + 1,
        retry_of: Some(p.part),
        origin: p.origin,
        first_line: p.first_line,
        last_line: p.last_line,
        requests: n as i64,
        tokens: p.tokens * n as i64 / p.requests.max(1),
        input_file_id: upstream.qualify(&file.id),
        state: "queued".into(),
        ..PartRow::default()
    })
}

/// A part's batch gets its share of the job's estimate (its input
/// tokens, the output bound by its requests), so that while it runs it
/// counts against budgets at its upper bound, as a batch of its own does.
async fn part_estimate(state: &AppState, job: &JobRow, p: &PartRow, batch: &str) {
    let Ok(Some(output_max)) = state.db.job_output_max(&job.id).await else {
        return;
    };
    let e = batchboard_core::spend::Estimate {
        model: job.model.clone(),
        input_tokens: p.tokens.max(0) as u64,
        output_max_tokens: output_max * p.requests.max(0) as u64 / job.requests.max(1) as u64,
    };
    if let Err(err) = state.db.set_estimate(batch, &e).await {
        tracing::warn!(job = %job.id, error = %err, "cannot keep a part's estimate");
    }
}

/// Submits queued parts, in order, while the enqueued-token limit leaves
/// room (a part always may go when none of this model's is enqueued).
async fn submit_ready(state: &AppState, upstream: &Upstream, job: &JobRow) -> Result<(), ApiError> {
    let limit = job
        .model
        .as_deref()
        .and_then(|m| upstream.offer.enqueued_tokens.get(m).copied());
    let parts = state.db.parts(&job.id).await.map_err(db_error)?;
    let t = now();
    for p in parts
        .iter()
        .filter(|p| p.state == "queued" && p.not_before <= t)
    {
        if let (Some(limit), Some(model)) = (limit, job.model.as_deref()) {
            let enqueued = state
                .db
                .enqueued_tokens(&upstream.name, model)
                .await
                .map_err(db_error)?;
            if enqueued > 0 && enqueued + p.tokens > limit as i64 {
                break;
            }
        }
        if !state
            .db
            .move_part(&job.id, p.part, "queued", "submitting", Some(now()))
            .await
            .map_err(db_error)?
        {
            continue;
        }
        let mut metadata: Metadata = serde_json::from_str(&job.metadata).unwrap_or_default();
        metadata.insert(META_JOB.into(), job.id.clone());
        metadata.insert(META_PART.into(), tag(p));
        let req = CreateBatch {
            input_file_id: split_qualified(&p.input_file_id).1.to_owned(),
            endpoint: job.endpoint.clone(),
            completion_window: job.completion_window.clone(),
            metadata: Some(metadata),
            output_expires_after: None,
        };
        match upstream.client.create_batch(&req).await {
            Ok(b) => {
                let b = upstream.qualify_batch(b);
                state.index(&b).await;
                let _ = state.db.set_file_name(&b.id, &job.filename).await;
                part_estimate(state, job, p, &b.id).await;
                state
                    .db
                    .part_running(&job.id, p.part, &b.id)
                    .await
                    .map_err(db_error)?;
            }
            // It may have been made: the next round looks for it.
            Err(e) if e.is_ambiguous() => return Err(e.into()),
            Err(e) if e.is_transient() => {
                tracing::warn!(job = %job.id, part = p.part, error = %e, "jobs: the upstream cannot take a part now; it waits");
                state
                    .db
                    .requeue_part(&job.id, p.part, now() + backoff(p.waits + 1), false)
                    .await
                    .map_err(db_error)?;
                return Err(e.into());
            }
            // Refused for good (a file the upstream does not take): the
            // part's requests fail, with the upstream's words.
            Err(e) => {
                tracing::warn!(job = %job.id, part = p.part, error = %e, "jobs: the upstream refused a part");
                let end = PartEnd {
                    state: "failed",
                    failed: p.requests,
                    error: Some(e.to_string()),
                    ..PartEnd::default()
                };
                state
                    .db
                    .end_part(&job.id, p.part, &end, None)
                    .await
                    .map_err(db_error)?;
            }
        }
    }
    Ok(())
}
