//! Anthropic's Message Batches, as `/anthropic/v1/messages/batches`: create
//! (the requests in the JSON body, no file), list, retrieve, cancel, delete,
//! and the results as JSONL at the batch's `results_url`. Authentication by
//! `x-api-key` (or a Bearer token, as recent SDKs send it);
//! `anthropic-version` is required. Errors in Anthropic's shape
//! (`{"type": "error", "error": {"type", "message"}}`).
//!
//! Inside, a message batch is the sandbox's own batch: its requests are
//! kept as an OpenAI-style request file for `/v1/messages`, run by the same
//! runner, and the results are turned into Anthropic's result lines when
//! read. So a batch here behaves as in the other dialects (pace, cancel,
//! expiry), only its shapes differ.

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

use super::error::SandboxError;
use super::store::{new_id, now};
use super::{models, Sandbox};
use batchboard_core::{Batch, BatchStatus, FileObject, RequestCounts, ResultLine};

/// Anthropic's limits for one batch.
pub const MAX_REQUESTS: usize = 100_000;
pub const MAX_BYTES: usize = 256 * 1024 * 1024;
/// A batch that has not ended after a day expires.
const DAY: i64 = 24 * 3600;

/// An error in Anthropic's shape.
#[derive(Debug)]
pub struct Error {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl Error {
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            message: message.into(),
        }
    }

    fn not_found(id: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            kind: "not_found_error",
            message: format!("No message batch found with id '{id}'."),
        }
    }

    fn auth(message: &str) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            kind: "authentication_error",
            message: message.into(),
        }
    }
}

impl From<SandboxError> for Error {
    fn from(e: SandboxError) -> Self {
        tracing::error!(error = %e, "sandbox (anthropic): internal error");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "api_error",
            message: "Internal server error".into(),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        SandboxError::from(e).into()
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let body = json!({
            "type": "error",
            "error": { "type": self.kind, "message": self.message },
        });
        let mut resp = (self.status, Json(body)).into_response();
        if let Ok(v) = new_id("req_").parse() {
            resp.headers_mut().insert("request-id", v);
        }
        resp
    }
}

type Result<T> = std::result::Result<T, Error>;

/// The routes under `/anthropic/v1`.
pub fn router(sb: &Sandbox) -> Router {
    Router::new()
        .route("/messages/batches", post(create).get(list))
        .route("/messages/batches/{id}", get(retrieve).delete(delete))
        .route("/messages/batches/{id}/cancel", post(cancel))
        .route("/messages/batches/{id}/results", get(results))
        .route("/messages", post(message))
        .fallback(|| async {
            Error {
                status: StatusCode::NOT_FOUND,
                kind: "not_found_error",
                message: "Not found".into(),
            }
        })
        .route_layer(middleware::from_fn_with_state(
            sb.faults.clone(),
            super::faults::inject,
        ))
        .route_layer(middleware::from_fn_with_state(sb.clone(), auth))
        .layer(middleware::from_fn_with_state(sb.clone(), super::count))
        .with_state(sb.clone())
}

/// `x-api-key` with the sandbox key, and an `anthropic-version`.
async fn auth(State(sb): State<Sandbox>, req: Request, next: Next) -> Response {
    let refused = {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        // The SDKs of late 2026 send the key as a Bearer token instead.
        let bearer = header("authorization").and_then(|v| v.strip_prefix("Bearer "));
        match header("x-api-key").or(bearer) {
            None => Some(Error::auth("x-api-key header is required")),
            Some(k) if !sb.key_is(k) => Some(Error::auth("invalid x-api-key")),
            Some(_) if header("anthropic-version").is_none_or(str::is_empty) => {
                Some(Error::invalid("anthropic-version: header is required"))
            }
            Some(_) => None,
        }
    };
    match refused {
        Some(e) => e.into_response(),
        None => next.run(req).await,
    }
}

/// Where this sandbox's Anthropic API is, as the client reached it.
fn base(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}/anthropic/v1")
}

fn rfc3339(t: Option<i64>) -> Value {
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map_or(Value::Null, Value::String)
}

/// A batch in Anthropic's shape.
pub fn render(b: &Batch, base: &str) -> Value {
    let c = &b.request_counts;
    let done = c.completed + c.failed;
    let left = c.total.saturating_sub(done);
    let ended = b.status.is_terminal();
    let (processing, canceled, expired, errored) = match b.status {
        BatchStatus::Cancelled => (0, left, 0, c.failed),
        BatchStatus::Expired => (0, 0, left, c.failed),
        BatchStatus::Failed => (0, 0, 0, c.failed + left),
        _ if ended => (0, 0, 0, c.failed),
        _ => (left, 0, 0, c.failed),
    };
    let status = match b.status {
        BatchStatus::Cancelling => "canceling",
        _ if ended => "ended",
        _ => "in_progress",
    };
    let ended_at = b
        .completed_at
        .or(b.cancelled_at)
        .or(b.expired_at)
        .or(b.failed_at);
    json!({
        "id": b.id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {
            "processing": processing,
            "succeeded": c.completed,
            "errored": errored,
            "canceled": canceled,
            "expired": expired,
        },
        "created_at": rfc3339(Some(b.created_at)),
        "expires_at": rfc3339(b.expires_at),
        "ended_at": rfc3339(ended.then_some(ended_at).flatten()),
        "cancel_initiated_at": rfc3339(b.cancelling_at),
        "archived_at": null,
        "results_url": if ended { Value::String(format!("{base}/messages/batches/{}/results", b.id)) } else { Value::Null },
    })
}

fn custom_id_ok(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// Checks one request of a create; returns its line for the request file.
fn request_line(
    i: usize,
    r: &Value,
    seen: &mut std::collections::HashSet<String>,
) -> Result<Vec<u8>> {
    let at = |field: &str, what: &str| Error::invalid(format!("requests.{i}.{field}: {what}"));
    let custom_id = r
        .get("custom_id")
        .and_then(Value::as_str)
        .ok_or_else(|| at("custom_id", "Field required (a string)"))?;
    if !custom_id_ok(custom_id) {
        return Err(at(
            "custom_id",
            "String should match pattern '^[a-zA-Z0-9_-]{1,64}$'",
        ));
    }
    if !seen.insert(custom_id.to_owned()) {
        return Err(at(
            "custom_id",
            &format!("Duplicate custom_id '{custom_id}': each request needs its own"),
        ));
    }
    let params = r
        .get("params")
        .filter(|p| p.is_object())
        .ok_or_else(|| at("params", "Field required (an object)"))?;
    for (field, ok) in [
        ("model", params.get("model").is_some_and(Value::is_string)),
        (
            "max_tokens",
            params.get("max_tokens").is_some_and(Value::is_u64),
        ),
        (
            "messages",
            params.get("messages").is_some_and(Value::is_array),
        ),
    ] {
        if !ok {
            return Err(at(&format!("params.{field}"), "Field required"));
        }
    }
    let mut line = serde_json::to_vec(&json!({
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/messages",
        "body": params,
    }))
    .map_err(|e| SandboxError::Internal(e.to_string()))?;
    line.push(b'\n');
    Ok(line)
}

async fn create(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    if body.len() > MAX_BYTES {
        return Err(Error {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            kind: "request_too_large",
            message: format!("A message batch may be at most {MAX_BYTES} bytes."),
        });
    }
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| Error::invalid(format!("The body is not valid JSON: {e}")))?;
    let requests = body
        .get("requests")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::invalid("requests: Field required (a list)"))?;
    if requests.is_empty() || requests.len() > MAX_REQUESTS {
        return Err(Error::invalid(format!(
            "requests: a batch holds 1 to {MAX_REQUESTS} requests, not {}",
            requests.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    let mut file = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        file.extend(request_line(i, r, &mut seen)?);
    }
    let file_id = new_id("file-");
    tokio::fs::write(sb.store.file_path(&file_id), &file).await?;
    let created_at = now();
    let batch = Batch {
        id: new_id("msgbatch_"),
        object: "batch".into(),
        endpoint: batchboard_core::anthropic::ENDPOINT.into(),
        input_file_id: file_id.clone(),
        completion_window: "24h".into(),
        status: BatchStatus::InProgress,
        created_at,
        in_progress_at: Some(created_at),
        expires_at: Some(created_at + DAY),
        request_counts: RequestCounts {
            total: requests.len() as u64,
            ..RequestCounts::default()
        },
        ..Batch::default()
    };
    {
        let mut state = sb.store.lock();
        state.files.push(FileObject {
            id: file_id,
            object: "file".into(),
            bytes: file.len() as u64,
            created_at,
            expires_at: None,
            filename: format!("{}_requests.jsonl", batch.id),
            purpose: "batch".into(),
            status: "processed".into(),
            status_details: None,
        });
        state.batches.push(batch.clone());
    }
    sb.store.changed();
    sb.start_runner(batch.id.clone());
    Ok(Json(render(&batch, &base(&headers))))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<i64>,
    after_id: Option<String>,
    before_id: Option<String>,
}

async fn list(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return Err(Error::invalid("limit: must be between 1 and 1000"));
    }
    let base = base(&headers);
    let state = sb.store.lock();
    let mut newest_first: Vec<&Batch> = state.batches.iter().rev().collect();
    if let Some(before) = &q.before_id {
        // The page just newer than `before_id`.
        let end = newest_first
            .iter()
            .position(|b| &b.id == before)
            .unwrap_or(0);
        let start = end.saturating_sub(limit as usize);
        newest_first = newest_first[start..end].to_vec();
    }
    let page = super::page(newest_first, q.after_id.as_deref(), limit as usize, |b| {
        &b.id
    });
    Ok(Json(json!({
        "data": page.data.iter().map(|b| render(b, &base)).collect::<Vec<_>>(),
        "has_more": page.has_more,
        "first_id": page.first_id,
        "last_id": page.last_id,
    })))
}

fn find(sb: &Sandbox, id: &str) -> Result<Batch> {
    sb.store
        .lock()
        .batch(id)
        .cloned()
        .ok_or_else(|| Error::not_found(id))
}

async fn retrieve(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    Ok(Json(render(&find(&sb, &id)?, &base(&headers))))
}

async fn cancel(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let batch = {
        let mut state = sb.store.lock();
        let b = state.batch_mut(&id).ok_or_else(|| Error::not_found(&id))?;
        if b.status.is_terminal() {
            return Err(Error::invalid(format!(
                "Message batch {id} has ended and can no longer be canceled."
            )));
        }
        if b.status != BatchStatus::Cancelling {
            b.status = BatchStatus::Cancelling;
            b.cancelling_at = Some(now());
        }
        let b = b.clone();
        if !state.cancel_requested.contains(&id) {
            state.cancel_requested.push(id.clone());
        }
        b
    };
    sb.store.changed();
    Ok(Json(render(&batch, &base(&headers))))
}

async fn delete(State(sb): State<Sandbox>, Path(id): Path<String>) -> Result<Json<Value>> {
    let files = {
        let mut state = sb.store.lock();
        let b = state.batch(&id).ok_or_else(|| Error::not_found(&id))?;
        if !b.status.is_terminal() {
            return Err(Error::invalid(format!(
                "Message batch {id} is still processing: cancel it, and delete it once it has ended."
            )));
        }
        let files: Vec<String> = [
            Some(b.input_file_id.clone()),
            b.output_file_id.clone(),
            b.error_file_id.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        state.batches.retain(|b| b.id != id);
        state.files.retain(|f| !files.contains(&f.id));
        files
    };
    sb.store.changed();
    for f in files {
        let _ = tokio::fs::remove_file(sb.store.file_path(&f)).await;
    }
    Ok(Json(json!({ "id": id, "type": "message_batch_deleted" })))
}

/// One result line of the runner's, as Anthropic writes it.
fn result_line(line: &[u8]) -> Option<Vec<u8>> {
    let r: ResultLine = serde_json::from_slice(line).ok()?;
    let result = match (&r.response, &r.error) {
        (Some(resp), _) if resp.status_code < 300 => {
            json!({ "type": "succeeded", "message": resp.body })
        }
        (Some(resp), _) => {
            let message = resp.body["error"]["message"]
                .as_str()
                .unwrap_or("The request failed.");
            json!({
                "type": "errored",
                "error": { "type": "error", "error": { "type": "invalid_request_error", "message": message } },
            })
        }
        (None, Some(e)) if e.code == "batch_expired" => json!({ "type": "expired" }),
        (None, _) => json!({ "type": "canceled" }),
    };
    let mut out =
        serde_json::to_vec(&json!({ "custom_id": r.custom_id, "result": result })).ok()?;
    out.push(b'\n');
    Some(out)
}

/// The results as JSONL, read from the runner's files line by line (any
/// size, flat memory): those that succeeded, then the rest.
async fn results(State(sb): State<Sandbox>, Path(id): Path<String>) -> Result<Response> {
    let b = find(&sb, &id)?;
    if !b.status.is_terminal() {
        return Err(Error::invalid(format!(
            "Message batch {id} has not ended: its results are not ready."
        )));
    }
    let paths: Vec<std::path::PathBuf> = [b.output_file_id, b.error_file_id]
        .into_iter()
        .flatten()
        .map(|f| sb.store.file_path(&f))
        .collect();
    let lines = futures_util::stream::iter(paths)
        .then(|p| async move { tokio::fs::File::open(p).await })
        .map_ok(|f| tokio_stream_lines(tokio::io::BufReader::with_capacity(64 * 1024, f)))
        .try_flatten();
    let body = Body::from_stream(lines);
    Ok(([(header::CONTENT_TYPE, "application/x-jsonl")], body).into_response())
}

use futures_util::{StreamExt, TryStreamExt};

/// Each line of `reader`, converted by [`result_line`] (unreadable lines
/// are skipped).
fn tokio_stream_lines(
    reader: tokio::io::BufReader<tokio::fs::File>,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    futures_util::stream::try_unfold(reader, |mut r| async move {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if r.read_until(b'\n', &mut buf).await? == 0 {
                return Ok(None);
            }
            let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
            if let Some(out) = result_line(line) {
                return Ok(Some((bytes::Bytes::from(out), r)));
            }
        }
    })
}

/// `POST /v1/messages`: one request to the built-in model, outside a batch.
async fn message(body: axum::body::Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return Error::invalid("The body must be a JSON object.").into_response();
    };
    if body
        .get("model")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Error::invalid("model: Field required").into_response();
    }
    let reply = models::run("/v1/messages", &body, &new_id(""), now());
    if reply.status < 300 {
        return Json(reply.body).into_response();
    }
    let message = reply.body["error"]["message"]
        .as_str()
        .unwrap_or("invalid request")
        .to_owned();
    Error::invalid(message).into_response()
}
