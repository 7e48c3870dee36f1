//! `/v1/batches`: create, list, retrieve, cancel.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;

use super::error::{Result, SandboxError};
use super::store::{new_id, now};
use super::Sandbox;
use batchboard_core::{
    check_metadata, Batch, BatchStatus, CreateBatch, List, RequestCounts, ENDPOINTS,
};

/// Parses a completion window. OpenAI accepts `24h`; like other compatible
/// providers the sandbox accepts any `<n>h` or `<n>d` up to 7 days, and
/// `<n>s`/`<n>m` so that expiry can be tested in seconds.
pub fn window_seconds(w: &str) -> Option<i64> {
    let (num, unit) = w.split_at(w.len().checked_sub(1)?);
    let n: i64 = num.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return None,
    };
    (1..=7 * 86_400).contains(&secs).then_some(secs)
}

pub async fn create(
    State(sb): State<Sandbox>,
    body: std::result::Result<Json<CreateBatch>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Batch>> {
    let Json(req) = body.map_err(|e| SandboxError::BadRequest {
        message: format!("Invalid request body: {}", e.body_text()),
        param: None,
        code: None,
    })?;
    let missing = |field: &'static str| {
        SandboxError::bad(format!("Missing required parameter: '{field}'."), field)
    };
    let input_file_id = Some(req.input_file_id)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing("input_file_id"))?;
    let endpoint = Some(req.endpoint)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing("endpoint"))?;
    if !ENDPOINTS.contains(&endpoint.as_str()) {
        return Err(SandboxError::bad(
            format!("'{endpoint}' is not one of {ENDPOINTS:?} - 'endpoint'"),
            "endpoint",
        ));
    }
    let window = Some(req.completion_window)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing("completion_window"))?;
    let window_secs = window_seconds(&window).ok_or_else(|| {
        SandboxError::bad(
            format!("'{window}' is not a supported completion_window (use '24h')."),
            "completion_window",
        )
    })?;
    if let Some(m) = &req.metadata {
        check_metadata(m).map_err(|msg| SandboxError::bad(msg.to_string(), "metadata"))?;
    }
    let output_expires_after = match &req.output_expires_after {
        None => None,
        Some(e) => Some(
            e.check("output_expires_after")
                .map_err(|msg| SandboxError::bad(msg.to_string(), "output_expires_after"))?,
        ),
    };
    let created_at = now();
    let batch = {
        let mut state = sb.store.lock();
        let file = state
            .file(&input_file_id)
            .ok_or_else(|| SandboxError::not_found("file", &input_file_id))?;
        if file.purpose != "batch" {
            return Err(SandboxError::bad(
                format!(
                    "File {input_file_id} has purpose '{}'; a batch needs purpose 'batch'.",
                    file.purpose
                ),
                "input_file_id",
            ));
        }
        let batch = Batch {
            id: new_id("batch_"),
            object: "batch".into(),
            endpoint,
            model: None,
            errors: None,
            input_file_id,
            completion_window: window,
            status: BatchStatus::Validating,
            output_file_id: None,
            error_file_id: None,
            created_at,
            in_progress_at: None,
            // Azure's batches run until done, whatever the window says.
            expires_at: (sb.dialect != super::Dialect::Azure).then_some(created_at + window_secs),
            finalizing_at: None,
            completed_at: None,
            failed_at: None,
            expired_at: None,
            cancelling_at: None,
            cancelled_at: None,
            request_counts: RequestCounts::default(),
            usage: None,
            metadata: req.metadata,
        };
        state.batches.push(batch.clone());
        if let Some(secs) = output_expires_after {
            state.output_expires_after.insert(batch.id.clone(), secs);
        }
        batch
    };
    sb.store.changed();
    sb.start_runner(batch.id.clone());
    Ok(Json(batch))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    after: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    State(sb): State<Sandbox>,
    Query(q): Query<ListQuery>,
) -> Result<Json<List<Batch>>> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(SandboxError::bad(
            "limit must be between 1 and 100.",
            "limit",
        ));
    }
    let state = sb.store.lock();
    let newest_first: Vec<&Batch> = state.batches.iter().rev().collect();
    Ok(Json(super::page(
        newest_first,
        q.after.as_deref(),
        limit as usize,
        |b| &b.id,
    )))
}

pub async fn retrieve(State(sb): State<Sandbox>, Path(id): Path<String>) -> Result<Json<Batch>> {
    sb.store
        .lock()
        .batch(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| SandboxError::not_found("batch", &id))
}

pub async fn cancel(State(sb): State<Sandbox>, Path(id): Path<String>) -> Result<Json<Batch>> {
    let batch = {
        let mut state = sb.store.lock();
        let batch = state
            .batch_mut(&id)
            .ok_or_else(|| SandboxError::not_found("batch", &id))?;
        match batch.status {
            BatchStatus::Cancelling => {}
            ref s if s.can_cancel() => {
                batch.status = BatchStatus::Cancelling;
                batch.cancelling_at = Some(now());
            }
            ref s => {
                return Err(SandboxError::Conflict(format!(
                    "Cannot cancel a batch with status '{s}'."
                )))
            }
        }
        let batch = batch.clone();
        if !state.cancel_requested.contains(&id) {
            state.cancel_requested.push(id.clone());
        }
        batch
    };
    sb.store.changed();
    Ok(Json(batch))
}
