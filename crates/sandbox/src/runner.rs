//! A batch's life in the sandbox: validating → in_progress → finalizing →
//! completed, or failed, cancelling → cancelled, expired. Input is read and
//! results written line by line, so memory stays flat whatever the file size.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};

use super::error::{Result, SandboxError};
use super::models;
use super::store::{new_id, now};
use super::Sandbox;
use batchboard_core::validate::Validator;
use batchboard_core::{
    BatchError, BatchErrors, BatchStatus, FileObject, LineError, LineResponse, ResultLine, Usage,
};

/// How fast the sandbox works: slow enough by default to watch progress in
/// the UI, fast for tests.
#[derive(Debug, Clone)]
pub struct Speed {
    pub requests_per_second: f64,
    pub validation_delay: Duration,
    pub finalizing_delay: Duration,
}

impl Default for Speed {
    fn default() -> Self {
        Self {
            requests_per_second: 5.0,
            validation_delay: Duration::from_secs(2),
            finalizing_delay: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancelled,
    Expired,
}

impl Stop {
    fn line_error(self) -> (&'static str, &'static str) {
        match self {
            Stop::Cancelled => (
                "batch_cancelled",
                "This request could not be executed before the batch was cancelled.",
            ),
            Stop::Expired => (
                "batch_expired",
                "This request could not be executed before the completion window expired.",
            ),
        }
    }
}

/// Reads a file line by line with one reused buffer.
struct Lines {
    reader: BufReader<tokio::fs::File>,
    buf: Vec<u8>,
    line_no: u64,
    bytes: u64,
}

impl Lines {
    async fn open(path: &std::path::Path) -> Result<Self> {
        Ok(Self {
            reader: BufReader::with_capacity(256 * 1024, tokio::fs::File::open(path).await?),
            buf: Vec::new(),
            line_no: 0,
            bytes: 0,
        })
    }

    /// The next line (line ending removed) and its 1-based number.
    async fn next(&mut self) -> Result<Option<(u64, &[u8])>> {
        self.buf.clear();
        let n = self.reader.read_until(b'\n', &mut self.buf).await?;
        if n == 0 {
            return Ok(None);
        }
        self.bytes += n as u64;
        self.line_no += 1;
        let line = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
        Ok(Some((self.line_no, line)))
    }
}

impl Sandbox {
    fn stop_reason(&self, id: &str) -> Option<Stop> {
        let state = self.store.lock();
        if state.cancel_requested.iter().any(|c| c == id) {
            return Some(Stop::Cancelled);
        }
        let expires_at = state.batch(id).and_then(|b| b.expires_at)?;
        (now() >= expires_at).then_some(Stop::Expired)
    }

    /// Waits, waking early when the batch is cancelled or expires.
    async fn pause(&self, id: &str, total: Duration) -> Option<Stop> {
        let end = Instant::now() + total;
        loop {
            if let Some(stop) = self.stop_reason(id) {
                return Some(stop);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            tokio::time::sleep(left.min(Duration::from_millis(50))).await;
        }
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut batchboard_core::Batch)) {
        if let Some(b) = self.store.lock().batch_mut(id) {
            f(b);
        }
        self.store.changed();
    }

    /// Ends a batch as `failed` with `errors` (the upstream's words: English
    /// only, as OpenAI's).
    fn fail(&self, id: &str, errors: Vec<BatchError>) {
        self.update(id, |b| {
            b.status = BatchStatus::Failed;
            b.failed_at = Some(now());
            b.errors = Some(BatchErrors {
                object: "list".into(),
                data: errors,
            });
        });
    }

    /// Runs a batch from its current state to a terminal one.
    pub async fn run_batch(self, id: String) {
        if let Err(e) = self.clone().drive(&id).await {
            tracing::error!(batch = %id, error = %e, "sandbox: batch run failed");
            self.fail(
                &id,
                vec![batch_error(
                    "server_error",
                    "The sandbox could not process this batch.".into(),
                    None,
                )],
            );
        }
    }

    async fn drive(self, id: &str) -> Result<()> {
        let (endpoint, input_file_id, status) = {
            let state = self.store.lock();
            let b = state
                .batch(id)
                .ok_or_else(|| SandboxError::not_found("batch", id))?;
            (
                b.endpoint.clone(),
                b.input_file_id.clone(),
                b.status.clone(),
            )
        };
        if status.is_terminal() {
            return Ok(());
        }
        let input = self.store.file_path(&input_file_id);
        if !tokio::fs::try_exists(&input).await.unwrap_or(false) {
            self.fail(
                id,
                vec![batch_error(
                    "file_not_found",
                    format!("The input file {input_file_id} no longer exists."),
                    Some("input_file_id"),
                )],
            );
            return Ok(());
        }

        // validating (Anthropic's batches were checked when created and are
        // in progress from the start)
        let validates = self.dialect != super::Dialect::Anthropic;
        let stop = if validates {
            self.pause(id, self.speed.validation_delay).await
        } else {
            self.stop_reason(id)
        };
        if stop.is_none() && validates {
            let mut v = Validator::new(Some(&endpoint));
            let mut lines = Lines::open(&input).await?;
            while let Some((n, line)) = lines.next().await? {
                v.line(n, line);
            }
            v.add_bytes(lines.bytes);
            let report = v.finish();
            if !report.is_ok() {
                let errors = report.errors.into_iter();
                self.fail(id, errors.map(|e| BatchError { msg: None, ..e }).collect());
                return Ok(());
            }
            // The model's enqueued-token limit, if one is imitated.
            let tokens = report.text_bytes.div_ceil(4);
            if let Some(model) = report.model.clone() {
                if let Some(&limit) = self.quirks.enqueued_tokens.get(&model) {
                    let mut state = self.store.lock();
                    if state.enqueued_tokens(&model) + tokens > limit {
                        drop(state);
                        let message = super::quirks::token_limit_message(&model, limit);
                        self.fail(id, vec![batch_error("token_limit_exceeded", message, None)]);
                        return Ok(());
                    }
                    state.enqueued.insert(id.to_owned(), (model, tokens));
                }
            }
            self.update(id, |b| {
                b.model = report.model;
                b.request_counts.total = report.requests;
                if b.status == BatchStatus::Validating {
                    b.status = BatchStatus::InProgress;
                    b.in_progress_at = Some(now());
                }
            });
        }

        // in_progress: requests in file order, at the configured pace (built-in
        // models) or with bounded concurrency (forwarding).
        let out_path = self.store.temp_path();
        let err_path = self.store.temp_path();
        let mut results = Results {
            out: BufWriter::new(tokio::fs::File::create(&out_path).await?),
            err: BufWriter::new(tokio::fs::File::create(&err_path).await?),
            n_out: 0,
            n_err: 0,
            completed: 0,
            failed: 0,
            usage: Usage::default(),
            last_report: Instant::now(),
        };
        let mut stop = stop;
        let step = Duration::from_secs_f64(1.0 / self.speed.requests_per_second.max(0.001));
        let mut due = Instant::now();
        let mut inflight = futures_util::stream::FuturesUnordered::new();
        let limit = self.forward.as_ref().map_or(1, |f| f.concurrency.max(1));
        let mut lines = Lines::open(&input).await?;
        while let Some((_, line)) = lines.next().await? {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let request: Value = serde_json::from_slice(line).unwrap_or(Value::Null);
            // The file passed the validator: custom_id is a string on every line.
            let custom_id = request
                .get("custom_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if stop.is_none() {
                if self.forward.is_none() {
                    due += step;
                }
                let wait = due.saturating_duration_since(Instant::now());
                if wait > Duration::from_millis(1) {
                    stop = self.pause(id, wait).await;
                } else {
                    stop = self.stop_reason(id);
                }
            }
            if let Some(s) = stop {
                let (code, message) = s.line_error();
                let rec = ResultLine {
                    id: new_id("batch_req_"),
                    custom_id: custom_id.clone(),
                    response: None,
                    error: Some(LineError {
                        code: code.to_string(),
                        message: message.to_string(),
                    }),
                };
                write_line(&mut results.err, &rec).await?;
                results.n_err += 1;
                continue;
            }
            let body = request.get("body").cloned().unwrap_or(Value::Null);
            inflight.push(self.execute(id, &endpoint, body, custom_id));
            while inflight.len() >= limit {
                if let Some(done) = futures_util::StreamExt::next(&mut inflight).await {
                    results.record(&self, id, done).await?;
                }
            }
        }
        while let Some(done) = futures_util::StreamExt::next(&mut inflight).await {
            results.record(&self, id, done).await?;
        }
        drop(inflight);
        results.out.flush().await?;
        results.err.flush().await?;
        let Results {
            n_out,
            n_err,
            completed,
            failed,
            usage,
            ..
        } = results;

        if stop.is_none() {
            self.update(id, |b| {
                b.request_counts.completed = completed;
                b.request_counts.failed = failed;
                b.usage = (!self.quirks.no_batch_usage).then(|| usage.clone());
                if b.status == BatchStatus::InProgress {
                    b.status = BatchStatus::Finalizing;
                    b.finalizing_at = Some(now());
                }
            });
            stop = self.pause(id, self.speed.finalizing_delay).await;
        }

        // Results become files, then the batch reaches its final state.
        let expiry = self.store.lock().output_expires_after.get(id).copied();
        let output_file_id = self.publish(&out_path, n_out, id, "output", expiry).await?;
        let error_file_id = self.publish(&err_path, n_err, id, "error", expiry).await?;
        let t = now();
        self.update(id, |b| {
            b.output_file_id = output_file_id;
            b.error_file_id = error_file_id;
            b.request_counts.completed = completed;
            b.request_counts.failed = failed;
            b.usage = (!self.quirks.no_batch_usage).then_some(usage);
            match stop {
                None => {
                    b.status = BatchStatus::Completed;
                    b.completed_at = Some(t);
                }
                Some(Stop::Cancelled) => {
                    b.status = BatchStatus::Cancelled;
                    b.cancelled_at = Some(t);
                }
                Some(Stop::Expired) => {
                    b.status = BatchStatus::Expired;
                    b.expired_at = Some(t);
                }
            }
        });
        Ok(())
    }

    /// Turns a results file into a File object (purpose `batch_output`), or
    /// removes it when it has no lines.
    async fn publish(
        &self,
        tmp: &std::path::Path,
        lines: u64,
        batch_id: &str,
        kind: &str,
        expires_after: Option<i64>,
    ) -> Result<Option<String>> {
        if lines == 0 {
            tokio::fs::remove_file(tmp).await?;
            return Ok(None);
        }
        let bytes = tokio::fs::metadata(tmp).await?.len();
        let id = new_id("file-");
        tokio::fs::rename(tmp, self.store.file_path(&id)).await?;
        let created_at = now();
        self.store.lock().files.push(FileObject {
            id: id.clone(),
            object: "file".into(),
            bytes,
            created_at,
            expires_at: expires_after.map(|s| created_at + s),
            filename: format!("{batch_id}_{kind}.jsonl"),
            purpose: "batch_output".into(),
            status: "processed".into(),
            status_details: None,
        });
        self.store.changed();
        Ok(Some(id))
    }
}

/// One executed request: what to write for it.
struct Done {
    custom_id: String,
    request_id: String,
    reply: models::Reply,
}

/// Where results go, and the running totals.
struct Results {
    out: BufWriter<tokio::fs::File>,
    err: BufWriter<tokio::fs::File>,
    n_out: u64,
    n_err: u64,
    completed: u64,
    failed: u64,
    usage: Usage,
    last_report: Instant,
}

impl Results {
    async fn record(&mut self, sb: &Sandbox, batch_id: &str, d: Done) -> Result<()> {
        let status = d.reply.status;
        let rec = ResultLine {
            id: new_id("batch_req_"),
            custom_id: d.custom_id,
            response: Some(LineResponse {
                status_code: status,
                request_id: d.request_id,
                body: d.reply.body,
            }),
            error: None,
        };
        if status < 300 {
            write_line(&mut self.out, &rec).await?;
            self.n_out += 1;
            self.completed += 1;
        } else {
            write_line(&mut self.err, &rec).await?;
            self.n_err += 1;
            self.failed += 1;
        }
        add_usage(&mut self.usage, &d.reply.usage);
        if self.last_report.elapsed() >= Duration::from_millis(200) {
            self.last_report = Instant::now();
            let (completed, failed, u) = (self.completed, self.failed, self.usage.clone());
            let usage = (!sb.quirks.no_batch_usage).then_some(u);
            sb.update(batch_id, |b| {
                b.request_counts.completed = completed;
                b.request_counts.failed = failed;
                b.usage = usage;
            });
        }
        Ok(())
    }
}

impl Sandbox {
    /// Runs one request: with the built-in models, or at the forward URL.
    async fn execute(&self, batch: &str, endpoint: &str, body: Value, custom_id: String) -> Done {
        let request_id = new_id("req_");
        let reply = match (&self.forward, self.quirks.failure(batch, &custom_id)) {
            (None, Some(status)) => models::failure(status),
            (None, None) => models::run(endpoint, &body, &request_id, now()),
            (Some(f), _) => f.send(endpoint, &body).await,
        };
        Done {
            custom_id,
            request_id,
            reply,
        }
    }
}

/// One of a failed batch's errors, as the sandbox words them.
fn batch_error(code: &str, message: String, param: Option<&str>) -> BatchError {
    BatchError {
        code: code.into(),
        message,
        param: param.map(str::to_owned),
        line: None,
        msg: None,
    }
}

async fn write_line(w: &mut BufWriter<tokio::fs::File>, v: &ResultLine) -> Result<()> {
    let mut line = serde_json::to_vec(v).map_err(|e| SandboxError::Internal(e.to_string()))?;
    line.push(b'\n');
    w.write_all(&line).await?;
    Ok(())
}

fn add_usage(total: &mut Usage, u: &Usage) {
    total.input_tokens += u.input_tokens;
    total.output_tokens += u.output_tokens;
    total.total_tokens += u.total_tokens;
    total.input_tokens_details.cached_tokens += u.input_tokens_details.cached_tokens;
    total.output_tokens_details.reasoning_tokens += u.output_tokens_details.reasoning_tokens;
}
