//! Batchboard's own database: sessions and the audit log. SQLite in the data
//! directory by default; Postgres when `DATABASE_URL` names one (several
//! replicas then share it). Schema changes are sqlx migrations under
//! `migrations/<backend>/`, applied at start.

mod bulk;
pub mod index;
pub mod jobs;
pub mod lease;
mod local_metadata;
pub mod notify;
pub mod progress;
#[cfg(test)]
mod query_tests;
mod sessions;
pub mod spend;
mod throttle;
pub mod tokens;
mod upsert;
mod watch;

pub use sessions::Sessions;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use batchboard_core::access::AuditEntry;
use batchboard_core::i18n::Msg;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("DATABASE_URL: {0}")]
    Url(String),
    #[error("database file {0}")]
    File(String),
    /// A query the caller asked for cannot be run as given (their mistake).
    #[error("{0}")]
    Query(batchboard_core::i18n::Msg),
    /// What the database holds cannot be read or written as a batch.
    #[error("{0}")]
    Corrupt(String),
}

/// A pool of one backend or the other.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// One audit record to write.
#[derive(Debug, Clone, Default)]
pub struct Audit<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    /// Stored in English, and untranslated for the audit page.
    pub detail: Option<Msg>,
    pub ip: Option<&'a str>,
}

/// Runs `$body` with `$p` bound to the pool of either backend: the same
/// SQL (`$N` placeholders) and the same calls serve both.
macro_rules! on_db {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            Db::Sqlite($p) => $body,
            Db::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_db;

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

type AuditRow = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl Db {
    /// Opens `url` (`postgres://…`), or the SQLite file `<data_dir>/batchboard.db`
    /// when there is none, and brings its schema up to date.
    pub async fn open(url: Option<&str>, data_dir: &Path) -> Result<Self, DbError> {
        let db = match url {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                // Plans made for each query's own values: a plan cached
                // for any search text or metadata pair (a generic plan)
                // can be a full scan where the actual one uses an index.
                let options = sqlx::postgres::PgConnectOptions::from_str(u)
                    .map_err(|e| DbError::Url(e.to_string()))?
                    .options([("plan_cache_mode", "force_custom_plan")]);
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                Self::Postgres(pool)
            }
            Some(u) if u.starts_with("sqlite:") => Self::Sqlite(Self::sqlite(
                SqliteConnectOptions::from_str(u)
                    .map_err(|e| DbError::Url(e.to_string()))?
                    .create_if_missing(true),
            )?),
            Some(other) => {
                let scheme = other.split(':').next().unwrap_or_default();
                return Err(DbError::Url(format!(
                    "'{scheme}:' is not supported; use postgres://… or sqlite:…"
                )));
            }
            None => {
                let file = data_dir.join("batchboard.db");
                // Made owner-only before SQLite opens it (its journal files
                // take the database's mode): it holds the sessions.
                #[cfg(unix)]
                if !file.exists() {
                    use std::os::unix::fs::OpenOptionsExt;
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&file)
                        .map_err(|e| DbError::File(format!("{}: {e}", file.display())))?;
                }
                Self::Sqlite(Self::sqlite(
                    SqliteConnectOptions::new()
                        .filename(file)
                        .create_if_missing(true),
                )?)
            }
        };
        db.migrate().await?;
        Ok(db)
    }

    fn sqlite(opts: SqliteConnectOptions) -> Result<SqlitePool, DbError> {
        let opts = opts
            .journal_mode(SqliteJournalMode::Wal)
            // Safe with WAL (a crash loses at most the last commits, never
            // the file) and much faster than fsync per commit.
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        Ok(SqlitePoolOptions::new()
            .max_connections(8)
            .connect_lazy_with(opts))
    }

    async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Self::Sqlite(p) => {
                sqlx::migrate!("migrations/sqlite").run(p).await?;
                SqliteStore::new(p.clone()).migrate().await?;
            }
            Self::Postgres(p) => {
                sqlx::migrate!("migrations/postgres").run(p).await?;
                PostgresStore::new(p.clone()).migrate().await?;
            }
        }
        Ok(())
    }

    /// The session store on this database.
    pub fn session_store(&self) -> Sessions {
        match self {
            Self::Sqlite(p) => Sessions::Sqlite(SqliteStore::new(p.clone()), p.clone()),
            Self::Postgres(p) => Sessions::Postgres(PostgresStore::new(p.clone()), p.clone()),
        }
    }

    /// Appends to the audit log.
    pub async fn audit(&self, a: Audit<'_>) -> Result<(), DbError> {
        on_db!(self, p => {
            sqlx::query(
                "INSERT INTO audit_log (at, actor, action, target, detail, ip, detail_msg) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(now())
            .bind(a.actor)
            .bind(a.action)
            .bind(a.target)
            .bind(a.detail.as_ref().map(Msg::to_string))
            .bind(a.ip)
            .bind(a.detail.as_ref().and_then(|m| serde_json::to_string(m).ok()))
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Forgets audit entries older than `before` (Unix seconds); returns
    /// how many.
    pub async fn prune_audit(&self, before: i64) -> Result<u64, DbError> {
        Ok(on_db!(self, p => {
            sqlx::query("DELETE FROM audit_log WHERE at < $1")
                .bind(before)
                .execute(p)
                .await?
                .rows_affected()
        }))
    }

    /// Keeps the audit log to its last `days` days: prunes now and hourly.
    pub fn spawn_audit_retention(&self, days: u32) {
        let db = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                match db.prune_audit(now() - i64::from(days) * 86_400).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        entries = n,
                        days,
                        "audit log: forgot entries past retention"
                    ),
                    Err(e) => tracing::warn!(error = %e, "audit log: cannot prune"),
                }
            }
        });
    }

    /// The newest `limit` audit entries older than id `before`, newest first,
    /// optionally only one action.
    pub async fn audit_page(
        &self,
        before: Option<i64>,
        action: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, DbError> {
        // The casts tell Postgres the parameters' types for `IS NULL`.
        let rows: Vec<AuditRow> = on_db!(self, p => {
            sqlx::query_as(
                "SELECT id, at, actor, action, target, detail, ip, detail_msg FROM audit_log \
                 WHERE (CAST($1 AS BIGINT) IS NULL OR id < $1) \
                 AND (CAST($2 AS TEXT) IS NULL OR action = $2) \
                 ORDER BY id DESC LIMIT $3",
            )
            .bind(before)
            .bind(action)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(id, at, actor, action, target, detail, ip, msg)| AuditEntry {
                    id,
                    at,
                    actor,
                    action,
                    target,
                    detail,
                    ip,
                    // Read leniently: a text a later version renamed shows as
                    // the stored English.
                    detail_msg: msg.and_then(|m| serde_json::from_str(&m).ok()),
                },
            )
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn audit_entries_past_retention_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(None, dir.path()).await.unwrap();
        for actor in ["a", "b"] {
            db.audit(Audit {
                actor,
                action: "sign_in",
                ..Default::default()
            })
            .await
            .unwrap();
        }
        assert_eq!(db.prune_audit(now() - 60).await.unwrap(), 0);
        assert_eq!(db.audit_page(None, None, 10).await.unwrap().len(), 2);
        assert_eq!(db.prune_audit(now() + 1).await.unwrap(), 2);
        assert!(db.audit_page(None, None, 10).await.unwrap().is_empty());
    }
}
