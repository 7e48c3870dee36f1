//! Each batch's request counts over time, as the watcher saw them change.

use super::{on_db, Db, DbError};
use batchboard_core::progress::ProgressPoint;

/// At most this many points per batch are read back (a day of changes
/// every 30 s is under 3,000).
const MAX_POINTS: i64 = 5_000;

impl Db {
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
