//! Batchboard: a team dashboard for OpenAI's Batch API.
// Upstream errors carry the whole OpenAI error (message, type, code, param,
// request id, retry-after) by value; they are rare, so their size is fine.
#![allow(clippy::result_large_err)]
#![recursion_limit = "256"]

pub mod api;
pub mod app;
pub mod batch;
#[cfg(feature = "ssr")]
pub mod sandbox;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod upstream;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
