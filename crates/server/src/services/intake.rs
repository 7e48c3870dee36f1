//! An uploaded request file on its way in: checked and spooled to disk on a
//! thread of its own while, when its size was announced, it streams on to
//! the upstream's Files API at the same time.
//!
//! What keeps an invalid file from ever being completed upstream: the newest
//! chunk is always held back, and it goes out only when the whole file has
//! been checked and the form accepted ([`Checked::upload`]). Until then the
//! upstream has not seen the end of the multipart body. Every other way out
//! (a problem found, a refused form, a client that went away, a handler
//! dropped midway) ends the body in an error, which aborts the upstream
//! request; a file the upstream made anyway is deleted.
//!
//! The spool (a temporary file, removed however the request ends) is what a
//! file without an announced size is uploaded from, and what an upload that
//! broke on the way is tried again from.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use tempfile::TempPath;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use batchboard_core::error::ApiError;
use batchboard_core::i18n::{Key, Msg};
use batchboard_core::validate::Report;
use batchboard_core::{FileObject, MAX_FILE_BYTES};
use batchboard_upstream::{Client, UpstreamError};

use super::submit::{checker, temp_file};
use crate::http::HttpError;
use crate::state::AppState;

/// Chunks in flight to the checker and to the upstream (each a few tens of
/// KiB): enough to keep both busy, little memory.
const IN_FLIGHT: usize = 16;

/// A file being received.
pub struct Intake {
    to_check: mpsc::Sender<Bytes>,
    checking: JoinHandle<std::io::Result<Report>>,
    /// Set by the checker at the first problem: forwarding stops there.
    refused: Arc<AtomicBool>,
    forward: Option<Forward>,
    spool: TempPath,
    bytes: u64,
}

impl Intake {
    /// Starts receiving a file. `endpoint`: the form's, when it came before
    /// the file. `announced`: the file's size, when the client said it
    /// (`file_size`); only then does the file stream through.
    pub fn start(
        state: &AppState,
        upstream: &crate::providers::Upstream,
        endpoint: Option<&str>,
        filename: &str,
        announced: Option<u64>,
    ) -> Result<Self, HttpError> {
        let (file, spool) = temp_file(&state.data_dir.join("uploads"), "upload-")?;
        let (to_check, mut chunks) = mpsc::channel::<Bytes>(IN_FLIGHT);
        let refused = Arc::new(AtomicBool::new(false));
        let mut validator = checker(endpoint);
        let seen = refused.clone();
        // The check (JSON parsing, token counting) and the spool's writes
        // run on a blocking thread, beside the forwarding.
        let checking = tokio::task::spawn_blocking(move || {
            let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
            while let Some(chunk) = chunks.blocking_recv() {
                validator.chunk(&chunk);
                if validator.report().error_count > 0 {
                    seen.store(true, Ordering::Relaxed);
                }
                out.write_all(&chunk)?;
            }
            out.flush()?;
            Ok(validator.finish())
        });
        let forward = announced
            .filter(|n| (1..=MAX_FILE_BYTES).contains(n))
            .map(|len| Forward::start(&upstream.client, filename, len));
        Ok(Self {
            to_check,
            checking,
            refused,
            forward,
            spool,
            bytes: 0,
        })
    }

    /// The next chunk of the file.
    pub async fn push(&mut self, chunk: Bytes) -> Result<(), HttpError> {
        self.bytes += chunk.len() as u64;
        within_file_limit(self.bytes)?;
        if self.to_check.send(chunk.clone()).await.is_err() {
            // The checker stopped: its error is the answer.
            return Err(self.checker_failure().await);
        }
        if let Some(f) = &mut self.forward {
            let longer = self.bytes > f.len;
            if longer || self.refused.load(Ordering::Relaxed) || !f.pass(chunk).await {
                if longer {
                    tracing::warn!(
                        announced = f.len,
                        "upload: the file is longer than its announced size; uploading it from the spool"
                    );
                }
                self.forward = None;
            }
        }
        Ok(())
    }

    async fn checker_failure(&mut self) -> HttpError {
        match (&mut self.checking).await {
            Ok(Err(e)) => e.into(),
            Err(e) => e.into(),
            Ok(Ok(_)) => std::io::Error::other("the check stopped early").into(),
        }
    }

    /// The whole file has arrived: its report, once the checker is done.
    pub async fn finish(self) -> Result<Checked, HttpError> {
        drop(self.to_check);
        let report = self.checking.await??;
        Ok(Checked {
            report,
            spool: self.spool,
            forward: self.forward.filter(|f| f.len == self.bytes),
        })
    }
}

/// A received, checked file: sent upstream with [`Checked::upload`], or,
/// dropped, abandoned (nothing completes upstream).
pub struct Checked {
    pub report: Report,
    spool: TempPath,
    forward: Option<Forward>,
}

impl Checked {
    /// Completes the streamed upload, or uploads the spool. A stream the
    /// upstream failed in a way worth retrying (no answer, 5xx, 429) is
    /// uploaded again from the spool; the file's id is returned.
    pub async fn upload(mut self, client: &Client, filename: &str) -> Result<FileObject, ApiError> {
        if let Some(forward) = self.forward.take() {
            match forward.complete().await {
                Ok(file) => return Ok(file),
                Err(e) if e.should_retry() => {
                    tracing::warn!(error = %e, "upload: the streamed upload failed; sending the spooled copy")
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(client.upload_file(&self.spool, filename, "batch").await?)
    }
}

/// The upload to the upstream, fed as the file arrives, one chunk behind.
struct Forward {
    tx: Option<mpsc::Sender<std::io::Result<Bytes>>>,
    held: Option<Bytes>,
    /// Set just before the last chunk goes: the body ends cleanly only then.
    whole: Arc<AtomicBool>,
    len: u64,
    task: Option<JoinHandle<Result<FileObject, UpstreamError>>>,
    client: Client,
}

impl Forward {
    fn start(client: &Client, filename: &str, len: u64) -> Self {
        let (tx, rx) = mpsc::channel(IN_FLIGHT);
        let whole = Arc::new(AtomicBool::new(false));
        let ended = whole.clone();
        // The body's end: clean only when the file was completed on
        // purpose; a dropped sender means abandoned, and the error makes
        // the client abort the request mid-body.
        let tail = futures_util::stream::once(async move {
            (!ended.load(Ordering::Acquire)).then(|| {
                Err(std::io::Error::other(
                    "the upload was abandoned before its end",
                ))
            })
        })
        .filter_map(std::future::ready);
        let body = tokio_stream::wrappers::ReceiverStream::new(rx).chain(tail);
        let (up, filename) = (client.clone(), filename.to_owned());
        // On a task of its own: the runtime forwards on another core than
        // the one reading the browser's body.
        let task =
            tokio::spawn(async move { up.upload_stream(body, len, &filename, "batch").await });
        Self {
            tx: Some(tx),
            held: None,
            whole,
            len,
            task: Some(task),
            client: client.clone(),
        }
    }

    /// Sends the chunk held back and holds this one. False when the
    /// upstream request has ended (it failed; [`Forward::complete`] says
    /// how).
    async fn pass(&mut self, chunk: Bytes) -> bool {
        let Some(tx) = &self.tx else { return false };
        match self.held.replace(chunk) {
            Some(prev) => tx.send(Ok(prev)).await.is_ok(),
            None => true,
        }
    }

    /// Sends the last chunk, ends the body and waits for the upstream's
    /// answer.
    async fn complete(mut self) -> Result<FileObject, UpstreamError> {
        let tx = self.tx.take();
        let held = self.held.take();
        if let (Some(tx), Some(last)) = (tx, held) {
            self.whole.store(true, Ordering::Release);
            // A closed channel: the request already ended; its result says why.
            let _ = tx.send(Ok(last)).await;
        }
        match self.task.take() {
            Some(task) => task
                .await
                .unwrap_or_else(|e| Err(UpstreamError::Transport(format!("upload task: {e}")))),
            None => Err(UpstreamError::Transport("no upload".into())),
        }
    }
}

impl Drop for Forward {
    /// Abandoned: the body ends in an error. Should the upstream have kept
    /// a file all the same, it is deleted.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(task) = self.task.take() {
            let client = self.client.clone();
            tokio::spawn(async move {
                if let Ok(Ok(file)) = task.await {
                    tracing::warn!(file = %file.id, "upload: the upstream kept an abandoned upload; deleting it");
                    if let Err(e) = client.delete_file(&file.id).await {
                        tracing::warn!(file = %file.id, error = %e, "upload: cannot delete the abandoned file");
                    }
                }
            });
        }
    }
}

/// Refuses an upload once `received` bytes are past the limit for one file.
pub fn within_file_limit(received: u64) -> Result<(), HttpError> {
    if received > MAX_FILE_BYTES {
        return Err(ApiError::TooLarge(
            Msg::new(Key::ServerFileTooLarge).arg("max", MAX_FILE_BYTES),
        )
        .into());
    }
    Ok(())
}
