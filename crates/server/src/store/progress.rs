//! Each batch's request counts over time, as the watcher saw them change.

use super::{on_db, Db, DbError};
use batchboard_core::progress::ProgressPoint;
use batchboard_core::Batch;

/// At most this many points per batch are read back (a day of changes
/// every 30 s is under 3,000).
const MAX_POINTS: i64 = 5_000;

impl Db {
    /// Records `b`'s counts at `at`, unless they are the last ones recorded.
    pub async fn record_progress(&self, b: &Batch, at: i64) -> Result<(), DbError> {
        let c = &b.request_counts;
        let now = (c.completed as i64, c.failed as i64, c.total as i64);
        on_db!(self, p => {
            let last: Option<(i64, i64, i64)> = sqlx::query_as(
                "SELECT completed, failed, total FROM batch_progress WHERE batch_id = $1 \
                 ORDER BY at DESC LIMIT 1",
            )
            .bind(&b.id)
            .fetch_optional(p)
            .await?;
            if last != Some(now) {
                sqlx::query(
                    "INSERT INTO batch_progress (batch_id, at, completed, failed, total) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (batch_id, at) DO UPDATE \
                     SET completed = $3, failed = $4, total = $5",
                )
                .bind(&b.id)
                .bind(at)
                .bind(now.0)
                .bind(now.1)
                .bind(now.2)
                .execute(p)
                .await?;
            }
        });
        Ok(())
    }

    /// The recorded counts of batch `id`, oldest first.
    pub async fn progress(&self, id: &str) -> Result<Vec<ProgressPoint>, DbError> {
        let rows: Vec<(i64, i64, i64, i64)> = on_db!(self, p => {
            sqlx::query_as(
                "SELECT at, completed, failed, total FROM (SELECT at, completed, failed, total \
                 FROM batch_progress WHERE batch_id = $1 ORDER BY at DESC LIMIT $2) AS recent \
                 ORDER BY at",
            )
            .bind(id)
            .bind(MAX_POINTS)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(at, completed, failed, total)| ProgressPoint {
                at,
                completed: completed.max(0) as u64,
                failed: failed.max(0) as u64,
                total: total.max(0) as u64,
            })
            .collect())
    }

    /// Forgets the counts of a batch dropped from the index.
    pub async fn forget_progress(&self, id: &str) -> Result<(), DbError> {
        on_db!(self, p => {
            sqlx::query("DELETE FROM batch_progress WHERE batch_id = $1")
                .bind(id)
                .execute(p)
                .await?;
        });
        Ok(())
    }
}
