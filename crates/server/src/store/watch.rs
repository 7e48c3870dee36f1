//! The watcher's queries on the index: which batches are due, which lack
//! a file name, when the next one is due, and how each upstream fares (the
//! status every page shows, read every 2 s). Each runs in every round of an
//! idle dashboard, so each reads an index, never the table: the test below
//! holds their SQLite plans to that.

use batchboard_core::dashboard::{UpstreamHealth, WatcherStatus};

use super::{now, on_db, Db, DbError};

/// Batches of upstream `$1` whose input file has no name yet, newest first
/// (index `batches_unnamed`, partial: only these rows are in it).
const UNNAMED: &str = "SELECT id, input_file_id FROM batches WHERE upstream = $1 \
     AND input_file_name IS NULL AND input_file_id <> '' \
     ORDER BY created_at DESC LIMIT $2";
/// Unfinished batches of `$1` due by `$2` (index `batches_upstream_due`).
const DUE: &str = "SELECT id FROM batches WHERE upstream = $1 AND terminal = 0 \
     AND next_check_at <= $2 ORDER BY next_check_at LIMIT $3";
/// When `$1`'s next unfinished batch is due (covering `batches_upstream_due`).
const NEXT_DUE: &str =
    "SELECT MIN(next_check_at) FROM batches WHERE upstream = $1 AND terminal = 0";
/// How many of `$1`'s batches are unfinished (covering `batches_upstream_due`;
/// one count grouped by upstream read every unfinished row from the table).
const RUNNING: &str = "SELECT COUNT(*) FROM batches WHERE upstream = $1 AND terminal = 0";

impl Db {
    /// Batches whose input file name has not been looked up yet.
    pub async fn batches_without_file_name(
        &self,
        upstream: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>, DbError> {
        Ok(on_db!(self, p => {
            sqlx::query_as(UNNAMED)
            .bind(upstream)
            .bind(limit)
            .fetch_all(p)
            .await?
        }))
    }

    /// Non-final batches whose next check is due, soonest first.
    pub async fn due_batches(&self, upstream: &str, limit: i64) -> Result<Vec<String>, DbError> {
        let rows: Vec<(String,)> = on_db!(self, p => {
            sqlx::query_as(DUE)
            .bind(upstream)
            .bind(now())
            .bind(limit)
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Reads batches `ids` again no sooner than `at` (the watcher, while
    /// webhooks arrive).
    pub async fn check_later(&self, ids: &[String], at: i64) -> Result<(), DbError> {
        for id in ids {
            on_db!(self, p => {
                sqlx::query("UPDATE batches SET next_check_at = $1 WHERE id = $2 AND terminal = 0")
                    .bind(at)
                    .bind(id)
                    .execute(p)
                    .await?;
            });
        }
        Ok(())
    }

    /// When the upstream's next non-final batch is due, if any.
    pub async fn next_due(&self, upstream: &str) -> Result<Option<i64>, DbError> {
        let row: (Option<i64>,) = on_db!(self, p => {
            sqlx::query_as(NEXT_DUE)
            .bind(upstream)
            .fetch_one(p)
            .await?
        });
        Ok(row.0)
    }

    /// How many batches of each upstream in `names` (in that order) are
    /// unfinished. Counted per upstream: each count reads only its part of
    /// the covering index `batches_upstream_due`, where one grouped count
    /// read every unfinished row from the table (40,000 rows with 100,000
    /// batches indexed).
    pub async fn running(&self, names: &[String]) -> Result<Vec<i64>, DbError> {
        let mut counts = Vec::with_capacity(names.len());
        for name in names {
            let (n,): (i64,) = on_db!(self, p => {
                sqlx::query_as(RUNNING).bind(name).fetch_one(p).await?
            });
            counts.push(n);
        }
        Ok(counts)
    }

    /// How the watcher fares with each upstream in `names` (in that order),
    /// and in all: the stalest success, and the newest failure that came
    /// after its upstream's last success (named when there are several).
    /// `running`: each one's unfinished batches, as [`Db::running`] counts
    /// them.
    pub async fn watcher_status(
        &self,
        names: &[String],
        running: &[i64],
    ) -> Result<WatcherStatus, DbError> {
        type Row = (String, Option<i64>, Option<String>, Option<i64>);
        let rows: Vec<Row> = on_db!(self, p => {
            sqlx::query_as(
                "SELECT name, last_success_at, last_error, last_error_at FROM upstream_state",
            )
            .fetch_all(p)
            .await?
        });
        let mut all = WatcherStatus::default();
        let mut seen_all = true;
        for (i, name) in names.iter().enumerate() {
            let running = running.get(i).copied().unwrap_or(0);
            let (ok_at, err, err_at) = rows
                .iter()
                .find(|r| &r.0 == name)
                .map(|r| (r.1, r.2.clone(), r.3))
                .unwrap_or((None, None, None));
            let error_is_news = matches!((err_at, ok_at), (Some(e), Some(o)) if e >= o)
                || (err_at.is_some() && ok_at.is_none());
            let one = UpstreamHealth {
                name: name.clone(),
                last_success_at: ok_at,
                last_error: err.filter(|_| error_is_news),
                last_error_at: err_at.filter(|_| error_is_news),
                running,
            };
            all.running += one.running;
            match (ok_at, all.last_success_at) {
                (None, _) => seen_all = false,
                (Some(t), Some(a)) if t >= a => {}
                (Some(t), _) => all.last_success_at = Some(t),
            }
            if one.last_error_at > all.last_error_at {
                all.last_error_at = one.last_error_at;
                all.last_error = match (&one.last_error, names.len()) {
                    (Some(e), n) if n > 1 => Some(format!("{}: {e}", one.display_name())),
                    (e, _) => e.clone(),
                };
            }
            all.upstreams.push(one);
        }
        if !seen_all {
            all.last_success_at = None;
        }
        Ok(all)
    }

    /// Records a contact with the upstream `name`: `Ok` or the error's text.
    pub async fn watcher_contact(
        &self,
        name: &str,
        holder: &str,
        result: Result<(), &str>,
    ) -> Result<(), DbError> {
        let now = now();
        let (ok_at, err, err_at) = match result {
            Ok(()) => (Some(now), None, None),
            Err(e) => (None, Some(e), Some(now)),
        };
        on_db!(self, p => {
            sqlx::query(
                "INSERT INTO upstream_state (name, holder, last_success_at, last_error, last_error_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                 last_success_at = coalesce(excluded.last_success_at, upstream_state.last_success_at), \
                 last_error = coalesce(excluded.last_error, upstream_state.last_error), \
                 last_error_at = coalesce(excluded.last_error_at, upstream_state.last_error_at)",
            )
            .bind(name)
            .bind(holder)
            .bind(ok_at)
            .bind(err)
            .bind(err_at)
            .execute(p)
            .await
            .map(|_| ())?
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's plan for `sql` with upstream `''` and `ints` bound after it.
    async fn plan(db: &Db, sql: &str, ints: &[i64]) -> String {
        let Db::Sqlite(p) = db else {
            unreachable!("the test opens SQLite")
        };
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain).bind("");
        for i in ints {
            q = q.bind(*i);
        }
        let rows = q.fetch_all(p).await.unwrap();
        rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ")
    }

    #[tokio::test]
    async fn every_round_reads_an_index_not_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(None, dir.path()).await.unwrap();
        for (sql, ints, index) in [
            (UNNAMED, &[10][..], "INDEX batches_unnamed"),
            (DUE, &[now(), 25][..], "INDEX batches_upstream_due"),
            (NEXT_DUE, &[][..], "COVERING INDEX batches_upstream_due"),
            (RUNNING, &[][..], "COVERING INDEX batches_upstream_due"),
        ] {
            let plan = plan(&db, sql, ints).await;
            assert!(plan.contains(index), "{sql}: {plan}");
            assert!(
                !plan.contains("SCAN") && !plan.contains("TEMP B-TREE"),
                "{sql}: {plan}"
            );
        }
    }
}
