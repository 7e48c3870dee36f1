//! Formatting of times and numbers for the UI, the same on server and
//! browser, in the reader's language ([`crate::i18n`]).

use crate::i18n::i18n;

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    #[cfg(target_arch = "wasm32")]
    {
        (js_sys::Date::now() / 1000.0) as i64
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// `2026-11-25 16:49:02 UTC`.
pub fn absolute(ts: i64) -> String {
    batchboard_core::i18n::utc(ts)
}

/// A duration in the largest fitting unit: `45 s`, `12 min`, `3 h 5 min`.
pub fn duration(secs: i64) -> String {
    i18n().duration(secs)
}

/// `5 min ago`, or `in 5 min` for the future.
pub fn relative(ts: i64, now: i64) -> String {
    i18n().relative(ts, now)
}

/// `12,345`.
pub fn count(n: u64) -> String {
    i18n().count(n)
}

/// `4.2 MB`.
pub fn bytes(n: u64) -> String {
    i18n().bytes(n)
}

/// `$12.35`, `$0.0123`, `< $0.0001`.
pub fn usd(x: f64) -> String {
    i18n().usd(x)
}
