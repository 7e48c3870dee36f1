//! New batches on an Anthropic upstream (Message Batches take their
//! requests in the body, not as an uploaded file): the file is spooled to
//! disk as it arrives, then checked and converted line by line
//! ([`batchboard_core::anthropic::Converter`]) into the body, also on disk,
//! which is streamed to the upstream. Any problem refuses the whole file
//! with its lines, before anything reaches the upstream.

use std::io::{BufRead, Write};
use std::path::Path;

use bytes::Bytes;
use tempfile::TempPath;
use tokio::io::AsyncWriteExt;

use batchboard_core::anthropic::Converter;
use batchboard_core::error::ApiError;
use batchboard_core::validate::Report;
use batchboard_core::{Batch, Metadata};

use super::submit::temp_file;
use crate::http::HttpError;
use crate::providers::Upstream;
use crate::state::AppState;

/// A file being received to disk, for a message batch.
pub struct Spool {
    file: tokio::fs::File,
    path: TempPath,
    bytes: u64,
}

impl Spool {
    pub fn start(state: &AppState) -> Result<Self, HttpError> {
        let (file, path) = temp_file(&state.data_dir.join("uploads"), "messages-")
            .map_err(|e| ApiError::Internal(format!("cannot store the upload: {e}")))?;
        Ok(Self {
            file: tokio::fs::File::from_std(file),
            path,
            bytes: 0,
        })
    }

    /// The next chunk of the file.
    pub async fn push(&mut self, chunk: Bytes) -> Result<(), HttpError> {
        self.bytes += chunk.len() as u64;
        super::intake::within_file_limit(self.bytes)?;
        self.file
            .write_all(&chunk)
            .await
            .map_err(|e| ApiError::Internal(format!("cannot store the upload: {e}")).into())
    }

    /// Checks and converts the file; creates the message batch from it.
    /// `max_tokens`: the form's, for lines that do not say.
    pub async fn create(
        mut self,
        state: &AppState,
        upstream: &Upstream,
        filename: &str,
        max_tokens: Option<u64>,
        metadata: Option<Metadata>,
    ) -> Result<(Batch, Report), HttpError> {
        self.file
            .flush()
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        drop(self.file);
        create_from_file(state, upstream, &self.path, filename, max_tokens, metadata).await
    }
}

/// Where the requests of a message batch made here are kept, as sent:
/// Anthropic does not give them back, and the results table, merged
/// downloads and retries need them.
pub fn kept_requests(data_dir: &Path, batch_id: &str) -> std::path::PathBuf {
    data_dir.join("requests").join(format!("{batch_id}.jsonl"))
}

/// Checks and converts the file at `input` (a file's lines, or a retry's);
/// creates the message batch from it on `upstream` and keeps its requests
/// and `metadata` (Anthropic keeps neither).
pub async fn create_from_file(
    state: &AppState,
    upstream: &Upstream,
    input: &Path,
    filename: &str,
    max_tokens: Option<u64>,
    metadata: Option<Metadata>,
) -> Result<(Batch, Report), HttpError> {
    let dir = state.data_dir.join("uploads");
    let input = input.to_owned();
    let converted = tokio::task::spawn_blocking(move || convert(&input, &dir, max_tokens))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("cannot convert the upload: {e}")))?;
    let (body, requests, report) = match converted {
        Ok(done) => done,
        Err(report) => return Err(HttpError::file(report)),
    };
    upstream.check_limits(None, &report)?;
    let batch = upstream.client.create_message_batch(&body).await?;
    let mut batch = upstream.qualify_batch(batch);
    if let Some(m) = metadata {
        if let Err(e) = state.db.set_local_metadata(&batch.id, &m).await {
            tracing::warn!(batch = %batch.id, error = %e, "cannot keep the metadata of a message batch");
        }
        batch.metadata = Some(m);
    }
    let kept = kept_requests(&state.data_dir, &batch.id);
    let kept_ok = match kept.parent() {
        Some(d) => std::fs::create_dir_all(d).is_ok() && requests.persist(&kept).is_ok(),
        None => false,
    };
    if !kept_ok {
        tracing::warn!(batch = %batch.id, "cannot keep the requests of a message batch");
    }
    state.index(&batch).await;
    if let Err(e) = state.db.set_file_name(&batch.id, filename).await {
        tracing::warn!(error = %e, "cannot store the file name");
    }
    Ok((batch, report))
}

/// The body `{"requests": [...]}` and the same requests one per line,
/// written from the file at `input`; or the report of its problems.
type Outcome = Result<(TempPath, TempPath, Report), Report>;

fn convert(input: &Path, dir: &Path, max_tokens: Option<u64>) -> std::io::Result<Outcome> {
    let reader = std::io::BufReader::with_capacity(256 * 1024, std::fs::File::open(input)?);
    let (out, body) = temp_file(dir, "message-batch-")?;
    let (lines_out, requests) = temp_file(dir, "message-requests-")?;
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, out);
    let mut lines_out = std::io::BufWriter::with_capacity(256 * 1024, lines_out);
    let mut c = Converter::new(max_tokens);
    out.write_all(b"{\"requests\":[")?;
    let mut first = true;
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if let Some(request) = c.line(i as u64 + 1, line) {
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            serde_json::to_writer(&mut out, &request)?;
            serde_json::to_writer(&mut lines_out, &request)?;
            lines_out.write_all(b"\n")?;
        }
    }
    out.write_all(b"]}")?;
    out.flush()?;
    lines_out.flush()?;
    let report = c.finish();
    if report.error_count > 0 {
        return Ok(Err(report));
    }
    Ok(Ok((body, requests, report)))
}
