//! The upstream pollers, one per upstream: keep the index current so that
//! pages and event streams never call an upstream, whatever the number of
//! viewers. An upstream that fails or is slow holds up only its own poller.
//!
//! It pages the batch list (all of it at start and every ten minutes; the
//! newest page otherwise, going deeper only while it finds news), refreshes
//! unfinished batches on an adaptive schedule, looks up input file names for
//! search, and backs off on 429/5xx (honouring `retry-after`). On Postgres,
//! only the replica holding an upstream's advisory-lock lease polls it;
//! when it dies its connection closes, the lock is freed and another
//! replica takes over.

use std::time::{Duration, Instant};

use std::sync::Arc;

use super::state::AppState;
use crate::providers::Upstream;
use crate::store::index::Upsert;
use crate::store::lease::Lease;
use crate::store::now;
use batchboard_core::dashboard::split_qualified;
use batchboard_core::{Batch, BatchStatus};
use batchboard_upstream::{Backoff, UpstreamError};

/// Settings of the watcher.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// How often the newest page of the list is read.
    pub sweep: Duration,
    /// How often a replica without the lease tries to take it.
    pub lease_retry: Duration,
    /// Who this replica is, for the status row and logs.
    pub holder: String,
}

/// When an unfinished batch is read again: soon while it moves, less often
/// while it sits in a long `in_progress`.
pub fn next_check(b: &Batch, outcome: &Upsert) -> i64 {
    let secs = match (&b.status, outcome) {
        (s, _) if s.is_terminal() => 86_400 * 365,
        (_, Upsert::New | Upsert::Changed { .. }) => 2,
        (
            BatchStatus::Validating | BatchStatus::Finalizing | BatchStatus::Cancelling,
            Upsert::Unchanged,
        ) => 2,
        (_, Upsert::Unchanged) => 5,
    };
    now() + secs
}

/// Runs one poller per upstream, each for as long as its upstream is one.
pub fn spawn(state: AppState, opts: WatchOptions) {
    for upstream in state.upstreams.all().iter() {
        spawn_one(state.clone(), upstream.clone(), opts.clone());
    }
}

/// Polls `upstream` until it is no longer one of the upstreams (the
/// upstreams file changed).
pub fn spawn_one(state: AppState, upstream: Arc<Upstream>, opts: WatchOptions) {
    tokio::spawn(async move { poll(state, upstream, opts).await });
}

async fn poll(state: AppState, upstream: Arc<Upstream>, opts: WatchOptions) {
    use std::sync::atomic::Ordering::Relaxed;
    let name = upstream.display_name().to_owned();
    while state.upstreams.is_current(&upstream) {
        match Lease::try_acquire(&state.db, &upstream.name).await {
            Some(lease) => {
                tracing::info!(holder = %opts.holder, upstream = %name, "watcher: this replica polls the upstream");
                state.polling.fetch_add(1, Relaxed);
                lead(&state, &upstream, lease, &opts).await;
                state.polling.fetch_sub(1, Relaxed);
                if state.upstreams.is_current(&upstream) {
                    tracing::warn!(upstream = %name, "watcher: lost the lease");
                } else {
                    tracing::info!(upstream = %name, "watcher: no longer an upstream; stopped polling it");
                }
            }
            None => tokio::time::sleep(opts.lease_retry).await,
        }
    }
}

async fn lead(state: &AppState, upstream: &Arc<Upstream>, mut lease: Lease, opts: &WatchOptions) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
    // When the whole list is read next (at once to begin with).
    let mut next_full: Option<Instant> = None;
    let mut last_sweep: Option<Instant> = None;
    let name = &upstream.name;
    loop {
        // Gone from the upstreams file: the lease goes with this poller.
        if !lease.alive().await || !state.upstreams.is_current(upstream) {
            return;
        }
        let full = next_full.is_none_or(|t| Instant::now() >= t);
        let sweep = full || last_sweep.is_none_or(|t| t.elapsed() >= opts.sweep);
        match step(state, upstream, sweep, full).await {
            Ok(whole) => {
                backoff.reset();
                if sweep {
                    last_sweep = Some(Instant::now());
                }
                // A full read whose writes failed is done again sooner,
                // but not at every sweep: each is the whole list upstream.
                if full {
                    let after = if whole { FULL_EVERY } else { FULL_RETRY };
                    next_full = Some(Instant::now() + after);
                }
                let _ = state.db.watcher_contact(name, &opts.holder, Ok(())).await;
                // Jobs on this upstream: scheduled by its lease holder only.
                crate::services::jobs::schedule::run(state, upstream).await;
            }
            Err(e) => {
                let text = e.to_string();
                tracing::warn!(error = %text, upstream = %upstream.display_name(), "watcher: upstream call failed");
                let _ = state
                    .db
                    .watcher_contact(name, &opts.holder, Err(&text))
                    .await;
                let wait = if e.is_transient() {
                    backoff.delay(e.retry_after())
                } else {
                    opts.sweep
                };
                tokio::time::sleep(wait).await;
                continue;
            }
        }
        // Sleep until the next batch is due or the next sweep, whichever first.
        let until_sweep = opts
            .sweep
            .saturating_sub(last_sweep.map_or(Duration::ZERO, |t| t.elapsed()));
        let until_due = match state.db.next_due(name).await {
            Ok(Some(at)) => Duration::from_secs((at - now()).max(0) as u64),
            _ => until_sweep,
        };
        let wait = until_sweep.min(until_due).max(Duration::from_millis(500));
        tokio::time::sleep(wait).await;
    }
}

/// One round: the list (if a sweep is due), then due batches, then missing
/// file names. False when a full read of the list could not write all it
/// read.
async fn step(
    state: &AppState,
    upstream: &Arc<Upstream>,
    sweep: bool,
    full: bool,
) -> Result<bool, UpstreamError> {
    let client = &upstream.client;
    let mut whole = true;
    if full {
        whole = full_list(state, upstream).await?;
    } else if sweep {
        let mut after: Option<String> = None;
        loop {
            let page = client.list_batches(after.as_deref(), 100).await?;
            let (batches, next) = qualified(upstream, page.data, page.last_id);
            let news = state
                .index_many(&batches)
                .await
                .iter()
                .any(|o| o.as_ref().is_some_and(|o| *o != Upsert::Unchanged));
            // The list is newest first: a page without news means the rest
            // is known too (unfinished ones are refreshed one by one below).
            if !page.has_more || !news {
                break;
            }
            after = next;
            if after.is_none() {
                break;
            }
        }
    }
    let due = state
        .db
        .due_batches(&upstream.name, 25)
        .await
        .unwrap_or_default();
    let (mut removed, mut failed) = (false, None);
    for id in &due {
        match client.get_batch(split_qualified(id).1).await {
            Ok(b) => {
                state.index(&upstream.qualify_batch(b)).await;
            }
            // Gone upstream: stop asking about it.
            Err(UpstreamError::Api { status: 404, .. }) => {
                tracing::info!(batch = %id, "watcher: batch no longer exists upstream");
                if let Err(e) = state.db.remove_batch(id).await {
                    tracing::warn!(error = %e, "cannot drop a batch from the index");
                }
                // Announced even then: the row may be gone all the same
                // (its progress points are forgotten after), and viewers
                // reloading once too often costs little.
                removed = true;
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if removed {
        removed_from_index(state).await;
    }
    if let Some(e) = failed {
        return Err(e);
    }
    // While webhooks say when batches end, unfinished ones are read once a
    // minute (for their progress) instead of every few seconds.
    if !due.is_empty() && crate::webhooks_in::health(state, upstream).await == "healthy" {
        let later = now() + crate::webhooks_in::SLOW_POLL_SECS;
        if let Err(e) = state.db.check_later(&due, later).await {
            tracing::warn!(error = %e, "cannot defer checks");
        }
    }
    name_files(state, upstream).await?;
    Ok(whole)
}

/// How often the whole list is read.
const FULL_EVERY: Duration = Duration::from_secs(600);

/// How soon a full read is done again when it could not write all it read.
const FULL_RETRY: Duration = Duration::from_secs(60);

/// Pages of the list held while the ones before are written.
const LIST_AHEAD: usize = 20;

/// The whole list, at start and every ten minutes. The listing runs on a
/// task of its own while what it has read is written: whatever pages have
/// arrived (up to [`LIST_AHEAD`] of them) go into one write, so the writes
/// overlap the listing instead of taking turns with it, and when the
/// upstream answers faster than the index is written (the sandbox on
/// loopback: 100,000 batches in about 4 s) a write takes thousands of
/// batches. A failed page ends the round with the pages before it
/// written. False when a write failed: the round is then not complete.
async fn full_list(state: &AppState, upstream: &Arc<Upstream>) -> Result<bool, UpstreamError> {
    let (pages, mut read) = tokio::sync::mpsc::channel::<Vec<Batch>>(LIST_AHEAD);
    let lister = upstream.clone();
    let listing = tokio::spawn(async move {
        let mut after: Option<String> = None;
        loop {
            let page = lister.client.list_batches(after.as_deref(), 100).await?;
            let (batches, next) = qualified(&lister, page.data, page.last_id);
            // The writer is gone only when the round is over.
            if pages.send(batches).await.is_err() {
                return Ok(());
            }
            match next {
                Some(next) if page.has_more => after = Some(next),
                _ => return Ok::<(), UpstreamError>(()),
            }
        }
    });
    let started = Instant::now();
    let (mut listed, mut unwritten) = (0, 0);
    while let Some(mut group) = read.recv().await {
        while group.len() < LIST_AHEAD * 100 {
            match read.try_recv() {
                Ok(more) => group.extend(more),
                Err(_) => break,
            }
        }
        listed += group.len();
        let outcomes = state.index_many(&group).await;
        unwritten += outcomes.iter().filter(|o| o.is_none()).count();
    }
    match listing.await {
        Ok(done) => done?,
        // Never aborted; a panic goes on as it would have in this task.
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Cancelled: the runtime is shutting down.
            Err(_) => return Ok(false),
        },
    }
    if unwritten > 0 {
        // index_many said why.
        tracing::warn!(
            upstream = %upstream.display_name(),
            batches = listed,
            unwritten,
            "watcher: read the whole list but could not write all of it; reading it again in a minute"
        );
        return Ok(false);
    }
    tracing::info!(
        upstream = %upstream.display_name(),
        batches = listed,
        secs = started.elapsed().as_secs_f64(),
        "watcher: listed every batch"
    );
    Ok(true)
}

/// A page of the list in the dashboard's ids, and the cursor after it.
/// Paged by the upstream's own ids; indexed by the dashboard's.
fn qualified(
    upstream: &Upstream,
    data: Vec<Batch>,
    last_id: Option<String>,
) -> (Vec<Batch>, Option<String>) {
    let next = last_id.or_else(|| data.last().map(|b| b.id.clone()));
    let batches = data
        .into_iter()
        .map(|b| upstream.qualify_batch(b))
        .collect();
    (batches, next)
}

/// Input file names, for search by file name: one lookup per new batch.
async fn name_files(state: &AppState, upstream: &Upstream) -> Result<(), UpstreamError> {
    let missing = state
        .db
        .batches_without_file_name(&upstream.name, 10)
        .await
        .unwrap_or_default();
    for (id, file) in missing {
        let name = match upstream.client.get_file(split_qualified(&file).1).await {
            Ok(f) => f.filename,
            // Deleted or expired: remember that there is no name to find.
            Err(UpstreamError::Api { status: 404, .. }) => String::new(),
            Err(e) => return Err(e),
        };
        if let Err(e) = state.db.set_file_name(&id, &name).await {
            tracing::warn!(error = %e, "cannot store a file name");
        }
    }
    Ok(())
}

/// Batches left the index: the table's counts and filters, the running
/// count and every open table follow (viewers reload their page; no batch
/// event says that a row is gone).
async fn removed_from_index(state: &AppState) {
    state.facets.clear();
    state.announce_resync().await;
}
