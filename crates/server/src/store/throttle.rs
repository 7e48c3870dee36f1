//! The sign-in throttle's counters in Postgres, so that every replica
//! counts the same attempts (guesses spread over replicas are not each
//! allowed their own limit). With SQLite there is one replica and the
//! throttle counts in memory.

use std::time::Duration;

use super::{Db, DbError};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Db {
    /// Whether counters are shared here (Postgres).
    pub fn shares_throttle(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    /// Takes an attempt against every `(key, limit)` in one transaction,
    /// unless a key has had `limit` attempts in the last `window`: then
    /// nothing is taken and the answer is the seconds to wait. The keys
    /// are locked first (in order), so concurrent attempts on any replica
    /// are counted one after the other.
    pub async fn throttle_reserve(
        &self,
        keys: &[(String, u32)],
        window: Duration,
    ) -> Result<Result<(), u64>, DbError> {
        let Db::Postgres(pool) = self else {
            return Ok(Ok(()));
        };
        let (now, window) = (now_ms(), window.as_millis() as i64);
        let mut sorted: Vec<&(String, u32)> = keys.iter().collect();
        sorted.sort();
        let mut tx = pool.begin().await?;
        for (key, _) in &sorted {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))")
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM sign_in_attempts WHERE at <= $1")
            .bind(now - window)
            .execute(&mut *tx)
            .await?;
        let mut wait = None;
        for (key, limit) in &sorted {
            // The `limit`-th newest attempt: while it is in the window the
            // key is full, until it leaves.
            let nth: Option<(i64,)> = sqlx::query_as(
                "SELECT at FROM sign_in_attempts WHERE key = $1 ORDER BY at DESC OFFSET $2 LIMIT 1",
            )
            .bind(key)
            .bind(i64::from(limit.saturating_sub(1)))
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((at,)) = nth {
                let secs = ((window - (now - at)).max(1000) / 1000) as u64;
                wait = Some(wait.map_or(secs, |w: u64| w.max(secs)));
            }
        }
        if let Some(w) = wait {
            tx.rollback().await?;
            return Ok(Err(w));
        }
        for (key, _) in &sorted {
            sqlx::query("INSERT INTO sign_in_attempts (key, at) VALUES ($1, $2)")
                .bind(key)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Takes back `key`'s newest attempt.
    pub async fn throttle_give_back(&self, key: &str) -> Result<(), DbError> {
        let Db::Postgres(pool) = self else {
            return Ok(());
        };
        sqlx::query(
            "DELETE FROM sign_in_attempts WHERE ctid IN \
             (SELECT ctid FROM sign_in_attempts WHERE key = $1 ORDER BY at DESC LIMIT 1)",
        )
        .bind(key)
        .execute(pool)
        .await?;
        Ok(())
    }

    /// The attempt succeeded: `account` starts afresh, and `source` gets
    /// its attempt back.
    pub async fn throttle_forgive(&self, account: &str, source: &str) -> Result<(), DbError> {
        let Db::Postgres(pool) = self else {
            return Ok(());
        };
        sqlx::query("DELETE FROM sign_in_attempts WHERE key = $1")
            .bind(account)
            .execute(pool)
            .await?;
        self.throttle_give_back(source).await
    }
}
