//! Jobs and their parts (see `services::jobs`): every state change is one
//! statement or one transaction, and the changes the scheduler makes are
//! compare-and-set on the part's state, so a crash between two of them
//! leaves a state the next round can resume from.

use super::{on_db, Db, DbError};

const JOB_COLUMNS: &str = "id, upstream, endpoint, model, completion_window, metadata, \
     max_attempts, filename, requests, tokens, created_by, created_at, status, ended_at";
const PART_COLUMNS: &str = "job_id, part, attempt, retry_of, origin, first_line, last_line, \
     requests, tokens, input_file_id, state, not_before, submitting_at, batch_id, waits, ok, \
     failed, retried, error";

/// A job as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    /// The upstream's name (`""`: the first).
    pub upstream: String,
    pub endpoint: String,
    pub model: Option<String>,
    pub completion_window: String,
    /// JSON object: the form's metadata pairs and the creator.
    pub metadata: String,
    pub max_attempts: i64,
    pub filename: String,
    pub requests: i64,
    pub tokens: i64,
    pub created_by: String,
    pub created_at: i64,
    pub status: String,
    pub ended_at: Option<i64>,
}

/// One part as stored.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct PartRow {
    pub job_id: String,
    pub part: i64,
    pub attempt: i64,
    pub retry_of: Option<i64>,
    pub origin: i64,
    pub first_line: i64,
    pub last_line: i64,
    pub requests: i64,
    pub tokens: i64,
    pub input_file_id: String,
    pub state: String,
    pub not_before: i64,
    pub submitting_at: Option<i64>,
    pub batch_id: Option<String>,
    pub waits: i64,
    pub ok: i64,
    pub failed: i64,
    pub retried: i64,
    pub error: Option<String>,
}

/// How a part that ran ended.
#[derive(Debug, Clone, Default)]
pub struct PartEnd {
    /// `done`, `failed` or `cancelled`.
    pub state: &'static str,
    pub ok: i64,
    pub failed: i64,
    pub retried: i64,
    pub error: Option<String>,
}

macro_rules! insert_part {
    ($conn:expr, $p:expr) => {
        sqlx::query(&format!(
            "INSERT INTO job_parts ({PART_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        ))
        .bind(&$p.job_id)
        .bind($p.part)
        .bind($p.attempt)
        .bind($p.retry_of)
        .bind($p.origin)
        .bind($p.first_line)
        .bind($p.last_line)
        .bind($p.requests)
        .bind($p.tokens)
        .bind(&$p.input_file_id)
        .bind(&$p.state)
        .bind($p.not_before)
        .bind($p.submitting_at)
        .bind(&$p.batch_id)
        .bind($p.waits)
        .bind($p.ok)
        .bind($p.failed)
        .bind($p.retried)
        .bind(&$p.error)
        .execute(&mut *$conn)
        .await?
    };
}

impl Db {
    /// A new job with all its parts, at once or not at all.
    pub async fn insert_job(&self, job: &JobRow, parts: &[PartRow]) -> Result<(), DbError> {
        on_db!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query(&format!(
                "INSERT INTO jobs ({JOB_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            ))
            .bind(&job.id)
            .bind(&job.upstream)
            .bind(&job.endpoint)
            .bind(&job.model)
            .bind(&job.completion_window)
            .bind(&job.metadata)
            .bind(job.max_attempts)
            .bind(&job.filename)
            .bind(job.requests)
            .bind(job.tokens)
            .bind(&job.created_by)
            .bind(job.created_at)
            .bind(&job.status)
            .bind(job.ended_at)
            .execute(&mut *tx)
            .await?;
            for part in parts {
                insert_part!(tx, part);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The newest jobs first.
    pub async fn jobs(&self, limit: i64) -> Result<Vec<JobRow>, DbError> {
        Ok(on_db!(self, p => {
            sqlx::query_as(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at DESC, id DESC LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(p)
            .await?
        }))
    }

    pub async fn job(&self, id: &str) -> Result<Option<JobRow>, DbError> {
        Ok(on_db!(self, p => {
            sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await?
        }))
    }

    /// Jobs on the upstream `name` that still have work to schedule.
    pub async fn active_jobs(&self, name: &str) -> Result<Vec<JobRow>, DbError> {
        Ok(on_db!(self, p => {
            sqlx::query_as(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE upstream = $1 \
                 AND status IN ('running', 'cancelling') ORDER BY created_at, id"
            ))
            .bind(name)
            .fetch_all(p)
            .await?
        }))
    }

    /// The parts of job `job`, by number.
    pub async fn parts(&self, job: &str) -> Result<Vec<PartRow>, DbError> {
        Ok(on_db!(self, p => {
            sqlx::query_as(&format!(
                "SELECT {PART_COLUMNS} FROM job_parts WHERE job_id = $1 ORDER BY part"
            ))
            .bind(job)
            .fetch_all(p)
            .await?
        }))
    }

    /// Input tokens of the parts on `upstream` for `model` that are
    /// submitted and not yet ended.
    pub async fn enqueued_tokens(&self, upstream: &str, model: &str) -> Result<i64, DbError> {
        let (n,): (Option<i64>,) = on_db!(self, p => {
            sqlx::query_as(
                "SELECT CAST(SUM(job_parts.tokens) AS BIGINT) FROM job_parts \
                 JOIN jobs ON jobs.id = job_parts.job_id \
                 WHERE jobs.upstream = $1 AND jobs.model = $2 \
                 AND job_parts.state IN ('submitting', 'running')",
            )
            .bind(upstream)
            .bind(model)
            .fetch_one(p)
            .await?
        });
        Ok(n.unwrap_or(0))
    }

    /// Moves a part from state `from` to `to` (with the time it was
    /// submitted, for `submitting`); `false` if it was no longer in `from`.
    pub async fn move_part(
        &self,
        job: &str,
        part: i64,
        from: &str,
        to: &str,
        submitting_at: Option<i64>,
    ) -> Result<bool, DbError> {
        let done = on_db!(self, p => {
            sqlx::query(
                "UPDATE job_parts SET state = $1, submitting_at = COALESCE($2, submitting_at) \
                 WHERE job_id = $3 AND part = $4 AND state = $5",
            )
            .bind(to)
            .bind(submitting_at)
            .bind(job)
            .bind(part)
            .bind(from)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// A submitted part's batch: it runs.
    pub async fn part_running(&self, job: &str, part: i64, batch: &str) -> Result<(), DbError> {
        on_db!(self, p => {
            sqlx::query(
                "UPDATE job_parts SET state = 'running', batch_id = $1 \
                 WHERE job_id = $2 AND part = $3 AND state IN ('submitting', 'running')",
            )
            .bind(batch)
            .bind(job)
            .bind(part)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// A part back in the queue until `not_before`, one wait more if it
    /// waited for the enqueued-token limit (not an attempt).
    pub async fn requeue_part(
        &self,
        job: &str,
        part: i64,
        not_before: i64,
        waited: bool,
    ) -> Result<(), DbError> {
        on_db!(self, p => {
            sqlx::query(
                "UPDATE job_parts SET state = 'queued', not_before = $1, waits = waits + $2 \
                 WHERE job_id = $3 AND part = $4 AND state IN ('submitting', 'running')",
            )
            .bind(not_before)
            .bind(i64::from(waited))
            .bind(job)
            .bind(part)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// A part that ran (or was refused) has ended, with the part that retries its failures
    /// (if any) in the same transaction: never one without the other.
    pub async fn end_part(
        &self,
        job: &str,
        part: i64,
        end: &PartEnd,
        retry: Option<&PartRow>,
    ) -> Result<(), DbError> {
        on_db!(self, p => {
            let mut tx = p.begin().await?;
            let changed = sqlx::query(
                "UPDATE job_parts SET state = $1, ok = $2, failed = $3, retried = $4, error = $5 \
                 WHERE job_id = $6 AND part = $7 AND state IN ('submitting', 'running')",
            )
            .bind(end.state)
            .bind(end.ok)
            .bind(end.failed)
            .bind(end.retried)
            .bind(&end.error)
            .bind(job)
            .bind(part)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 {
                if let Some(r) = retry {
                    insert_part!(tx, r);
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Parts not yet submitted are cancelled.
    pub async fn cancel_queued_parts(&self, job: &str) -> Result<(), DbError> {
        on_db!(self, p => {
            sqlx::query("UPDATE job_parts SET state = 'cancelled' WHERE job_id = $1 AND state = 'queued'")
                .bind(job)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Sets a job's status (and when it ended); `from`: only if it is one
    /// of these now. `false` when it was not.
    pub async fn set_job_status(
        &self,
        id: &str,
        from: &[&str],
        status: &str,
        ended_at: Option<i64>,
    ) -> Result<bool, DbError> {
        let from = from.join(",");
        let done = on_db!(self, p => {
            sqlx::query(
                "UPDATE jobs SET status = $1, ended_at = $2 WHERE id = $3 \
                 AND (',' || $4 || ',') LIKE ('%,' || status || ',%')",
            )
            .bind(status)
            .bind(ended_at)
            .bind(id)
            .bind(&from)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }
}
