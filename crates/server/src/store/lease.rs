//! The right to poll an upstream: one replica at a time, per upstream.

use super::Db;

/// The lock id of the polling lease (any constant shared by all replicas).
const LEASE_KEY: i64 = 0x6261_7463_6862_6f61; // "batchboa"

/// The lock id of the upstream `name`'s lease: [`LEASE_KEY`] for the first
/// (as before there were several), mixed with the name's FNV-1a hash for
/// the others.
fn key_of(name: &str) -> i64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    if name.is_empty() {
        LEASE_KEY
    } else {
        LEASE_KEY ^ hash as i64
    }
}

/// The right to poll. SQLite: always held (one process per database file).
/// Postgres: a session advisory lock on a connection of its own.
pub enum Lease {
    Local,
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

impl Lease {
    /// The lease of the upstream `name` (`""`: the first).
    pub async fn try_acquire(db: &Db, name: &str) -> Option<Self> {
        match db {
            Db::Sqlite(_) => Some(Self::Local),
            Db::Postgres(pool) => {
                let mut conn = pool.acquire().await.ok()?;
                let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
                    .bind(key_of(name))
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
