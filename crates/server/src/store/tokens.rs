//! Personal access tokens and the files uploaded with them (see
//! `crate::tokens` and `crate::gateway`).

use super::{on_db, Db, DbError};

const COLUMNS: &str = "id, user_name, name, role, secret_hash, created_at, expires_at, \
     revoked_at, last_used_at, last_used_ip, upstream";

/// A token as stored (its secret only as a hash).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRow {
    pub id: String,
    pub user_name: String,
    pub name: String,
    pub role: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
    /// The upstream `/v1` uses when the request names none.
    pub upstream: Option<String>,
}

impl Db {
    pub async fn insert_token(&self, t: &TokenRow) -> Result<(), DbError> {
        on_db!(self, p => {
            sqlx::query(&format!(
                "INSERT INTO tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ))
            .bind(&t.id)
            .bind(&t.user_name)
            .bind(&t.name)
            .bind(&t.role)
            .bind(&t.secret_hash)
            .bind(t.created_at)
            .bind(t.expires_at)
            .bind(t.revoked_at)
            .bind(t.last_used_at)
            .bind(&t.last_used_ip)
            .bind(&t.upstream)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    pub async fn token(&self, id: &str) -> Result<Option<TokenRow>, DbError> {
        Ok(on_db!(self, p => {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM tokens WHERE id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await?
        }))
    }

    /// Tokens of `user` (all users' for `None`), newest first.
    pub async fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenRow>, DbError> {
        Ok(on_db!(self, p => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM tokens WHERE ($1 IS NULL OR user_name = $1) \
                 ORDER BY created_at DESC, id"
            ))
            .bind(user)
            .fetch_all(p)
            .await?
        }))
    }

    /// Revokes token `id` (of `user`, unless `None`); `false` if there is
    /// no such token.
    pub async fn revoke_token(&self, id: &str, user: Option<&str>) -> Result<bool, DbError> {
        let n = on_db!(self, p => {
            sqlx::query(
                "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $1) \
                 WHERE id = $2 AND ($3 IS NULL OR user_name = $3)",
            )
            .bind(super::now())
            .bind(id)
            .bind(user)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Notes a use of token `id` (at most once a minute is written).
    pub async fn token_used(&self, id: &str, ip: Option<&str>) -> Result<(), DbError> {
        let now = super::now();
        on_db!(self, p => {
            sqlx::query(
                "UPDATE tokens SET last_used_at = $1, last_used_ip = $2 \
                 WHERE id = $3 AND (last_used_at IS NULL OR last_used_at < $4)",
            )
            .bind(now)
            .bind(ip)
            .bind(id)
            .bind(now - 60)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// A file uploaded through `/v1` by `user`.
    pub async fn add_token_file(
        &self,
        file_id: &str,
        user: &str,
        data: &str,
        estimate: Option<&batchboard_core::spend::Estimate>,
    ) -> Result<(), DbError> {
        let estimate = estimate.and_then(|e| serde_json::to_string(e).ok());
        on_db!(self, p => {
            sqlx::query(
                "INSERT INTO token_files (file_id, user_name, data, created_at, estimate) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (file_id) DO NOTHING",
            )
            .bind(file_id)
            .bind(user)
            .bind(data)
            .bind(super::now())
            .bind(estimate)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Who uploaded `file_id` through `/v1`, if anyone.
    pub async fn token_file_owner(&self, file_id: &str) -> Result<Option<String>, DbError> {
        let row: Option<(String,)> = on_db!(self, p => {
            sqlx::query_as("SELECT user_name FROM token_files WHERE file_id = $1")
                .bind(file_id)
                .fetch_optional(p)
                .await?
        });
        Ok(row.map(|r| r.0))
    }

    /// The estimate kept for a file uploaded through `/v1`.
    pub async fn token_file_estimate(
        &self,
        file_id: &str,
    ) -> Result<Option<batchboard_core::spend::Estimate>, DbError> {
        let row: Option<(Option<String>,)> = on_db!(self, p => {
            sqlx::query_as("SELECT estimate FROM token_files WHERE file_id = $1")
                .bind(file_id)
                .fetch_optional(p)
                .await?
        });
        Ok(row
            .and_then(|r| r.0)
            .and_then(|e| serde_json::from_str(&e).ok()))
    }

    /// The file objects `user` uploaded, newest first.
    pub async fn token_files(&self, user: &str, limit: i64) -> Result<Vec<String>, DbError> {
        let rows: Vec<(String,)> = on_db!(self, p => {
            sqlx::query_as(
                "SELECT data FROM token_files WHERE user_name = $1 \
                 ORDER BY created_at DESC, file_id DESC LIMIT $2",
            )
            .bind(user)
            .bind(limit)
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    pub async fn remove_token_file(&self, file_id: &str) -> Result<(), DbError> {
        on_db!(self, p => {
            sqlx::query("DELETE FROM token_files WHERE file_id = $1")
                .bind(file_id)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Whether `file_id` is the input, output or error file of an indexed batch.
    pub async fn is_batch_file(&self, file_id: &str) -> Result<bool, DbError> {
        let row: Option<(i64,)> = on_db!(self, p => {
            sqlx::query_as(
                "SELECT 1 FROM batches WHERE input_file_id = $1 OR output_file_id = $1 \
                 OR error_file_id = $1 LIMIT 1",
            )
            .bind(file_id)
            .fetch_optional(p)
            .await?
        });
        Ok(row.is_some())
    }
}
