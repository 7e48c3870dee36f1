//! The batch table's rows as HTML, each remembered for the second it was
//! rendered in (server only).
//!
//! A row's HTML depends on nothing but its [`TableRow`], whether the
//! upstream column shows, the reader's language and, through its relative
//! times ("5 min ago", the time left), the current second. Under load the
//! same rows (the first page, mostly) are rendered many times a second, and
//! rendering twenty rows through Leptos' views was over a quarter of the
//! server's CPU for the table page (perf, frame-pointer build). So each row
//! is rendered once per second and language, and copied otherwise.
//!
//! Nothing else may go into a row's HTML unless it goes into [`Entry`] too:
//! a cell that came to depend on the reader (their role, say) would
//! otherwise be shown to the next reader of that row.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use batchboard_core::dashboard::TableRow;

/// A row as last rendered: with what, and when.
struct Entry {
    second: i64,
    several: bool,
    row: TableRow,
    html: Arc<str>,
}

/// By language, then batch id.
type Rows = HashMap<&'static str, HashMap<String, Entry>>;

static ROWS: LazyLock<Mutex<Rows>> = LazyLock::new(Default::default);

/// Rows remembered at most, in all languages (a few hundred KB).
const MAX_ROWS: usize = 2048;

/// The HTML of `rows` in language `lang` at `second`, as a tbody's
/// children: each row's (from `render` unless remembered), then the
/// marker Leptos writes after a list.
pub fn render(
    rows: Vec<TableRow>,
    several: bool,
    lang: &'static str,
    second: i64,
    render: impl Fn(TableRow) -> String,
) -> String {
    let fresh =
        |e: &Entry, row: &TableRow| e.second == second && e.several == several && e.row == *row;
    // Looked up together (one lock), rendered outside the lock.
    let known: Vec<Option<Arc<str>>> = match ROWS.lock() {
        Ok(map) => {
            let by_id = map.get(lang);
            rows.iter()
                .map(|r| {
                    by_id
                        .and_then(|m| m.get(&r.id))
                        .filter(|e| fresh(e, r))
                        .map(|e| e.html.clone())
                })
                .collect()
        }
        Err(_) => vec![None; rows.len()],
    };
    let mut made = Vec::new();
    let mut out = String::with_capacity(rows.len() * 1024 + 3);
    for (row, known) in rows.into_iter().zip(known) {
        match known {
            Some(html) => out.push_str(&html),
            None => {
                let html: Arc<str> = render(row.clone()).into();
                out.push_str(&html);
                made.push(Entry {
                    second,
                    several,
                    row,
                    html,
                });
            }
        }
    }
    out.push_str("<!>");
    if !made.is_empty() {
        if let Ok(mut map) = ROWS.lock() {
            let count: usize = map.values().map(HashMap::len).sum();
            if count + made.len() > MAX_ROWS {
                map.clear();
            }
            let by_id = map.entry(lang).or_default();
            for e in made {
                by_id.insert(e.row.id.clone(), e);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn row(id: &str, status: &str) -> TableRow {
        TableRow {
            id: id.into(),
            status: status.into(),
            endpoint: "/v1/chat/completions".into(),
            ..Default::default()
        }
    }

    /// Renders `rows`, counting how many went through `render`.
    fn rendered(
        rows: Vec<TableRow>,
        several: bool,
        lang: &'static str,
        second: i64,
    ) -> (String, usize) {
        let calls = Cell::new(0);
        let html = super::render(rows, several, lang, second, |r| {
            calls.set(calls.get() + 1);
            format!("<tr>{} {} {several} {lang} {second}</tr>", r.id, r.status)
        });
        (html, calls.get())
    }

    #[test]
    fn a_row_is_rendered_once_per_second_language_and_content() {
        let a = || row("batch_cache_a", "in_progress");
        let b = || row("batch_cache_b", "completed");
        let (first, calls) = rendered(vec![a(), b()], false, "en", 100);
        assert_eq!(calls, 2);
        assert_eq!(
            first,
            "<tr>batch_cache_a in_progress false en 100</tr><tr>batch_cache_b completed false en 100</tr><!>"
        );
        // The same rows in the same second: copied, in the page's order.
        let (again, calls) = rendered(vec![b(), a()], false, "en", 100);
        assert_eq!(calls, 0);
        assert_eq!(
            again,
            "<tr>batch_cache_b completed false en 100</tr><tr>batch_cache_a in_progress false en 100</tr><!>"
        );
        // Anything the HTML depends on renders the row again.
        assert_eq!(rendered(vec![a()], false, "en", 101).1, 1, "next second");
        assert_eq!(rendered(vec![a()], false, "ko", 101).1, 1, "other language");
        assert_eq!(rendered(vec![a()], true, "en", 101).1, 1, "upstream column");
        let changed = row("batch_cache_a", "completed");
        let (html, calls) = rendered(vec![changed], true, "en", 101);
        assert_eq!(
            (html.as_str(), calls),
            ("<tr>batch_cache_a completed true en 101</tr><!>", 1),
            "changed batch"
        );
    }

    #[test]
    fn no_rows_is_the_marker_alone() {
        assert_eq!(rendered(Vec::new(), false, "en", 1), ("<!>".to_string(), 0));
    }
}
