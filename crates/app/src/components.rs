//! Small pieces shared by the pages.

use leptos::prelude::*;

use super::format;
use crate::i18n::{self, tf, Key};
use batchboard_core::{BatchStatus, RequestCounts};

/// A status as a coloured badge; unknown statuses show as themselves.
#[component]
pub fn StatusBadge(status: BatchStatus) -> impl IntoView {
    let class = match &status {
        BatchStatus::Completed => "badge status-ok",
        BatchStatus::Failed | BatchStatus::Expired => "badge status-bad",
        BatchStatus::Cancelled | BatchStatus::Cancelling => "badge status-muted",
        BatchStatus::Other(_) => "badge status-unknown",
        _ => "badge status-active",
    };
    view! {
        <span class=class data-testid="status" data-status=status.to_string()>
            {i18n::status(&status)}
        </span>
    }
}

/// Progress from `request_counts`: completed and failed out of total.
#[component]
pub fn Progress(counts: RequestCounts) -> impl IntoView {
    let c = counts;
    let total = c.total.max(1) as f64;
    let done = c.completed as f64 / total * 100.0;
    let failed = c.failed as f64 / total * 100.0;
    let label = if c.total == 0 {
        "—".to_string()
    } else {
        let done = format::count(c.completed + c.failed);
        let total = format::count(c.total);
        if c.failed > 0 {
            tf(
                Key::ProgressDoneFailed,
                &[
                    ("done", &done),
                    ("total", &total),
                    ("failed", &format::count(c.failed)),
                ],
            )
        } else {
            tf(Key::ProgressDone, &[("done", &done), ("total", &total)])
        }
    };
    let title = label.clone();
    view! {
        <div class="progress" title=title data-testid="progress">
            <div class="progress-bar">
                <span class="progress-done" style=format!("width: {done:.1}%")></span>
                <span class="progress-failed" style=format!("width: {failed:.1}%")></span>
            </div>
            <span class="progress-label">{label}</span>
        </div>
    }
}

/// A time as "5 min ago", with the time on hover: in UTC, and once the
/// page is live also in the reader's own time zone (only the browser knows
/// it; the server's page and hydration both show UTC alone).
#[component]
pub fn Time(ts: i64) -> impl IntoView {
    let utc = format::absolute(ts);
    #[cfg(feature = "hydrate")]
    let title = move || match i18n::local_time(ts).filter(|_| crate::hydrated()) {
        Some(local) => tf(Key::TimeUtcHover, &[("local", &local), ("utc", &utc)]),
        None => utc.clone(),
    };
    // The server knows no reader's time zone (and would run a closure
    // twice).
    #[cfg(not(feature = "hydrate"))]
    let title = utc;
    view! {
        <time datetime=ts.to_string() title=title>
            {format::relative(ts, format::now())}
        </time>
    }
}

/// A filter of a plain GET form: a select of `(value, label)` options,
/// with "any" first.
pub fn filter_select(
    name: &'static str,
    label: &'static str,
    options: Vec<(String, String)>,
    current: Option<String>,
) -> impl IntoView {
    let options = options
        .into_iter()
        .map(|(v, text)| {
            let selected = current.as_deref() == Some(v.as_str());
            view! { <option value=v selected=selected>{text}</option> }
        })
        .collect_view();
    view! {
        <label class="filter">
            <span>{label}</span>
            <select name=name data-testid=format!("filter-{name}")>
                <option value="">{crate::i18n::t(Key::TableFilterAny)}</option>
                {options}
            </select>
        </label>
    }
}

/// A filter of a plain GET form: an input of `kind`.
pub fn filter_text(
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    value: Option<String>,
) -> impl IntoView {
    view! {
        <label class="filter">
            <span>{label}</span>
            <input type=kind name=name value=value.unwrap_or_default() data-testid=format!("filter-{name}") />
        </label>
    }
}
