//! Writing batches into the index in bulk: what the watcher's syncs and
//! `index-seed` do. One transaction per call, and a handful of statements
//! per [`GROUP`] of batches (one read of what the index holds, one
//! multi-row insert, the metadata and progress points likewise) instead of
//! several statements per batch. The same SQL runs on SQLite and Postgres,
//! but for the insert itself, which each does its fastest way
//! ([`InsertRows`]).
//!
//! The other statements' text varies with the number of batches, so they
//! are not kept prepared (`persistent(false)`): each connection's statement
//! cache would otherwise keep one large multi-row statement per count it
//! has seen.

use std::collections::HashMap;

use batchboard_core::{Batch, BatchStatus, CREATED_BY};
use sqlx::QueryBuilder;

use super::index::{searched_text, Upsert};
use super::{now, on_db, Db, DbError};

/// Batches per statement: 20 parameters each stays far below both
/// databases' limits on bound parameters.
const GROUP: usize = 500;

/// One batch to write, prepared.
struct Row<'a> {
    b: &'a Batch,
    file_name: Option<&'a str>,
    data: String,
    status: String,
    creator: Option<String>,
    next_check_at: i64,
    /// Not in the index before (so without progress points).
    new: bool,
}

impl Db {
    /// Writes batches as the upstream sent them, in one transaction; says
    /// what changed, for each, in order. A changed batch's progress point
    /// is recorded with it. The same batch twice: the later one wins, and
    /// its outcome is measured against the earlier.
    pub async fn upsert_batches(
        &self,
        items: &[(&Batch, Option<&str>)],
        schedule: impl Fn(&Batch, &Upsert) -> i64,
    ) -> Result<Vec<Upsert>, DbError> {
        let now = now();
        let mut outcomes = Vec::with_capacity(items.len());
        on_db!(self, p => {
            let mut tx = p.begin_write().await?;
            let mut new_ids: Vec<&str> = Vec::new();
            for group in items.chunks(GROUP) {
                // What the index holds now.
                let mut qb = QueryBuilder::new("SELECT id, data, status FROM batches WHERE id IN (");
                let mut ids = qb.separated(", ");
                for (b, _) in group {
                    ids.push_bind(b.id.as_str());
                }
                qb.push(")");
                let held: Vec<(String, String, String)> =
                    qb.build_query_as().persistent(false).fetch_all(&mut *tx).await?;
                let mut held: HashMap<String, (String, String)> =
                    held.into_iter().map(|(id, d, s)| (id, (d, s))).collect();

                // What each changes; the last of a batch given twice is written.
                let mut write: Vec<Row> = Vec::new();
                let mut seen: Vec<(&str, i64)> = Vec::new();
                let mut at: HashMap<&str, usize> = HashMap::new();
                for (b, file_name) in group {
                    let data = serde_json::to_string(b).map_err(|e| DbError::Corrupt(e.to_string()))?;
                    let status = b.status.to_string();
                    let outcome = match held.get(&b.id) {
                        None => Upsert::New,
                        Some((old, _)) if *old == data => Upsert::Unchanged,
                        Some((_, was)) => Upsert::Changed { was: BatchStatus::from(was.as_str()) },
                    };
                    let next_check_at = schedule(b, &outcome);
                    if outcome == Upsert::Unchanged {
                        seen.push((b.id.as_str(), next_check_at));
                    } else {
                        held.insert(b.id.clone(), (data.clone(), status.clone()));
                        let new = outcome == Upsert::New
                            && at.get(b.id.as_str()).is_none_or(|&i| write[i].new);
                        let row = Row {
                            b,
                            file_name: *file_name,
                            data,
                            status,
                            creator: b.metadata.as_ref().and_then(|m| m.get(CREATED_BY)).cloned(),
                            next_check_at,
                            new,
                        };
                        match at.get(b.id.as_str()) {
                            Some(&i) => write[i] = row,
                            None => {
                                at.insert(b.id.as_str(), write.len());
                                write.push(row);
                            }
                        }
                    }
                    outcomes.push(outcome);
                }

                // Unchanged: seen now, checked next at their time (usually
                // one time for all).
                let mut by_time: HashMap<i64, Vec<&str>> = HashMap::new();
                for (id, t) in seen {
                    by_time.entry(t).or_default().push(id);
                }
                for (t, ids) in by_time {
                    let mut qb = QueryBuilder::new("UPDATE batches SET seen_at = ");
                    qb.push_bind(now).push(", next_check_at = ").push_bind(t).push(" WHERE id IN (");
                    let mut list = qb.separated(", ");
                    for id in ids {
                        list.push_bind(id);
                    }
                    qb.push(")");
                    qb.build().persistent(false).execute(&mut *tx).await?;
                }
                if write.is_empty() {
                    continue;
                }

                // New and changed: one insert.
                (*tx).insert_rows(&write, now).await?;
                new_ids.extend(write.iter().filter(|r| r.new).map(|r| r.b.id.as_str()));

                // Those the index held already. Their metadata, replaced (a
                // batch new to the index has none: removing a batch removes
                // its metadata with it).
                let known: Vec<&str> =
                    write.iter().filter(|r| !r.new).map(|r| r.b.id.as_str()).collect();
                if !known.is_empty() {
                    let mut qb = QueryBuilder::new("DELETE FROM batch_metadata WHERE batch_id IN (");
                    let mut list = qb.separated(", ");
                    for id in &known {
                        list.push_bind(*id);
                    }
                    qb.push(")");
                    qb.build().persistent(false).execute(&mut *tx).await?;
                }
                let pairs: Vec<(&str, &String, &String)> = write
                    .iter()
                    .flat_map(|r| r.b.metadata.iter().flatten().map(|(k, v)| (r.b.id.as_str(), k, v)))
                    .collect();
                for chunk in pairs.chunks(GROUP * 4) {
                    let mut qb = QueryBuilder::new("INSERT INTO batch_metadata (batch_id, key, value) ");
                    qb.push_values(chunk, |mut v, (id, k, val)| {
                        v.push_bind(*id).push_bind(k.as_str()).push_bind(val.as_str());
                    });
                    qb.build().persistent(false).execute(&mut *tx).await?;
                }

                // A progress point where the counts moved (new batches
                // have none yet).
                let mut last: HashMap<String, (i64, i64, i64)> = HashMap::new();
                if !known.is_empty() {
                    let mut qb = QueryBuilder::new(
                        "SELECT p.batch_id, p.completed, p.failed, p.total FROM batch_progress p \
                         WHERE p.at = (SELECT MAX(q.at) FROM batch_progress q WHERE q.batch_id = p.batch_id) \
                         AND p.batch_id IN (",
                    );
                    let mut list = qb.separated(", ");
                    for id in &known {
                        list.push_bind(*id);
                    }
                    qb.push(")");
                    let rows: Vec<(String, i64, i64, i64)> =
                        qb.build_query_as().persistent(false).fetch_all(&mut *tx).await?;
                    last = rows.into_iter().map(|(id, c, f, t)| (id, (c, f, t))).collect();
                }
                let points: Vec<(&str, (i64, i64, i64))> = write
                    .iter()
                    .map(|r| {
                        let c = &r.b.request_counts;
                        (r.b.id.as_str(), (c.completed as i64, c.failed as i64, c.total as i64))
                    })
                    .filter(|(id, counts)| last.get(*id) != Some(counts))
                    .collect();
                if !points.is_empty() {
                    let mut qb = QueryBuilder::new(
                        "INSERT INTO batch_progress (batch_id, at, completed, failed, total) ",
                    );
                    qb.push_values(&points, |mut v, (id, (c, f, t))| {
                        v.push_bind(*id).push_bind(now).push_bind(*c).push_bind(*f).push_bind(*t);
                    });
                    qb.push(
                        " ON CONFLICT (batch_id, at) DO UPDATE SET completed = excluded.completed, \
                         failed = excluded.failed, total = excluded.total",
                    );
                    qb.build().persistent(false).execute(&mut *tx).await?;
                }
            }
            (*tx).index_new(&new_ids).await?;
            tx.commit().await?;
        });
        Ok(outcomes)
    }
}

/// What an insert of new and changed batches sets when a row is there.
const ON_CONFLICT: &str = " ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
     terminal = excluded.terminal, endpoint = excluded.endpoint, \
     model = excluded.model, creator = excluded.creator, \
     created_at = excluded.created_at, input_file_id = excluded.input_file_id, \
     output_file_id = excluded.output_file_id, error_file_id = excluded.error_file_id, \
     input_file_name = COALESCE(excluded.input_file_name, batches.input_file_name), \
     data = excluded.data, seen_at = excluded.seen_at, \
     changed_at = excluded.changed_at, next_check_at = excluded.next_check_at, \
     usage_input = excluded.usage_input, usage_cached = excluded.usage_cached, \
     usage_output = excluded.usage_output, usage_reasoning = excluded.usage_reasoning";

const COLUMNS: &str = "INSERT INTO batches (id, status, terminal, endpoint, model, creator, \
     created_at, input_file_id, output_file_id, error_file_id, input_file_name, data, \
     next_check_at, upstream, usage_input, usage_cached, usage_output, usage_reasoning, \
     seen_at, changed_at) ";

/// A row's usage figure `f`, when it has usage.
fn usage(r: &Row, f: fn(&batchboard_core::Usage) -> u64) -> Option<i64> {
    r.b.usage.as_ref().map(|u| f(u) as i64)
}

const USAGE: [fn(&batchboard_core::Usage) -> u64; 4] = [
    |u| u.input_tokens,
    |u| u.input_tokens_details.cached_tokens,
    |u| u.output_tokens,
    |u| u.output_tokens_details.reasoning_tokens,
];

/// A transaction that reads, then writes. SQLite's usual one takes the
/// write lock only at its first write, and fails at once (`SQLITE_BUSY_SNAPSHOT`,
/// "database is locked", no waiting) when another connection wrote since
/// its read: the soak met this once in 30 minutes, and that sync's batches
/// were not indexed. `BEGIN IMMEDIATE` takes the lock first, waiting its
/// turn (the pool's busy timeout) like any other writer.
trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(&self) -> futures_util::future::BoxFuture<'_, Tx<Self::Db>>;
}

type Tx<D> = Result<sqlx::Transaction<'static, D>, sqlx::Error>;

impl BeginWrite for sqlx::SqlitePool {
    type Db = sqlx::Sqlite;
    fn begin_write(&self) -> futures_util::future::BoxFuture<'_, Tx<Self::Db>> {
        Box::pin(self.begin_with("BEGIN IMMEDIATE"))
    }
}

impl BeginWrite for sqlx::PgPool {
    type Db = sqlx::Postgres;
    fn begin_write(&self) -> futures_util::future::BoxFuture<'_, Tx<Self::Db>> {
        Box::pin(self.begin())
    }
}

/// Writes new and changed batches: one statement per [`GROUP`], each
/// database its fastest way.
trait InsertRows {
    fn insert_rows<'a>(&'a mut self, rows: &'a [Row<'a>], now: i64) -> Insert<'a>;

    /// Makes the batches this write added findable by the table's search:
    /// last, in as few statements as the bound-parameter limit allows.
    fn index_new<'a>(&'a mut self, ids: &'a [&'a str]) -> Insert<'a>;
}

/// Batches whose search text one statement writes (SQLite takes 32,766
/// bound parameters).
const INDEX_NEW: usize = 10_000;

type Insert<'a> = futures_util::future::BoxFuture<'a, Result<(), sqlx::Error>>;

/// SQLite: a multi-row `VALUES` (no array parameters there).
impl InsertRows for sqlx::SqliteConnection {
    fn insert_rows<'a>(&'a mut self, rows: &'a [Row<'a>], now: i64) -> Insert<'a> {
        Box::pin(async move {
            let mut qb = QueryBuilder::new(COLUMNS);
            qb.push_values(rows, |mut v, r| {
                v.push_bind(r.b.id.as_str())
                    .push_bind(r.status.as_str())
                    .push_bind(i64::from(r.b.status.is_terminal()))
                    .push_bind(r.b.endpoint.as_str())
                    .push_bind(r.b.model.as_deref())
                    .push_bind(r.creator.as_deref())
                    .push_bind(r.b.created_at)
                    .push_bind(r.b.input_file_id.as_str())
                    .push_bind(r.b.output_file_id.as_deref())
                    .push_bind(r.b.error_file_id.as_deref())
                    .push_bind(r.file_name)
                    .push_bind(r.data.as_str())
                    .push_bind(r.next_check_at)
                    .push_bind(batchboard_core::dashboard::split_qualified(&r.b.id).0);
                for f in USAGE {
                    v.push_bind(usage(r, f));
                }
                v.push_bind(now).push_bind(now);
            });
            qb.push(ON_CONFLICT);
            qb.build().persistent(false).execute(self).await?;
            Ok(())
        })
    }

    /// The FTS5 table `batches_search` (migration 0014 says why not a
    /// trigger): once it takes part in a transaction, FTS5 writes what it
    /// holds to disk as a new segment at each statement, to be merged
    /// later. Filled last, a write of thousands of batches makes one
    /// segment, not one per [`GROUP`]. In rowid order: FTS5 also writes
    /// out what it holds whenever a rowid is not above the one before,
    /// and the ids' own order (the `IN` list's index) made nearly every
    /// row a segment of its own, which then had to be merged: 40 % of a
    /// first sync's SQLite time, `perf`.
    fn index_new<'a>(&'a mut self, ids: &'a [&'a str]) -> Insert<'a> {
        Box::pin(async move {
            for chunk in ids.chunks(INDEX_NEW) {
                let mut qb = QueryBuilder::new(concat!(
                    "INSERT INTO batches_search (rowid, text) SELECT rowid, ",
                    searched_text!(),
                    " FROM batches WHERE id IN ("
                ));
                let mut list = qb.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                qb.push(") ORDER BY rowid");
                qb.build().persistent(false).execute(&mut *self).await?;
            }
            Ok(())
        })
    }
}

/// Postgres: one array per column, `UNNEST`ed. The statement's text is the
/// same for any number of rows, so it is prepared once per connection: a
/// 500-row `VALUES` of 10,000 parameters was parsed and planned afresh
/// each time (a sixth of a bulk load's time in the database).
impl InsertRows for sqlx::PgConnection {
    fn insert_rows<'a>(&'a mut self, rows: &'a [Row<'a>], now: i64) -> Insert<'a> {
        Box::pin(async move {
            let text = |f: fn(&Row<'a>) -> &'a str| rows.iter().map(f).collect::<Vec<&str>>();
            let maybe = |f: fn(&Row<'a>) -> Option<&'a str>| rows.iter().map(f).collect::<Vec<_>>();
            let sql = format!(
                "{COLUMNS} SELECT *, $19::int8, $19::int8 FROM UNNEST($1::text[], $2::text[], \
                 $3::int8[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::text[], \
                 $9::text[], $10::text[], $11::text[], $12::text[], $13::int8[], $14::text[], \
                 $15::int8[], $16::int8[], $17::int8[], $18::int8[]){ON_CONFLICT}"
            );
            let mut q = sqlx::query(&sql)
                .bind(text(|r| r.b.id.as_str()))
                .bind(rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>())
                .bind(
                    rows.iter()
                        .map(|r| i64::from(r.b.status.is_terminal()))
                        .collect::<Vec<_>>(),
                )
                .bind(text(|r| r.b.endpoint.as_str()))
                .bind(maybe(|r| r.b.model.as_deref()))
                .bind(
                    rows.iter()
                        .map(|r| r.creator.as_deref())
                        .collect::<Vec<_>>(),
                )
                .bind(rows.iter().map(|r| r.b.created_at).collect::<Vec<_>>())
                .bind(text(|r| r.b.input_file_id.as_str()))
                .bind(maybe(|r| r.b.output_file_id.as_deref()))
                .bind(maybe(|r| r.b.error_file_id.as_deref()))
                .bind(maybe(|r| r.file_name))
                .bind(rows.iter().map(|r| r.data.as_str()).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.next_check_at).collect::<Vec<_>>())
                .bind(text(|r| {
                    batchboard_core::dashboard::split_qualified(&r.b.id).0
                }));
            for f in USAGE {
                q = q.bind(rows.iter().map(|r| usage(r, f)).collect::<Vec<_>>());
            }
            q.bind(now).execute(self).await?;
            Ok(())
        })
    }

    /// Nothing: the trigram index `batches_search` is on the table's own
    /// columns, kept by Postgres.
    fn index_new<'a>(&'a mut self, _: &'a [&'a str]) -> Insert<'a> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Several syncs writing at once (the watcher's of several upstreams,
    /// a created batch): each waits for the others, none is refused.
    #[tokio::test]
    async fn concurrent_bulk_writes_on_sqlite_all_land() {
        let dir = tempfile::tempdir().expect("dir");
        let db = Db::open(None, dir.path()).await.expect("db");
        let all = batchboard_sandbox::synthetic::batches(400, 3);
        let writers = all.chunks(100).map(|chunk| {
            let (db, chunk) = (db.clone(), chunk.to_vec());
            tokio::spawn(async move {
                for _ in 0..5 {
                    let items: Vec<_> = chunk.iter().map(|(b, n)| (b, Some(n.as_str()))).collect();
                    db.upsert_batches(&items, |_, _| 0).await?;
                }
                Ok::<_, DbError>(())
            })
        });
        for w in writers.collect::<Vec<_>>() {
            w.await.expect("task").expect("every write lands");
        }
        let q = batchboard_core::dashboard::BatchQuery::default();
        assert_eq!(db.query_batches(&q, None).await.expect("query").1, 400);
    }

    /// The search finds what a plain substring match finds after any bulk
    /// write: new batches over several groups, a batch given twice in one
    /// write, batches whose output file came later, one removed.
    #[tokio::test]
    async fn search_follows_every_bulk_write_on_sqlite() {
        use batchboard_core::dashboard::MAX_TABLE_PAGE;
        let dir = tempfile::tempdir().expect("dir");
        let db = Db::open(None, dir.path()).await.expect("db");
        let mut all = batchboard_sandbox::synthetic::batches(1200, 5);
        let write = |all: &[(Batch, String)], twice: usize| {
            let mut items: Vec<(Batch, String)> = all.to_vec();
            items.extend(all[..twice].iter().cloned());
            items
        };
        let items = write(&all, 10);
        let refs: Vec<_> = items.iter().map(|(b, n)| (b, Some(n.as_str()))).collect();
        db.upsert_batches(&refs, |_, _| 0)
            .await
            .expect("first write");
        for (b, _) in all.iter_mut().skip(100).take(600) {
            b.status = BatchStatus::Completed;
            b.output_file_id = Some(format!("file-out-{}", b.id));
        }
        let items = write(&all[100..700], 3);
        let refs: Vec<_> = items.iter().map(|(b, n)| (b, Some(n.as_str()))).collect();
        db.upsert_batches(&refs, |_, _| 0)
            .await
            .expect("second write");
        let gone = all.remove(650).0.id;
        db.remove_batch(&gone).await.expect("remove");

        for q in [
            "seed000",
            "SEED0001",
            "file-out-",
            "out-batch_seed0006",
            "support-1",
            "in00119",
        ] {
            let query = batchboard_core::dashboard::BatchQuery {
                q: Some(q.into()),
                limit: Some(MAX_TABLE_PAGE),
                ..Default::default()
            };
            let (rows, total, _, _) = db.query_batches(&query, None).await.expect("query");
            let got: Vec<String> = rows.into_iter().map(|b| b.id).collect();
            let want: std::collections::HashSet<String> = all
                .iter()
                .filter(|(b, name)| {
                    let text = [
                        Some(b.id.as_str()),
                        Some(b.input_file_id.as_str()),
                        b.output_file_id.as_deref(),
                        b.error_file_id.as_deref(),
                        Some(name.as_str()),
                    ];
                    text.iter()
                        .flatten()
                        .any(|t| t.to_lowercase().contains(&q.to_lowercase()))
                })
                .map(|(b, _)| b.id.clone())
                .collect();
            assert!(
                !want.is_empty(),
                "{q}: a search that finds nothing tests nothing"
            );
            assert_eq!(total, want.len() as u64, "{q}: the count");
            assert_eq!(
                got.len(),
                want.len().min(MAX_TABLE_PAGE as usize),
                "{q}: the page"
            );
            assert!(got.iter().all(|id| want.contains(id)), "{q}: {got:?}");
        }
    }

    /// A write of new batches adds one segment to the search table, in
    /// whatever order they come (an upstream lists the newest first, so
    /// their ids fall as their rowids rise).
    #[tokio::test]
    async fn a_bulk_write_adds_one_search_segment() {
        let dir = tempfile::tempdir().expect("dir");
        let db = Db::open(None, dir.path()).await.expect("db");
        let mut all = batchboard_sandbox::synthetic::batches(2000, 7);
        all.reverse();
        let items: Vec<_> = all.iter().map(|(b, n)| (b, Some(n.as_str()))).collect();
        db.upsert_batches(&items, |_, _| 0).await.expect("write");
        let Db::Sqlite(p) = &db else {
            unreachable!("opened on SQLite")
        };
        let segments: i64 =
            sqlx::query_scalar("SELECT count(DISTINCT segid) FROM batches_search_idx")
                .fetch_one(p)
                .await
                .expect("segments");
        assert_eq!(segments, 1);
    }
}
