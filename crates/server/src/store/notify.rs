//! Telling the other replicas that a batch changed: Postgres `NOTIFY` and
//! `LISTEN` on one channel. On SQLite there are no other replicas.

use sqlx::postgres::{PgListener, PgPool};

use super::{Db, DbError};
use batchboard_core::dashboard::Change;

/// The channel changed batch ids are announced on.
const CHANNEL: &str = "batchboard_batches";

impl Db {
    /// Announces that batch `id` changed, and how (`id`, a tab, the
    /// change). `false`: there is no one to tell (SQLite), so the caller
    /// tells its own viewers directly.
    pub async fn notify_change(&self, id: &str, change: Change) -> Result<bool, DbError> {
        match self {
            Db::Postgres(pool) => {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(format!("{id}\t{}", change.as_str()))
                    .execute(pool)
                    .await?;
                Ok(true)
            }
            Db::Sqlite(_) => Ok(false),
        }
    }
}

impl Db {
    /// Announces changes no single batch event says (many batches at once,
    /// a batch gone from the index): every replica's viewers reload. `false`: SQLite, no one else to tell.
    pub async fn notify_resync(&self) -> Result<bool, DbError> {
        match self {
            Db::Postgres(pool) => {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(RESYNC)
                    .execute(pool)
                    .await?;
                Ok(true)
            }
            Db::Sqlite(_) => Ok(false),
        }
    }
}

/// The payload that stands for "reload": not a batch id (ids have no `*`).
pub const RESYNC: &str = "*resync";

/// Hears the ids every replica announces.
pub struct ChangeListener(PgListener);

impl ChangeListener {
    pub async fn connect(pool: &PgPool) -> Result<Self, DbError> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Self(listener))
    }

    /// The next changed batch id and what changed (unknown from a replica
    /// that does not say); `None` when the connection was lost and re-made
    /// (announcements in between are gone).
    pub async fn next(&mut self) -> Result<Option<(String, Change)>, DbError> {
        Ok(self.0.try_recv().await?.map(|n| {
            let payload = n.payload();
            match payload.split_once('\t') {
                Some((id, change)) => (id.to_owned(), Change::parse(change)),
                None => (payload.to_owned(), Change::Unknown),
            }
        }))
    }
}
