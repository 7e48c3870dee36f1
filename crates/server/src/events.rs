//! Changes pushed to browsers: the hub that fans out batch changes to every
//! open event stream of this replica, the Postgres relay that brings other
//! replicas' changes into it, and `GET /events` (Server-Sent Events).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::{broadcast, watch};

use super::state::AppState;
use crate::http::actor::{Actor, Viewer};
use crate::http::HttpError;
use crate::store::notify::ChangeListener;
use crate::store::Db;
use batchboard_core::dashboard::BatchEvent;
use batchboard_core::dashboard::WatcherStatus;
use batchboard_core::error::ApiError;
use batchboard_core::i18n::{Key, Msg};

/// How often an open stream checks that its user is still signed in.
const RECHECK: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub enum Change {
    Batch(Box<BatchEvent>),
    /// A budget reached 80 % or 100 % of its month (this replica's
    /// viewers; the webhook tells everyone).
    Budget(Box<batchboard_core::spend::BudgetStatus>),
    /// Changes may have been missed (the relay reconnected) or are not
    /// told batch by batch (many at once, a batch gone from the index):
    /// reload.
    Resync,
}

/// Fan-out of changes to this replica's streams, and the index status they
/// all show (read once for all of them).
pub struct Hub {
    /// Each change with the hub's version once it was passed on.
    changes: broadcast::Sender<(u64, Change)>,
    status: watch::Sender<WatcherStatus>,
    streams: std::sync::atomic::AtomicUsize,
    /// Set at shutdown: every stream ends.
    closing: watch::Sender<bool>,
    /// Sessions just signed out: their streams end.
    ended: broadcast::Sender<tower_sessions::session::Id>,
    /// Open streams per user.
    per_user: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    /// At most this many per user (`--max-streams-per-user`).
    max_per_user: usize,
    /// Changes sent so far.
    version: std::sync::atomic::AtomicU64,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            changes: broadcast::channel(1024).0,
            status: watch::channel(WatcherStatus::default()).0,
            streams: std::sync::atomic::AtomicUsize::new(0),
            closing: watch::channel(false).0,
            ended: broadcast::channel(64).0,
            per_user: Default::default(),
            max_per_user: 20,
            version: Default::default(),
        }
    }
}

/// How long the status's count of running batches is trusted without a
/// change passed on: a safeguard for a change missed (every known way a
/// batch enters, changes or leaves the index passes one on).
pub const RECOUNT: Duration = Duration::from_secs(30);

impl Hub {
    /// A hub that lets one user hold at most `n` streams.
    pub fn with_stream_limit(n: usize) -> Self {
        Self {
            max_per_user: n,
            ..Self::default()
        }
    }

    pub fn send(&self, c: Change) {
        let v = self
            .version
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
            + 1;
        // No receivers is fine: nobody is watching.
        let _ = self.changes.send((v, c));
    }

    /// Changes passed on so far (what the table's page cache is valid for).
    pub fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Ends every open stream (the server is stopping); browsers reconnect
    /// to whichever server answers next.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Ends the streams of a session that was signed out: a signed-out
    /// browser must not go on receiving changes (on this replica; a
    /// stream on another one ends when it next reconnects).
    pub fn end_session(&self, id: tower_sessions::session::Id) {
        let _ = self.ended.send(id);
    }

    /// The index status as last read (every 2 s): what pages show, without
    /// a query per page.
    pub fn status(&self) -> WatcherStatus {
        self.status.borrow().clone()
    }

    /// Open event streams on this replica.
    pub fn streams(&self) -> usize {
        self.streams.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Refreshes the shared status every `period` (one query, whatever the
    /// number of viewers).
    /// Each upstream's is reported, in order.
    ///
    /// The running batches are counted again only when a change was passed
    /// on since the last count (a batch added, changed or removed: what can
    /// change the count), or [`RECOUNT`] after it: an idle dashboard does not count
    /// its unfinished batches every 2 s.
    pub fn spawn_status(
        self: &std::sync::Arc<Self>,
        db: Db,
        period: Duration,
        upstreams: std::sync::Arc<crate::providers::Upstreams>,
    ) {
        let hub = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            // One count, by the upstreams' names, at the hub's version.
            let counted = crate::recent::Recent::<Vec<i64>>::new(RECOUNT, 1);
            loop {
                tick.tick().await;
                let names = upstreams.names();
                // Read before counting: a change during the count makes
                // the next round count again.
                let version = hub.version();
                let running = match counted
                    .get_or_read(&names.join("\n"), version, || db.running(&names))
                    .await
                {
                    Ok(counts) => counts,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot count the running batches");
                        continue;
                    }
                };
                match db.watcher_status(&names, &running).await {
                    Ok(s) => {
                        hub.status.send_if_modified(|old| {
                            let changed = *old != s;
                            *old = s;
                            changed
                        });
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read the watcher status"),
                }
            }
        });
    }

    /// On Postgres: relays every replica's `NOTIFY` into this hub, reading
    /// the changed row from the shared index.
    /// `cost` prices each batch for its event; `rows_changed` is called
    /// before a change that can alter which batches a filter matches (a
    /// new batch, a status, a reload) is passed on, so that what this
    /// replica remembers of the index (filter values, match counts) is
    /// read afresh by the views reloading for it.
    pub fn spawn_relay(
        self: &std::sync::Arc<Self>,
        db: Db,
        cost: impl Fn(&batchboard_core::Batch) -> Option<f64> + Send + 'static,
        rows_changed: impl Fn() + Send + Sync + 'static,
    ) {
        let Db::Postgres(pool) = db.clone() else {
            return;
        };
        let hub = self.clone();
        tokio::spawn(async move {
            let resync = || {
                rows_changed();
                hub.send(Change::Resync);
            };
            loop {
                let mut listener = match ChangeListener::connect(&pool).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "event relay: cannot listen; retrying");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        continue;
                    }
                };
                // Whatever happened while we were not listening: reload.
                resync();
                loop {
                    match listener.next().await {
                        Ok(Some((id, _))) if id == crate::store::notify::RESYNC => resync(),
                        Ok(Some((id, change))) => match db.get_indexed(&id).await {
                            Ok(Some(batch)) => {
                                if change != batchboard_core::dashboard::Change::Progress {
                                    rows_changed();
                                }
                                hub.send(Change::Batch(Box::new(BatchEvent {
                                    cost_usd: cost(&batch),
                                    batch,
                                    change,
                                })))
                            }
                            Ok(None) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "event relay: cannot read a batch")
                            }
                        },
                        // The connection was lost; PgListener reconnects,
                        // but notifications in between are gone.
                        Ok(None) => resync(),
                        Err(e) => {
                            tracing::warn!(error = %e, "event relay: listener failed; reconnecting");
                            break;
                        }
                    }
                }
            }
        });
    }
}

/// Counts a stream, in all and for its user, for as long as it is open.
struct StreamGuard(std::sync::Arc<Hub>, String);

impl StreamGuard {
    /// `None` when `user` already holds as many as the hub allows.
    fn open(hub: &std::sync::Arc<Hub>, user: &str) -> Option<Self> {
        let mut per_user = hub.per_user.lock().unwrap_or_else(|e| e.into_inner());
        let n = per_user.entry(user.to_string()).or_default();
        if *n >= hub.max_per_user {
            return None;
        }
        *n += 1;
        hub.streams
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(Self(hub.clone(), user.to_string()))
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0
            .streams
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let mut per_user = self.0.per_user.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per_user.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                per_user.remove(&self.1);
            }
        }
    }
}

fn status_event(s: &WatcherStatus) -> Event {
    Event::default()
        .event("status")
        .json_data(s)
        .unwrap_or_else(|_| Event::default().event("status"))
}

/// The live-update stream.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route(crate::http::routes::EVENTS, axum::routing::get(stream))
}

/// `GET /events`: batch changes (`batch`, the whole batch as JSON), the
/// index status (`status`, every few seconds and on change) and `resync`
/// when the browser should reload its data. Browsers reconnect by themselves.
/// Each change's event id is the hub's version once it was passed on, and
/// the first event's the version as the stream began: a page compares it
/// with the version it was rendered at ([`Hub::version`]) to know whether
/// it missed a change before its stream opened.
pub async fn stream(
    State(state): State<AppState>,
    actor: Actor<Viewer>,
    session: Option<axum::Extension<tower_sessions::Session>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, HttpError> {
    let session = session.map(|axum::Extension(s)| s);
    let session_id = session.as_ref().and_then(|s| s.id());
    let user = actor.user;
    let hub = state.hub.clone();
    let guard = StreamGuard::open(&hub, &user.name).ok_or_else(|| {
        ApiError::Busy(
            Msg::new(Key::ServerStreamsBusy)
                .arg("max", hub.max_per_user)
                .arg("user", &user.name),
        )
    })?;
    let changes = hub.changes.subscribe();
    // The version as the stream begins (read once subscribed: any later
    // change comes through the stream). A page rendered at another
    // version missed changes and reloads (see `live/browser.rs`).
    let first = status_event(&hub.status.borrow())
        .id(hub.version().to_string())
        .retry(Duration::from_secs(2));
    let changes = tokio_stream::wrappers::BroadcastStream::new(changes).map(|c| match c {
        Ok((v, Change::Batch(b))) => Event::default()
            .event("batch")
            .id(v.to_string())
            .json_data(&*b)
            .unwrap_or_else(|_| Event::default().event("resync").data("")),
        Ok((v, Change::Budget(b))) => Event::default()
            .event("budget")
            .id(v.to_string())
            .json_data(&*b)
            .unwrap_or_else(|_| Event::default().event("resync").data("")),
        // With its version, like any change: a tab that is still loading
        // compares the page it rendered with it.
        Ok((v, Change::Resync)) => Event::default().event("resync").id(v.to_string()).data(""),
        // Fell behind the broadcast: tell the page to reload.
        Err(_) => Event::default().event("resync").data(""),
    });
    let statuses = tokio_stream::wrappers::WatchStream::from_changes(hub.status.subscribe())
        .map(|s| status_event(&s));
    let mut closing = hub.closing.subscribe();
    let mut ended = hub.ended.subscribe();
    let auth = state.auth.clone();
    let store = std::sync::Arc::new(state.db.session_store());
    let closed = async move {
        let shutdown = closing.wait_for(|c| *c);
        let signed_out = async {
            loop {
                match ended.recv().await {
                    Ok(id) if Some(id) == session_id => break,
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                    _ => {}
                }
            }
        };
        // Expired, removed (or signed out on another replica): checked
        // every few seconds.
        let lapsed = async {
            let mut tick = tokio::time::interval(RECHECK);
            tick.tick().await;
            loop {
                tick.tick().await;
                // Read afresh from the store: a session ended elsewhere (an
                // admin, another replica) is gone from it.
                let fresh = session
                    .as_ref()
                    .and_then(|s| s.id())
                    .map(|id| tower_sessions::Session::new(Some(id), store.clone(), None));
                if !auth.still_signed_in(&user, fresh.as_ref()).await {
                    break;
                }
            }
        };
        tokio::select! {
            _ = shutdown => {}
            _ = signed_out => {}
            _ = lapsed => {}
        }
    };
    let body = stream::once(async move { first })
        .chain(stream::select(changes, statuses))
        .take_until(closed)
        .map(move |e| {
            let _keep = &guard;
            Ok(e)
        });
    Ok(Sse::new(body).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The shortest time between two `resync`s this replica announces. A
/// first sync writes thousands of batches at a time, each write telling
/// every open table to reload and count afresh; through the gate, 100,000
/// batches written in five seconds make about six reloads per table, not
/// fifty.
pub const RESYNC_EVERY: Duration = Duration::from_secs(1);

/// What [`ResyncGate::admit`] decides for one resync.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Send it now.
    Now,
    /// Send one at this time: it stands for every resync asked until then.
    At(std::time::Instant),
    /// One is already due later, and covers this one.
    Folded,
}

/// At most one `resync` per [`RESYNC_EVERY`]: the first goes at once, and
/// those asked within the window after it become one, sent when the window
/// ends, so that every change is followed by a reload that reads it.
#[derive(Default)]
pub struct ResyncGate(std::sync::Mutex<GateState>);

#[derive(Default)]
struct GateState {
    last: Option<std::time::Instant>,
    due: bool,
}

impl ResyncGate {
    pub fn admit(&self, now: std::time::Instant) -> Admit {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if g.due {
            return Admit::Folded;
        }
        match g.last.map(|last| last + RESYNC_EVERY) {
            Some(next) if now < next => {
                g.due = true;
                Admit::At(next)
            }
            _ => {
                g.last = Some(now);
                Admit::Now
            }
        }
    }

    /// The resync [`Admit::At`] promised is going out now.
    pub fn sent(&self, now: std::time::Instant) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.due = false;
        g.last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn resyncs_within_a_window_become_one_sent_at_its_end() {
        let gate = ResyncGate::default();
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(gate.admit(t0), Admit::Now);
        assert_eq!(gate.admit(ms(100)), Admit::At(t0 + RESYNC_EVERY));
        assert_eq!(gate.admit(ms(500)), Admit::Folded);
        assert_eq!(gate.admit(ms(999)), Admit::Folded);
        // The one promised goes out; a resync asked right after waits for
        // the next window.
        gate.sent(ms(1000));
        assert_eq!(gate.admit(ms(1001)), Admit::At(ms(2000)));
        gate.sent(ms(2000));
        // After a quiet window, at once again.
        assert_eq!(gate.admit(ms(3500)), Admit::Now);
    }
}
