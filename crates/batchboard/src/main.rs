//! The `batchboard` binary: the server with the app's pages mounted.

use batchboard_server::Pages;

#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_t` values (mimalloc.h, v3; the Rust bindings
/// name neither).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Gives freed memory back to the system at once, and commits arenas
/// only as they fill: an idle server then holds what it uses (28 MiB here,
/// 77 MiB with mimalloc's defaults), at no measurable cost in pages/s.
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
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
        if unset("MIMALLOC_ARENA_EAGER_COMMIT") {
            libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        }
    }
}

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00102")]
static ALLOCATOR_OPTIONS: extern "C" fn() = allocator_options;

fn main() -> std::process::ExitCode {
    #[cfg(not(target_os = "linux"))]
    allocator_options();
    batchboard_server::main(Pages {
        routes: || leptos_axum::generate_route_list(batchboard_app::App),
        shell: batchboard_app::shell,
    })
}
