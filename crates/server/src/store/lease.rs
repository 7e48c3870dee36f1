//! The right to poll the upstream: one replica at a time.

use super::Db;

/// The lock id of the polling lease (any constant shared by all replicas).
const LEASE_KEY: i64 = 0x6261_7463_6862_6f61; // "batchboa"

/// The right to poll. SQLite: always held (one process per database file).
/// Postgres: a session advisory lock on a connection of its own.
pub enum Lease {
    Local,
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

impl Lease {
    pub async fn try_acquire(db: &Db) -> Option<Self> {
        match db {
            Db::Sqlite(_) => Some(Self::Local),
            Db::Postgres(pool) => {
                let mut conn = pool.acquire().await.ok()?;
                let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
                    .bind(LEASE_KEY)
                    .fetch_one(&mut *conn)
                    .await
                    .ok()?;
                // Without the lock the connection goes back to the pool.
                got.then_some(Self::Postgres(conn))
            }
        }
    }

    /// Still ours: the connection that holds the lock is alive.
    pub async fn alive(&mut self) -> bool {
        match self {
            Self::Local => true,
            Self::Postgres(conn) => sqlx::query("SELECT 1").execute(&mut **conn).await.is_ok(),
        }
    }
}
