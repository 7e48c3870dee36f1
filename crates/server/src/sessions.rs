//! Signed-in sessions as admins see them: listed (the Sessions page and
//! `batchboard user sessions NAME`) and ended one at a time. A session is
//! named by a random handle it got at sign-in, never by its id (the id is
//! the credential).

use tower_sessions::session::{Id, Record};

use batchboard_core::access::SessionInfo;

use crate::auth::{Auth, SessionAuth, SESSION_KEY};
use crate::store::{Db, DbError};

/// A live session's sign-in, if it is one.
fn signed_in(record: &Record) -> Option<SessionAuth> {
    serde_json::from_value(record.data.get(SESSION_KEY)?.clone()).ok()
}

fn info(sa: &SessionAuth, current: bool) -> SessionInfo {
    SessionInfo {
        handle: sa.handle.clone(),
        user: sa.name.clone(),
        address: sa.address.clone(),
        started_at: sa.signed_in_at,
        last_seen_at: sa.last_seen_at.max(sa.signed_in_at),
        current,
    }
}

/// The sessions that still stand (signed in, not past their lifetime, with
/// the account's current credential), most recently seen first; only
/// `user`'s when given. `current` is the asking session's id.
pub async fn list(
    db: &Db,
    auth: &Auth,
    current: Option<Id>,
    user: Option<&str>,
) -> Result<Vec<SessionInfo>, DbError> {
    let mut out: Vec<SessionInfo> = db
        .live_sessions()
        .await?
        .iter()
        .filter_map(|r| Some((r.id, signed_in(r)?)))
        .filter(|(_, sa)| user.is_none_or(|u| sa.name == u))
        .filter(|(_, sa)| sa.standing(auth).is_some())
        .map(|(id, sa)| info(&sa, Some(id) == current))
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.last_seen_at));
    Ok(out)
}

/// Ends the session named `handle`: returns its id and user, or `None`
/// when there is no such session (ended already, or never).
pub async fn end(db: &Db, handle: &str) -> Result<Option<(Id, String)>, DbError> {
    if handle.is_empty() {
        return Ok(None);
    }
    let found = db.live_sessions().await?.iter().find_map(|r| {
        signed_in(r)
            .filter(|sa| sa.handle == handle)
            .map(|sa| (r.id, sa.name))
    });
    if let Some((id, _)) = &found {
        db.end_session(id).await?;
    }
    Ok(found)
}
