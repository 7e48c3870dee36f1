//! The local index of the upstream's batches (tables `batches`,
//! `batch_metadata`, `watcher_state`): written by the watcher, read by the
//! pages. The same SQL runs on SQLite and Postgres (`$N` placeholders, `ON
//! CONFLICT`); `db::on_db!` runs one body against whichever pool is in use.

use batchboard_core::dashboard::{BatchQuery, Facets, MAX_TABLE_PAGE, SORT_KEYS};
use batchboard_core::i18n::{Key, Msg};
use batchboard_core::{Batch, BatchStatus};

use sqlx::QueryBuilder;

use super::{on_db, Db, DbError};

/// What an upsert changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upsert {
    /// Not in the index before.
    New,
    /// In the index with other content; its status before.
    Changed { was: BatchStatus },
    /// Same as before (only `seen_at` moved).
    Unchanged,
}

/// A `YYYY-MM-DD` date of the query field `field`; the refusal names both.
pub fn parse_day(s: &str, field: &str) -> Result<time::Date, Msg> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), &fmt).map_err(|_| {
        Msg::new(Key::QueryNotADate)
            .arg("field", field)
            .arg("value", s)
    })
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date, as unix seconds of its start.
fn day_start(s: &str, field: &str) -> Result<i64, DbError> {
    let d = parse_day(s, field).map_err(DbError::Query)?;
    Ok(d.midnight().assume_utc().unix_timestamp())
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A table query's filters, checked: what the `WHERE` clause says.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Filters {
    statuses: Vec<String>,
    /// `(column, value)` pairs that must be equal.
    equal: Vec<(&'static str, String)>,
    /// A metadata key, and its value when one is asked for.
    meta: Option<(String, Option<String>)>,
    /// The pair is common (see [`COMMON_PAIR`]): the rows are found by
    /// walking the table in order and checking each batch's metadata,
    /// instead of collecting every batch with the pair and sorting them.
    meta_common: bool,
    from: Option<i64>,
    /// Exclusive: the start of the day after `to`.
    until: Option<i64>,
    /// A `LIKE` pattern, lower case, `\`-escaped.
    search: Option<String>,
    /// The search text as an FTS5 phrase (`"…"`), when it is long enough
    /// for the trigram index (three characters or more).
    phrase: Option<String>,
}

/// How a search of three characters or more runs on a backend (shorter
/// ones, which no trigram index serves, are five `LIKE`s: a scan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Search {
    /// SQLite: the FTS5 trigram table `batches_search`.
    Fts5,
    /// Postgres: the pg_trgm index on [`SEARCH_TEXT`].
    Trigram,
}

impl Db {
    /// How this backend's search goes through its trigram index.
    pub(super) fn search(&self) -> Search {
        match self {
            Db::Sqlite(_) => Search::Fts5,
            Db::Postgres(_) => Search::Trigram,
        }
    }
}

/// A batch's searched text in SQL: its id, file ids and file name in one
/// string. SQLite's FTS table holds it (written by `upsert_batches`, and
/// by the update trigger of migration 0014), Postgres indexes it lower-case.
macro_rules! searched_text {
    () => {
        "id || ' ' || input_file_id || ' ' || coalesce(output_file_id, '') || ' ' \
         || coalesce(error_file_id, '') || ' ' || coalesce(input_file_name, '')"
    };
}
pub(super) use searched_text;

/// The text Postgres' search index holds (migration 0006).
const SEARCH_TEXT: &str = concat!("lower(", searched_text!(), ")");

/// Batches with a metadata pair from which it counts as common: walking
/// the table in order finds a page of them sooner than collecting and
/// sorting them all.
const COMMON_PAIR: i64 = 1000;

/// The columns a search looks in.
const SEARCHED: [&str; 5] = [
    "id",
    "input_file_id",
    "output_file_id",
    "error_file_id",
    "input_file_name",
];

impl Filters {
    pub(super) fn parse(q: &BatchQuery) -> Result<Self, DbError> {
        let statuses = non_empty(&q.status)
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let mut equal: Vec<(&'static str, String)> = [
            ("endpoint", &q.endpoint),
            ("model", &q.model),
            ("creator", &q.creator),
        ]
        .into_iter()
        .filter_map(|(col, v)| non_empty(v).map(|v| (col, v.to_owned())))
        .collect();
        // Shown as `default`, stored as "".
        if let Some(u) = non_empty(&q.upstream) {
            let stored = if u == "default" { "" } else { u };
            equal.push(("upstream", stored.to_owned()));
        }
        let meta = match (non_empty(&q.meta_key), non_empty(&q.meta_value)) {
            (Some(k), v) => Some((k.to_owned(), v.map(str::to_owned))),
            (None, Some(_)) => return Err(DbError::Query(Msg::new(Key::QueryMetaValueWithoutKey))),
            (None, None) => None,
        };
        let from = non_empty(&q.from)
            .map(|d| day_start(d, "from"))
            .transpose()?;
        let until = non_empty(&q.to)
            .map(|d| day_start(d, "to").map(|t| t + 86_400))
            .transpose()?;
        let phrase = non_empty(&q.q)
            .filter(|t| t.chars().count() >= 3)
            .map(|t| format!("\"{}\"", t.replace('"', "\"\"")));
        let search = non_empty(&q.q).map(|text| {
            let escaped = text
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        Ok(Self {
            statuses,
            equal,
            meta,
            meta_common: false,
            from,
            until,
            search,
            phrase,
        })
    }

    /// The metadata filter, when there is no other. Every field named, so
    /// that a new filter cannot be left out of the count by mistake.
    fn meta_alone(&self) -> Option<(&String, &Option<String>)> {
        let Filters {
            statuses,
            equal,
            meta,
            meta_common: _,
            from,
            until,
            search,
            // Set only with `search`.
            phrase: _,
        } = self;
        let alone = statuses.is_empty()
            && equal.is_empty()
            && from.is_none()
            && until.is_none()
            && search.is_none();
        meta.as_ref().filter(|_| alone).map(|(k, v)| (k, v))
    }

    /// Appends the `WHERE` clause (if any) to `qb`, each value bound; a
    /// search goes through the backend's trigram index (`Search`).
    pub(super) fn push<'args, DB>(&self, qb: &mut QueryBuilder<'args, DB>, search: Search)
    where
        DB: sqlx::Database,
        String: sqlx::Encode<'args, DB> + sqlx::Type<DB>,
        i64: sqlx::Encode<'args, DB> + sqlx::Type<DB>,
    {
        self.push_with(qb, search, &self.statuses)
    }

    /// [`Filters::push`] with `statuses` in place of the query's.
    fn push_with<'args, DB>(
        &self,
        qb: &mut QueryBuilder<'args, DB>,
        search: Search,
        statuses: &[String],
    ) where
        DB: sqlx::Database,
        String: sqlx::Encode<'args, DB> + sqlx::Type<DB>,
        i64: sqlx::Encode<'args, DB> + sqlx::Type<DB>,
    {
        let mut first = true;
        let mut clause = |qb: &mut QueryBuilder<'args, DB>| {
            qb.push(if first { " WHERE " } else { " AND " });
            first = false;
        };
        if !statuses.is_empty() {
            clause(qb);
            qb.push("status IN (");
            let mut list = qb.separated(", ");
            for s in statuses {
                list.push_bind(s.clone());
            }
            qb.push(")");
        }
        for (col, v) in &self.equal {
            clause(qb);
            qb.push(format!("{col} = ")).push_bind(v.clone());
        }
        if let Some((k, v)) = &self.meta {
            clause(qb);
            if self.meta_common {
                // A scalar subquery, checked row by row as the table is
                // walked in order (Postgres would turn EXISTS into a join
                // over every batch with the pair).
                qb.push(
                    "(SELECT 1 FROM batch_metadata m WHERE m.batch_id = batches.id AND m.key = ",
                )
                .push_bind(k.clone());
            } else {
                qb.push("id IN (SELECT batch_id FROM batch_metadata WHERE key = ")
                    .push_bind(k.clone());
            }
            if let Some(v) = v {
                qb.push(" AND value = ").push_bind(v.clone());
            }
            qb.push(if self.meta_common { ") = 1" } else { ")" });
        }
        if let Some(t) = self.from {
            clause(qb);
            qb.push("created_at >= ").push_bind(t);
        }
        if let Some(t) = self.until {
            clause(qb);
            qb.push("created_at < ").push_bind(t);
        }
        if let (Search::Fts5, Some(phrase)) = (search, &self.phrase) {
            clause(qb);
            qb.push("rowid IN (SELECT rowid FROM batches_search WHERE batches_search MATCH ")
                .push_bind(phrase.clone())
                .push(")");
        } else if let (Search::Trigram, Some(pattern), Some(_)) =
            (search, &self.search, &self.phrase)
        {
            // The expression of the index `batches_search` (Postgres),
            // exactly; `\` is LIKE's escape there by default.
            clause(qb);
            qb.push(format!("{SEARCH_TEXT} LIKE "))
                .push_bind(pattern.clone());
        } else if let Some(pattern) = &self.search {
            clause(qb);
            qb.push("(");
            for (i, col) in SEARCHED.iter().enumerate() {
                if i > 0 {
                    qb.push(" OR ");
                }
                qb.push(format!("LOWER({col}) LIKE "))
                    .push_bind(pattern.clone())
                    .push(" ESCAPE '\\'");
            }
            qb.push(")");
        }
    }
}

/// ` FROM batch_metadata WHERE key = … [AND value = …]`, bound.
fn push_pairs<'args, DB>(qb: &mut QueryBuilder<'args, DB>, key: &str, value: &Option<String>)
where
    DB: sqlx::Database,
    String: sqlx::Encode<'args, DB> + sqlx::Type<DB>,
{
    qb.push(" FROM batch_metadata WHERE key = ")
        .push_bind(key.to_owned());
    if let Some(v) = value {
        qb.push(" AND value = ").push_bind(v.clone());
    }
}

fn decode(data: &str) -> Result<Batch, DbError> {
    serde_json::from_str(data).map_err(|e| DbError::Corrupt(format!("index row: {e}")))
}

impl Db {
    /// One page of batches matching `q`, with the total count (counted
    /// unless `known_total` says it).
    pub async fn query_batches(
        &self,
        q: &BatchQuery,
        known_total: Option<u64>,
    ) -> Result<(Vec<Batch>, u64, u32, u32), DbError> {
        let limit = q.limit.unwrap_or(20);
        if !(1..=MAX_TABLE_PAGE).contains(&limit) {
            return Err(DbError::Query(
                Msg::new(Key::QueryLimit).arg("max", MAX_TABLE_PAGE),
            ));
        }
        let offset = q.offset.unwrap_or(0);
        let sort = non_empty(&q.sort).unwrap_or("created");
        if !SORT_KEYS.contains(&sort) {
            return Err(DbError::Query(
                Msg::new(Key::QuerySort)
                    .arg("sort", sort)
                    .arg("keys", SORT_KEYS.join(", ")),
            ));
        }
        let col = if sort == "created" {
            "created_at"
        } else {
            sort
        };
        let dir = match non_empty(&q.dir).unwrap_or("desc") {
            "asc" => "ASC",
            "desc" => "DESC",
            other => return Err(DbError::Query(Msg::new(Key::QueryDir).arg("dir", other))),
        };
        let filters = Filters::parse(q)?;
        // Ties broken by age; by creation time itself, the (created_at,
        // id) index serves the order without sorting.
        let order = if col == "created_at" {
            format!("created_at {dir}, id {dir}")
        } else {
            format!("{col} {dir}, created_at DESC, id DESC")
        };
        // The statements below vary with the filters, the page and the
        // plan chosen: prepared once each (`persistent(false)`) rather than
        // kept in every connection's cache.
        let fts = self.search();
        let mut filters = filters;
        let (rows, total): (Vec<(String,)>, (i64,)) = on_db!(self, p => {
            if let Some((k, v)) = &filters.meta {
                let mut probe = QueryBuilder::new("SELECT COUNT(*) FROM (SELECT 1");
                push_pairs(&mut probe, k, v);
                probe.push(format!(" LIMIT {COMMON_PAIR}) AS pairs"));
                let (n,): (i64,) = probe.build_query_as().persistent(false).fetch_one(p).await?;
                filters.meta_common = n >= COMMON_PAIR;
            }
            // Postgres: a search collects its matches through the trigram
            // index, then sorts them: its cost follows the number of
            // matches (1.6 ms for 343 of 100,000 batches; 170 ms for a text
            // every batch has). Left to itself the planner may walk the
            // table in order instead, expecting the matches to be spread
            // evenly, and it took 70 ms for those 343, which sat at one end
            // (its estimate swings with each ANALYZE's sample).
            let collect = fts == Search::Trigram && filters.phrase.is_some();
            let mut rows = QueryBuilder::new("");
            if collect {
                rows.push("WITH hits AS MATERIALIZED (SELECT data, created_at, id, status, \
                           endpoint, model, creator FROM batches");
                filters.push(&mut rows, fts);
                rows.push(") SELECT data FROM hits");
            } else if filters.statuses.len() > 1 && col == "created_at" {
                rows.push("SELECT data FROM ");
                // Each status walks its own (status, created_at) index for
                // as many rows as the page needs, and the few are merged:
                // fast however common or rare the statuses are.
                rows.push("(");
                for (i, status) in filters.statuses.iter().enumerate() {
                    if i > 0 {
                        rows.push(" UNION ALL ");
                    }
                    rows.push("SELECT * FROM (SELECT data, created_at, id FROM batches");
                    filters.push_with(&mut rows, fts, std::slice::from_ref(status));
                    rows.push(format!(
                        " ORDER BY {order} LIMIT {}) AS s{i}",
                        u64::from(offset) + u64::from(limit)
                    ));
                }
                rows.push(") AS merged");
            } else {
                rows.push("SELECT data FROM batches");
                filters.push(&mut rows, fts);
            }
            rows.push(format!(" ORDER BY {order} LIMIT {limit} OFFSET {offset}"));
            let total = match known_total {
                Some(n) => (i64::try_from(n).unwrap_or(i64::MAX),),
                None => {
                    let mut count = QueryBuilder::new("SELECT COUNT(*)");
                    if let Some((k, v)) = filters.meta_alone() {
                        // A batch has a key once (the pairs' primary key),
                        // and its pairs come and go with it: its pairs'
                        // index alone counts the batches, with no lookup
                        // of each one (by batch, page and count of a pair
                        // 33,442 of 100,000 batches have took p50 113 ms
                        // on SQLite, 31 ms on Postgres).
                        push_pairs(&mut count, k, v);
                    } else {
                        // Counting visits every match anyway: the pair's
                        // own index first, whatever its frequency.
                        count.push(" FROM batches");
                        let common = std::mem::replace(&mut filters.meta_common, false);
                        filters.push(&mut count, fts);
                        filters.meta_common = common;
                    }
                    count.build_query_as().persistent(false).fetch_one(p).await?
                }
            };
            (rows.build_query_as().persistent(false).fetch_all(p).await?, total)
        });
        let batches = rows
            .iter()
            .map(|(d,)| decode(d))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((batches, total.0.max(0) as u64, offset, limit))
    }

    pub async fn get_indexed(&self, id: &str) -> Result<Option<Batch>, DbError> {
        let row: Option<(String,)> = on_db!(self, p => {
            sqlx::query_as("SELECT data FROM batches WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?
        });
        row.map(|(d,)| decode(&d)).transpose()
    }

    pub async fn facets(&self) -> Result<Facets, DbError> {
        let mut out = Facets::default();
        for (col, dest) in [
            ("status", &mut out.statuses),
            ("endpoint", &mut out.endpoints),
            ("model", &mut out.models),
            ("creator", &mut out.creators),
        ] {
            let sql = format!(
                "SELECT DISTINCT {col} FROM batches WHERE {col} IS NOT NULL ORDER BY {col} LIMIT 500"
            );
            let rows: Vec<(String,)> = on_db!(self, p => sqlx::query_as(&sql).fetch_all(p).await?);
            *dest = rows.into_iter().map(|(v,)| v).collect();
        }
        Ok(out)
    }

    /// Writes a batch as the upstream sent it; says what changed.
    pub async fn upsert_batch(
        &self,
        b: &Batch,
        file_name: Option<&str>,
        schedule: impl Fn(&Batch, &Upsert) -> i64,
    ) -> Result<Upsert, DbError> {
        let mut outcomes = self.upsert_batches(&[(b, file_name)], schedule).await?;
        Ok(outcomes.pop().unwrap_or(Upsert::Unchanged))
    }

    /// Drops a batch the upstream no longer has.
    pub async fn remove_batch(&self, id: &str) -> Result<(), DbError> {
        on_db!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM batch_metadata WHERE batch_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM batches WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?
        });
        self.forget_progress(id).await
    }

    pub async fn set_file_name(&self, id: &str, name: &str) -> Result<(), DbError> {
        on_db!(self, p => {
            sqlx::query("UPDATE batches SET input_file_name = $1 WHERE id = $2")
                .bind(name)
                .bind(id)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// The input file's name, when known.
    pub async fn get_file_name(&self, id: &str) -> Result<Option<String>, DbError> {
        let row: Option<(Option<String>,)> = on_db!(self, p => {
            sqlx::query_as("SELECT input_file_name FROM batches WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?
        });
        Ok(row.and_then(|r| r.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_bind_every_value_in_order() {
        let q = BatchQuery {
            status: Some("completed, failed".into()),
            model: Some("gpt".into()),
            meta_key: Some("team".into()),
            meta_value: Some("x".into()),
            q: Some("50%_off".into()),
            ..Default::default()
        };
        let f = Filters::parse(&q).unwrap();
        assert_eq!(f.search.as_deref(), Some("%50\\%\\_off%"));
        let mut qb = QueryBuilder::<sqlx::Postgres>::new("SELECT 1 FROM batches");
        f.push(&mut qb, Search::Trigram);
        let sql = qb.sql();
        assert!(sql.contains(" WHERE status IN ($1, $2)"), "{sql}");
        assert!(sql.contains(" AND model = $3"), "{sql}");
        assert!(sql.contains("key = $4 AND value = $5"), "{sql}");
        assert!(sql.contains(&format!("{SEARCH_TEXT} LIKE $6")), "{sql}");
        // Shorter than a trigram: five LIKEs.
        let short_pg = Filters::parse(&BatchQuery {
            q: Some("ab".into()),
            ..Default::default()
        })
        .unwrap();
        let mut qb = QueryBuilder::<sqlx::Postgres>::new("SELECT 1 FROM batches");
        short_pg.push(&mut qb, Search::Trigram);
        assert!(
            qb.sql().contains("LOWER(input_file_name) LIKE $5 ESCAPE"),
            "{}",
            qb.sql()
        );
        let mut none = QueryBuilder::<sqlx::Sqlite>::new("SELECT 1 FROM batches");
        Filters::parse(&BatchQuery::default())
            .unwrap()
            .push(&mut none, Search::Fts5);
        assert_eq!(none.sql(), "SELECT 1 FROM batches");
        // SQLite: through the trigram index, as a quoted phrase; shorter
        // than a trigram, the scan.
        let mut fts = QueryBuilder::<sqlx::Sqlite>::new("SELECT 1 FROM batches");
        f.push(&mut fts, Search::Fts5);
        assert!(fts.sql().contains("batches_search MATCH"), "{}", fts.sql());
        assert_eq!(f.phrase.as_deref(), Some("\"50%_off\""));
        let short = Filters::parse(&BatchQuery {
            q: Some("ab".into()),
            ..Default::default()
        })
        .unwrap();
        let mut scan = QueryBuilder::<sqlx::Sqlite>::new("SELECT 1 FROM batches");
        short.push(&mut scan, Search::Fts5);
        assert!(scan.sql().contains("LIKE"), "{}", scan.sql());
        // Postgres: the expression its trigram index holds, exactly.
        let mut pg = QueryBuilder::<sqlx::Postgres>::new("SELECT 1 FROM batches");
        f.push(&mut pg, Search::Trigram);
        assert!(
            pg.sql().contains(&format!("{SEARCH_TEXT} LIKE $")),
            "{}",
            pg.sql()
        );
        let migration = include_str!("../../migrations/postgres/0006_batches_search.sql");
        let squash = |s: &str| s.split_whitespace().collect::<String>();
        assert!(
            squash(migration).contains(&squash(SEARCH_TEXT)),
            "index and query differ"
        );
    }

    /// The trigram index finds what the scan found: any part of an id,
    /// file id or file name, in any case; and it follows changes.
    #[tokio::test]
    async fn search_through_the_index_matches_parts_in_any_case() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(None, dir.path()).await.unwrap();
        for (id, name) in [
            ("batch_ABC123", "Invoices-2026.jsonl"),
            ("batch_xyz789", "Ärger.jsonl"),
        ] {
            let b: Batch = serde_json::from_value(serde_json::json!({
                "id": id, "object": "batch", "endpoint": "/v1/chat/completions",
                "input_file_id": format!("file-{id}"), "completion_window": "24h",
                "status": "completed", "created_at": 1_700_000_000,
                "metadata": {"input_file_name": name}
            }))
            .unwrap();
            db.upsert_batch(&b, Some(name), |_, _| 0).await.unwrap();
        }
        let find = |q: &str| {
            let db = db.clone();
            let q = q.to_string();
            async move {
                let (rows, total, _, _) = db
                    .query_batches(
                        &BatchQuery {
                            q: Some(q),
                            ..Default::default()
                        },
                        None,
                    )
                    .await
                    .unwrap();
                assert_eq!(rows.len() as u64, total);
                let mut ids: Vec<String> = rows.into_iter().map(|b| b.id).collect();
                ids.sort();
                ids
            }
        };
        assert_eq!(find("abc1").await, ["batch_ABC123"]);
        assert_eq!(find("INVOICES").await, ["batch_ABC123"]);
        assert_eq!(find("file-batch_x").await, ["batch_xyz789"]);
        assert_eq!(find("batch_").await, ["batch_ABC123", "batch_xyz789"]);
        assert_eq!(find("89").await, ["batch_xyz789"]);
        // Case folded beyond ASCII too (three letters or more: the index).
        assert_eq!(find("ärger").await, ["batch_xyz789"]);
        assert!(find("nowhere").await.is_empty());
        assert!(find("a\"b").await.is_empty());
    }

    #[test]
    fn dates_are_checked() {
        assert_eq!(day_start("1970-01-02", "from").unwrap(), 86_400);
        assert!(day_start("yesterday", "from").is_err());
        let q = BatchQuery {
            meta_value: Some("x".into()),
            ..Default::default()
        };
        assert!(Filters::parse(&q).is_err());
    }
}
