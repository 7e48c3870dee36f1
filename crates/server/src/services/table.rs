//! The batch table's pages: read from the index with their match count
//! (remembered with the facets) and each row's cost, and kept for a moment
//! so that viewers of the same view between two changes share one read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use batchboard_core::dashboard::{BatchQuery, TableRow};

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
/// not hear of, such as a batch the upstream dropped or a price table
/// edited, show within that).
#[derive(Default)]
pub struct PageCache(Mutex<HashMap<String, Entry>>);

/// When a page was read, at which hub version, and the page.
type Entry = (Instant, u64, Arc<Page>);

impl PageCache {
    const FRESH: Duration = Duration::from_secs(1);
    /// Views remembered at most.
    const VIEWS: usize = 256;

    fn get(&self, key: &str, version: u64) -> Option<Arc<Page>> {
        let guard = self.0.lock().ok()?;
        let (at, v, page) = guard.get(key)?;
        (*v == version && at.elapsed() < Self::FRESH).then(|| page.clone())
    }

    fn put(&self, key: String, version: u64, page: Arc<Page>) {
        if let Ok(mut guard) = self.0.lock() {
            if guard.len() >= Self::VIEWS {
                guard.retain(|_, (at, v, _)| *v == version && at.elapsed() < Self::FRESH);
                if guard.len() >= Self::VIEWS {
                    guard.clear();
                }
            }
            guard.insert(key, (Instant::now(), version, page));
        }
    }
}

/// The page of the table `query` asks for.
pub async fn page(state: &AppState, query: &BatchQuery) -> Result<Arc<Page>, DbError> {
    // Read before the index: a change written meanwhile makes this entry
    // stale at once.
    let version = state.hub.version();
    let key = query.to_query_string();
    if let Some(page) = state.pages.get(&key, version) {
        return Ok(page);
    }
    // The count depends on the filters only: remembered with the facets.
    let count_key = query.filter_key();
    let (batches, total, offset, limit) = state
        .db
        .query_batches(query, state.facets.count(&count_key))
        .await?;
    state.facets.put_count(count_key, total);
    let rows = batches
        .iter()
        .map(|b| TableRow::of(b, super::spend::row_cost(state, b)))
        .collect();
    let page = Arc::new(Page {
        rows,
        total,
        offset,
        limit,
    });
    state.pages.put(key, version, page.clone());
    Ok(page)
}
