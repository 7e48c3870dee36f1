//! The results viewer on a finished batch's page: every request joined with
//! its answer or error by `custom_id`, paged; a failure filter, failures
//! grouped by error code, merged downloads, and "retry failures".

use leptos::prelude::*;

use super::format;
use crate::api::auth::Role;
use crate::api::results_fns::{batch_results, RetryFailed};
use batchboard_core::result_lines::{Outcome, ResultRow, ResultsPage, ResultsQuery};

const PAGE: u64 = 25;

#[component]
pub fn Results(id: String, retry: ServerAction<RetryFailed>) -> impl IntoView {
    let (show, set_show) = signal(String::new());
    let (code, set_code) = signal(String::new());
    let (offset, set_offset) = signal(0u64);
    let bid = id.clone();
    let page = Resource::new(
        move || (bid.clone(), show.get(), code.get(), offset.get()),
        |(id, show, code, offset)| {
            batch_results(
                id,
                ResultsQuery {
                    show,
                    code,
                    offset,
                    limit: PAGE,
                },
            )
        },
    );
    let filter = move |s: &'static str, c: String| {
        set_show.set(s.to_string());
        set_code.set(c);
        set_offset.set(0);
    };
    let merged = |fmt: &'static str, label: &'static str, id: &str| {
        view! {
            <a class="btn" href=format!("/api/batches/{id}/merged?format={fmt}") download=""
                data-testid=format!("download-merged-{fmt}")>{label}</a>
        }
    };
    let downloads = view! {
        <div class="downloads">
            {merged("csv", "Download merged CSV", &id)}
            {merged("jsonl", "Download merged JSONL", &id)}
        </div>
    };
    let id2 = id.clone();
    view! {
        <section class="panel" data-testid="results">
            <h2>"Results"</h2>
            <Transition fallback=|| view! { <p class="muted">"Reading results…"</p> }>
                {move || page.get().map(|r| match r {
                    Err(e) => view! { <p class="error" data-testid="results-error">{e.describe()}</p> }.into_any(),
                    Ok(p) => {
                        let id = id2.clone();
                        view! {
                            <Toolbar p=p.clone() show=show.get() code=code.get() filter />
                            <RetryBox p=p.clone() id retry />
                            <ResultsTable p=p.clone() />
                            <Pager p set_offset />
                        }.into_any()
                    }
                })}
            </Transition>
            {downloads}
        </section>
    }
}

#[component]
fn Toolbar(
    p: ResultsPage,
    show: String,
    code: String,
    filter: impl Fn(&'static str, String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let all = p.ok + p.failed + p.not_run;
    let failures = p.failed + p.not_run;
    let pressed = |on: bool| if on { "true" } else { "false" };
    let groups = p
        .error_groups
        .iter()
        .map(|(c, n)| {
            let c2 = c.clone();
            let on = code == *c;
            view! {
                <li>
                    <button class="btn btn-small" aria-pressed=pressed(on) data-testid="error-group" data-code=c.clone()
                        on:click=move |_| filter("failed", c2.clone())>
                        <code>{c.clone()}</code> " × " {format::count(*n)}
                    </button>
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="results-toolbar">
            <button class="btn btn-small" aria-pressed=pressed(show.is_empty() && code.is_empty())
                data-testid="show-all" on:click=move |_| filter("", String::new())>
                {format!("All ({})", format::count(all))}
            </button>
            <button class="btn btn-small" aria-pressed=pressed(show == "failed" && code.is_empty())
                data-testid="show-failed" on:click=move |_| filter("failed", String::new())>
                {format!("Failures ({})", format::count(failures))}
            </button>
            <span class="muted" data-testid="results-summary">
                {format!("{} succeeded, {} failed, {} never ran", format::count(p.ok), format::count(p.failed), format::count(p.not_run))}
            </span>
        </div>
        {(!p.error_groups.is_empty()).then(|| view! {
            <p class="muted">"Failures by error code:"</p>
            <ul class="error-groups" data-testid="error-groups">{groups}</ul>
        })}
    }
}

#[component]
fn RetryBox(p: ResultsPage, id: String, retry: ServerAction<RetryFailed>) -> impl IntoView {
    let n = p.failed + p.not_run;
    let pending = retry.pending();
    (n > 0 && super::session::may(Role::Operator)).then(|| {
        view! {
            <div class="actions">
                <button class="btn" data-testid="retry-failed" disabled=move || pending.get()
                    on:click=move |_| { retry.dispatch(RetryFailed { id: id.clone() }); }>
                    {format!("Retry the {} failed or unfinished request{} as a new batch", format::count(n), if n == 1 { "" } else { "s" })}
                </button>
                {move || retry.value().get().and_then(|r| r.err()).map(|e| view! { <span class="error" data-testid="retry-error">{e.describe()}</span> })}
            </div>
        }
    })
}

#[component]
fn ResultsTable(p: ResultsPage) -> impl IntoView {
    if p.rows.is_empty() {
        return view! { <p class="muted" data-testid="results-empty">"No requests match."</p> }
            .into_any();
    }
    let rows = p
        .rows
        .into_iter()
        .map(|r| view! { <Row r /> })
        .collect_view();
    view! {
        <table class="results">
            <thead><tr><th>"Line"</th><th>"custom_id"</th><th>"Status"</th><th>"Answer or error"</th><th>"Tokens (in / out)"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[component]
fn Row(r: ResultRow) -> impl IntoView {
    let ResultRow {
        line,
        custom_id,
        outcome,
        result: r,
    } = r;
    let status = match (outcome, r.status_code) {
        (Outcome::NotRun, _) => "never ran".to_string(),
        (_, Some(s)) => s.to_string(),
        (_, None) => "—".to_string(),
    };
    let detail = match outcome {
        Outcome::Ok => view! { <span>{r.answer.clone()}</span> }.into_any(),
        _ => view! {
            <span class="error">
                <code>{r.error_code.clone().unwrap_or_default()}</code> " " {r.error_message.clone().unwrap_or_default()}
            </span>
        }
        .into_any(),
    };
    let tokens = r
        .usage
        .map(|u| format!("{} / {}", format::count(u.input), format::count(u.output)))
        .unwrap_or_else(|| "—".into());
    view! {
        <tr data-testid="result-row" data-outcome=outcome.as_str() data-custom-id=custom_id.clone()>
            <td>{line}</td>
            <td class="mono">{custom_id.clone()}</td>
            <td>{status}</td>
            <td class="preview" title=r.answer.clone()>{detail}</td>
            <td>{tokens}</td>
        </tr>
    }
}

#[component]
fn Pager(p: ResultsPage, set_offset: WriteSignal<u64>) -> impl IntoView {
    let (offset, limit, matched) = (p.offset, p.limit.max(1), p.matched);
    let last = (offset + limit).min(matched);
    (matched > limit).then(|| {
        view! {
            <div class="pager">
                <button class="btn btn-small" data-testid="results-prev" disabled={ offset == 0 }
                    on:click=move |_| set_offset.set(offset.saturating_sub(limit))>"← Previous"</button>
                <span class="muted">{format!("{}–{} of {}", offset + 1, last, format::count(matched))}</span>
                <button class="btn btn-small" data-testid="results-next" disabled={ last >= matched }
                    on:click=move |_| set_offset.set(offset + limit)>"Next →"</button>
            </div>
        }
    })
}
