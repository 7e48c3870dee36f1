//! The async runtime the servers run on, and memory given back once they
//! go quiet.
//!
//! An allocator with a heap per thread (the binary's mimalloc) keeps what a
//! thread freed in that thread's heap until the thread calls into it again.
//! A runtime worker that parks after the last request of a burst keeps it
//! for as long as the server stays quiet: measured on an idle server (signed
//! in, one page, against a remote upstream), the two workers held 3.8 of its
//! 11 MiB of heap. So once no worker has woken for a second after some did,
//! every worker runs the binary's [`Allocator::release_thread`] once.

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

/// Worker wake-ups so far: the runtime's activity, as the quiet check sees it.
static WAKES: AtomicU64 = AtomicU64::new(0);

/// A multi-threaded runtime; with `allocator`, a thread that runs its
/// `every_second` and, when the runtime goes quiet, a release round.
pub fn build(allocator: Option<Allocator>) -> std::io::Result<Runtime> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_unpark(|| {
            WAKES.fetch_add(1, Ordering::Relaxed);
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

fn watch(handle: Handle, a: Allocator) {
    let workers = handle.metrics().num_workers();
    let mut seen = WAKES.load(Ordering::Relaxed);
    let mut released = seen;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        (a.every_second)();
        let now = WAKES.load(Ordering::Relaxed);
        let quiet = now == seen;
        seen = now;
        if quiet && now != released {
            round(&handle, workers, a.release_thread);
            // The round's own wake-ups are not activity.
            released = WAKES.load(Ordering::Relaxed);
            seen = released;
        }
    }
}

/// Runs `release` once on each of the `workers` worker threads: one task
/// each, and each task waits (at most 20 ms, the runtime being quiet) until
/// all have started, so that no worker runs two of them.
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
                && since.elapsed() < Duration::from_millis(20)
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
