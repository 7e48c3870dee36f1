//! Who is signed in and what they may do, as both targets see it, and the
//! server functions of the audit log.

use leptos::prelude::*;

use super::AppError;
#[cfg(feature = "ssr")]
use batchboard_core::i18n::{Key, Msg};

pub use batchboard_core::access::*;

/// The signed-in user, or `None`: the one server function that answers
/// without a session (the sign-in page needs it).
#[server(endpoint = "whoami")]
pub async fn whoami() -> Result<Option<CurrentUser>, AppError> {
    Ok(super::current_user().await)
}

/// The audit log, newest first (admins only).
#[server(endpoint = "audit_log")]
pub async fn audit_log(
    before: Option<i64>,
    action: Option<String>,
    limit: u32,
) -> Result<AuditPage, AppError> {
    super::actor::<batchboard_server::http::actor::Admin>().await?;
    if !(1..=500).contains(&limit) {
        return Err(AppError::invalid(Msg::new(Key::ServerAuditLimit)));
    }
    let action = action.filter(|a| !a.is_empty());
    if let Some(a) = &action {
        if !AUDIT_ACTIONS.contains(&a.as_str()) {
            return Err(AppError::invalid(
                Msg::new(Key::ServerAuditActionUnknown).arg("action", a),
            ));
        }
    }
    let db = &super::state()?.db;
    let mut entries = db.audit_page(before, action.as_deref(), limit + 1).await?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    Ok(AuditPage {
        next_before: more.then(|| entries.last().map(|e| e.id)).flatten(),
        entries,
    })
}

/// The sessions signed in now, most recently seen first (admins only).
#[server(endpoint = "sessions")]
pub async fn list_sessions() -> Result<Vec<SessionInfo>, AppError> {
    let actor = super::actor::<batchboard_server::http::actor::Admin>().await?;
    let st = super::state()?;
    Ok(batchboard_server::sessions::list(&st.db, &st.auth, actor.session, None).await?)
}

/// Ends the session named `handle` at its next request, and its live
/// connections on this server now (admins only; audited).
#[server(endpoint = "end_session")]
pub async fn end_session(handle: String) -> Result<(), AppError> {
    let actor = super::actor::<batchboard_server::http::actor::Admin>().await?;
    let st = super::state()?;
    match batchboard_server::sessions::end(&st.db, &handle).await? {
        Some((id, user)) => {
            st.hub.end_session(id);
            actor.audit("end_session", Some(&user), None).await;
            Ok(())
        }
        None => Err(AppError::invalid(Msg::new(Key::ServerSessionGone))),
    }
}
