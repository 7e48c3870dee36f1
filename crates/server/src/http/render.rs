//! Page renders take turns: at most a few render at once (twice the cores by
//! default, `--max-renders`), the others wait in line, first come first
//! served.
//!
//! Why: a page is about a millisecond of CPU. With a hundred rendering at
//! once, the scheduler interleaves them and some finish far later than
//! others (at 100 connections the 99th percentile was three times the
//! median), and every render's garbage is alive at the same time, which the
//! allocator then keeps. Taking turns, each page waits its place in the
//! line and then renders without being crowded out: the slowest pages come
//! close to the median, and the memory a burst leaves behind is a few
//! pages', not a hundred.
//!
//! A render that waits on something else (an upstream, a large results
//! file) must not keep others out: a turn is given up after [`HOLD`] even
//! while its render goes on, and a page that has waited [`WAIT`] for a turn
//! renders without one.
//!
//! Once begun, a render runs to its end even when its client goes away (a
//! task of its own): dropped midway, its page's reactive owner was disposed
//! while tasks it had spawned for its resources still ran, and those
//! panicked on the disposed values ("called use_resolved_path outside a
//! <Router>", "Tried to access a reactive value that has already been
//! disposed"; the soak, whose load generator closes its connections every
//! 10 s, met one or two a run). A page that is still waiting for its turn
//! when its client leaves is simply not rendered.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use tracing::Instrument;

/// How long a render keeps its turn at most.
pub const HOLD: Duration = Duration::from_millis(250);

/// How long a page waits for a turn at most.
pub const WAIT: Duration = Duration::from_secs(1);

/// The turns: how many renders may run at once, and for how long.
#[derive(Debug)]
pub struct Turns {
    line: Arc<Semaphore>,
    hold: Duration,
    wait: Duration,
}

impl Turns {
    /// `n` renders at once; `None`: twice the CPU cores.
    pub fn new(n: Option<u32>) -> Arc<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let n = n.map_or(cores * 2, |n| n as usize).max(1);
        Self::with(n, HOLD, WAIT)
    }

    fn with(n: usize, hold: Duration, wait: Duration) -> Arc<Self> {
        Arc::new(Self {
            line: Arc::new(Semaphore::new(n)),
            hold,
            wait,
        })
    }
}

/// Middleware: runs the request in its turn (see the module's doc).
pub async fn take_turns(State(turns): State<Arc<Turns>>, req: Request, next: Next) -> Response {
    let mut turn = tokio::time::timeout(turns.wait, turns.line.clone().acquire_owned())
        .await
        .ok()
        .and_then(Result::ok);
    let hold = turns.hold;
    let render = async move {
        let render = next.run(req);
        tokio::pin!(render);
        let hold = tokio::time::sleep(hold);
        tokio::pin!(hold);
        loop {
            tokio::select! {
                response = &mut render => return response,
                () = &mut hold, if turn.is_some() => turn = None,
            }
        }
    };
    match tokio::spawn(render.in_current_span()).await {
        Ok(response) => response,
        // Raised again here, where the router's panic handler answers 500.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use std::time::Instant;
    use tower::ServiceExt;

    /// `/slow` takes a minute, `/fast` 100 ms.
    fn app(turns: Arc<Turns>) -> Router {
        Router::new()
            .route(
                "/slow",
                get(|| async { tokio::time::sleep(Duration::from_secs(60)).await }),
            )
            .route(
                "/fast",
                get(|| async { tokio::time::sleep(Duration::from_millis(100)).await }),
            )
            .route_layer(axum::middleware::from_fn_with_state(turns, take_turns))
    }

    async fn call(app: Router, path: &str) -> Duration {
        let start = Instant::now();
        let req = Request::get(path).body(Body::empty()).expect("request");
        let res = app.oneshot(req).await.expect("response");
        assert!(res.status().is_success(), "{path}: {}", res.status());
        start.elapsed()
    }

    #[tokio::test]
    async fn renders_wait_their_turn() {
        let turns = Turns::with(1, Duration::from_secs(30), Duration::from_secs(30));
        let first = tokio::spawn(call(app(turns.clone()), "/fast"));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = call(app(turns.clone()), "/fast").await;
        // The second waited for the first to end: 80 ms or more, then its own 100.
        assert!(second >= Duration::from_millis(180), "{second:?}");
        assert!(first.await.expect("first") < second);
    }

    #[tokio::test]
    async fn a_slow_render_gives_its_turn_up() {
        let hold = Duration::from_millis(300);
        let turns = Turns::with(1, hold, Duration::from_secs(30));
        let slow = tokio::spawn(call(app(turns.clone()), "/slow"));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let fast = call(app(turns.clone()), "/fast").await;
        // It waited until the slow render gave its turn up, not until its end.
        assert!(fast >= hold, "{fast:?}");
        assert!(fast < Duration::from_secs(30), "{fast:?}");
        assert!(!slow.is_finished());
        slow.abort();
    }

    #[tokio::test]
    async fn a_render_runs_to_its_end_when_its_client_leaves() {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let app = Router::new()
            .route(
                "/",
                get({
                    let done = done.clone();
                    move || async move {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        done.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                }),
            )
            .route_layer(axum::middleware::from_fn_with_state(
                Turns::new(Some(1)),
                take_turns,
            ));
        let req = Request::get("/").body(Body::empty()).expect("request");
        // The client gives up after 50 ms.
        let left = tokio::time::timeout(Duration::from_millis(50), app.oneshot(req)).await;
        assert!(left.is_err(), "the page came before the client left");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(done.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_page_renders_without_a_turn_after_waiting_its_longest() {
        let wait = Duration::from_millis(300);
        let turns = Turns::with(1, Duration::from_secs(60), wait);
        let slow = tokio::spawn(call(app(turns.clone()), "/slow"));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let fast = call(app(turns.clone()), "/fast").await;
        assert!(fast >= wait, "{fast:?}");
        assert!(fast < Duration::from_secs(30), "{fast:?}");
        slow.abort();
    }
}
