//! The session store (tower-sessions' SQL stores, on whichever backend is
//! in use), and the list of live sessions the admin page and
//! `batchboard user sessions` show.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use super::DbError;

/// The session store of whichever backend is in use (and its pool, for
/// [`SessionStore::save`]).
#[derive(Clone, Debug)]
pub enum Sessions {
    Sqlite(SqliteStore, sqlx::SqlitePool),
    Postgres(PostgresStore, sqlx::PgPool),
}

#[async_trait]
impl SessionStore for Sessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Self::Sqlite(s, _) => s.create(record).await,
            Self::Postgres(s, _) => s.create(record).await,
        }
    }

    /// Updates a session that exists, and only then: the stores' own save
    /// inserts a missing one, so a request still running when its session
    /// was ended (signed out, ended by an admin) would bring it back.
    /// Sessions are made by `create` (sign-in, a new id).
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data =
            rmp_serde::to_vec(record).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let backend = |e: sqlx::Error| session_store::Error::Backend(e.to_string());
        match self {
            // The stores' own tables (tower-sessions-sqlx-store's defaults).
            Self::Sqlite(_, p) => {
                sqlx::query("UPDATE tower_sessions SET data = $1, expiry_date = $2 WHERE id = $3")
                    .bind(data)
                    .bind(record.expiry_date)
                    .bind(record.id.to_string())
                    .execute(p)
                    .await
                    .map_err(backend)?;
            }
            Self::Postgres(_, p) => {
                sqlx::query(
                    r#"UPDATE "tower_sessions"."session" SET data = $1, expiry_date = $2 WHERE id = $3"#,
                )
                .bind(data)
                .bind(record.expiry_date)
                .bind(record.id.to_string())
                .execute(p)
                .await
                .map_err(backend)?;
            }
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Self::Sqlite(s, _) => s.load(id).await,
            Self::Postgres(s, _) => s.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Self::Sqlite(s, _) => s.delete(id).await,
            Self::Postgres(s, _) => s.delete(id).await,
        }
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

impl super::Db {
    /// Every session record not yet expired (read through the store, which
    /// decodes them). For the admin's list: a few hundred at most.
    pub async fn live_sessions(&self) -> Result<Vec<Record>, DbError> {
        let ids: Vec<(String,)> = match self {
            // The stores' own tables (tower-sessions-sqlx-store's defaults).
            Self::Sqlite(p) => {
                sqlx::query_as("SELECT id FROM tower_sessions")
                    .fetch_all(p)
                    .await?
            }
            Self::Postgres(p) => {
                sqlx::query_as(r#"SELECT id FROM "tower_sessions"."session""#)
                    .fetch_all(p)
                    .await?
            }
        };
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
    use std::collections::HashMap;

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
