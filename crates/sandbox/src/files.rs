//! `/v1/files`: upload (streamed to disk), list, retrieve, content (streamed
//! from disk), delete.

use axum::body::Body;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncWriteExt;

use super::error::{Result, SandboxError};
use super::store::{new_id, now};
use super::Sandbox;
use batchboard_core::{FileObject, List};

/// The Files API's limit for one file.
pub const ACCEPTED_FILE_BYTES: u64 = 512 * 1024 * 1024;
const PURPOSES: &[&str] = &[
    "assistants",
    "batch",
    "fine-tune",
    "vision",
    "user_data",
    "evals",
];
const THIRTY_DAYS: i64 = 30 * 24 * 3600;

pub async fn upload(State(sb): State<Sandbox>, mut form: Multipart) -> Result<Json<FileObject>> {
    let mut arrival = Arrival::begin(&sb, sb.store.temp_path());
    let (filename, bytes, purpose, expires_after) = receive(&mut form, &mut arrival).await?;
    let id = new_id("file-");
    tokio::fs::rename(&arrival.tmp, sb.store.file_path(&id)).await?;
    arrival.kept = true;
    let created_at = now();
    let expires_at = match (expires_after, purpose.as_str()) {
        (Some(s), _) => Some(created_at + s),
        (None, "batch") => Some(created_at + THIRTY_DAYS),
        (None, _) => None,
    };
    let file = FileObject {
        id,
        object: "file".into(),
        bytes,
        created_at,
        expires_at,
        filename,
        purpose,
        status: "processed".into(),
        status_details: None,
    };
    sb.store.lock().files.push(file.clone());
    sb.store.changed();
    Ok(Json(file))
}

/// Uploads seen, for `GET /sandbox/stats`: tests check that an upload the
/// dashboard abandoned had begun here and left nothing.
#[derive(Debug, Default)]
pub struct UploadStats {
    pub begun: AtomicU64,
    /// Ended without a file: refused, or the body broke off.
    pub abandoned: AtomicU64,
    /// File bytes received by uploads that were abandoned.
    pub abandoned_bytes: AtomicU64,
}

/// One upload on its way in. Unless it is kept, its temporary file is
/// removed and it counts as abandoned, however the request ends (also when
/// the connection closes and the handler is dropped).
struct Arrival {
    stats: std::sync::Arc<UploadStats>,
    tmp: std::path::PathBuf,
    bytes: u64,
    kept: bool,
}

impl Arrival {
    fn begin(sb: &Sandbox, tmp: std::path::PathBuf) -> Self {
        sb.uploads.begun.fetch_add(1, Ordering::Relaxed);
        Self {
            stats: sb.uploads.clone(),
            tmp,
            bytes: 0,
            kept: false,
        }
    }
}

impl Drop for Arrival {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.tmp);
            self.stats.abandoned.fetch_add(1, Ordering::Relaxed);
            self.stats
                .abandoned_bytes
                .fetch_add(self.bytes, Ordering::Relaxed);
        }
    }
}

type Received = (String, u64, String, Option<i64>);

async fn receive(form: &mut Multipart, arrival: &mut Arrival) -> Result<Received> {
    let bad_form = |e: axum::extract::multipart::MultipartError| {
        SandboxError::bad(format!("Could not read the multipart form: {e}"), "file")
    };
    let mut purpose = None;
    let mut file: Option<(String, u64)> = None;
    let (mut anchor, mut seconds) = (None, None);
    while let Some(mut field) = form.next_field().await.map_err(bad_form)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                let filename = field.file_name().unwrap_or("upload.jsonl").to_owned();
                // Buffered: a file forwarded by a proxy (the dashboard)
                // arrives in many small chunks, and each write of a bare
                // `tokio::fs::File` is a trip to a blocking thread.
                let created = tokio::fs::File::create(&arrival.tmp).await?;
                let mut out = tokio::io::BufWriter::with_capacity(1 << 20, created);
                let mut bytes = 0u64;
                while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
                    bytes += chunk.len() as u64;
                    arrival.bytes = bytes;
                    if bytes > ACCEPTED_FILE_BYTES {
                        return Err(SandboxError::TooLarge(ACCEPTED_FILE_BYTES));
                    }
                    out.write_all(&chunk).await?;
                }
                out.flush().await?;
                file = Some((filename, bytes));
            }
            "purpose" => purpose = Some(field.text().await.map_err(bad_form)?),
            "expires_after[anchor]" => anchor = Some(field.text().await.map_err(bad_form)?),
            "expires_after[seconds]" => seconds = Some(field.text().await.map_err(bad_form)?),
            _ => {}
        }
    }
    let (filename, bytes) =
        file.ok_or_else(|| SandboxError::bad("Missing required parameter: 'file'.", "file"))?;
    let purpose = purpose
        .ok_or_else(|| SandboxError::bad("Missing required parameter: 'purpose'.", "purpose"))?;
    if !PURPOSES.contains(&purpose.as_str()) {
        return Err(SandboxError::bad(
            format!("'{purpose}' is not one of {PURPOSES:?} - 'purpose'"),
            "purpose",
        ));
    }
    let expires_after = match (anchor, seconds) {
        (None, None) => None,
        (Some(a), Some(s)) if a == "created_at" => {
            let s: i64 = s.parse().map_err(|_| {
                SandboxError::bad(
                    "expires_after[seconds] must be an integer.",
                    "expires_after",
                )
            })?;
            Some(
                batchboard_core::check_expiry_seconds("expires_after[seconds]", s)
                    .map_err(|msg| SandboxError::bad(msg.to_string(), "expires_after"))?,
            )
        }
        _ => {
            return Err(SandboxError::bad(
                "expires_after needs anchor 'created_at' and seconds.",
                "expires_after",
            ))
        }
    };
    if bytes == 0 {
        return Err(SandboxError::bad("The file is empty.", "file"));
    }
    Ok((filename, bytes, purpose, expires_after))
}

#[derive(Debug, Deserialize)]
pub struct ListFilesQuery {
    purpose: Option<String>,
    order: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    State(sb): State<Sandbox>,
    Query(q): Query<ListFilesQuery>,
) -> Result<Json<List<FileObject>>> {
    let limit = q.limit.unwrap_or(10_000);
    if !(1..=10_000).contains(&limit) {
        return Err(SandboxError::bad(
            "limit must be between 1 and 10000.",
            "limit",
        ));
    }
    let desc = match q.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(SandboxError::bad("order must be 'asc' or 'desc'.", "order")),
    };
    let state = sb.store.lock();
    let mut files: Vec<&FileObject> = state
        .files
        .iter()
        .filter(|f| q.purpose.as_deref().is_none_or(|p| f.purpose == p))
        .collect();
    if desc {
        files.reverse();
    }
    Ok(Json(super::page(
        files,
        q.after.as_deref(),
        limit as usize,
        |f| &f.id,
    )))
}

pub async fn retrieve(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
) -> Result<Json<FileObject>> {
    sb.store
        .lock()
        .file(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| SandboxError::not_found("file", &id))
}

pub async fn content(State(sb): State<Sandbox>, Path(id): Path<String>) -> Result<Response> {
    let file = sb
        .store
        .lock()
        .file(&id)
        .cloned()
        .ok_or_else(|| SandboxError::not_found("file", &id))?;
    let f = tokio::fs::File::open(sb.store.file_path(&id)).await?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(f, 64 * 1024));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, file.bytes.to_string()),
        ],
        body,
    )
        .into_response())
}

pub async fn delete(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
) -> Result<Json<batchboard_core::FileDeleted>> {
    {
        let mut state = sb.store.lock();
        let before = state.files.len();
        state.files.retain(|f| f.id != id);
        if state.files.len() == before {
            return Err(SandboxError::not_found("file", &id));
        }
    }
    sb.store.changed();
    let _ = tokio::fs::remove_file(sb.store.file_path(&id)).await;
    Ok(Json(batchboard_core::FileDeleted {
        id,
        object: "file".into(),
        deleted: true,
    }))
}
