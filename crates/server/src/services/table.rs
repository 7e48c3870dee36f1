//! The batch table's pages: read from the index with their match count
//! (remembered with the facets) and each row's cost, and kept for a moment
//! so that viewers of the same view between two changes share one read.

use std::sync::Arc;
use std::time::Duration;

use batchboard_core::dashboard::{BatchQuery, TableRow};

use crate::recent::Recent;
use crate::state::AppState;
use crate::store::DbError;

/// A page's rows and where it stands among all matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub rows: Vec<TableRow>,
    pub total: u64,
    pub offset: u32,
    pub limit: u32,
}

/// Pages recently read, by their whole query. One is served again only
/// while the hub has passed on no change since it was read (a change
/// reaches the hub after it is written, so a view reloaded for a change
/// reads afresh) and for at most [`PageCache::FRESH`] (writes the hub does
/// not hear of, such as a price table edited, show within that). Viewers of
/// one view reloading for the same change share one read.
pub struct PageCache(Recent<Arc<Page>>);

impl PageCache {
    const FRESH: Duration = Duration::from_secs(1);
    /// Views remembered at most.
    const VIEWS: usize = 256;
}

impl Default for PageCache {
    fn default() -> Self {
        Self(Recent::new(Self::FRESH, Self::VIEWS))
    }
}

/// The page of the table `query` asks for.
pub async fn page(state: &AppState, query: &BatchQuery) -> Result<Arc<Page>, DbError> {
    // Read before the index: a change written meanwhile makes this entry
    // stale at once.
    let version = state.hub.version();
    let key = query.to_query_string();
    state
        .pages
        .0
        .get_or_read(&key, version, || read_page(state, query))
        .await
}

async fn read_page(state: &AppState, query: &BatchQuery) -> Result<Arc<Page>, DbError> {
    // The count depends on the filters only: remembered with the facets.
    let count_key = query.filter_key();
    let count = state.facets.count(&count_key);
    let known = count.get().copied();
    let (batches, total, offset, limit) = state.db.query_batches(query, known).await?;
    // Already there when another viewer counted meanwhile: the same count.
    let _ = count.set(total);
    let rows = batches
        .iter()
        .map(|b| TableRow::of(b, super::spend::row_cost(state, b)))
        .collect();
    Ok(Arc::new(Page {
        rows,
        total,
        offset,
        limit,
    }))
}
