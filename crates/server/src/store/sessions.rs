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

/// The session store of whichever backend is in use.
#[derive(Clone, Debug)]
pub enum Sessions {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

#[async_trait]
impl SessionStore for Sessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Self::Sqlite(s) => s.create(record).await,
            Self::Postgres(s) => s.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Self::Sqlite(s) => s.save(record).await,
            Self::Postgres(s) => s.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Self::Sqlite(s) => s.load(id).await,
            Self::Postgres(s) => s.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Self::Sqlite(s) => s.delete(id).await,
            Self::Postgres(s) => s.delete(id).await,
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
                    Self::Sqlite(s) => s.delete_expired().await,
                    Self::Postgres(s) => s.delete_expired().await,
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
