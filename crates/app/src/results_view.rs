//! The results viewer on a finished batch's page: every request joined with
//! its answer or error by `custom_id`, paged; a failure filter, failures
//! grouped by error code, merged downloads, and "retry failures".

use leptos::prelude::*;

use super::format;
use crate::api::auth::Role;
use crate::api::results_fns::{batch_results, RetryFailed};
use crate::api::{get_batch, AppError};
use crate::i18n::{plural, t, tf, Key};
use batchboard_core::result_lines::{Outcome, ResultRow, ResultsPage, ResultsQuery};
use batchboard_core::Batch;

const PAGE: u64 = 25;

/// The results panel's state: its filter and page, and the page of results
/// (`None` while the batch runs). The batch page makes it once, in its own
/// body: made inside the panel, which sits in the page's Transition, the
/// resource was made once per server-side render of that Transition (two or
/// three times) but once in the browser, so the ids of the data the server
/// sent did not line up and hydration failed on about half of the fresh
/// loads of a finished batch's page.
#[derive(Clone, Copy)]
pub struct ResultsState {
    show: RwSignal<String>,
    code: RwSignal<String>,
    offset: RwSignal<u64>,
    page: Resource<Result<Option<ResultsPage>, AppError>>,
}

impl ResultsState {
    /// `changed`: the batch as the event stream last reported it; the
    /// results are read again when it has ended.
    pub fn new(id: Memo<String>, changed: Memo<Option<Batch>>) -> Self {
        let show = RwSignal::new(String::new());
        let code = RwSignal::new(String::new());
        let offset = RwSignal::new(0u64);
        let page = Resource::new(
            move || {
                let ended = changed.with(|b| b.as_ref().map(|b| b.status.is_terminal()));
                (id.get(), ended, show.get(), code.get(), offset.get())
            },
            |(id, _, show, code, offset)| async move {
                if !get_batch(id.clone()).await?.status.is_terminal() {
                    return Ok(None);
                }
                let query = ResultsQuery {
                    show,
                    code,
                    offset,
                    limit: PAGE,
                };
                batch_results(id, query).await.map(Some)
            },
        );
        Self {
            show,
            code,
            offset,
            page,
        }
    }
}

#[component]
pub fn Results(id: String, retry: ServerAction<RetryFailed>, state: ResultsState) -> impl IntoView {
    let ResultsState {
        show,
        code,
        offset,
        page,
    } = state;
    let set_show = show.write_only();
    let set_code = code.write_only();
    let set_offset = offset.write_only();
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
            {merged("csv", t(Key::ResultsDownloadCsv), &id)}
            {merged("jsonl", t(Key::ResultsDownloadJsonl), &id)}
        </div>
    };
    let id2 = id.clone();
    view! {
        <section class="panel" data-testid="results">
            <h2>{t(Key::ResultsTitle)}</h2>
            <Transition fallback=|| view! { <p class="muted">{t(Key::ResultsLoading)}</p> }>
                {move || page.get().map(|r| match r {
                    Err(e) => view! { <p class="error" data-testid="results-error">{e.describe()}</p> }.into_any(),
                    Ok(None) => ().into_any(),
                    Ok(Some(p)) => {
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
                {tf(Key::ResultsShowAll, &[("n", &format::count(all))])}
            </button>
            <button class="btn btn-small" aria-pressed=pressed(show == "failed" && code.is_empty())
                data-testid="show-failed" on:click=move |_| filter("failed", String::new())>
                {tf(Key::ResultsShowFailures, &[("n", &format::count(failures))])}
            </button>
            <span class="muted" data-testid="results-summary">
                {tf(Key::ResultsSummary, &[
                    ("ok", &format::count(p.ok)),
                    ("failed", &format::count(p.failed)),
                    ("not_run", &format::count(p.not_run)),
                ])}
            </span>
        </div>
        {(!p.error_groups.is_empty()).then(|| view! {
            <p class="muted">{t(Key::ResultsByCode)}</p>
            <ul class="error-groups" data-testid="error-groups">{groups}</ul>
        })}
    }
}

#[component]
fn RetryBox(p: ResultsPage, id: String, retry: ServerAction<RetryFailed>) -> impl IntoView {
    let n = p.failed + p.not_run;
    let pending = retry.pending();
    let id = StoredValue::new(id);
    // Read in a closure: the role is known once the user's resource is.
    move || {
        (n > 0 && super::session::may(Role::Operator)).then(|| view! {
            <div class="actions">
                <button class="btn" data-testid="retry-failed" disabled=move || pending.get()
                    on:click=move |_| { retry.dispatch(RetryFailed { id: id.get_value() }); }>
                    {plural(Key::ResultsRetryOne, Key::ResultsRetryOther, n)}
                </button>
                {move || retry.value().get().and_then(|r| r.err()).map(|e| view! { <span class="error" data-testid="retry-error">{e.describe()}</span> })}
            </div>
        })
    }
}

#[component]
fn ResultsTable(p: ResultsPage) -> impl IntoView {
    if p.rows.is_empty() {
        return view! { <p class="muted" data-testid="results-empty">{t(Key::ResultsEmpty)}</p> }
            .into_any();
    }
    let rows = p
        .rows
        .into_iter()
        .map(|r| view! { <Row r /> })
        .collect_view();
    view! {
        <div class="table-wrap table-plain">
            <table class="results">
                <thead>
                    <tr>
                        <th>{t(Key::ResultsColLine)}</th>
                        <th>"custom_id"</th>
                        <th>{t(Key::ResultsColStatus)}</th>
                        <th>{t(Key::ResultsColAnswer)}</th>
                        <th>{t(Key::ResultsColTokens)}</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
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
        (Outcome::NotRun, _) => t(Key::ResultsNeverRan).to_string(),
        (_, Some(s)) => s.to_string(),
        (_, None) => "—".to_string(),
    };
    let answer = r
        .answer_msg
        .as_ref()
        .map(crate::i18n::msg)
        .unwrap_or_else(|| r.answer.clone());
    let detail = match outcome {
        Outcome::Ok => view! { <span>{answer.clone()}</span> }.into_any(),
        _ => view! {
            <span class="error">
                <code>{r.error_code.clone().unwrap_or_default()}</code> " "
                // The server words this one; the upstream's own messages stay as sent.
                {if outcome == Outcome::NotRun {
                    t(Key::ResultsNotRunDetail).to_string()
                } else {
                    r.error_message.clone().unwrap_or_default()
                }}
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
            <td class="preview" title=answer>{detail}</td>
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
                    on:click=move |_| set_offset.set(offset.saturating_sub(limit))>{t(Key::ResultsPrevious)}</button>
                <span class="muted">
                    {tf(Key::ResultsRange, &[
                        ("from", &format::count(offset + 1)),
                        ("to", &format::count(last)),
                        ("total", &format::count(matched)),
                    ])}
                </span>
                <button class="btn btn-small" data-testid="results-next" disabled={ last >= matched }
                    on:click=move |_| set_offset.set(offset + limit)>{t(Key::ResultsNext)}</button>
            </div>
        }
    })
}
