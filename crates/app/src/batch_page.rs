//! One batch: `/batches/:id`.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::batch_table::split_around;
use super::components::{Progress, StatusBadge, Time};
use super::format;
use super::live::use_live;
use super::memo::browser_memo;
use super::progress_chart::ProgressChart;
use crate::api::results_fns::RetryFailed;
use crate::api::{batch_progress, get_batch, CancelBatch};
use crate::i18n::{t, tf, Key};
use batchboard_core::progress::ProgressPoint;
use batchboard_core::spend::BatchCost;
use batchboard_core::Batch;

#[component]
pub fn BatchPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id")).unwrap_or_default());
    let live = use_live();
    // Changes of this batch arrive on the event stream; the page then reads
    // it again from the index (never polled), as it does when the stream
    // says changes may have been missed (`live.version`).
    let changed = Memo::new(move |_| {
        live.last.with(|e| {
            e.as_ref()
                .map(|e| &e.batch)
                .filter(|b| b.id == id.get())
                .cloned()
        })
    });
    let cancel = ServerAction::<CancelBatch>::new();
    // Owned by the page, not by the details it re-renders on every change of
    // the batch: a retry started just before a change still leads on.
    let retry = ServerAction::<RetryFailed>::new();
    Effect::new(move |_| {
        if let Some(Ok(b)) = retry.value().get() {
            let navigate = leptos_router::hooks::use_navigate();
            navigate(&format!("/batches/{}", b.id), Default::default());
        }
    });
    let batch = Resource::new(
        move || {
            (
                id.get(),
                changed.get(),
                cancel.version().get(),
                live.version.get(),
            )
        },
        |(id, ..)| get_batch(id),
    );
    // Made once, here, right after the batch: see ResultsState.
    let results = super::results_view::ResultsState::new(id, changed);
    // Its counts over time, read again when the batch changes.
    let progress = Resource::new(
        move || (id.get(), changed.get(), live.version.get()),
        |(id, ..)| batch_progress(id),
    );
    // The upstreams, to name this batch's: made here with the others (a
    // resource made inside the details would not be the one the server
    // rendered, and the page would not hydrate).
    let upstreams = Resource::new(|| (), |_| crate::api::list_upstreams());
    // What it cost (or may come to), read again when it changes.
    let cost = Resource::new(
        move || (id.get(), changed.get(), live.version.get()),
        |(id, ..)| crate::api::spend_fns::get_batch_cost(id),
    );

    view! {
        <Title text=move || tf(Key::BatchTitle, &[("id", &id.get())]) />
        <p class="crumbs"><a href="/">{t(Key::BatchBack)}</a></p>
        <Transition fallback=|| view! { <p class="muted">{t(Key::BatchLoading)}</p> }>
            <Head batch cancel />
            {move || {
                batch.get()
                    .map(|r| match r {
                        Ok(b) => view! { <Detail batch=b retry results progress upstreams cost /> }.into_any(),
                        Err(e) => {
                            view! {
                                <section class="error-state" data-testid="batch-error">
                                    <h1>{tf(Key::BatchTitle, &[("id", &id.get())])}</h1>
                                    <p>{e.describe()}</p>
                                </section>
                            }
                                .into_any()
                        }
                    })
            }}
        </Transition>
    }
}

#[component]
fn Detail(
    batch: Batch,
    retry: ServerAction<RetryFailed>,
    results: super::results_view::ResultsState,
    progress: Resource<Result<Vec<ProgressPoint>, crate::api::AppError>>,
    upstreams: Resource<Result<Vec<crate::api::UpstreamView>, crate::api::AppError>>,
    cost: Resource<Result<Option<BatchCost>, crate::api::AppError>>,
) -> impl IntoView {
    let cost = move || {
        cost.get()
            .and_then(|r| r.ok())
            .map(|c| view! { <Cost cost=c /> })
    };
    let id = batch.id.clone();
    let finished = batch.status.is_terminal();
    let chart = move || {
        progress
            .get()
            .and_then(|r| r.ok())
            .map(|points| view! { <ProgressChart points finished /> })
    };
    let timeline: Vec<(&str, Option<i64>)> = vec![
        (t(Key::BatchTlCreated), Some(batch.created_at)),
        (t(Key::BatchTlInProgress), batch.in_progress_at),
        (t(Key::BatchTlFinalizing), batch.finalizing_at),
        (t(Key::BatchTlCompleted), batch.completed_at),
        (t(Key::BatchTlFailed), batch.failed_at),
        (t(Key::BatchTlCancelling), batch.cancelling_at),
        (t(Key::BatchTlCancelled), batch.cancelled_at),
        (t(Key::BatchTlExpired), batch.expired_at),
    ];
    let timeline = timeline
        .into_iter()
        .filter_map(|(label, ts)| ts.map(|ts| (label, ts)))
        .map(|(label, ts)| {
            view! {
                <li><span class="tl-label">{label}</span> <Time ts /> <span class="muted">" · " {format::absolute(ts)}</span></li>
            }
        })
        .collect_view();
    let expires = batch.expires_at.map(|ts| {
        view! { <li><span class="tl-label">{t(Key::BatchTlExpires)}</span> <Time ts /> <span class="muted">" · " {format::absolute(ts)}</span></li> }
    });

    let file_link = |label: &'static str, kind: &'static str, file: Option<String>| {
        let bid = id.clone();
        file.map(|f| {
            view! {
                <a class="btn" href=format!("/files/{f}/content?batch={bid}&kind={kind}") download=""
                    data-testid=format!("download-{kind}")>
                    {label}
                </a>
            }
        })
    };
    let downloads = view! {
        <div class="downloads">
            {file_link(t(Key::BatchDownloadInput), "input", Some(batch.input_file_id.clone()).filter(|f| !f.is_empty()))}
            {file_link(t(Key::BatchDownloadOutput), "output", batch.output_file_id.clone())}
            {file_link(t(Key::BatchDownloadErrors), "error", batch.error_file_id.clone())}
            {file_link(t(Key::BatchDownloadRaw), "results", batchboard_core::anthropic::raw_results_file(&batch))}
        </div>
    };

    let errors = batch.errors.clone().map(|e| e.data).unwrap_or_default();
    let errors = (!errors.is_empty()).then(|| {
        let rows = errors
            .into_iter()
            .map(|e| {
                view! {
                    <tr>
                        <td>{e.line.map(|l| l.to_string()).unwrap_or_else(|| "—".into())}</td>
                        <td class="mono">{e.code}</td>
                        <td class="mono">{e.param.unwrap_or_default()}</td>
                        <td>{e.message}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <section class="panel" data-testid="batch-errors">
                <h2>{t(Key::BatchErrors)}</h2>
                <div class="table-wrap table-plain">
                    <table class="errors">
                        <thead>
                            <tr>
                                <th>{t(Key::BatchErrLine)}</th>
                                <th>{t(Key::BatchErrCode)}</th>
                                <th>{t(Key::BatchErrField)}</th>
                                <th>{t(Key::BatchErrMessage)}</th>
                            </tr>
                        </thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
            </section>
        }
    });

    let usage = batch.usage.clone().map(|u| {
        view! {
            <section class="panel">
                <h2>{t(Key::BatchUsage)}</h2>
                <dl class="fields">
                    <dt>{t(Key::BatchInputTokens)}</dt>
                    <dd>
                        {tf(Key::BatchInputTokensValue, &[
                            ("n", &format::count(u.input_tokens)),
                            ("cached", &format::count(u.input_tokens_details.cached_tokens)),
                        ])}
                    </dd>
                    <dt>{t(Key::BatchOutputTokens)}</dt>
                    <dd>
                        {tf(Key::BatchOutputTokensValue, &[
                            ("n", &format::count(u.output_tokens)),
                            ("reasoning", &format::count(u.output_tokens_details.reasoning_tokens)),
                        ])}
                    </dd>
                    <dt>{t(Key::BatchTotalTokens)}</dt><dd>{format::count(u.total_tokens)}</dd>
                </dl>
            </section>
        }
    });

    let metadata = batch.metadata.clone().filter(|m| !m.is_empty()).map(|m| {
        let rows = m
            .into_iter()
            .map(|(k, v)| view! { <dt class="mono">{k}</dt><dd>{v}</dd> })
            .collect_view();
        view! { <section class="panel"><h2>{t(Key::BatchMetadata)}</h2><dl class="fields">{rows}</dl></section> }
    });

    let counts = batch.request_counts.clone();
    let results = batch
        .status
        .is_terminal()
        .then(|| view! { <super::results_view::Results id=id.clone() retry state=results /> });
    let retry_of = batch
        .metadata
        .as_ref()
        .and_then(|m| m.get(crate::api::results_fns::RETRY_OF))
        .filter(|o| crate::api::check_id("batch", o).is_ok())
        .map(|o| {
            let (before, after) = split_around(t(Key::BatchRetryOf), "batch");
            view! {
                <p data-testid="retry-of">
                    {before} <a class="mono" href=format!("/batches/{o}")>{o.clone()}</a> {after}
                </p>
            }
        });
    let part_of = batch.metadata.as_ref().and_then(|m| {
        let job = m.get(batchboard_core::jobs::META_JOB)?;
        crate::api::check_id("job", job).ok()?;
        let part = m
            .get(batchboard_core::jobs::META_PART)
            .cloned()
            .unwrap_or_default();
        let part = part.split('.').next().unwrap_or_default().to_owned();
        let (before, after) = split_around(&tf(Key::BatchPartOfJob, &[("part", &part)]), "job");
        Some(view! {
            <p data-testid="part-of-job">
                {before} <a class="mono" href=format!("/jobs/{job}")>{job.clone()}</a> {after}
            </p>
        })
    });
    let bid = batch.id.clone();
    view! {
        {retry_of}
        {part_of}
        <section class="panel">
            <Progress counts=batch.request_counts.clone() />
            <dl class="fields">
                <Suspense fallback=|| ()>{move || upstream_row(&bid, upstreams.get())}</Suspense>
                <dt>{t(Key::BatchEndpoint)}</dt><dd class="mono">{batch.endpoint.clone()}</dd>
                <dt>{t(Key::BatchModel)}</dt><dd>{batch.model.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>{t(Key::BatchCompletionWindow)}</dt><dd>{batch.completion_window.clone()}</dd>
                <dt>{t(Key::BatchRequests)}</dt>
                <dd data-testid="counts">
                    {tf(Key::BatchCounts, &[
                        ("total", &format::count(counts.total)),
                        ("completed", &format::count(counts.completed)),
                        ("failed", &format::count(counts.failed)),
                    ])}
                </dd>
                <dt>{t(Key::BatchInputFile)}</dt><dd class="mono">{batch.input_file_id.clone()}</dd>
                <dt>{t(Key::BatchOutputFile)}</dt><dd class="mono">{batch.output_file_id.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>{t(Key::BatchErrorFile)}</dt><dd class="mono">{batch.error_file_id.clone().unwrap_or_else(|| "—".into())}</dd>
            </dl>
            {downloads}
        </section>
        {chart}
        {errors}
        {results}
        <section class="panel">
            <h2>{t(Key::BatchTimeline)}</h2>
            <ul class="timeline" data-testid="timeline">{timeline}{expires}</ul>
        </section>
        {cost}
        {usage}
        {metadata}
    }
}

/// The batch's cost: from its usage or estimated, and while it runs, the
/// most it can come to.
#[component]
fn Cost(cost: Option<BatchCost>) -> impl IntoView {
    use batchboard_core::spend::Basis;
    let text = match &cost {
        None => t(Key::BatchCostNone).to_string(),
        Some(c) => {
            let args: &[(&str, &dyn std::fmt::Display)] =
                &[("usd", &format::usd(c.usd)), ("model", &c.priced_as)];
            match c.basis {
                Basis::Usage => tf(Key::BatchCostUsage, args),
                Basis::Estimated => tf(Key::BatchCostEstimated, args),
            }
        }
    };
    let upper = cost
        .as_ref()
        .and_then(|c| c.upper_usd)
        .map(|u| view! { <p class="muted" data-testid="batch-cost-upper">{tf(Key::BatchCostUpper, &[("usd", &format::usd(u))])}</p> });
    let (usd, basis) = cost.as_ref().map_or((String::new(), "none"), |c| {
        (c.usd.to_string(), c.basis.as_str())
    });
    view! {
        <section class="panel">
            <h2>{t(Key::BatchCost)}</h2>
            <p data-testid="batch-cost" data-usd=usd data-basis=basis>{text}</p>
            {upper}
        </section>
    }
}

/// The batch's id, status and Cancel button. Drawn apart from the details,
/// which are drawn anew on every change of a running batch: here only a new
/// status redraws the badge, so the button (and a question it is asking) stays
/// put, and keeps its focus, while progress arrives.
#[component]
fn Head(
    batch: Resource<Result<Batch, crate::api::AppError>>,
    cancel: ServerAction<CancelBatch>,
) -> impl IntoView {
    // Memos in the browser only: see `browser_memo` (the server rendered
    // this page once without its heading).
    let head = browser_memo(move || batch.get().and_then(|r| r.ok()).map(|b| (b.id, b.status)));
    // The batch shown (it changes without a new page when a retry opens).
    let id =
        browser_memo(move || head.with(|h| h.as_ref().map(|h| h.0.clone()).unwrap_or_default()));
    let shown = browser_memo(move || head.with(Option::is_some));
    let cancellable = browser_memo(move || {
        head.with(|h| h.as_ref().is_some_and(|h| h.1.can_cancel()))
            && super::session::may(crate::api::auth::Role::Operator)
    });
    // Not `Show`: it memoizes its condition, on the server too.
    move || {
        shown.get().then(|| {
            view! {
                <div class="page-head">
                    <h1 class="mono" data-testid="batch-id">{move || id.get()}</h1>
                    {move || head.get().map(|(_, status)| view! { <StatusBadge status /> })}
                    {move || cancellable.get().then(|| view! { <CancelButton id cancel /> })}
                </div>
            }
        })
    }
}

/// Cancelling asks for confirmation first.
#[component]
fn CancelButton(id: Signal<String>, cancel: ServerAction<CancelBatch>) -> impl IntoView {
    let (confirming, set_confirming) = signal(false);
    let pending = cancel.pending();
    let result = cancel.value();
    view! {
        <span class="cancel">
            <Show
                when=move || confirming.get()
                fallback=move || view! {
                    <button class="btn btn-danger" data-testid="cancel" on:click=move |_| set_confirming.set(true)>
                        {t(Key::BatchCancel)}
                    </button>
                }
            >
                <span class="confirm">{t(Key::BatchCancelConfirm)} " "</span>
                <button class="btn btn-danger" data-testid="confirm-cancel" disabled=move || pending.get()
                    on:click=move |_| {
                        cancel.dispatch(CancelBatch { id: id.get_untracked() });
                        set_confirming.set(false);
                    }>
                    {t(Key::BatchCancelYes)}
                </button>
                <button class="btn" on:click=move |_| set_confirming.set(false)>{t(Key::BatchCancelNo)}</button>
            </Show>
            {move || result.get().and_then(|r| r.err()).map(|e| view! { <span class="error">{e.describe()}</span> })}
        </span>
    }
}

/// "Upstream: azure (azure)", when there are several.
fn upstream_row(
    id: &str,
    upstreams: Option<Result<Vec<crate::api::UpstreamView>, crate::api::AppError>>,
) -> Option<impl IntoView> {
    use batchboard_core::dashboard::{display_upstream, split_qualified};
    let list = upstreams?.ok().filter(|l| l.len() > 1)?;
    let name = display_upstream(split_qualified(id).0).to_owned();
    let kind = list
        .iter()
        .find(|u| u.name == name)
        .map(|u| u.kind.clone())
        .unwrap_or_default();
    let text = format!("{name} ({kind})");
    Some(view! { <dt>{t(Key::BatchUpstream)}</dt><dd data-testid="batch-upstream">{text}</dd> })
}
