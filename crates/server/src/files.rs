//! Streaming routes that server functions cannot serve well: downloading a
//! batch's files, and uploading a JSONL file to create a batch. Both stream:
//! memory use does not grow with the file.

use axum::body::Body;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::Deserialize;

use super::state::AppState;
use crate::http::actor::{Actor, Operator, Viewer};
use crate::http::HttpError;
use crate::providers::Upstream;
use crate::services::intake::Intake;
use crate::services::messages::Spool;
use crate::services::spend;
use crate::services::submit::{create_from, estimate_tokens, stamp_creator};
use batchboard_core::dashboard::check_id;
use batchboard_core::error::{ApiError, ErrorBody};
use batchboard_core::i18n::{Key, Msg};
use batchboard_core::{check_expiry_seconds, CreateBatch, ExpiresAfter};
use batchboard_core::{check_metadata, Metadata, ENDPOINTS};

/// Downloads (a file, a batch's merged results) and the upload that
/// creates a batch, with its own body limit.
pub fn router() -> axum::Router<AppState> {
    use crate::http::routes::{CREATE_BATCH, FILE_CONTENT, MERGED_RESULTS};
    use axum::routing::{get, post};
    axum::Router::new()
        .route(FILE_CONTENT, get(download))
        .route(MERGED_RESULTS, get(crate::services::results::merged))
        .route(
            CREATE_BATCH,
            post(create).layer(axum::extract::DefaultBodyLimit::max(
                crate::http::limits::UPLOAD_BODY_LIMIT as usize,
            )),
        )
}

#[derive(Debug, Deserialize)]
pub struct DownloadQuery {
    /// The batch the file belongs to.
    batch: Option<String>,
}

/// `GET /files/{id}/content?batch={batch}`: streams the upstream file to
/// the browser (viewers and up; each download is audited). Only the input,
/// output or error file of a batch the dashboard shows: the key can read
/// every file of the organisation, a viewer only batches' files. The
/// file's name and the audit entry come from the index, not the request.
pub async fn download(
    State(state): State<AppState>,
    actor: Actor<Viewer>,
    Path(id): Path<String>,
    Query(q): Query<DownloadQuery>,
) -> Result<Response, HttpError> {
    check_id("file", &id)?;
    let refused = || {
        HttpError::from(ApiError::Forbidden(
            Msg::new(Key::ServerDownloadRefused).arg("id", &id),
        ))
    };
    let batch_id = q.batch.ok_or_else(refused)?;
    check_id("batch", &batch_id)?;
    // As its page finds it; a batch the upstream does not know is refused
    // like any other.
    let batch = match state.batch(&batch_id).await {
        Err(HttpError::Api(ApiError::Upstream {
            status: Some(404), ..
        })) => return Err(refused()),
        found => found?,
    };
    let raw = batchboard_core::anthropic::raw_results_file(&batch);
    let kind = [
        ("input", Some(&batch.input_file_id)),
        ("output", batch.output_file_id.as_ref()),
        ("error", batch.error_file_id.as_ref()),
        ("results", raw.as_ref()),
    ]
    .into_iter()
    .find(|(_, f)| f.is_some_and(|f| *f == id))
    .map(|(k, _)| k)
    .ok_or_else(refused)?;
    let (source, own) = state.upstreams.route(&id)?;
    let upstream = source.client.file_content(own).await?;
    actor
        .audit(
            "download",
            Some(&batch.id),
            Some(
                Msg::new(Key::AuditDetailFile)
                    .arg_text(
                        "kind",
                        match kind {
                            "input" => Key::AuditDetailInput,
                            "output" | "results" => Key::AuditDetailOutput,
                            _ => Key::AuditDetailErrors,
                        },
                    )
                    .arg("id", &id),
            ),
        )
        .await;
    let name = format!("{}_{kind}.jsonl", batch.id);
    Ok(stream_file(
        upstream,
        source.client.policy().call_timeout,
        &name,
    ))
}

/// A file's content as the upstream sends it, streamed to the client as
/// the download `name`.
pub(crate) fn stream_file(
    upstream: reqwest::Response,
    idle: std::time::Duration,
    name: &str,
) -> Response {
    let length = upstream.content_length();
    let mut resp = Response::new(Body::from_stream(relay(upstream.bytes_stream(), idle)));
    let headers = resp.headers_mut();
    // With the length announced, a cut transfer is plainly incomplete to
    // every client; without it, the missing end of the chunked body says so.
    if let Some(n) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jsonl; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The upstream's body, passed on chunk by chunk. A broken upstream
/// transfer, or one silent for `idle`, becomes an error, which aborts the
/// response: the browser sees a failed download, never a short file that
/// looks whole.
fn relay(
    body: impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send + 'static,
    idle: std::time::Duration,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    use futures_util::StreamExt;
    let transfer = super::metrics::Transfer::start("download");
    tokio_stream::StreamExt::timeout(body, idle).map(move |item| {
        let _running = &transfer;
        match item {
            Ok(Ok(chunk)) => {
                super::metrics::download_bytes(chunk.len() as u64);
                Ok(chunk)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e.without_url(), "download: the upstream transfer broke");
                Err(std::io::Error::other("the upstream transfer broke"))
            }
            Err(_) => {
                tracing::warn!("download: the upstream went silent");
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the upstream went silent",
                ))
            }
        }
    })
}

/// The form fields of a new batch, checked.
pub(crate) struct NewBatch {
    pub endpoint: String,
    pub completion_window: String,
    pub metadata: Option<Metadata>,
    pub output_expires_after: Option<i64>,
}

/// The form's metadata (JSON pairs), checked; `None` when empty.
fn form_metadata(text: Option<String>) -> Result<Option<Metadata>, HttpError> {
    let Some(text) = text.filter(|m| !m.trim().is_empty()) else {
        return Ok(None);
    };
    let m: Metadata = serde_json::from_str(&text)
        .map_err(|e| HttpError::invalid(Msg::new(Key::ServerMetadataNotJson).arg("detail", e)))?;
    check_metadata(&m).map_err(HttpError::invalid)?;
    Ok((!m.is_empty()).then_some(m))
}

pub(crate) fn check_form(
    endpoint: Option<String>,
    window: Option<String>,
    metadata: Option<String>,
    expiry: Option<String>,
) -> Result<NewBatch, HttpError> {
    let endpoint = endpoint
        .filter(|e| !e.is_empty())
        .ok_or_else(|| HttpError::invalid(Msg::new(Key::ServerEndpointMissing)))?;
    if !ENDPOINTS.contains(&endpoint.as_str()) {
        return Err(HttpError::invalid(
            Msg::new(Key::ServerEndpointUnknown)
                .arg("endpoint", &endpoint)
                .arg("endpoints", ENDPOINTS.join(", ")),
        ));
    }
    let completion_window = window
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "24h".into());
    let metadata = form_metadata(metadata)?;
    let output_expires_after = match expiry.filter(|e| !e.trim().is_empty()) {
        None => None,
        Some(s) => {
            let secs: i64 = s
                .trim()
                .parse()
                .map_err(|_| HttpError::invalid(Msg::new(Key::ServerExpiryNotNumber)))?;
            Some(check_expiry_seconds("output_expires_after", secs).map_err(HttpError::invalid)?)
        }
    };
    Ok(NewBatch {
        endpoint,
        completion_window,
        metadata,
        output_expires_after,
    })
}

/// Where the New batch form's refusal waits for the page, when the form
/// was sent without JavaScript.
const REFUSAL: &str = "new_batch.refusal";

/// `POST /api/batches`: multipart `endpoint`, `completion_window`,
/// `metadata` (JSON object), `output_expires_after` (seconds) and `file`
/// (last). The file is validated while it streams to a temporary file; only
/// a valid file is uploaded upstream, and then the batch is created.
///
/// Scripts and the page's own upload get JSON. A browser posting the form
/// without JavaScript (it asks for HTML) is sent to the new batch's page,
/// or back to the form, which shows the refusal with its problems.
pub async fn create(
    State(state): State<AppState>,
    actor: Actor<Operator>,
    headers: axum::http::HeaderMap,
    session: Option<axum::Extension<tower_sessions::Session>>,
    form: Multipart,
) -> Response {
    let wants_page = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let created = create_batch(state, actor, form).await;
    match (wants_page, created) {
        (false, Ok(batch)) => Json(batch).into_response(),
        (false, Err(e)) => e.into_response(),
        (true, Ok(batch)) => Redirect::to(&format!("/batches/{}", batch.id)).into_response(),
        (true, Err(e)) => {
            let (_, body) = crate::http::body(&e.into_api());
            if let Some(axum::Extension(session)) = session {
                if let Err(e) = session.insert(REFUSAL, body).await {
                    tracing::warn!(error = %e, "cannot keep the refusal for the form");
                }
            }
            Redirect::to("/batches/new").into_response()
        }
    }
}

/// The refusal of the form sent without JavaScript, once: the New batch
/// page shows it.
pub async fn take_refusal(parts: &axum::http::request::Parts) -> Option<ErrorBody> {
    let session = parts.extensions.get::<tower_sessions::Session>()?;
    session.remove::<ErrorBody>(REFUSAL).await.ok().flatten()
}

/// A multipart body that cannot be read: too large (413) or malformed.
pub(crate) fn bad_form(e: axum::extract::multipart::MultipartError) -> HttpError {
    let message = Msg::new(Key::ServerFormUnreadable).arg("detail", e.body_text());
    HttpError::from(if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(message)
    } else {
        ApiError::Invalid(message)
    })
}

async fn create_batch(
    state: AppState,
    actor: Actor<Operator>,
    mut form: Multipart,
) -> Result<batchboard_core::Batch, HttpError> {
    let Ok(_permit) = state.uploads.clone().try_acquire_owned() else {
        return Err(ApiError::Busy(Msg::new(Key::ServerUploadsBusy)).into());
    };
    let _transfer = super::metrics::Transfer::start("upload");
    let (mut endpoint, mut window, mut metadata, mut expiry) = (None, None, None, None);
    let mut chosen: Option<String> = None;
    let mut announced: Option<u64> = None;
    let mut max_tokens: Option<u64> = None;
    let mut over_budget = false;
    let mut upload: Option<(Received, String, std::sync::Arc<Upstream>)> = None;
    while let Some(mut field) = form.next_field().await.map_err(bad_form)? {
        match field.name().unwrap_or_default() {
            "endpoint" => endpoint = Some(small_text(&mut field).await.map_err(bad_form)??),
            "completion_window" => window = Some(small_text(&mut field).await.map_err(bad_form)??),
            "metadata" => metadata = Some(small_text(&mut field).await.map_err(bad_form)??),
            // Which upstream (before the file; none: the first).
            "upstream" => chosen = Some(small_text(&mut field).await.map_err(bad_form)??),
            // Anthropic: for lines that do not give one.
            "max_tokens" => {
                let text = small_text(&mut field).await.map_err(bad_form)??;
                max_tokens = text.trim().parse().ok().filter(|n| *n > 0);
            }
            "output_expires_after" => {
                expiry = Some(small_text(&mut field).await.map_err(bad_form)??)
            }
            // An admin goes over a budget for this batch (audited).
            "override_budget" => {
                over_budget = is_on(&small_text(&mut field).await.map_err(bad_form)??)
            }
            // The file's size, when the client says it before the file
            // (the page does): then the file streams through to the
            // upstream while it arrives.
            "file_size" => {
                let text = small_text(&mut field).await.map_err(bad_form)??;
                announced = text.trim().parse().ok();
            }
            "file" if upload.is_none() => {
                let filename = field
                    .file_name()
                    .filter(|n| !n.is_empty())
                    .unwrap_or("batch.jsonl")
                    .to_owned();
                let form_endpoint = endpoint.as_deref().filter(|e| !e.is_empty());
                let target = state
                    .upstreams
                    .for_create(chosen.as_deref(), actor.user.role)?;
                let mut received = if target.kind().message_batches() {
                    Received::Messages(Spool::start(&state)?)
                } else {
                    let intake =
                        Intake::start(&state, &target, form_endpoint, &filename, announced)?;
                    Received::Files(Box::new(intake))
                };
                while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
                    super::metrics::upload_bytes(chunk.len() as u64);
                    received.push(chunk).await?;
                }
                upload = Some((received, filename, target));
            }
            _ => {}
        }
    }
    let (received, filename, target) =
        upload.ok_or_else(|| HttpError::invalid(Msg::new(Key::ServerFileMissing)))?;
    let intake = match received {
        Received::Files(intake) => *intake,
        // A message batch: no endpoint or window to send; its metadata
        // is kept here (Anthropic keeps none).
        Received::Messages(spool) => {
            let mut metadata = form_metadata(metadata)?;
            stamp_creator(&mut metadata, &actor.user.name).map_err(HttpError::invalid)?;
            let (batch, report) = spool
                .create(&state, &target, &filename, max_tokens, metadata)
                .await?;
            created(&actor, &batch, filename, &report).await;
            return Ok(batch);
        }
    };
    let mut new = check_form(endpoint, window, metadata, expiry)?;
    stamp_creator(&mut new.metadata, &actor.user.name).map_err(HttpError::invalid)?;
    let mut checked = intake.finish().await?;
    if !checked.report.is_ok() {
        return Err(HttpError::file(checked.report));
    }
    checked.report = estimate_tokens(std::mem::take(&mut checked.report)).await;
    target.check_limits(Some(&new.completion_window), &checked.report)?;
    if checked.report.endpoint.as_deref() != Some(new.endpoint.as_str()) {
        return Err(HttpError::invalid(
            Msg::new(Key::ServerEndpointDiffers)
                .arg("form", &new.endpoint)
                .arg("file", checked.report.endpoint.unwrap_or_default()),
        ));
    }
    let report = std::mem::take(&mut checked.report);
    // The budget, before the upload is completed: a refusal leaves
    // nothing upstream.
    let budget = spend::Guard::check(
        &state,
        (&actor.user.name, actor.user.role),
        &target.name,
        &report,
        new.metadata.as_ref(),
        over_budget,
    )
    .await?;
    let file = checked.upload(&target.client, &filename).await?;
    let batch = create_from(
        &state,
        &target,
        file,
        &filename,
        CreateBatch {
            input_file_id: String::new(),
            endpoint: new.endpoint,
            completion_window: new.completion_window,
            metadata: new.metadata,
            output_expires_after: new.output_expires_after.map(ExpiresAfter::created_at),
        },
    )
    .await?;
    created(&actor, &batch, filename, &report).await;
    if let Some(detail) = budget.created(&state, &batch.id).await {
        actor
            .audit("budget_override", Some(&batch.id), Some(detail))
            .await;
    }
    Ok(batch)
}

/// The file of a new batch: on its way to the upstream's files API, or
/// stored for a message batch (Anthropic).
enum Received {
    Files(Box<Intake>),
    Messages(Spool),
}

impl Received {
    async fn push(&mut self, chunk: bytes::Bytes) -> Result<(), HttpError> {
        match self {
            Received::Files(intake) => intake.push(chunk).await,
            Received::Messages(spool) => spool.push(chunk).await,
        }
    }
}

/// Logs and audits a new batch.
async fn created(
    actor: &Actor<Operator>,
    batch: &batchboard_core::Batch,
    filename: String,
    report: &batchboard_core::validate::Report,
) {
    tracing::info!(batch = %batch.id, requests = report.requests, user = %actor.user.name, "batch created");
    let tokens = report.tokens.as_ref().map_or(0, |t| t.input_tokens);
    let detail = Msg::new(Key::AuditDetailCreated)
        .arg("file", filename)
        .arg("n", report.requests)
        .arg("tokens", tokens);
    actor.audit("create", Some(&batch.id), Some(detail)).await;
}

/// A checkbox of the form (`1`, `on` or `true`).
pub(crate) fn is_on(text: &str) -> bool {
    matches!(text.trim(), "1" | "on" | "true")
}

/// The largest text field of the upload form (metadata: 16 pairs of at
/// most 64 + 512 characters, as JSON).
const MAX_FORM_TEXT: usize = 32 * 1024;

/// A text field of the upload form, read up to [`MAX_FORM_TEXT`] (the
/// body's limit is the file's, 200 MB: a text field must not take it).
pub(crate) async fn small_text(
    field: &mut axum::extract::multipart::Field<'_>,
) -> Result<Result<String, HttpError>, axum::extract::multipart::MultipartError> {
    let mut text = Vec::new();
    while let Some(chunk) = field.chunk().await? {
        if text.len() + chunk.len() > MAX_FORM_TEXT {
            return Ok(Err(ApiError::TooLarge(
                Msg::new(Key::ServerRequestTooLarge).arg("max", MAX_FORM_TEXT),
            )
            .into()));
        }
        text.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8(text).map_err(|_| {
        ApiError::Invalid(Msg::new(Key::ServerFormUnreadable).arg("detail", "not UTF-8")).into()
    }))
}
