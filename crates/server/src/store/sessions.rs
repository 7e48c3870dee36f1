//! The session store (tower-sessions' SQL stores, on whichever backend is
//! in use), and the list of live sessions the admin page and
//! `batchboard user sessions` show.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use super::{on_db, Db, DbError};

/// The session store of whichever backend is in use (and its pool, for
/// [`SessionStore::save`]).
#[derive(Clone, Debug)]
pub enum Sessions {
    Sqlite(SqliteStore, sqlx::SqlitePool),
    Postgres(PostgresStore, sqlx::PgPool),
}

/// Session records read in the last [`FRESH`], by id, on this server. A
/// session ended here is known at once; one ended on another replica is
/// seen within [`FRESH`] (a new password or an account's removal at once:
/// those are checked against the users file on every request).
static LOADED: std::sync::Mutex<Option<Loaded>> = std::sync::Mutex::new(None);
/// When each record was read, and what it was (`None`: no such session).
type Loaded = HashMap<Id, (Instant, Option<Record>)>;
const FRESH: Duration = Duration::from_secs(2);
/// Records remembered at most.
const LOADED_MAX: usize = 10_000;

fn cached(id: &Id) -> Option<Option<Record>> {
    let guard = LOADED.lock().ok()?;
    let (at, record) = guard.as_ref()?.get(id)?;
    if at.elapsed() >= FRESH {
        return None;
    }
    // Expired meanwhile: as the store would say.
    Some(
        record
            .clone()
            .filter(|r| r.expiry_date > time::OffsetDateTime::now_utc()),
    )
}

fn remember(id: &Id, record: Option<Record>) {
    if let Ok(mut guard) = LOADED.lock() {
        let map = guard.get_or_insert_with(HashMap::new);
        if map.len() >= LOADED_MAX {
            map.retain(|_, (at, _)| at.elapsed() < FRESH);
            if map.len() >= LOADED_MAX {
                map.clear();
            }
        }
        map.insert(*id, (Instant::now(), record));
    }
}

fn forget(id: &Id) {
    if let Ok(mut guard) = LOADED.lock() {
        if let Some(map) = guard.as_mut() {
            map.remove(id);
        }
    }
}

#[async_trait]
impl SessionStore for Sessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Self::Sqlite(s, _) => s.create(record).await?,
            Self::Postgres(s, _) => s.create(record).await?,
        }
        forget(&record.id);
        Ok(())
    }

    /// Updates a session that exists, and only then: the stores' own save
    /// inserts a missing one, so a request still running when its session
    /// was ended (signed out, ended by an admin) would bring it back.
    /// Sessions are made by `create` (sign-in, a new id).
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data =
            rmp_serde::to_vec(record).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let db = match self {
            Self::Sqlite(_, p) => Db::Sqlite(p.clone()),
            Self::Postgres(_, p) => Db::Postgres(p.clone()),
        };
        let sql = format!(
            "UPDATE {} SET data = $1, expiry_date = $2 WHERE id = $3",
            db.session_table()
        );
        on_db!(&db, p => {
            sqlx::query(&sql)
                .bind(data)
                .bind(record.expiry_date)
                .bind(record.id.to_string())
                .execute(p)
                .await
                .map_err(|e| session_store::Error::Backend(e.to_string()))?;
        });
        // Read afresh next time (the update may have found no session).
        forget(&record.id);
        Ok(())
    }

    /// Read through [`LOADED`]: a page view and the server functions and
    /// assets it brings read their session once, not each.
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        if let Some(hit) = cached(id) {
            return Ok(hit);
        }
        let found = match self {
            Self::Sqlite(s, _) => s.load(id).await?,
            Self::Postgres(s, _) => s.load(id).await?,
        };
        remember(id, found.clone());
        Ok(found)
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Self::Sqlite(s, _) => s.delete(id).await?,
            Self::Postgres(s, _) => s.delete(id).await?,
        }
        remember(id, None);
        Ok(())
    }
}

impl Sessions {
    /// Removes expired sessions every `period`, for as long as the server runs.
    pub fn spawn_cleanup(self, period: Duration) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let r = match &self {
                    Self::Sqlite(s, _) => s.delete_expired().await,
                    Self::Postgres(s, _) => s.delete_expired().await,
                };
                if let Err(e) = r {
                    tracing::warn!(error = %e, "could not delete expired sessions");
                }
            }
        });
    }
}

impl Db {
    /// The session store's table (tower-sessions-sqlx-store's default).
    fn session_table(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "tower_sessions",
            Db::Postgres(_) => r#""tower_sessions"."session""#,
        }
    }

    /// Every session record not yet expired (read through the store, which
    /// decodes them). For the admin's list: a few hundred at most.
    pub async fn live_sessions(&self) -> Result<Vec<Record>, DbError> {
        let sql = format!("SELECT id FROM {}", self.session_table());
        let ids: Vec<(String,)> = on_db!(self, p => sqlx::query_as(&sql).fetch_all(p).await?);
        let store = self.session_store();
        let mut out = Vec::with_capacity(ids.len());
        for (id,) in ids {
            let Ok(id) = Id::from_str(&id) else { continue };
            match store.load(&id).await {
                Ok(Some(r)) => out.push(r),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "a session record cannot be read"),
            }
        }
        Ok(out)
    }

    /// Ends session `id` (its next request finds none).
    pub async fn end_session(&self, id: &Id) -> Result<(), DbError> {
        self.session_store()
            .delete(id)
            .await
            .map_err(|e| DbError::Corrupt(format!("ending a session: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request still running when its session was ended saves it at its
    /// end: the session must stay ended (the store's own save re-inserted it).
    #[tokio::test]
    async fn an_ended_session_is_not_brought_back_by_a_late_save() {
        let dir = tempfile::tempdir().unwrap();
        let db = super::super::Db::open(None, dir.path()).await.unwrap();
        let store = db.session_store();
        let mut record = Record {
            id: Id::default(),
            data: HashMap::from([("auth".to_string(), serde_json::json!({"name": "vi"}))]),
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        store.create(&mut record).await.unwrap();
        assert!(store.load(&record.id).await.unwrap().is_some());
        // An update of a live session is kept.
        record.data.insert("x".into(), serde_json::json!(1));
        store.save(&record).await.unwrap();
        let loaded = store.load(&record.id).await.unwrap().unwrap();
        assert_eq!(loaded.data["x"], 1);
        assert_eq!(db.live_sessions().await.unwrap().len(), 1);
        // Ended; then the late save.
        db.end_session(&record.id).await.unwrap();
        store.save(&record).await.unwrap();
        assert!(store.load(&record.id).await.unwrap().is_none());
        assert!(db.live_sessions().await.unwrap().is_empty());
    }
}
