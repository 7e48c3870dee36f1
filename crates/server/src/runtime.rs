//! The async runtime the servers run on, and memory given back once they
//! go quiet.
//!
//! An allocator with a heap per thread (the binary's mimalloc) keeps what a
//! thread freed in that thread's heap until the thread calls into it again.
//! A runtime worker that parks after the last request of a burst keeps it
//! for as long as the server stays quiet: measured on an idle server (signed
//! in, one page, against a remote upstream), the two workers held 3.8 of its
//! 11 MiB of heap. So once every worker has been parked for a whole second
//! after some worked, every worker runs the binary's
//! [`Allocator::release_thread`] once.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, Runtime};

/// How the process gives memory back to the system: chosen by the binary,
/// which chooses the allocator.
#[derive(Clone, Copy)]
pub struct Allocator {
    /// Called every second from a thread of its own: gives back what was
    /// freed long enough ago (mimalloc: its arenas' free pages).
    pub every_second: fn(),
    /// Called on a thread: gives back everything its own heap holds freed.
    pub release_thread: fn(),
}

/// Stretches of work the workers have ended (each time one parks), and
/// how many are parked now: the runtime's activity, as the quiet check
/// sees it.
static PARKS: AtomicU64 = AtomicU64::new(0);
static PARKED: AtomicUsize = AtomicUsize::new(0);

/// A multi-threaded runtime; with `allocator`, a thread that runs its
/// `every_second` and, when the runtime goes quiet, a release round.
pub fn build(allocator: Option<Allocator>) -> std::io::Result<Runtime> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(|| {
            PARKED.fetch_add(1, Ordering::SeqCst);
            PARKS.fetch_add(1, Ordering::SeqCst);
        })
        .on_thread_unpark(|| {
            PARKED.fetch_sub(1, Ordering::SeqCst);
        })
        .build()?;
    if let Some(a) = allocator {
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("release".into())
            .spawn(move || watch(handle, a))?;
    }
    Ok(rt)
}

/// Quiet: every worker parked, and none has parked again (so none has
/// worked) for a whole second. A round follows when some worked since the
/// last one (start-up included).
fn watch(handle: Handle, a: Allocator) {
    let workers = handle.metrics().num_workers();
    let mut seen = PARKS.load(Ordering::SeqCst);
    let mut released = 0;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        (a.every_second)();
        let parks = PARKS.load(Ordering::SeqCst);
        let quiet = parks == seen && PARKED.load(Ordering::SeqCst) >= workers;
        seen = parks;
        if quiet && parks != released {
            round(&handle, workers, a.release_thread);
            // The round woke the workers: once they are parked again,
            // their parks are not activity.
            let since = Instant::now();
            while PARKED.load(Ordering::SeqCst) < workers
                && since.elapsed() < Duration::from_millis(100)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            released = PARKS.load(Ordering::SeqCst);
            seen = released;
        }
    }
}

/// Runs `release` once on each of the `workers` worker threads: one task
/// each, and each task waits (at most 100 ms, the runtime being quiet)
/// until all have started, so that no worker runs two of them.
fn round(handle: &Handle, workers: usize, release: fn()) {
    let started = Arc::new(AtomicUsize::new(0));
    let (done, wait) = std::sync::mpsc::channel::<()>();
    for _ in 0..workers {
        let started = started.clone();
        let done = done.clone();
        handle.spawn(async move {
            started.fetch_add(1, Ordering::SeqCst);
            let since = Instant::now();
            while started.load(Ordering::SeqCst) < workers
                && since.elapsed() < Duration::from_millis(100)
            {
                std::thread::yield_now();
            }
            release();
            drop(done);
        });
    }
    drop(done);
    // Every sender dropped: every task has run.
    let _ = wait.recv();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::thread::ThreadId;

    static RELEASED_ON: Mutex<Vec<ThreadId>> = Mutex::new(Vec::new());

    fn record() {
        if let Ok(mut on) = RELEASED_ON.lock() {
            on.push(std::thread::current().id());
        }
    }

    fn released_on() -> Vec<ThreadId> {
        RELEASED_ON.lock().map(|on| on.clone()).unwrap_or_default()
    }

    fn noop() {}

    /// One runtime in this test: the quiet check counts the parks of
    /// every runtime `build` made.
    #[test]
    fn a_quiet_runtime_releases_once_on_every_worker_and_then_rests() {
        let rt = build(Some(Allocator {
            every_second: noop,
            release_thread: record,
        }))
        .expect("runtime");
        let workers = rt.metrics().num_workers();
        // Some work, then quiet: within two ticks one round, on each
        // worker once.
        rt.block_on(async {
            let tasks: Vec<_> = (0..8)
                .map(|i| tokio::spawn(async move { vec![i; 1000].len() }))
                .collect();
            for t in tasks {
                t.await.expect("task");
            }
        });
        std::thread::sleep(Duration::from_millis(3500));
        let on = released_on();
        assert_eq!(on.len(), workers, "one release per worker: {on:?}");
        let mut distinct = on.clone();
        distinct.sort_by_key(|t| format!("{t:?}"));
        distinct.dedup();
        assert_eq!(distinct.len(), workers, "each on its own worker: {on:?}");
        // Its own round is not activity: no more rounds while quiet.
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(released_on().len(), workers, "no round without activity");
    }
}
