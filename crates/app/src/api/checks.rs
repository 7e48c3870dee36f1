//! What the New batch page asks the server: the price table, and a token
//! count of the file's text sample with the model's own encoding while it
//! checks a file in the browser (the tokenizer tables are megabytes: they
//! stay on the server, and the file itself is not sent); and the refusal of
//! a form sent without JavaScript.

use leptos::prelude::*;

use super::AppError;
#[cfg(feature = "ssr")]
use super::{actor, state};
use batchboard_core::error::ErrorBody;
#[cfg(feature = "ssr")]
use batchboard_core::i18n::{Key, Msg};
pub use batchboard_core::prices::{PriceTable, PriceTables};
#[cfg(feature = "ssr")]
use batchboard_server::http::actor::Viewer;

pub use batchboard_core::dashboard::{TokenCount, MAX_SAMPLE_BYTES};

/// The price tables cost estimates use: the server's, and each upstream's
/// own.
#[server(endpoint = "pricing")]
pub async fn pricing() -> Result<PriceTables, AppError> {
    actor::<Viewer>().await?;
    let st = state()?;
    Ok(PriceTables {
        default: (*st.prices).clone(),
        upstreams: st
            .upstreams
            .all()
            .iter()
            .filter_map(|u| Some((u.name.clone(), (*u.prices.clone()?).clone())))
            .collect(),
    })
}

/// Counts the tokens of a text sample as `model` would.
#[server(endpoint = "count_tokens")]
pub async fn count_tokens(model: String, sample: String) -> Result<TokenCount, AppError> {
    let actor = actor::<Viewer>().await?;
    if sample.len() > MAX_SAMPLE_BYTES {
        return Err(AppError::invalid(
            Msg::new(Key::ServerSampleTooLarge)
                .arg("n", sample.len())
                .arg("max", MAX_SAMPLE_BYTES),
        ));
    }
    let busy = || {
        AppError::from(batchboard_core::error::ApiError::Busy(Msg::new(
            Key::ServerTokensBusy,
        )))
    };
    // One count at a time per user, and two in all.
    let _turn = batchboard_server::tokens::user_turn(&actor.user.name).ok_or_else(busy)?;
    let _permit = batchboard_server::tokens::COUNTING
        .try_acquire()
        .map_err(|_| busy())?;
    let counting =
        tokio::task::spawn_blocking(move || batchboard_server::tokens::count(&model, &sample));
    let counted = tokio::time::timeout(std::time::Duration::from_secs(10), counting)
        .await
        .map_err(|_| busy())??;
    Ok(TokenCount {
        tokens: counted.0,
        encoding: counted.1.to_string(),
    })
}

/// The refusal of the New batch form when it was sent without JavaScript
/// (the server kept it for the page, once); `None` otherwise.
#[server(endpoint = "form_refusal")]
pub async fn form_refusal() -> Result<Option<ErrorBody>, AppError> {
    // Any role: it is the caller's own session, and a viewer who opens the
    // page (it says they may not create) must not meet an error.
    actor::<Viewer>().await?;
    let parts = use_context::<axum::http::request::Parts>()
        .ok_or_else(|| AppError::internal("server function without its request".into()))?;
    Ok(batchboard_server::files::take_refusal(&parts).await)
}
