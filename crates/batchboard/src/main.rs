//! The `batchboard` binary: the server with the app's pages mounted.

use batchboard_server::Pages;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    batchboard_server::main(Pages {
        routes: || leptos_axum::generate_route_list(batchboard_app::App),
        shell: batchboard_app::shell,
    })
}
