//! Telling the other replicas that a batch changed: Postgres `NOTIFY` and
//! `LISTEN` on one channel. On SQLite there are no other replicas.

use sqlx::postgres::{PgListener, PgPool};

use super::{Db, DbError};

/// The channel changed batch ids are announced on.
const CHANNEL: &str = "batchboard_batches";

impl Db {
    /// Announces that batch `id` changed. `false`: there is no one to tell
    /// (SQLite), so the caller tells its own viewers directly.
    pub async fn notify_change(&self, id: &str) -> Result<bool, DbError> {
        match self {
            Db::Postgres(pool) => {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(id)
                    .execute(pool)
                    .await?;
                Ok(true)
            }
            Db::Sqlite(_) => Ok(false),
        }
    }
}

/// Hears the ids every replica announces.
pub struct ChangeListener(PgListener);

impl ChangeListener {
    pub async fn connect(pool: &PgPool) -> Result<Self, DbError> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Self(listener))
    }

    /// The next changed batch id; `None` when the connection was lost and
    /// re-made (announcements in between are gone).
    pub async fn next(&mut self) -> Result<Option<String>, DbError> {
        Ok(self.0.try_recv().await?.map(|n| n.payload().to_owned()))
    }
}
