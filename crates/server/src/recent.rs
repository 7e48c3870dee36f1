//! Values read recently, kept for a moment, with one read per miss: callers
//! that ask for the same missing value at once share the read of the first
//! (a burst of viewers after a change or an expiry costs one query, not one
//! each).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

/// By key, the value read at a version (the caller's count of changes) for
/// at most `fresh`.
pub struct Recent<T> {
    slots: Mutex<HashMap<String, Slot<T>>>,
    fresh: Duration,
    /// Keys remembered at most.
    max: usize,
}

/// When its read began, at which version, and the value once read. A read
/// that fails leaves the cell empty: the next caller reads again.
struct Slot<T> {
    at: Instant,
    version: u64,
    cell: Arc<OnceCell<T>>,
}

impl<T: Clone> Recent<T> {
    pub fn new(fresh: Duration, max: usize) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            fresh,
            max,
        }
    }

    /// The value of `key` at `version`: remembered, being read by another
    /// caller (then its result), or read now with `read`. A caller that
    /// goes away mid-read hands the read to the next one waiting.
    pub async fn get_or_read<E, F, Fut>(&self, key: &str, version: u64, read: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let cell = self.cell(key, version);
        cell.get_or_try_init(read).await.cloned()
    }

    /// This key's cell at this version, a new one if its value is stale:
    /// for a caller that reads without waiting for others, and fills the
    /// cell (`OnceCell::set`) when it has read. A cell from before
    /// [`Recent::clear`] is nobody's: what is put in it is not kept.
    pub fn cell(&self, key: &str, version: u64) -> Arc<OnceCell<T>> {
        let Ok(mut slots) = self.slots.lock() else {
            // Poisoned: read alone, remember nothing.
            return Arc::default();
        };
        let fresh = |s: &Slot<T>| s.version == version && s.at.elapsed() < self.fresh;
        if let Some(slot) = slots.get(key).filter(|s| fresh(s)) {
            return slot.cell.clone();
        }
        if slots.len() >= self.max {
            slots.retain(|_, s| fresh(s));
            if slots.len() >= self.max {
                slots.clear();
            }
        }
        let cell = Arc::<OnceCell<T>>::default();
        let slot = Slot {
            at: Instant::now(),
            version,
            cell: cell.clone(),
        };
        slots.insert(key.to_owned(), slot);
        cell
    }

    /// Forgets every value: the next caller of each key reads afresh (reads
    /// under way finish for those already waiting on them).
    pub fn clear(&self) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn callers_at_once_share_one_read() {
        let recent = Recent::<u32>::new(Duration::from_secs(60), 8);
        let reads = AtomicUsize::new(0);
        let read = || async {
            reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<_, ()>(7)
        };
        let all =
            futures_util::future::join_all((0..20).map(|_| recent.get_or_read("k", 1, read))).await;
        assert!(all.iter().all(|r| *r == Ok(7)));
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        // Remembered at that version, read again at the next.
        assert_eq!(recent.get_or_read("k", 1, read).await, Ok(7));
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        assert_eq!(recent.get_or_read("k", 2, read).await, Ok(7));
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        recent.clear();
        assert_eq!(recent.get_or_read("k", 2, read).await, Ok(7));
        assert_eq!(reads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failed_read_is_not_remembered() {
        let recent = Recent::<u32>::new(Duration::from_secs(60), 8);
        assert_eq!(
            recent.get_or_read("k", 1, || async { Err("down") }).await,
            Err("down")
        );
        assert_eq!(
            recent
                .get_or_read("k", 1, || async { Ok::<_, &str>(3) })
                .await,
            Ok(3)
        );
    }

    #[tokio::test]
    async fn a_stale_value_is_read_again() {
        let recent = Recent::<u32>::new(Duration::from_millis(20), 8);
        assert_eq!(
            recent
                .get_or_read("k", 1, || async { Ok::<_, ()>(1) })
                .await,
            Ok(1)
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(
            recent
                .get_or_read("k", 1, || async { Ok::<_, ()>(2) })
                .await,
            Ok(2)
        );
    }
}
