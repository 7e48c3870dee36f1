//! Loading many batches at once (`index-seed`, the watcher's full list, the
//! benchmarks): transactions of [`BULK_TX`] batches, and on Postgres
//! [`WRITERS`] of them at a time.
//!
//! One Postgres transaction is one backend process, so one core: a profile of
//! a 100,000-batch seed showed the backend busy 85 % of the time (most of it
//! keeping the table's indexes) while the dashboard prepared the next group,
//! and the other core mostly idle. SQLite has one writer whatever the number
//! of connections, so there the transactions follow one another.

use batchboard_core::Batch;

use super::index::Upsert;
use super::{Db, DbError};

/// Batches per transaction.
const BULK_TX: usize = 5000;

/// Transactions at once on Postgres.
const WRITERS: usize = 2;

impl Db {
    /// [`Db::upsert_batches`] for a load too large for one transaction:
    /// what each batch's write did, in order. A batch is always written by
    /// the same writer (chosen by its id), so one given twice is still
    /// written in the order given. Transactions commit one by one: a
    /// failure leaves those before it written.
    pub async fn upsert_bulk(
        &self,
        items: &[(&Batch, Option<&str>)],
        schedule: impl Fn(&Batch, &Upsert) -> i64 + Sync,
    ) -> Result<Vec<Upsert>, DbError> {
        let writers = match self {
            Db::Sqlite(_) => 1,
            Db::Postgres(_) => WRITERS,
        };
        // Each writer's share, as positions in `items`.
        let mut shares: Vec<Vec<usize>> = vec![Vec::new(); writers];
        for (i, (b, _)) in items.iter().enumerate() {
            shares[writer_of(&b.id, writers)].push(i);
        }
        let schedule = &schedule;
        let done = futures_util::future::try_join_all(shares.iter().map(|share| async move {
            let mut outcomes = Vec::with_capacity(share.len());
            for part in share.chunks(BULK_TX) {
                let part: Vec<(&Batch, Option<&str>)> = part.iter().map(|&i| items[i]).collect();
                outcomes.extend(self.upsert_batches(&part, schedule).await?);
            }
            Ok::<_, DbError>(outcomes)
        }))
        .await?;
        let mut outcomes: Vec<Option<Upsert>> = vec![None; items.len()];
        for (share, done) in shares.iter().zip(done) {
            for (&i, outcome) in share.iter().zip(done) {
                outcomes[i] = Some(outcome);
            }
        }
        outcomes
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| DbError::Corrupt("a bulk write said nothing of a batch".into()))
    }

    /// Whether [`Db::upsert_bulk`] of `n` batches is one transaction (so
    /// either all written or none) rather than several, each committed on
    /// its own.
    pub fn bulk_is_atomic(&self, n: usize) -> bool {
        match self {
            Db::Sqlite(_) => n <= BULK_TX,
            Db::Postgres(_) => n <= 1,
        }
    }
}

/// The writer of a batch: the same for the same id, spread evenly.
fn writer_of(id: &str, writers: usize) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(id) as usize % writers
}
