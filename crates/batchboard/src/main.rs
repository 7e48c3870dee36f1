//! The `batchboard` binary: the server with the app's pages mounted.

use batchboard_server::Pages;

#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_t` values (mimalloc.h, v3; the Rust bindings
/// name neither).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory for a second before giving it back to the system
/// (see [`purge_freed`]), and commits arenas only as they fill.
///
/// Giving it back at once (a purge delay of 0, which an earlier machine
/// measured as free) cost a third of the pages/s on the 2-core VM of
/// 2026-12-01: every page's buffers were unmapped as they were freed and
/// faulted in again for the next page (`perf`: TLB shootdowns, page
/// faults, `clear_page`; a third of the server's time in the kernel).
/// With the delay: 1,024 → 1,500 pages/s at 100 connections, p99 143 →
/// 86 ms; an idle server held 40 MiB instead of 34 (`BENCH_ONLY=startup`;
/// 32 since the release build is optimised as a whole, fat LTO).
///
/// Run as a constructor, after mimalloc's own start-up (priority 101) and
/// before anything allocates: set from `main`, after the runtime's first
/// allocations, the first arena had already been committed eagerly and an
/// idle server held 44 MiB.
extern "C" fn allocator_options() {
    // mimalloc's own environment variables still decide where set.
    let unset = |name: &str| std::env::var_os(name).is_none();
    // SAFETY: setting options is allowed at any time.
    unsafe {
        if unset("MIMALLOC_PURGE_DELAY") {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
        }
        if unset("MIMALLOC_ARENA_EAGER_COMMIT") {
            libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        }
    }
}

const PURGE_DELAY_MS: std::ffi::c_long = 1000;

/// mimalloc purges only when something calls into it: every second, from a
/// thread of its own, memory freed over a second ago goes back to the
/// system (without this an idle server kept what its last burst of pages
/// used).
#[cfg(not(feature = "system-alloc"))]
fn purge_freed() {
    // SAFETY: collects (not forced: only what is past the purge delay);
    // allowed at any time, from any thread.
    unsafe { libmimalloc_sys::mi_collect(false) };
}

/// Everything this thread's heap holds freed goes back at once: its empty
/// pages, and those other threads freed into it (run on each runtime worker
/// once the server goes quiet; see `batchboard_server::runtime`). Measured
/// by hand on the release build, signed in, one page, 6 s later, against a
/// remote upstream: the heap 11.1–11.7 → 5.6–7.0 MiB.
#[cfg(not(feature = "system-alloc"))]
fn release_thread() {
    // SAFETY: a forced collect of the calling thread's own heap; allowed
    // at any time.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00102")]
static ALLOCATOR_OPTIONS: extern "C" fn() = allocator_options;

fn main() -> std::process::ExitCode {
    #[cfg(not(target_os = "linux"))]
    allocator_options();
    #[cfg(not(feature = "system-alloc"))]
    let allocator = Some(batchboard_server::runtime::Allocator {
        every_second: purge_freed,
        release_thread,
    });
    #[cfg(feature = "system-alloc")]
    let allocator = None;
    batchboard_server::main(
        Pages {
            routes: || leptos_axum::generate_route_list(batchboard_app::App),
            shell: batchboard_app::shell,
        },
        allocator,
    )
}
