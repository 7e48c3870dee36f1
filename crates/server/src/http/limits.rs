//! The server's own limits: how big a request body may be (per route, and
//! refused before reading when `Content-Length` says so), how long a client
//! may take over its headers, and the HTTP accept loop that enforces it.
//! Body read timeouts (silence mid-body) are a tower-http layer in the router;
//! the upload cap is a semaphore taken by the upload route.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use batchboard_core::error::ApiError;
use batchboard_core::i18n::{Key, Msg};
use batchboard_core::MAX_FILE_BYTES;

/// Server functions and forms: their arguments are small (the largest, a
/// token-count sample, is capped at 260 KiB).
pub const MAX_FORM_BYTES: u64 = 1024 * 1024;

/// A multipart upload: the file plus the form fields around it.
pub const UPLOAD_BODY_LIMIT: u64 = MAX_FILE_BYTES + 1024 * 1024;

/// A job's upload: its file (up to 2 GB) and the form fields.
pub const JOB_BODY_LIMIT: u64 = batchboard_core::jobs::MAX_JOB_BYTES + 1024 * 1024;

fn limit_for(method: &Method, path: &str) -> u64 {
    match (method == Method::POST, path) {
        (true, super::routes::CREATE_BATCH) => UPLOAD_BODY_LIMIT,
        (true, super::routes::CREATE_JOB) => JOB_BODY_LIMIT,
        (true, "/v1/files") => UPLOAD_BODY_LIMIT,
        _ => MAX_FORM_BYTES,
    }
}

/// Middleware: refuses a body declared too large before reading a byte of
/// it, and cuts one that turns out too large while it streams (the route
/// then sees a read error).
pub async fn bound_body(req: Request, next: Next) -> Response {
    let limit = limit_for(req.method(), req.uri().path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        let message = if limit == UPLOAD_BODY_LIMIT {
            Msg::new(Key::ServerUploadTooLarge).arg("max", MAX_FILE_BYTES)
        } else if limit == JOB_BODY_LIMIT {
            Msg::new(Key::ServerUploadTooLarge).arg("max", batchboard_core::jobs::MAX_JOB_BYTES)
        } else {
            Msg::new(Key::ServerRequestTooLarge).arg("max", limit)
        };
        return (
            [(header::CONNECTION, "close")],
            crate::http::HttpError::from(ApiError::TooLarge(message)),
        )
            .into_response();
    }
    let (parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, limit as usize);
    if limit > MAX_FORM_BYTES || parts.method == axum::http::Method::GET {
        return next
            .run(Request::from_parts(parts, axum::body::Body::new(limited)))
            .await;
    }
    // Small bodies (forms, server functions; sign-in answers them without
    // a session) arrive whole within a deadline: a body trickled in a byte
    // at a time must not hold a connection and a task for long.
    use http_body_util::BodyExt;
    match tokio::time::timeout(SMALL_BODY_DEADLINE, limited.collect()).await {
        Ok(Ok(collected)) => {
            let body = axum::body::Body::from(collected.to_bytes());
            next.run(Request::from_parts(parts, body)).await
        }
        // Too large (it said less than it sent) or broken off.
        Ok(Err(_)) => (
            [(header::CONNECTION, "close")],
            crate::http::HttpError::from(ApiError::TooLarge(
                Msg::new(Key::ServerRequestTooLarge).arg("max", limit),
            )),
        )
            .into_response(),
        Err(_) => (
            axum::http::StatusCode::REQUEST_TIMEOUT,
            [(header::CONNECTION, "close")],
        )
            .into_response(),
    }
}

/// How long a small request body (not an upload) may take to arrive whole.
const SMALL_BODY_DEADLINE: Duration = Duration::from_secs(10);

/// How the server holds connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// A new connection must send its first byte, and then its request
    /// headers, within this; or it is closed (slow or silent clients cannot
    /// hold connections open for free).
    pub header_timeout: Duration,
    /// Connections served at once; more wait in the listen queue.
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `shutdown` completes: HTTP/1 and 2, the
/// peer address as [`ConnectInfo`], connections held to [`ConnLimits`], and
/// HTTP/2 connections pinged every 30 s (closed when a ping goes unanswered
/// for 20 s). After `shutdown`, waits up to 10 s for open requests to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;

    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    let graceful = GracefulShutdown::new();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        // A free slot first, then the next connection: beyond the limit,
        // connections wait in the kernel's listen queue.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait, don't spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let activity = std::sync::Arc::new(Activity::default());
        let seen = activity.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let busy = Busy::start(seen.clone());
            let answer = tower::ServiceExt::oneshot(app.clone(), req);
            async move {
                // Busy until the whole response body is sent (an event
                // stream is a request in progress).
                answer
                    .await
                    .map(|resp| resp.map(|body| Body::new(Held { body, _busy: busy })))
            }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            // The header timeout starts once hyper knows the protocol, which
            // needs bytes: a connection that sends none is closed here.
            // (`peek` waits for a byte or the end, unlike `readable`, which
            // may report a silent socket ready.)
            if tokio::time::timeout(limits.header_timeout, protocol_known(&stream))
                .await
                .is_err()
            {
                tracing::debug!(%peer, "closed a connection that did not say its protocol in time");
                return;
            }
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            // Closed after `header_timeout` with no request in progress:
            // hyper keeps an idle HTTP/2 connection (and answers its pings)
            // for ever, so idle peers could hold every slot.
            tokio::select! {
                ended = watcher.watch(conn) => {
                    if let Err(e) = ended {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                }
                () = activity.idle_for(limits.header_timeout) => {
                    tracing::debug!(%peer, "closed an idle connection");
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still open after 10 s; stopping anyway");
    }
    Ok(())
}

/// HTTP/2's connection preface: while a connection's first bytes match it,
/// hyper cannot tell the protocol and waits for more, with no time limit.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Returns once the first bytes tell HTTP/1 from HTTP/2 (or the peer hung
/// up): a byte that leaves the preface, or the whole preface. The caller
/// bounds the wait, so a peer that sends nothing, or a slow part of the
/// preface, is closed instead of holding a connection slot.
async fn protocol_known(stream: &tokio::net::TcpStream) {
    let mut buf = [0u8; 24];
    loop {
        match stream.peek(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) if n >= H2_PREFACE.len() || buf[..n] != H2_PREFACE[..n] => return,
            // Part of the preface: `peek` would answer at once again.
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// A connection's requests in progress and when the last one ended.
#[derive(Default)]
struct Activity {
    open: std::sync::atomic::AtomicUsize,
    /// Milliseconds since [`Activity::epoch`] of the last request's end.
    last: std::sync::atomic::AtomicU64,
    epoch: std::sync::OnceLock<std::time::Instant>,
}

impl Activity {
    fn now_ms(&self) -> u64 {
        self.epoch
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_millis() as u64
    }

    /// Returns once no request has been in progress for `idle`.
    async fn idle_for(&self, idle: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        self.now_ms();
        loop {
            tokio::time::sleep(idle / 4).await;
            let quiet = self.now_ms().saturating_sub(self.last.load(Relaxed));
            if self.open.load(Relaxed) == 0 && quiet >= idle.as_millis() as u64 {
                return;
            }
        }
    }
}

/// One request in progress on a connection, until dropped.
struct Busy(std::sync::Arc<Activity>);

impl Busy {
    fn start(a: std::sync::Arc<Activity>) -> Self {
        a.open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(a)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.0.last.store(self.0.now_ms(), Relaxed);
        self.0.open.fetch_sub(1, Relaxed);
    }
}

/// A response body that keeps its request [`Busy`] until it is done.
struct Held {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for Held {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
