//! What spend is computed from: each batch's usage columns and the estimate
//! Batchboard made when it created the batch, read for the batch table's
//! filters; and the budget warnings already sent.

use batchboard_core::dashboard::BatchQuery;
use batchboard_core::spend::{Estimate, ReadUsage, Tokens};
use batchboard_core::Batch;
use sqlx::QueryBuilder;

use super::index::Filters;
use super::{now, on_db, Db, DbError};

/// One batch, as far as its cost and its groups go.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SpendRow {
    pub created_at: i64,
    pub creator: Option<String>,
    pub upstream: String,
    pub model: Option<String>,
    pub endpoint: String,
    pub terminal: i64,
    pub usage_input: Option<i64>,
    pub usage_cached: Option<i64>,
    pub usage_output: Option<i64>,
    pub usage_reasoning: Option<i64>,
    pub est_model: Option<String>,
    pub est_input: Option<i64>,
    pub est_output_max: Option<i64>,
    /// [`ReadUsage`] as JSON, when its results were read without usage.
    pub res_usage: Option<String>,
    /// The value of the team key in its metadata.
    pub team: Option<String>,
    /// The batch itself, only when it has no usage (its request counts
    /// share out the estimate).
    pub data: Option<String>,
}

impl SpendRow {
    pub fn usage(&self) -> Option<Tokens> {
        let n = |v: Option<i64>| v.unwrap_or(0).max(0) as u64;
        self.usage_input.map(|input| Tokens {
            input: input.max(0) as u64,
            cached: n(self.usage_cached),
            output: n(self.usage_output),
            reasoning: n(self.usage_reasoning),
        })
    }

    pub fn estimate(&self) -> Option<Estimate> {
        Some(Estimate {
            model: self.est_model.clone(),
            input_tokens: self.est_input?.max(0) as u64,
            output_max_tokens: self.est_output_max.unwrap_or(0).max(0) as u64,
        })
    }

    pub fn read_usage(&self) -> Option<ReadUsage> {
        serde_json::from_str(self.res_usage.as_deref()?).ok()
    }

    /// Completed and all requests (only read for batches without usage).
    pub fn counts(&self) -> (u64, u64) {
        self.data
            .as_deref()
            .and_then(|d| serde_json::from_str::<Batch>(d).ok())
            .map_or((0, 0), |b| {
                (b.request_counts.completed, b.request_counts.total)
            })
    }
}

impl Db {
    /// The batches the table's filters `q` match (its sort and page are
    /// ignored), with `team_key`'s value.
    pub async fn spend_rows(
        &self,
        q: &BatchQuery,
        team_key: &str,
    ) -> Result<Vec<SpendRow>, DbError> {
        let filters = Filters::parse(q)?;
        let search = self.search();
        Ok(on_db!(self, p => {
            let mut qb = QueryBuilder::new(
                "SELECT created_at, creator, upstream, model, endpoint, terminal, usage_input, \
                 usage_cached, usage_output, usage_reasoning, est_model, est_input, est_output_max, res_usage, \
                 (SELECT value FROM batch_metadata m WHERE m.batch_id = batches.id AND m.key = ",
            );
            qb.push_bind(team_key.to_owned());
            qb.push(") AS team, CASE WHEN usage_input IS NULL THEN data END AS data FROM batches");
            filters.push(&mut qb, search);
            qb.build_query_as().persistent(false).fetch_all(p).await?
        }))
    }

    /// Keeps what Batchboard estimated for a batch it created.
    pub async fn set_estimate(&self, id: &str, e: &Estimate) -> Result<(), DbError> {
        on_db!(self, p => {
            sqlx::query(
                "UPDATE batches SET est_model = $1, est_input = $2, est_output_max = $3 WHERE id = $4",
            )
            .bind(e.model.as_deref())
            .bind(e.input_tokens as i64)
            .bind(e.output_max_tokens as i64)
            .bind(id)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// A batch's estimate, when Batchboard made one, and what its result
    /// lines said they used, when they were read.
    pub async fn get_estimate(
        &self,
        id: &str,
    ) -> Result<(Option<Estimate>, Option<ReadUsage>), DbError> {
        type Row = (Option<String>, Option<i64>, Option<i64>, Option<String>);
        let row: Option<Row> = on_db!(self, p => {
            sqlx::query_as(
                "SELECT est_model, est_input, est_output_max, res_usage FROM batches WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(p)
            .await?
        });
        let Some((model, input, out, read)) = row else {
            return Ok((None, None));
        };
        let estimate = input.map(|input| Estimate {
            model,
            input_tokens: input.max(0) as u64,
            output_max_tokens: out.unwrap_or(0).max(0) as u64,
        });
        Ok((estimate, read.and_then(|r| serde_json::from_str(&r).ok())))
    }

    /// Keeps what a batch's result lines said they used.
    pub async fn set_read_usage(&self, id: &str, read: &ReadUsage) -> Result<(), DbError> {
        let text = serde_json::to_string(read).map_err(|e| DbError::Corrupt(e.to_string()))?;
        on_db!(self, p => {
            sqlx::query("UPDATE batches SET res_usage = $1 WHERE id = $2")
                .bind(text)
                .bind(id)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Keeps a job's estimate as a whole: its output bound and the most it
    /// can cost.
    pub async fn set_job_estimate(
        &self,
        job: &str,
        output_max: u64,
        max_usd: f64,
    ) -> Result<(), DbError> {
        on_db!(self, p => {
            sqlx::query("UPDATE jobs SET est_output_max = $1, max_usd = $2 WHERE id = $3")
                .bind(output_max as i64)
                .bind(max_usd)
                .bind(job)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// A job's output bound, when it was estimated.
    pub async fn job_output_max(&self, job: &str) -> Result<Option<u64>, DbError> {
        let row: Option<(Option<i64>,)> = on_db!(self, p => {
            sqlx::query_as("SELECT est_output_max FROM jobs WHERE id = $1")
                .bind(job)
                .fetch_optional(p)
                .await?
        });
        Ok(row.and_then(|r| r.0).map(|n| n.max(0) as u64))
    }

    /// Unfinished jobs created since `since` with the share of their most
    /// cost their parts not yet submitted hold: `(created_by, metadata
    /// JSON, dollars)`.
    pub async fn job_reservations(
        &self,
        since: i64,
    ) -> Result<Vec<(String, String, f64)>, DbError> {
        let rows: Vec<(String, String, i64, f64, i64)> = on_db!(self, p => {
            sqlx::query_as(
                "SELECT j.created_by, j.metadata, j.requests, j.max_usd, \
                 CAST(COALESCE((SELECT SUM(p.requests) FROM job_parts p WHERE p.job_id = j.id \
                   AND p.state IN ('queued', 'submitting')), 0) AS BIGINT) \
                 FROM jobs j WHERE j.created_at >= $1 AND j.status IN ('running', 'cancelling') \
                 AND j.max_usd IS NOT NULL",
            )
            .bind(since)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(by, meta, requests, max, waiting)| {
                let share = waiting.min(requests).max(0) as f64 / requests.max(1) as f64;
                (by, meta, max * share)
            })
            .collect())
    }

    /// Notes that a budget's warning `level` was sent this `month`; false
    /// when it already was (by any replica).
    pub async fn note_budget_alert(
        &self,
        scope: &str,
        name: &str,
        month: &str,
        level: u8,
    ) -> Result<bool, DbError> {
        let done = on_db!(self, p => {
            sqlx::query(
                "INSERT INTO budget_alerts (scope, name, month, level, at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(scope)
            .bind(name)
            .bind(month)
            .bind(i64::from(level))
            .bind(now())
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }
}
