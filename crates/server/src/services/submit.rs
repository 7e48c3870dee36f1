//! Creating a batch from a checked file: one implementation for the upload
//! route and for "retry failures". The file is checked by the same
//! validator (with the server's tokenizer) on either path.

use std::path::Path;

use tempfile::TempPath;

use batchboard_core::error::ApiError;
use batchboard_core::i18n::{Key, Msg};
use batchboard_core::validate::{Report, Validator};
use batchboard_core::{check_metadata, CreateBatch, Metadata, CREATED_BY};
use tokio::io::AsyncReadExt;

use crate::http::HttpError;
use crate::providers::Upstream;
use crate::state::AppState;

/// A temporary file in `dir` (an upload, a retry's requests), removed
/// however the request ends; the file is open for writing.
pub fn temp_file(dir: &Path, prefix: &str) -> std::io::Result<(std::fs::File, TempPath)> {
    std::fs::create_dir_all(dir)?;
    Ok(tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".jsonl")
        .tempfile_in(dir)?
        .into_parts())
}

/// The validator every file Batchboard sends upstream goes through.
pub fn checker(endpoint: Option<&str>) -> Validator {
    Validator::new(endpoint).with_token_counter(crate::tokens::counter())
}

/// Checks a file on disk with [`checker`], streamed in 1 MiB pieces.
pub async fn check_file(path: &Path, endpoint: &str) -> Result<Report, HttpError> {
    let mut f = tokio::fs::File::open(path).await?;
    let mut v = checker(Some(endpoint));
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        // CPU work (long embedding inputs are tokenized): let the runtime
        // move other requests off this thread meanwhile.
        tokio::task::block_in_place(|| v.chunk(&buf[..n]));
    }
    Ok(v.finish())
}

/// Writes who created the batch into its metadata (`created_by`), replacing
/// whatever the form said there, within the API's metadata limits.
pub fn stamp_creator(metadata: &mut Option<Metadata>, name: &str) -> Result<(), Msg> {
    let m = metadata.get_or_insert_with(Metadata::new);
    m.insert(CREATED_BY.to_string(), name.to_string());
    check_metadata(m).map_err(|mut e| {
        // Too many pairs: say that one is Batchboard's.
        if e.key == Key::ProblemMetadataTooMany {
            e.key = Key::ProblemMetadataTooManyCreatedBy;
            e = e.arg("key", CREATED_BY);
        }
        e
    })
}

/// The token estimate, counted off the request path's threads.
pub async fn estimate_tokens(mut report: Report) -> Report {
    let model = report.model.clone().unwrap_or_default();
    let sample = std::mem::take(&mut report.sample);
    let counted = tokio::task::spawn_blocking(move || {
        let (n, name) = crate::tokens::count(&model, &sample);
        (n, name, sample)
    })
    .await;
    match counted {
        Ok((n, name, sample)) => {
            report.sample = sample;
            report.estimate_tokens(n, name);
        }
        Err(e) => tracing::warn!(error = %e, "token estimate failed"),
    }
    report
}

/// Uploads a checked file to `upstream` and creates the batch from it (see
/// [`create_from`]).
pub async fn submit(
    state: &AppState,
    upstream: &Upstream,
    path: &std::path::Path,
    filename: &str,
    req: CreateBatch,
) -> Result<batchboard_core::Batch, ApiError> {
    let file = upstream.client.upload_file(path, filename, "batch").await?;
    create_from(state, upstream, file, filename, req).await
}

/// Creates the batch from an uploaded file (`input_file_id` is filled in
/// here) and indexes it at once, with its file name, so every viewer sees
/// it now. When the upstream refused the batch, the file is deleted there:
/// nothing is left half-made. (After a failure that may have created the
/// batch after all, the file stays: a batch may be reading it.)
pub async fn create_from(
    state: &AppState,
    upstream: &Upstream,
    file: batchboard_core::FileObject,
    filename: &str,
    mut req: CreateBatch,
) -> Result<batchboard_core::Batch, ApiError> {
    let client = &upstream.client;
    req.input_file_id = file.id;
    let batch = match client.create_batch(&req).await {
        Ok(b) => b,
        Err(e) if e.is_ambiguous() => return Err(e.into()),
        Err(e) => {
            if let Err(d) = client.delete_file(&req.input_file_id).await {
                tracing::warn!(file = %req.input_file_id, error = %d, "cannot delete the file of a batch that was not created");
            }
            return Err(e.into());
        }
    };
    let batch = upstream.qualify_batch(batch);
    state.index(&batch).await;
    if let Err(e) = state.db.set_file_name(&batch.id, filename).await {
        tracing::warn!(error = %e, "cannot store the file name");
    }
    Ok(batch)
}
