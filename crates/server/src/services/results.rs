//! A finished batch's results, joined with its input by `custom_id`: the
//! results table, the merged JSONL/CSV downloads and "retry failures".
//!
//! The input, output and error files are spooled once to
//! `<data-dir>/results/<batch>/` (streamed: never held in memory), then
//! indexed: for each input line its offset and outcome, for each result its
//! offset. Rows are read back from disk by offset, so memory grows with the
//! number of requests (≤ 50,000), not with the files' size. The last few
//! indexes stay in memory; files of finished batches do not change.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::http::actor::{Actor, Viewer};
use crate::http::HttpError;
use crate::state::AppState;
use batchboard_core::i18n::{Key, Msg};
use batchboard_core::result_lines::{
    read_result, Outcome, Reading, ResultRow, ResultsPage, ResultsQuery,
};
use batchboard_core::Batch;
use batchboard_core::{dashboard::check_id, error::ApiError};

/// Characters of answer shown in the table.
const PREVIEW_CHARS: usize = 240;
/// Indexes kept in memory.
const CACHED: usize = 4;
pub const MAX_RESULTS_PAGE: u64 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Output,
    Error,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    offset: u64,
    len: u32,
}

struct InputRef {
    line: u64,
    id: Box<str>,
    span: Span,
    outcome: Outcome,
    code: Option<Arc<str>>,
    result: Option<(Source, Span)>,
    /// Failed in a way worth sending again (see
    /// [`batchboard_core::jobs::is_retryable`]), or never ran.
    retry: bool,
}

/// One batch's joined results.
pub struct Joined {
    /// Input, output and error file (absent: none).
    paths: [Option<PathBuf>; 3],
    inputs: Vec<InputRef>,
    ok: u64,
    failed: u64,
    not_run: u64,
    groups: Vec<(String, u64)>,
    /// What the result lines said they used (none reported any: `None`).
    pub used: Option<batchboard_core::spend::ReadUsage>,
}

/// The in-memory cache of joined results, newest last.
#[derive(Default)]
pub struct ResultsCache {
    entries: Mutex<Vec<(String, Arc<Joined>)>>,
    /// One lock per batch: two viewers of one batch spool it once, and two
    /// retries of one batch do not both create a batch.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl ResultsCache {
    fn get(&self, id: &str) -> Option<Arc<Joined>> {
        let entries = self.entries.lock().ok()?;
        entries
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, j)| j.clone())
    }

    /// The lock of one batch's results (spooling, retrying).
    pub fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let Ok(mut locks) = self.locks.lock() else {
            return Arc::default();
        };
        // Forget the locks nobody holds, so the map stays small.
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(id.to_string()).or_default().clone()
    }

    fn ids(&self) -> Vec<String> {
        self.entries
            .lock()
            .map(|e| e.iter().map(|(k, _)| k.clone()).collect())
            .unwrap_or_default()
    }

    fn put(&self, id: &str, joined: Arc<Joined>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|(k, _)| k != id);
            entries.push((id.to_string(), joined));
            let excess = entries.len().saturating_sub(CACHED);
            entries.drain(..excess);
        }
    }
}

fn io_error(what: &str) -> impl Fn(std::io::Error) -> ApiError + '_ {
    move |e| {
        tracing::error!(error = %e, "results: {what}");
        ApiError::Internal(format!("results: {what}: {e}"))
    }
}

/// The batch's joined results, spooling and indexing them first if needed.
pub async fn joined(state: &AppState, batch: &Batch) -> Result<Arc<Joined>, ApiError> {
    if !batch.status.is_terminal() {
        return Err(ApiError::Invalid(
            match batchboard_core::i18n::I18n::status_key(&batch.status) {
                Some(k) => Msg::new(Key::ServerResultsNotEnded).arg_text("status", k),
                None => Msg::new(Key::ServerResultsNotEnded).arg("status", &batch.status),
            }
            .arg("id", &batch.id),
        ));
    }
    if let Some(j) = state.results.get(&batch.id) {
        return Ok(j);
    }
    let lock = state.results.lock_for(&batch.id);
    let _one = lock.lock().await;
    if let Some(j) = state.results.get(&batch.id) {
        return Ok(j);
    }
    // The id comes from the index (and so from the upstream): it becomes a
    // path only once it is known to be a plain id.
    batchboard_core::dashboard::check_id("batch", &batch.id)?;
    // Spooling reads whole files from the upstream and writes them to
    // disk: a few at a time, whatever the number of viewers asking.
    let _spooling = SPOOLING
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let dir = state.data_dir.join("results").join(&batch.id);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(io_error("cannot create the spool directory"))?;
    // Named by file id: a batch whose files change (say, the index had it
    // before its output existed) is spooled again, not read stale.
    let files = [
        Some(batch.input_file_id.as_str()).filter(|f| !f.is_empty()),
        batch.output_file_id.as_deref(),
        batch.error_file_id.as_deref(),
    ];
    let mut paths: [Option<PathBuf>; 3] = Default::default();
    for (slot, file) in paths.iter_mut().zip(files) {
        let Some(id) = file else { continue };
        batchboard_core::dashboard::check_id("batch", id)?;
        let path = dir.join(format!("{id}.jsonl"));
        if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            spool(state, id, &path).await?;
        }
        *slot = Some(path);
    }
    // A message batch made here: its requests as sent were kept.
    if paths[0].is_none() {
        let kept = super::messages::kept_requests(&state.data_dir, &batch.id);
        if tokio::fs::try_exists(&kept).await.unwrap_or(false) {
            paths[0] = Some(kept);
        }
    }
    // Marks the spool as used now (see `prune`).
    tokio::fs::write(dir.join(USED), b"")
        .await
        .map_err(io_error("cannot write the spool"))?;
    let joined = tokio::task::spawn_blocking(move || index(paths))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let joined = Arc::new(joined);
    state.results.put(&batch.id, joined.clone());
    // An upstream that reports no usage on the batch: its results' own
    // figures price it (spend).
    if let (None, Some(used)) = (&batch.usage, &joined.used) {
        if let Err(e) = state.db.set_read_usage(&batch.id, used).await {
            tracing::warn!(batch = %batch.id, error = %e, "cannot keep the results' usage");
        }
    }
    let mut keep: Vec<String> = state.results.ids();
    if let Ok(locks) = state.results.locks.lock() {
        keep.extend(locks.keys().cloned());
    }
    let root = state.data_dir.join("results");
    let max_bytes = state.spool_max_bytes;
    tokio::task::spawn_blocking(move || prune(&root, &keep, max_bytes));
    Ok(joined)
}

/// An input file alone, joined with no results: every request "not run"
/// (a job's part that never ran).
pub async fn joined_input(state: &AppState, file_id: &str) -> Result<Arc<Joined>, ApiError> {
    let unrun = Batch {
        id: format!("{file_id}-input"),
        status: batchboard_core::BatchStatus::Cancelled,
        input_file_id: file_id.to_owned(),
        ..Batch::default()
    };
    joined(state, &unrun).await
}

/// The file whose time says when a spool was last used.
const USED: &str = ".used";

/// Spools unused for a day are removed (they are made again on demand).
const SPOOL_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Spools made at once.
static SPOOLING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Removes spools unused for [`SPOOL_TTL`], then the least recently used
/// ones until all of them take at most `max_bytes` (`--spool-max-gb`);
/// never those in `keep` (in use).
fn prune(root: &Path, keep: &[String], max_bytes: u64) {
    let Ok(dirs) = std::fs::read_dir(root) else {
        return;
    };
    let mut spools: Vec<(std::time::SystemTime, u64, PathBuf, bool)> = dirs
        .flatten()
        .map(|d| {
            let name = d.file_name().to_string_lossy().into_owned();
            let used = std::fs::metadata(d.path().join(USED))
                .or_else(|_| d.metadata())
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            let size = std::fs::read_dir(d.path())
                .map(|files| {
                    files
                        .flatten()
                        .filter_map(|f| f.metadata().ok())
                        .map(|m| m.len())
                        .sum()
                })
                .unwrap_or(0);
            (used, size, d.path(), keep.contains(&name))
        })
        .collect();
    // Oldest use first.
    spools.sort_by_key(|s| s.0);
    let mut total: u64 = spools.iter().map(|s| s.1).sum();
    for (used, size, path, kept) in spools {
        let stale = used.elapsed().is_ok_and(|age| age > SPOOL_TTL);
        if kept || !(stale || total > max_bytes) {
            continue;
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => total = total.saturating_sub(size),
            Err(e) => {
                tracing::warn!(error = %e, dir = %path.display(), "cannot remove a results spool")
            }
        }
    }
}

/// Streams an upstream file to disk (to a `.part` file, renamed when whole).
async fn spool(state: &AppState, file_id: &str, path: &Path) -> Result<(), ApiError> {
    let (upstream, own) = state.upstreams.route(file_id)?;
    let resp = upstream.client.file_content(own).await?;
    let part = path.with_extension("part");
    let created = tokio::fs::File::create(&part)
        .await
        .map_err(io_error("cannot write the spool"))?;
    // Buffered, as the sandbox's uploads: each write of a bare
    // `tokio::fs::File` is a trip to a blocking thread, one per chunk.
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, created);
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::Upstream {
            status: None,
            message: format!("the download of {file_id} broke off: {}", e.without_url()),
            code: None,
            request_id: None,
            wording: None,
        })?;
        out.write_all(&chunk)
            .await
            .map_err(io_error("cannot write the spool"))?;
    }
    out.flush()
        .await
        .map_err(io_error("cannot write the spool"))?;
    tokio::fs::rename(&part, path)
        .await
        .map_err(io_error("cannot write the spool"))?;
    Ok(())
}

/// Calls `f(line_number, offset, bytes)` for each non-blank line of a file.
fn each_line(path: &Path, mut f: impl FnMut(u64, u64, &[u8])) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut buf = Vec::new();
    let (mut offset, mut n) = (0u64, 0u64);
    loop {
        buf.clear();
        let read = reader.read_until(b'\n', &mut buf)?;
        if read == 0 {
            return Ok(());
        }
        n += 1;
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !line.iter().all(u8::is_ascii_whitespace) {
            f(n, offset, line);
        }
        offset += read as u64;
    }
}

#[derive(Deserialize)]
struct IdOnly {
    custom_id: Option<String>,
}

/// Where a result is and what it says: source, span, outcome, error code,
/// whether it is worth sending again.
type ResultRef = (Source, Span, Outcome, Option<Arc<str>>, bool);

fn index(paths: [Option<PathBuf>; 3]) -> Result<Joined, ApiError> {
    let read_err = io_error("cannot read the spool");
    // Results first: custom_id → where, and what it says.
    let mut results: HashMap<String, ResultRef> = HashMap::new();
    // In the order read: the rows of a batch without an input file.
    let mut order: Vec<String> = Vec::new();
    let mut codes: HashMap<String, Arc<str>> = HashMap::new();
    let mut used: Option<batchboard_core::spend::ReadUsage> = None;
    for (source, path) in [(Source::Output, &paths[1]), (Source::Error, &paths[2])] {
        let Some(path) = path else { continue };
        each_line(path, |_, offset, line| {
            let Ok(v) = serde_json::from_slice::<Value>(line) else {
                return;
            };
            let Some(id) = v.get("custom_id").and_then(Value::as_str) else {
                return;
            };
            let reading = read_result(&v, 0);
            if let Some(u) = reading.usage {
                let sum = used.get_or_insert_with(Default::default);
                sum.tokens += batchboard_core::spend::Tokens {
                    input: u.input,
                    cached: u.cached,
                    output: u.output,
                    reasoning: u.reasoning,
                };
                if sum.model.is_none() {
                    sum.model = v
                        .pointer("/response/body/model")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                }
            }
            let code = reading.error_code.as_ref().map(|c| {
                codes
                    .entry(c.clone())
                    .or_insert_with(|| Arc::from(c.as_str()))
                    .clone()
            });
            let span = Span {
                offset,
                len: line.len() as u32,
            };
            let outcome = reading.outcome();
            let retry = outcome != Outcome::Ok
                && batchboard_core::jobs::is_retryable(
                    reading.status_code,
                    reading.error_code.as_deref(),
                );
            if results
                .insert(id.to_string(), (source, span, outcome, code, retry))
                .is_none()
            {
                order.push(id.to_string());
            }
        })
        .map_err(&read_err)?;
    }
    let mut rows = Tally::default();
    let Some(input) = &paths[0] else {
        // No input file (Anthropic keeps a message batch's requests to
        // itself): one row per result, in the order the results came.
        for (n, id) in order.into_iter().enumerate() {
            let Some((source, rspan, outcome, code, retry)) = results.remove(&id) else {
                continue;
            };
            rows.add(InputRef {
                line: n as u64 + 1,
                id: id.into(),
                span: Span { offset: 0, len: 0 },
                outcome,
                code,
                result: Some((source, rspan)),
                retry,
            });
        }
        return Ok(rows.joined(paths, used));
    };
    each_line(input, |n, offset, line| {
        let id = serde_json::from_slice::<IdOnly>(line)
            .ok()
            .and_then(|l| l.custom_id)
            .unwrap_or_default();
        let span = Span {
            offset,
            len: line.len() as u32,
        };
        let (outcome, code, result, retry) = match results.get(&id) {
            Some((source, rspan, outcome, code, retry)) => {
                (*outcome, code.clone(), Some((*source, *rspan)), *retry)
            }
            None => (Outcome::NotRun, None, None, true),
        };
        rows.add(InputRef {
            line: n,
            id: id.into(),
            span,
            outcome,
            code,
            result,
            retry,
        });
    })
    .map_err(&read_err)?;
    Ok(rows.joined(paths, used))
}

/// The rows of a batch's results as they are read, and their counts.
#[derive(Default)]
struct Tally {
    inputs: Vec<InputRef>,
    ok: u64,
    failed: u64,
    not_run: u64,
    groups: HashMap<Arc<str>, u64>,
}

impl Tally {
    fn add(&mut self, row: InputRef) {
        match row.outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::NotRun => self.not_run += 1,
        }
        if let Some(c) = &row.code {
            *self.groups.entry(c.clone()).or_default() += 1;
        }
        self.inputs.push(row);
    }

    fn joined(
        mut self,
        paths: [Option<PathBuf>; 3],
        used: Option<batchboard_core::spend::ReadUsage>,
    ) -> Joined {
        if self.not_run > 0 {
            self.groups.insert(Arc::from("not_run"), self.not_run);
        }
        Joined {
            paths,
            inputs: self.inputs,
            ok: self.ok,
            failed: self.failed,
            not_run: self.not_run,
            groups: sorted_groups(self.groups),
            used,
        }
    }
}

/// Error groups, most frequent first.
fn sorted_groups(groups: HashMap<Arc<str>, u64>) -> Vec<(String, u64)> {
    let mut groups: Vec<(String, u64)> = groups
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    groups
}

/// The code a row is grouped and filtered by (`not_run` for those).
fn row_code(i: &InputRef) -> Option<&str> {
    match i.outcome {
        Outcome::NotRun => Some("not_run"),
        _ => i.code.as_deref(),
    }
}

/// Reads the bytes of a span back from a spooled file.
struct Reader {
    /// `None` for a batch whose requests are not kept (see [`index`]).
    input: Option<File>,
    output: Option<File>,
    error: Option<File>,
}

impl Reader {
    fn open(paths: &[Option<PathBuf>; 3]) -> std::io::Result<Self> {
        let open = |p: &Option<PathBuf>| p.as_ref().map(File::open).transpose();
        Ok(Self {
            input: open(&paths[0])?,
            output: open(&paths[1])?,
            error: open(&paths[2])?,
        })
    }

    /// A request's input line, if the batch has an input file.
    fn request(&self, span: Span) -> std::io::Result<Option<Vec<u8>>> {
        self.input.as_ref().map(|f| Self::read(f, span)).transpose()
    }

    fn read(file: &File, span: Span) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0; span.len as usize];
        file.read_exact_at(&mut buf, span.offset)?;
        Ok(buf)
    }

    fn result(&self, r: Option<(Source, Span)>) -> std::io::Result<Option<Vec<u8>>> {
        r.map(|(source, span)| {
            let file = match source {
                Source::Output => self.output.as_ref(),
                Source::Error => self.error.as_ref(),
            };
            Self::read(
                file.ok_or_else(|| std::io::Error::other("result file missing"))?,
                span,
            )
        })
        .transpose()
    }
}

fn row(reader: &Reader, i: &InputRef, preview: usize) -> std::io::Result<ResultRow> {
    let reading = reader
        .result(i.result)?
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .map(|v| read_result(&v, preview))
        .unwrap_or_default();
    let error_message = match i.outcome {
        Outcome::NotRun => Some("The batch ended before this request ran.".into()),
        _ => reading.error_message,
    };
    Ok(ResultRow {
        line: i.line,
        custom_id: i.id.to_string(),
        outcome: i.outcome,
        result: Reading {
            error_code: row_code(i).map(str::to_owned),
            error_message,
            ..reading
        },
    })
}

impl Joined {
    /// A page of rows matching the query.
    pub fn page(&self, q: &ResultsQuery) -> Result<ResultsPage, ApiError> {
        let limit = q.limit.clamp(1, MAX_RESULTS_PAGE);
        let reader = Reader::open(&self.paths).map_err(io_error("cannot read the spool"))?;
        let mut matched = 0u64;
        let mut rows = Vec::new();
        for i in &self.inputs {
            if !q.wants(i.outcome, row_code(i)) {
                continue;
            }
            if matched >= q.offset && (rows.len() as u64) < limit {
                rows.push(
                    row(&reader, i, PREVIEW_CHARS).map_err(io_error("cannot read the spool"))?,
                );
            }
            matched += 1;
        }
        Ok(ResultsPage {
            rows,
            matched,
            offset: q.offset,
            limit,
            ok: self.ok,
            failed: self.failed,
            not_run: self.not_run,
            error_groups: self.groups.clone(),
        })
    }

    /// Requests that failed or never ran, as the input lines that made them.
    pub fn failed_requests(&self) -> usize {
        self.inputs
            .iter()
            .filter(|i| i.outcome != Outcome::Ok)
            .count()
    }
}

#[derive(Debug, Deserialize)]
pub struct MergedQuery {
    /// `jsonl` (default) or `csv`.
    #[serde(default)]
    format: String,
}

impl MergedQuery {
    /// CSV rather than JSONL; another format is refused.
    pub fn is_csv(&self) -> Result<bool, ApiError> {
        match self.format.as_str() {
            "" | "jsonl" => Ok(false),
            "csv" => Ok(true),
            other => Err(ApiError::Invalid(
                Msg::new(Key::ServerFormatUnknown).arg("format", other),
            )),
        }
    }
}

const CSV_HEADER: &[&str] = &[
    "line",
    "custom_id",
    "outcome",
    "status_code",
    "answer",
    "embedding_dimensions",
    "error_code",
    "error_message",
    "input_tokens",
    "output_tokens",
    "total_tokens",
];

/// Writes merged rows from a blocking thread into the response body, in
/// chunks of about 64 KiB; stops when the browser goes away.
fn merged_rows(
    joined: Arc<Joined>,
    csv: bool,
    tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
) {
    let send = |buf: &mut Vec<u8>| tx.blocking_send(Ok(std::mem::take(buf))).is_ok();
    let reader = match Reader::open(&joined.paths) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    };
    let mut buf = Vec::with_capacity(80 * 1024);
    if csv {
        let mut w = csv::Writer::from_writer(&mut buf);
        let _ = w.write_record(CSV_HEADER);
        drop(w);
    }
    for i in &joined.inputs {
        let written = if csv {
            row(&reader, i, usize::MAX).and_then(|r| write_csv(&mut buf, &r))
        } else {
            write_jsonl(&mut buf, &reader, i)
        };
        if let Err(e) = written {
            // The browser sees a failed download, not a short file.
            let _ = tx.blocking_send(Err(e));
            return;
        }
        if buf.len() >= 64 * 1024 && !send(&mut buf) {
            return;
        }
    }
    if !buf.is_empty() {
        send(&mut buf);
    }
}

/// `{"line", "custom_id", "outcome", "request": <input line>, "result":
/// <result line or null>}`: the original lines, untouched.
fn write_jsonl(buf: &mut Vec<u8>, reader: &Reader, i: &InputRef) -> std::io::Result<()> {
    write_jsonl_at(buf, reader, i, i.line, 0)
}

/// [`write_jsonl`] with the job's line number and (when not 0) the attempt.
fn write_jsonl_at(
    buf: &mut Vec<u8>,
    reader: &Reader,
    i: &InputRef,
    line: u64,
    attempt: u32,
) -> std::io::Result<()> {
    let input = reader.request(i.span)?;
    let result = reader.result(i.result)?;
    let id = serde_json::to_string(&*i.id).map_err(std::io::Error::other)?;
    write!(buf, r#"{{"line":{line},"custom_id":{id},"#)?;
    if attempt > 0 {
        write!(buf, r#""attempt":{attempt},"#)?;
    }
    write!(buf, r#""outcome":"{}","request":"#, i.outcome.as_str())?;
    buf.extend_from_slice(input.as_deref().unwrap_or(b"null"));
    buf.extend_from_slice(b",\"result\":");
    match result {
        Some(r) => buf.extend_from_slice(&r),
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b"}\n");
    Ok(())
}

/// A cell a spreadsheet would run as a formula gets a leading `'`.
fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

fn write_csv(buf: &mut Vec<u8>, row: &ResultRow) -> std::io::Result<()> {
    let r = &row.result;
    let num = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    let mut w = csv::Writer::from_writer(buf);
    w.write_record([
        row.line.to_string(),
        cell(&row.custom_id),
        row.outcome.as_str().to_string(),
        r.status_code.map(|s| s.to_string()).unwrap_or_default(),
        cell(&r.answer),
        num(r.embedding_dims),
        cell(r.error_code.as_deref().unwrap_or_default()),
        cell(r.error_message.as_deref().unwrap_or_default()),
        num(r.usage.map(|u| u.input)),
        num(r.usage.map(|u| u.output)),
        num(r.usage.map(|u| u.total)),
    ])?;
    w.flush()
}

/// The batch, from the index or the upstream.
pub async fn batch(state: &AppState, id: &str) -> Result<Batch, ApiError> {
    check_id("batch", id)?;
    if let Ok(Some(b)) = state.db.get_indexed(id).await {
        if b.status.is_terminal() {
            return Ok(b);
        }
    }
    let (upstream, own) = state.upstreams.route(id)?;
    Ok(upstream.qualify_batch(upstream.client.get_batch(own).await?))
}

/// `GET /api/batches/{id}/merged?format=jsonl|csv`: every request with its
/// result, in input order, streamed (viewers and up; audited).
pub async fn merged(
    State(state): State<AppState>,
    actor: Actor<Viewer>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<MergedQuery>,
) -> Result<Response, HttpError> {
    let csv = q.is_csv()?;
    let b = batch(&state, &id).await?;
    let joined = joined(&state, &b).await?;
    audit_merged(&actor, &id, csv).await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || merged_rows(joined, csv, tx));
    Ok(merged_download(rx, &id, csv))
}

/// The audit entry of a merged download of `id`.
pub async fn audit_merged(actor: &Actor<Viewer>, id: &str, csv: bool) {
    let ext = if csv { "csv" } else { "jsonl" };
    let detail = Msg::new(Key::AuditDetailMerged).arg("ext", ext);
    actor.audit("download", Some(id), Some(detail)).await;
}

/// The response of a merged download: the rows `rx` yields, as the file
/// `{id}_merged.jsonl` (or `.csv`).
pub fn merged_download(
    rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
    id: &str,
    csv: bool,
) -> Response {
    let ext = if csv { "csv" } else { "jsonl" };
    let mut resp = Response::new(Body::from_stream(
        tokio_stream::wrappers::ReceiverStream::new(rx),
    ));
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if csv {
            "text/csv; charset=utf-8"
        } else {
            "application/jsonl; charset=utf-8"
        }),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}_merged.{ext}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Writes the input lines of the requests that failed or never ran to a new
/// file (removed when the returned guard drops); returns it and how many.
pub async fn write_failed(
    joined: Arc<Joined>,
    dir: PathBuf,
) -> Result<(tempfile::TempPath, usize), ApiError> {
    write_where(joined, dir, |i| i.outcome != Outcome::Ok).await
}

/// Like [`write_failed`], only the requests worth sending again (a job's
/// retry part).
pub async fn write_retryable(
    joined: Arc<Joined>,
    dir: PathBuf,
) -> Result<(tempfile::TempPath, usize), ApiError> {
    write_where(joined, dir, |i| i.retry).await
}

async fn write_where(
    joined: Arc<Joined>,
    dir: PathBuf,
    pick: fn(&InputRef) -> bool,
) -> Result<(tempfile::TempPath, usize), ApiError> {
    tokio::task::spawn_blocking(move || {
        let fail = io_error("cannot write the retry file");
        let (out, file) = crate::services::submit::temp_file(&dir, "retry-").map_err(&fail)?;
        let reader = Reader::open(&joined.paths).map_err(&fail)?;
        let mut out = std::io::BufWriter::new(out);
        let mut n = 0;
        for i in joined.inputs.iter().filter(|i| pick(i)) {
            let line = reader
                .request(i.span)
                .map_err(&fail)?
                .ok_or_else(|| ApiError::Invalid(Msg::new(Key::ServerNoInputFile)))?;
            out.write_all(&line).map_err(&fail)?;
            out.write_all(b"\n").map_err(&fail)?;
            n += 1;
        }
        out.flush().map_err(&fail)?;
        Ok((file, n))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

impl Joined {
    /// Requests that succeeded, that did not, and of those the ones worth
    /// sending again.
    pub fn counts(&self) -> (u64, u64, u64) {
        let retry = self.inputs.iter().filter(|i| i.retry).count() as u64;
        (self.ok, self.failed + self.not_run, retry)
    }
}

/// The merged rows of one part of a job and its retries: `chain` is the
/// part's joined results followed by its retries' (in attempt order); each
/// request is written once, from the last attempt that has it, its line
/// counted from `first_line`. Runs on a blocking thread.
pub fn chain_rows(
    chain: &[(u32, Arc<Joined>)],
    first_line: u64,
    csv: bool,
    header: bool,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
) -> bool {
    let send = |buf: &mut Vec<u8>| tx.blocking_send(Ok(std::mem::take(buf))).is_ok();
    let fail = |e: std::io::Error| {
        let _ = tx.blocking_send(Err(e));
        false
    };
    let Some((_, first)) = chain.first() else {
        return true;
    };
    let mut readers = Vec::with_capacity(chain.len());
    for (_, j) in chain {
        match Reader::open(&j.paths) {
            Ok(r) => readers.push(r),
            Err(e) => return fail(e),
        }
    }
    // custom_id → row, for each retry (small: the failures of one part).
    let later: Vec<HashMap<&str, &InputRef>> = chain[1..]
        .iter()
        .map(|(_, j)| j.inputs.iter().map(|i| (&*i.id, i)).collect())
        .collect();
    let mut buf = Vec::with_capacity(80 * 1024);
    if csv && header {
        let mut w = csv::Writer::from_writer(&mut buf);
        let _ = w.write_record(CSV_HEADER);
        drop(w);
    }
    for i in &first.inputs {
        // The last attempt that has the request.
        let (k, last) = later
            .iter()
            .enumerate()
            .rev()
            .find_map(|(k, m)| m.get(&*i.id).map(|r| (k + 1, *r)))
            .unwrap_or((0, i));
        let line = first_line + i.line - 1;
        let written = if csv {
            row(&readers[k], last, usize::MAX).and_then(|mut r| {
                r.line = line;
                write_csv(&mut buf, &r)
            })
        } else {
            write_jsonl_at(&mut buf, &readers[k], last, line, chain[k].0)
        };
        if let Err(e) = written {
            return fail(e);
        }
        if buf.len() >= 64 * 1024 && !send(&mut buf) {
            return false;
        }
    }
    buf.is_empty() || send(&mut buf)
}

#[cfg(test)]
mod tests {
    use super::{cell, prune, USED};

    #[test]
    fn spools_beyond_the_limit_go_least_recently_used_first() {
        let root = tempfile::tempdir().unwrap();
        for (i, name) in ["batch_a", "batch_b", "batch_c", "batch_d"]
            .iter()
            .enumerate()
        {
            let dir = root.path().join(name);
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("f.jsonl"), vec![b'x'; 1000]).unwrap();
            let used = std::fs::File::create(dir.join(USED)).unwrap();
            // a used longest ago, d most recently.
            let ago = std::time::Duration::from_secs(600 - i as u64 * 100);
            used.set_modified(std::time::SystemTime::now() - ago)
                .unwrap();
        }
        // 4,000 bytes in all, 2,500 allowed; a is in use.
        prune(root.path(), &["batch_a".to_string()], 2_500);
        let left: std::collections::BTreeSet<String> = std::fs::read_dir(root.path())
            .unwrap()
            .flatten()
            .map(|d| d.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["batch_a", "batch_d"].map(String::from).into());
    }

    #[test]
    fn spreadsheet_formulas_are_defused() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("-2+3"), "'-2+3");
        assert_eq!(cell("echo: hi"), "echo: hi");
    }
}
