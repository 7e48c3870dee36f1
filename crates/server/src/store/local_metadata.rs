//! Metadata Batchboard keeps for batches whose upstream keeps none
//! (Anthropic's message batches): the creator, `retry_of`, the form's
//! pairs. [`crate::state::AppState::index_many`] puts it back into such a
//! batch whenever it is indexed, so the table, filters and retries see it
//! as for any other batch.

use std::collections::HashMap;

use super::{on_db, Db, DbError};
use batchboard_core::Metadata;

impl Db {
    /// Keeps `metadata` for batch `id` (replacing what was kept).
    pub async fn set_local_metadata(&self, id: &str, metadata: &Metadata) -> Result<(), DbError> {
        let text = serde_json::to_string(metadata).unwrap_or_else(|_| "{}".into());
        on_db!(self, p => {
            sqlx::query(
                "INSERT INTO batch_local_metadata (batch_id, metadata) VALUES ($1, $2) \
                 ON CONFLICT (batch_id) DO UPDATE SET metadata = excluded.metadata",
            )
            .bind(id)
            .bind(&text)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// What is kept for those of `ids` that have any.
    pub async fn local_metadata(&self, ids: &[&str]) -> Result<HashMap<String, Metadata>, DbError> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(500) {
            let rows: Vec<(String, String)> = on_db!(self, p => {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT batch_id, metadata FROM batch_local_metadata WHERE batch_id IN (",
                );
                let mut list = qb.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                qb.push(")");
                qb.build_query_as().persistent(false).fetch_all(p).await?
            });
            for (id, text) in rows {
                if let Ok(m) = serde_json::from_str::<Metadata>(&text) {
                    out.insert(id, m);
                }
            }
        }
        Ok(out)
    }
}
