//! Server functions of the Tokens page: a user's personal access tokens
//! (an admin sees and revokes everyone's).

use leptos::prelude::*;

use super::AppError;
#[cfg(feature = "ssr")]
use super::{actor, state};
pub use batchboard_core::access::{NewToken, Role, TokenInfo};
#[cfg(feature = "ssr")]
use batchboard_server::http::actor::Viewer;

/// The caller's tokens (an admin: everyone's), newest first.
#[server(endpoint = "list_tokens")]
pub async fn list_tokens() -> Result<Vec<TokenInfo>, AppError> {
    let actor = actor::<Viewer>().await?;
    let st = state()?;
    let whose = (!actor.user.may(Role::Admin)).then_some(actor.user.name.as_str());
    let rows = st.db.tokens(whose).await?;
    Ok(rows
        .iter()
        .map(batchboard_server::access_tokens::info)
        .collect())
}

/// Makes a token for the caller; its secret is in the answer, once.
#[server(endpoint = "create_token")]
pub async fn create_token(
    name: String,
    role: Role,
    #[server(default)] expires_days: Option<u32>,
    #[server(default)] upstream: Option<String>,
) -> Result<NewToken, AppError> {
    let actor = actor::<Viewer>().await?;
    let st = state()?;
    if let Some(u) = upstream
        .as_deref()
        .filter(|u| !u.is_empty() && *u != "default")
    {
        if st.upstreams.named(u).is_none() {
            return Err(batchboard_core::error::ApiError::Invalid(
                batchboard_core::i18n::Msg::new(batchboard_core::i18n::Key::ProblemUnknownUpstream)
                    .arg("name", u),
            )
            .into());
        }
    }
    let want = batchboard_server::access_tokens::Wanted {
        name: &name,
        role,
        days: expires_days,
        upstream: upstream.as_deref(),
    };
    let made =
        batchboard_server::access_tokens::issue(&st.db, &actor.user.name, actor.user.role, want)
            .await?;
    actor.audit("create_token", Some(&made.info.id), None).await;
    Ok(made)
}

/// Revokes one of the caller's tokens (an admin: anyone's); it stops at once.
#[server(endpoint = "revoke_token")]
pub async fn revoke_token(id: String) -> Result<(), AppError> {
    let actor = actor::<Viewer>().await?;
    let st = state()?;
    let whose = (!actor.user.may(Role::Admin)).then_some(actor.user.name.as_str());
    let done = st.db.revoke_token(&id, whose).await?;
    if !done {
        return Err(batchboard_core::error::ApiError::NotFound(
            batchboard_core::i18n::Msg::new(batchboard_core::i18n::Key::ServerTokenNotFound)
                .arg("id", &id),
        )
        .into());
    }
    actor.audit("revoke_token", Some(&id), None).await;
    Ok(())
}
