//! What the New batch page asks the server while it checks a file in the
//! browser: the price table, and a token count of the file's text sample
//! with the model's own encoding (the tokenizer tables are megabytes: they
//! stay on the server, and the file itself is not sent).

use leptos::prelude::*;

use super::AppError;
#[cfg(feature = "ssr")]
use super::{actor, state};
use batchboard_core::prices::PriceTable;
#[cfg(feature = "ssr")]
use batchboard_server::http::actor::Viewer;

pub use batchboard_core::dashboard::{TokenCount, MAX_SAMPLE_BYTES};

/// The price table cost estimates use.
#[server(endpoint = "pricing")]
pub async fn pricing() -> Result<PriceTable, AppError> {
    actor::<Viewer>().await?;
    Ok((*state()?.prices).clone())
}

/// Counts the tokens of a text sample as `model` would.
#[server(endpoint = "count_tokens")]
pub async fn count_tokens(model: String, sample: String) -> Result<TokenCount, AppError> {
    actor::<Viewer>().await?;
    if sample.len() > MAX_SAMPLE_BYTES {
        return Err(AppError::invalid(format!(
            "sample: {} bytes, at most {MAX_SAMPLE_BYTES}",
            sample.len()
        )));
    }
    let counted =
        tokio::task::spawn_blocking(move || batchboard_server::tokens::count(&model, &sample))
            .await?;
    Ok(TokenCount {
        tokens: counted.0,
        encoding: counted.1.to_string(),
    })
}
