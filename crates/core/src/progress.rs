//! A batch's progress over time, as the watcher observed it, and what it
//! says about when the batch will finish.

use serde::{Deserialize, Serialize};

/// The request counts at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressPoint {
    /// Unix seconds.
    pub at: i64,
    pub completed: u64,
    pub failed: u64,
    pub total: u64,
}

impl ProgressPoint {
    pub fn done(&self) -> u64 {
        self.completed + self.failed
    }
}

/// How far back the current rate looks.
pub const RATE_WINDOW_SECS: i64 = 15 * 60;

/// Requests finished per second over the last [`RATE_WINDOW_SECS`] of
/// observations (or all of them, if they span less), and the seconds left
/// at that rate. `None` until two observations apart in time show progress.
pub fn rate_and_eta(points: &[ProgressPoint]) -> Option<(f64, i64)> {
    let last = points.last()?;
    let since = last.at - RATE_WINDOW_SECS;
    let first = points
        .iter()
        .find(|p| p.at >= since && p.at < last.at)
        .or_else(|| points.iter().rev().find(|p| p.at < last.at))?;
    let secs = (last.at - first.at) as f64;
    let done = last.done().saturating_sub(first.done()) as f64;
    if secs <= 0.0 || done <= 0.0 {
        return None;
    }
    let rate = done / secs;
    let left = last.total.saturating_sub(last.done()) as f64;
    Some((rate, (left / rate).ceil() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(at: i64, completed: u64, failed: u64) -> ProgressPoint {
        ProgressPoint {
            at,
            completed,
            failed,
            total: 1000,
        }
    }

    #[test]
    fn the_rate_comes_from_the_recent_window() {
        assert_eq!(rate_and_eta(&[]), None);
        assert_eq!(rate_and_eta(&[p(0, 10, 0)]), None);
        assert_eq!(rate_and_eta(&[p(0, 10, 0), p(60, 10, 0)]), None);
        // 100 requests a minute; 800 left: 8 minutes.
        let (rate, eta) = rate_and_eta(&[p(0, 90, 10), p(60, 180, 20)]).unwrap();
        assert!((rate - 100.0 / 60.0).abs() < 1e-9);
        assert_eq!(eta, 480);
        // A slow start an hour ago does not count: only the last 15 min.
        let (_, eta) = rate_and_eta(&[p(0, 0, 0), p(3000, 100, 0), p(3600, 400, 0)]).unwrap();
        assert_eq!(eta, 1200);
    }
}
