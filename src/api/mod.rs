//! Server functions: the browser's only way to reach the upstream. They run on
//! the server, which alone holds the API key.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Which upstream the dashboard talks to, as the browser may know it: the
/// base URL, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpstreamInfo {
    /// The built-in sandbox (no key and no upstream URL configured).
    Sandbox,
    /// An OpenAI-compatible API at this base URL.
    Remote { base_url: String },
}

/// The result of asking the upstream whether it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reachability {
    pub ok: bool,
    /// What happened, in words a user can act on.
    pub detail: String,
    pub latency_ms: u64,
}

#[server(endpoint = "upstream_info")]
pub async fn get_upstream_info() -> Result<UpstreamInfo, ServerFnError> {
    let state = crate::server::state::AppState::from_context()?;
    Ok(state.upstream.info())
}

#[server(endpoint = "check_upstream")]
pub async fn check_upstream() -> Result<Reachability, ServerFnError> {
    let state = crate::server::state::AppState::from_context()?;
    Ok(state.upstream.probe().await)
}
