//! Jobs: `/jobs` lists them, `/jobs/{id}` shows one with its parts (each a
//! batch, again after a wait for the enqueued-token limit; retries are
//! parts of their own), its progress, rate and estimated finish, the merged
//! result's downloads and Cancel. Both reload as the live stream reports
//! changes, and every two seconds while a job runs (the scheduler moves
//! parts between batch changes). Links are plain `<a>` (the router still
//! takes their clicks): `<A>` needs the router's context, which a view
//! rendered late for a request that has gone away no longer has.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::components::Time;
use super::format;
use super::live::use_live;
use crate::api::auth::Role;
use crate::api::jobs_fns::{CancelJob, JobView, PartView};
use crate::i18n::{t, tf, Key};
use batchboard_core::jobs::META_JOB;

#[component]
pub fn JobsPage() -> impl IntoView {
    let live = use_live();
    let list = Resource::new(
        move || live.version.get(),
        |_| crate::api::jobs_fns::list_jobs(),
    );
    view! {
        <Title text=t(Key::JobsTitle) />
        <div class="page-head"><h1>{t(Key::JobsTitle)}</h1></div>
        <p class="muted">{t(Key::JobsIntro)}</p>
        <Transition fallback=|| ()>
            {move || list.get().map(|r| match r {
                Ok(jobs) if jobs.is_empty() => view! { <p class="muted" data-testid="jobs-empty">{t(Key::JobsEmpty)}</p> }.into_any(),
                Ok(jobs) => {
                    let rows = jobs.into_iter().map(|j| {
                        let (href, label) = (format!("/jobs/{}", j.id), j.id.clone());
                        view! {
                        <tr data-testid="job-row" data-id=j.id.clone()>
                            <td><a href=href>{label}</a></td>
                            <td><JobStatus status=j.status.clone() /></td>
                            <td>{j.upstream.clone()}</td>
                            <td>{j.filename.clone()}</td>
                            <td>{counts(&j)}</td>
                            <td><Time ts=j.created_at /></td>
                        </tr>
                    }}).collect_view();
                    view! {
                        <div class="table-wrap">
                            <table class="batches" data-testid="jobs-table">
                                <thead><tr>
                                    <th>{t(Key::JobsColId)}</th>
                                    <th>{t(Key::JobsColStatus)}</th>
                                    <th>{t(Key::JobsColUpstream)}</th>
                                    <th>{t(Key::JobsColFile)}</th>
                                    <th>{t(Key::JobsColRequests)}</th>
                                    <th>{t(Key::JobsColCreated)}</th>
                                </tr></thead>
                                <tbody>{rows}</tbody>
                            </table>
                        </div>
                    }.into_any()
                }
                Err(e) => view! { <section class="error-state"><p>{e.describe()}</p></section> }.into_any(),
            })}
        </Transition>
    }
}

/// "ok / failed / to run of all".
fn counts(j: &JobView) -> String {
    tf(
        Key::JobsCounts,
        &[
            ("ok", &format::count(j.ok)),
            ("failed", &format::count(j.failed)),
            ("pending", &format::count(j.pending)),
            ("total", &format::count(j.requests)),
        ],
    )
}

#[component]
fn JobStatus(status: String) -> impl IntoView {
    let (class, key) = match status.as_str() {
        "completed" => ("badge status-ok", Key::JobsStatusCompleted),
        "cancelled" => ("badge status-muted", Key::JobsStatusCancelled),
        "cancelling" => ("badge status-muted", Key::JobsStatusCancelling),
        _ => ("badge status-active", Key::JobsStatusRunning),
    };
    view! { <span class=class data-testid="job-status" data-status=status>{t(key)}</span> }
}

#[component]
pub fn JobPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let live = use_live();
    let (tick, set_tick) = signal(0u64);
    let cancel = ServerAction::<CancelJob>::new();
    let prices = LocalResource::new(crate::api::checks::pricing);
    let job = Resource::new(
        move || (id(), live.version.get(), tick.get(), cancel.version().get()),
        |(id, ..)| crate::api::jobs_fns::get_job(id),
    );
    // While the job runs, read it again every two seconds.
    #[cfg(feature = "hydrate")]
    {
        // Kept by an effect: a resource read in the timer's callback would
        // be one outside a Suspense.
        let (active, set_active) = signal(false);
        Effect::new(move || {
            set_active.set(
                job.get()
                    .and_then(|r| r.ok())
                    .is_some_and(|j| j.is_active()),
            )
        });
        if let Ok(handle) = set_interval_with_handle(
            move || {
                if active.get_untracked() {
                    set_tick.update(|t| *t += 1);
                }
            },
            std::time::Duration::from_secs(2),
        ) {
            on_cleanup(move || handle.clear());
        }
    }
    let _ = set_tick;
    view! {
        <Title text=move || tf(Key::JobsJobTitle, &[("id", &id())]) />
        <div class="page-head"><h1>{move || tf(Key::JobsJobTitle, &[("id", &id())])}</h1></div>
        <Transition fallback=|| ()>
            {move || job.get().map(|r| match r {
                Ok(j) => {
                    let cost = prices.get().and_then(|p| p.ok()).and_then(|p| {
                        let (_, price) = p.of(&j.upstream).lookup(j.model.as_deref()?)?;
                        Some(price.cost(&batchboard_core::spend::Tokens {
                            input: j.input_tokens_used,
                            output: j.output_tokens_used,
                            ..Default::default()
                        }))
                    });
                    view! { <Job j cancel cost /> }.into_any()
                }
                Err(e) => view! { <section class="error-state" data-testid="job-error"><p>{e.describe()}</p></section> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn Job(j: JobView, cancel: ServerAction<CancelJob>, cost: Option<f64>) -> impl IntoView {
    let done = j.ok + j.failed;
    let pct = if j.requests > 0 {
        done as f64 / j.requests as f64 * 100.0
    } else {
        0.0
    };
    let now = crate::format::now();
    let elapsed = (j.ended_at.unwrap_or(now) - j.created_at).max(1) as f64;
    let rate = done as f64 / elapsed;
    let eta = (j.is_active() && rate > 0.0 && j.pending > 0).then(|| {
        let secs = (j.pending as f64 / rate) as i64;
        view! { <li data-testid="job-eta">{tf(Key::JobsEta, &[("time", &format::duration(secs))])}</li> }
    });
    let id = j.id.clone();
    let cancellable = j.is_active() && j.status == "running";
    let cancel_id = id.clone();
    let parts = j
        .parts
        .iter()
        .cloned()
        .map(|p| view! { <PartRow p /> })
        .collect_view();
    view! {
        <section class="panel job" data-testid="job" data-status=j.status.clone()>
            <p><JobStatus status=j.status.clone() /> " " {tf(Key::JobsSummary, &[
                ("upstream", &j.upstream), ("endpoint", &j.endpoint),
                ("model", &j.model.clone().unwrap_or_else(|| "—".into())), ("file", &j.filename),
            ])}</p>
            <div class="progress"><progress max="100" value=format!("{pct:.0}")></progress></div>
            <ul class="stats">
                <li data-testid="job-counts" data-ok=j.ok.to_string() data-failed=j.failed.to_string()
                    data-pending=j.pending.to_string()>{counts(&j)}</li>
                {(j.retrying > 0).then(|| view! { <li>{tf(Key::JobsRetrying, &[("n", &format::count(j.retrying))])}</li> })}
                <li>{tf(Key::JobsRate, &[("n", &crate::i18n::i18n().number(rate, 1))])}</li>
                {eta}
                <li data-testid="job-usage">
                    {tf(Key::JobsUsage, &[("input", &format::count(j.input_tokens_used)), ("output", &format::count(j.output_tokens_used))])}
                    {cost.map(|usd| view! { " " {tf(Key::JobsCost, &[("usd", &format::usd(usd))])} })}
                </li>
                <li>{tf(Key::JobsCreatedBy, &[("user", &j.created_by)])} " " <Time ts=j.created_at /></li>
            </ul>
            <p class="actions">
                <a class="btn" data-testid="job-merged-jsonl" href=format!("/api/jobs/{id}/merged?format=jsonl") download="">{t(Key::JobsMergedJsonl)}</a>
                <a class="btn" data-testid="job-merged-csv" href=format!("/api/jobs/{id}/merged?format=csv") download="">{t(Key::JobsMergedCsv)}</a>
                <a class="btn" data-testid="job-batches" href=format!("/?meta_key={META_JOB}&meta_value={id}")>{t(Key::JobsBatches)}</a>
                {move || (cancellable && super::session::may(Role::Operator)).then(|| {
                    let id = cancel_id.clone();
                    view! {
                        <button class="btn btn-danger" data-testid="job-cancel"
                            on:click=move |_| { cancel.dispatch(CancelJob { id: id.clone() }); }>
                            {t(Key::JobsCancel)}
                        </button>
                    }
                })}
            </p>
        </section>
        <div class="table-wrap">
            <table class="batches" data-testid="parts-table">
                <thead><tr>
                    <th>{t(Key::JobsColPart)}</th>
                    <th>{t(Key::JobsColLines)}</th>
                    <th>{t(Key::JobsColState)}</th>
                    <th>{t(Key::JobsColBatch)}</th>
                    <th>{t(Key::JobsColResult)}</th>
                </tr></thead>
                <tbody>{parts}</tbody>
            </table>
        </div>
    }
}

#[component]
fn PartRow(p: PartView) -> impl IntoView {
    let name = match p.retry_of {
        Some(of) => tf(
            Key::JobsRetryPart,
            &[("part", &p.part), ("attempt", &p.attempt), ("of", &of)],
        ),
        None => p.part.to_string(),
    };
    let result = if matches!(p.state.as_str(), "done" | "failed") {
        tf(
            Key::JobsPartResult,
            &[
                ("ok", &format::count(p.ok)),
                ("failed", &format::count(p.failed)),
                ("retried", &format::count(p.retried)),
            ],
        )
    } else {
        String::new()
    };
    let waits = (p.waits > 0).then(
        || view! { <br /><small class="muted">{tf(Key::JobsWaits, &[("n", &p.waits)])}</small> },
    );
    view! {
        <tr data-testid="part-row" data-part=p.part.to_string() data-state=p.state.clone() data-attempt=p.attempt.to_string()>
            <td>{name}</td>
            <td>{format!("{}–{}", format::count(p.first_line), format::count(p.last_line))} " · " {format::count(p.requests)}</td>
            <td>{p.state.clone()}{waits}</td>
            <td>{p.batch_id.clone().map(|b| view! { <a class="mono" href=format!("/batches/{b}")>{b.clone()}</a> })}</td>
            <td>{result}{p.error.clone().map(|e| view! { <br /><small class="error">{e}</small> })}</td>
        </tr>
    }
}
