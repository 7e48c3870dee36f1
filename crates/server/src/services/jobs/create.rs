//! `POST /api/jobs`: a job from one uploaded file.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use axum::extract::{Multipart, State};
use axum::Json;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::files::{bad_form, check_form, small_text};
use crate::http::actor::{Actor, Operator};
use crate::http::HttpError;
use crate::providers::Upstream;
use crate::services::submit::{checker, estimate_tokens, stamp_creator, temp_file};
use crate::state::AppState;
use crate::store::jobs::{JobRow, PartRow};
use crate::store::now;
use batchboard_core::error::ApiError;
use batchboard_core::i18n::{Key, Msg};
use batchboard_core::jobs::{
    JobView, PartLimits, PartPlan, Splitter, DEFAULT_MAX_ATTEMPTS, MAX_ATTEMPTS, MAX_JOB_BYTES,
    MAX_JOB_REQUESTS,
};
use batchboard_core::limits::Offer;
use batchboard_core::validate::Report;
use batchboard_core::MAX_METADATA_PAIRS;

/// `POST /api/jobs`: multipart `upstream`, `endpoint`, `completion_window`,
/// `metadata`, `max_attempts` and `file` (last). Answers the job.
pub async fn create(
    State(state): State<AppState>,
    actor: Actor<Operator>,
    mut form: Multipart,
) -> Result<Json<JobView>, HttpError> {
    let Ok(_permit) = state.uploads.clone().try_acquire_owned() else {
        return Err(ApiError::Busy(Msg::new(Key::ServerUploadsBusy)).into());
    };
    let (mut endpoint, mut window, mut metadata, mut chosen) = (None, None, None, None);
    let mut attempts = None;
    let mut over_budget = false;
    let mut received: Option<(Received, String, std::sync::Arc<Upstream>)> = None;
    while let Some(mut field) = form.next_field().await.map_err(bad_form)? {
        match field.name().unwrap_or_default() {
            "endpoint" => endpoint = Some(small_text(&mut field).await.map_err(bad_form)??),
            "completion_window" => window = Some(small_text(&mut field).await.map_err(bad_form)??),
            "metadata" => metadata = Some(small_text(&mut field).await.map_err(bad_form)??),
            "upstream" => chosen = Some(small_text(&mut field).await.map_err(bad_form)??),
            "max_attempts" => attempts = Some(small_text(&mut field).await.map_err(bad_form)??),
            "override_budget" => {
                over_budget = crate::files::is_on(&small_text(&mut field).await.map_err(bad_form)??)
            }
            "file" if received.is_none() => {
                let filename = field
                    .file_name()
                    .filter(|n| !n.is_empty())
                    .unwrap_or("job.jsonl")
                    .to_owned();
                let target = state
                    .upstreams
                    .for_create(chosen.as_deref(), actor.user.role)?;
                if target.kind().message_batches() {
                    return Err(HttpError::invalid(
                        Msg::new(Key::ServerJobsNoMessageBatches)
                            .arg("name", target.display_name()),
                    ));
                }
                let form_endpoint = endpoint.clone().filter(|e| !e.is_empty());
                let mut r = Received::start(&state, form_endpoint)?;
                while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
                    r.push(chunk).await?;
                }
                received = Some((r, filename, target));
            }
            _ => {}
        }
    }
    let (received, filename, target) =
        received.ok_or_else(|| HttpError::invalid(Msg::new(Key::ServerFileMissing)))?;
    let max_attempts = match attempts.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        None => DEFAULT_MAX_ATTEMPTS,
        Some(a) => a
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_ATTEMPTS).contains(n))
            .ok_or_else(|| {
                HttpError::invalid(Msg::new(Key::ServerMaxAttempts).arg("max", MAX_ATTEMPTS))
            })?,
    };
    let mut new = check_form(endpoint, window, metadata, None)?;
    stamp_creator(&mut new.metadata, &actor.user.name).map_err(HttpError::invalid)?;
    // Each part's batch also carries its job and part.
    let pairs = new.metadata.as_ref().map_or(0, |m| m.len());
    if pairs + 2 > MAX_METADATA_PAIRS {
        return Err(HttpError::invalid(
            Msg::new(Key::ServerJobMetadataFull).arg("max", MAX_METADATA_PAIRS - 3),
        ));
    }
    let (spool, report) = received.finish().await?;
    if !report.is_ok() {
        return Err(HttpError::file(report));
    }
    let report = estimate_tokens(report).await;
    // What a job changes: the count, size and tokens of one batch do not
    // bind the file (its parts fit them); the rest does.
    let relaxed = Offer {
        max_requests: Some(u64::MAX),
        max_bytes: Some(u64::MAX),
        enqueued_tokens: Default::default(),
        ..target.offer.clone()
    };
    relaxed
        .check(Some(&new.completion_window), &report)
        .map_err(|b| HttpError::from(b.refusal(target.display_name())))?;
    if report.endpoint.as_deref() != Some(new.endpoint.as_str()) {
        return Err(HttpError::invalid(
            Msg::new(Key::ServerEndpointDiffers)
                .arg("form", &new.endpoint)
                .arg("file", report.endpoint.clone().unwrap_or_default()),
        ));
    }
    let limits = PartLimits::of(&target.offer, report.model.as_deref());
    let dir = state.data_dir.join("uploads");
    let tokens = report.tokens.as_ref().map_or(0, |t| t.input_tokens);
    let per_byte = tokens as f64 / report.bytes.max(1) as f64;
    let spool_path = spool.to_path_buf();
    let split = tokio::task::spawn_blocking(move || split(&spool_path, &dir, limits, per_byte))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("cannot split the upload: {e}")))?;
    let parts = split.map_err(|e| {
        HttpError::invalid(
            Msg::new(Key::ServerJobLineTooLarge)
                .arg("line", e.line)
                .arg("what", e.what)
                .arg("value", e.value)
                .arg("limit", e.limit),
        )
    })?;
    drop(spool);
    // The whole job's most against the budgets, before any part is up.
    let budget = crate::services::spend::Guard::check(
        &state,
        (&actor.user.name, actor.user.role),
        &target.name,
        &report,
        new.metadata.as_ref(),
        over_budget,
    )
    .await?;
    let id = format!("job_{}", uuid::Uuid::new_v4().simple());
    let uploaded = upload_parts(&target, &id, &filename, &parts).await?;
    let job = JobRow {
        id: id.clone(),
        upstream: target.name.clone(),
        endpoint: new.endpoint,
        model: report.model.clone(),
        completion_window: new.completion_window,
        metadata: serde_json::to_string(&new.metadata.unwrap_or_default())
            .unwrap_or_else(|_| "{}".into()),
        max_attempts: max_attempts.into(),
        filename: filename.clone(),
        requests: report.requests as i64,
        tokens: tokens as i64,
        created_by: actor.user.name.clone(),
        created_at: now(),
        status: "running".into(),
        ended_at: None,
    };
    let rows: Vec<PartRow> = parts
        .iter()
        .zip(&uploaded)
        .enumerate()
        .map(|(i, ((plan, _), file))| PartRow {
            job_id: id.clone(),
            part: i as i64 + 1,
            attempt: 1,
            origin: i as i64 + 1,
            first_line: plan.first_line as i64,
            last_line: plan.last_line as i64,
            requests: plan.requests as i64,
            tokens: plan.tokens as i64,
            input_file_id: file.clone(),
            state: "queued".into(),
            ..PartRow::default()
        })
        .collect();
    if let Err(e) = state.db.insert_job(&job, &rows).await {
        delete_files(&target, &uploaded).await;
        return Err(ApiError::Internal(e.to_string()).into());
    }
    let detail = Msg::new(Key::AuditDetailJob)
        .arg("parts", rows.len())
        .arg("requests", report.requests)
        .arg("file", &filename);
    actor.audit("create", Some(&id), Some(detail)).await;
    if let Some(detail) = budget.job_created(&state, &id).await {
        actor
            .audit("budget_override", Some(&id), Some(detail))
            .await;
    }
    Ok(Json(super::view(&job, &rows)))
}

/// Uploads each part's file; on any failure deletes those already up, so
/// that nothing is left of a job that was not created.
async fn upload_parts(
    target: &Upstream,
    id: &str,
    filename: &str,
    parts: &[(PartPlan, tempfile::TempPath)],
) -> Result<Vec<String>, HttpError> {
    let stem = filename.strip_suffix(".jsonl").unwrap_or(filename);
    let mut uploaded = Vec::with_capacity(parts.len());
    for (i, (_, path)) in parts.iter().enumerate() {
        let name = format!("{stem}.{id}.part{}.jsonl", i + 1);
        match target.client.upload_file(path, &name, "batch").await {
            Ok(f) => uploaded.push(target.qualify(&f.id)),
            Err(e) => {
                delete_files(target, &uploaded).await;
                return Err(ApiError::from(e).into());
            }
        }
    }
    Ok(uploaded)
}

async fn delete_files(target: &Upstream, ids: &[String]) {
    for id in ids {
        let own = batchboard_core::dashboard::split_qualified(id).1;
        if let Err(e) = target.client.delete_file(own).await {
            tracing::warn!(file = %id, error = %e, "jobs: cannot delete the file of a job that was not created");
        }
    }
}

/// Cuts the checked file at `path` into part files in `dir`, each request
/// costed at its bytes × `per_byte` tokens. Blank lines are left out.
#[allow(clippy::type_complexity)]
fn split(
    path: &Path,
    dir: &Path,
    limits: PartLimits,
    per_byte: f64,
) -> std::io::Result<
    Result<Vec<(PartPlan, tempfile::TempPath)>, batchboard_core::jobs::TooLargeAlone>,
> {
    let lines = |f: &mut dyn FnMut(u64, &[u8]) -> std::io::Result<()>| -> std::io::Result<()> {
        let mut reader = BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
        let mut buf = Vec::new();
        let mut n = 0;
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                return Ok(());
            }
            n += 1;
            let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.iter().all(u8::is_ascii_whitespace) {
                f(n, line)?;
            }
        }
    };
    let cost = |line: &[u8]| ((line.len() + 1) as f64 * per_byte).ceil() as u64;
    let mut splitter = Splitter::new(limits);
    let mut too_large = None;
    lines(&mut |n, line| {
        if too_large.is_none() {
            if let Err(e) = splitter.push(n, line.len() as u64 + 1, cost(line)) {
                too_large = Some(e);
            }
        }
        Ok(())
    })?;
    if let Some(e) = too_large {
        return Ok(Err(e));
    }
    let plans = splitter.finish();
    let mut out: Vec<(PartPlan, tempfile::TempPath)> = Vec::with_capacity(plans.len());
    let mut writer: Option<std::io::BufWriter<std::fs::File>> = None;
    let mut next = 0;
    lines(&mut |n, line| {
        while next < plans.len() && n >= plans[next].first_line {
            if let Some(mut w) = writer.take() {
                w.flush()?;
            }
            let (file, path) = temp_file(dir, "part-")?;
            writer = Some(std::io::BufWriter::new(file));
            out.push((plans[next], path));
            next += 1;
        }
        if let Some(w) = writer.as_mut() {
            w.write_all(line)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })?;
    if let Some(mut w) = writer.take() {
        w.flush()?;
    }
    Ok(Ok(out))
}

/// The upload on its way to disk, checked on a thread of its own.
struct Received {
    tx: mpsc::Sender<Bytes>,
    worker: tokio::task::JoinHandle<std::io::Result<Report>>,
    spool: tempfile::TempPath,
    bytes: u64,
}

impl Received {
    fn start(state: &AppState, endpoint: Option<String>) -> Result<Self, HttpError> {
        let dir: PathBuf = state.data_dir.join("uploads");
        let (file, spool) = std::fs::create_dir_all(&dir)
            .and_then(|_| temp_file(&dir, "job-"))
            .map_err(|e| ApiError::Internal(format!("cannot spool the upload: {e}")))?;
        let (tx, mut rx) = mpsc::channel::<Bytes>(16);
        let worker = tokio::task::spawn_blocking(move || {
            let mut v = checker(endpoint.as_deref()).with_limits(MAX_JOB_REQUESTS, MAX_JOB_BYTES);
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            while let Some(chunk) = rx.blocking_recv() {
                out.write_all(&chunk)?;
                v.chunk(&chunk);
            }
            out.flush()?;
            Ok(v.finish())
        });
        Ok(Self {
            tx,
            worker,
            spool,
            bytes: 0,
        })
    }

    async fn push(&mut self, chunk: Bytes) -> Result<(), HttpError> {
        self.bytes += chunk.len() as u64;
        if self.bytes > MAX_JOB_BYTES {
            return Err(ApiError::TooLarge(
                Msg::new(Key::ServerUploadTooLarge).arg("max", MAX_JOB_BYTES),
            )
            .into());
        }
        crate::metrics::upload_bytes(chunk.len() as u64);
        // The worker stopped: its error comes with `finish`.
        let _ = self.tx.send(chunk).await;
        Ok(())
    }

    async fn finish(self) -> Result<(tempfile::TempPath, Report), HttpError> {
        drop(self.tx);
        let report = self
            .worker
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| ApiError::Internal(format!("cannot spool the upload: {e}")))?;
        Ok((self.spool, report))
    }
}
