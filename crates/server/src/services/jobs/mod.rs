//! Jobs larger than one batch (issue 20).
//!
//! `POST /api/jobs` receives one file (up to 2 GB and 2,000,000 requests),
//! checks it while it streams to disk, cuts it into parts that each fit
//! the upstream's limits ([`batchboard_core::jobs::Splitter`]) and uploads
//! every part's file to the upstream before the job exists: a job is
//! created whole, with all its parts, or not at all. From then on the
//! parts' files live at the upstream, and the scheduler ([`schedule`]),
//! run by whichever replica polls that upstream, turns them into batches as
//! the enqueued-token limit allows, sends failed requests again as retry
//! parts, and ends the job. [`merged`] streams one result in input order.

mod create;
pub mod merged;
pub mod schedule;

pub use create::create;

use batchboard_core::jobs::{JobView, PartView};

use crate::state::AppState;
use crate::store::jobs::{JobRow, PartRow};
use crate::store::DbError;
use batchboard_core::dashboard::display_upstream;
use batchboard_core::error::ApiError;
use batchboard_core::i18n::{Key, Msg};

/// `POST /api/jobs` (with the body limit of a job's file) and the merged
/// result.
pub fn router() -> axum::Router<AppState> {
    use crate::http::routes::{CREATE_JOB, JOB_MERGED};
    use axum::routing::{get, post};
    axum::Router::new()
        .route(JOB_MERGED, get(merged::merged))
        .route(
            CREATE_JOB,
            post(create).layer(axum::extract::DefaultBodyLimit::max(
                crate::http::limits::JOB_BODY_LIMIT as usize,
            )),
        )
}

/// Parts not yet ended.
pub(crate) fn is_open(state: &str) -> bool {
    matches!(state, "queued" | "submitting" | "running")
}

/// What pages show of a job and its parts.
pub fn view(job: &JobRow, parts: &[PartRow]) -> JobView {
    let n = |v: i64| v.max(0) as u64;
    let ended = |p: &&PartRow| !is_open(&p.state);
    let ok: i64 = parts.iter().map(|p| p.ok).sum();
    // A failure sent again is not final; one that was not, is.
    let failed: i64 = parts
        .iter()
        .filter(ended)
        .map(|p| p.failed - p.retried)
        .sum();
    // Parts cancelled before they ran: their requests never ran.
    let never: i64 = parts
        .iter()
        .filter(|p| p.state == "cancelled" && p.batch_id.is_none())
        .map(|p| p.requests)
        .sum();
    let retrying: i64 = parts
        .iter()
        .filter(|p| p.attempt > 1 && is_open(&p.state))
        .map(|p| p.requests)
        .sum();
    JobView {
        id: job.id.clone(),
        upstream: display_upstream(&job.upstream).to_owned(),
        endpoint: job.endpoint.clone(),
        model: job.model.clone(),
        filename: job.filename.clone(),
        status: job.status.clone(),
        created_by: job.created_by.clone(),
        created_at: job.created_at,
        ended_at: job.ended_at,
        requests: n(job.requests),
        tokens: n(job.tokens),
        max_attempts: job.max_attempts.max(0) as u32,
        ok: n(ok),
        failed: n(failed + never),
        pending: n(job.requests - ok - failed - never),
        retrying: n(retrying),
        input_tokens_used: 0,
        output_tokens_used: 0,
        parts: parts
            .iter()
            .map(|p| PartView {
                part: p.part as u32,
                attempt: p.attempt as u32,
                retry_of: p.retry_of.map(|r| r as u32),
                first_line: n(p.first_line),
                last_line: n(p.last_line),
                requests: n(p.requests),
                tokens: n(p.tokens),
                state: p.state.clone(),
                batch_id: p.batch_id.clone(),
                waits: p.waits.max(0) as u32,
                ok: n(p.ok),
                failed: n(p.failed),
                retried: n(p.retried),
                error: p.error.clone(),
            })
            .collect(),
    }
}

fn db_error(e: DbError) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// The newest jobs, without their parts' details.
pub async fn list(state: &AppState, limit: i64) -> Result<Vec<JobView>, ApiError> {
    let jobs = state.db.jobs(limit).await.map_err(db_error)?;
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        let parts = state.db.parts(&job.id).await.map_err(db_error)?;
        let mut v = view(&job, &parts);
        v.parts.clear();
        out.push(v);
    }
    Ok(out)
}

/// One job with its parts.
pub async fn get(state: &AppState, id: &str) -> Result<(JobRow, JobView), ApiError> {
    batchboard_core::dashboard::check_id("job", id)?;
    let job = state
        .db
        .job(id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::NotFound(Msg::new(Key::ServerJobNotFound).arg("id", id)))?;
    let parts = state.db.parts(id).await.map_err(db_error)?;
    let mut v = view(&job, &parts);
    // What the parts' batches used, as far as the index knows.
    for b in parts.iter().filter_map(|p| p.batch_id.as_deref()) {
        if let Ok(Some(batch)) = state.db.get_indexed(b).await {
            if let Some(u) = batch.usage {
                v.input_tokens_used += u.input_tokens;
                v.output_tokens_used += u.output_tokens;
            }
        }
    }
    Ok((job, v))
}

/// Cancels a job: nothing more is submitted, running parts are cancelled
/// upstream; the scheduler ends it once they have ended (their finished
/// requests count, nothing is sent again).
pub async fn cancel(state: &AppState, id: &str) -> Result<JobView, ApiError> {
    let (job, _) = get(state, id).await?;
    state
        .db
        .set_job_status(id, &["running"], "cancelling", None)
        .await
        .map_err(db_error)?;
    state.db.cancel_queued_parts(id).await.map_err(db_error)?;
    let upstream = state.upstreams.named(&job.upstream);
    for p in state.db.parts(id).await.map_err(db_error)? {
        let (Some(batch), Some(u)) = (p.batch_id.as_deref(), upstream.as_ref()) else {
            continue;
        };
        if p.state != "running" {
            continue;
        }
        let own = batchboard_core::dashboard::split_qualified(batch).1;
        match u.client.cancel_batch(own).await {
            Ok(b) => {
                state.index(&u.qualify_batch(b)).await;
            }
            // Ended meanwhile: the scheduler reads how.
            Err(e) => tracing::info!(batch, error = %e, "jobs: cannot cancel a part's batch"),
        }
    }
    Ok(get(state, id).await?.1)
}
