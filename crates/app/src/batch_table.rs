//! The batch table: `/`.

use leptos::prelude::*;

use batchboard_core::jobs::META_JOB;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use super::components::{filter_select, filter_text, Progress, StatusBadge, Time};
use super::format;
use super::live::use_live;
use crate::api::auth::Role;
use crate::api::{
    batch_facets, list_batches, BatchPage, BatchQuery, Facets, WatcherStatus, PAGE_SIZES,
};
use crate::i18n::{t, tf, Key};
use batchboard_core::dashboard::TableRow;
use batchboard_core::CREATED_BY;

/// `text` (a translation with `{name}` left unfilled) split around
/// `{name}`, for a component to stand in its place in any word order; an
/// empty side is `None` (no stray text node).
pub(super) fn split_around(text: &str, name: &str) -> (Option<String>, Option<String>) {
    let mark = format!("{{{name}}}");
    let (before, after) = text.split_once(&mark).unwrap_or((text, ""));
    let side = |s: &str| (!s.is_empty()).then(|| s.to_string());
    (side(before), side(after))
}

/// The query the URL describes.
fn query_from_url(q: &leptos_router::params::ParamsMap) -> BatchQuery {
    let text = |k: &str| q.get(k).filter(|v| !v.trim().is_empty());
    BatchQuery {
        status: text("status"),
        endpoint: text("endpoint"),
        model: text("model"),
        creator: text("creator"),
        upstream: text("upstream"),
        meta_key: text("meta_key"),
        meta_value: text("meta_value"),
        from: text("from"),
        to: text("to"),
        q: text("q"),
        sort: text("sort"),
        dir: text("dir"),
        offset: text("offset").and_then(|o| o.parse().ok()),
        limit: text("limit")
            .and_then(|l| l.parse().ok())
            .filter(|l| (1..=batchboard_core::dashboard::MAX_TABLE_PAGE).contains(l)),
    }
}

#[component]
pub fn BatchesPage() -> impl IntoView {
    let url = use_query_map();
    let query = Memo::new(move |_| url.with(query_from_url));
    let live = use_live();
    // Read from the index, never polled. A change the event stream reports
    // updates its row in place; only a change that can alter which rows
    // this view shows (a new batch, a status under a status filter or
    // sort) reads the page again, at most every 300 ms.
    let page = Resource::new(
        move || (query.get(), live.version.get()),
        |(q, _)| list_batches(q),
    );
    let facets = Resource::new(move || live.version.get() / 10, |_| batch_facets());
    let shown: StoredValue<Vec<RwSignal<TableRow>>> = StoredValue::new(Vec::new());
    Effect::watch(
        move || live.last.get(),
        move |last, _, _| {
            let Some(ev) = last else { return };
            if query.with_untracked(|q| q.reshaped_by(ev.change)) {
                live.reload_soon();
            } else {
                shown.with_value(|rows| {
                    if let Some(row) = rows
                        .iter()
                        .find(|r| r.with_untracked(|b| b.id == ev.batch.id))
                    {
                        row.set(TableRow::from(ev));
                    }
                });
            }
        },
        false,
    );

    view! {
        <Title text=t(Key::TableTitle) />
        <div class="page-head">
            <h1>{t(Key::TableTitle)}</h1>
            <Transition fallback=|| ()>
                {move || super::session::may(Role::Operator).then(|| view! {
                    <A href="/batches/new" attr:class="btn btn-primary">{t(Key::TableNewBatch)}</A>
                })}
            </Transition>
        </div>
        <Transition fallback=|| ()>
            {move || facets.get().map(|f| view! { <Filters facets=f.unwrap_or_default() query=query.get() /> })}
        </Transition>
        <Transition fallback=|| view! { <p class="muted" data-testid="loading">{t(Key::TableLoading)}</p> }>
            {move || {
                page.get()
                    .map(|r| match r {
                        Ok(p) => view! { <Table page=p query=query.get() shown /> }.into_any(),
                        Err(e) => {
                            view! {
                                <section class="error-state" data-testid="list-error">
                                    <h2>{t(Key::TableLoadFailed)}</h2>
                                    <p>{e.describe()}</p>
                                    <p><a href="">{t(Key::TableTryAgain)}</a></p>
                                </section>
                            }
                                .into_any()
                        }
                    })
            }}
        </Transition>
    }
}

/// The filter bar: a plain GET form, so it works without JavaScript too.
#[component]
fn Filters(facets: Facets, query: BatchQuery) -> impl IntoView {
    // Statuses in words; the other facets are names and ids.
    let select = |name: &'static str, label, values: Vec<String>, current| {
        let options = values
            .into_iter()
            .map(|v| {
                let text = if name == "status" {
                    crate::i18n::status(&batchboard_core::BatchStatus::from(v.as_str()))
                } else {
                    v.clone()
                };
                (v, text)
            })
            .collect();
        filter_select(name, label, options, current)
    };
    let text = filter_text;
    let clear = query
        .is_filtered()
        .then(|| view! { <A href="/" attr:class="btn btn-small">{t(Key::TableClear)}</A> });
    let open = query.is_filtered();
    view! {
        // On a narrow screen the form hides behind this switch (CSS only).
        <input type="checkbox" id="filters-open" class="filters-toggle" checked=open />
        <label for="filters-open" class="filters-summary btn btn-small" data-testid="filters-toggle">{t(Key::TableFilters)}</label>
        <form class="filters panel" method="get" action="/" data-testid="filters">
            {text("q", t(Key::TableFilterSearch), "search", query.q.clone())}
            {(!facets.upstreams.is_empty()).then(|| select("upstream", t(Key::TableFilterUpstream), facets.upstreams.clone(), query.upstream.clone()))}
            {select("status", t(Key::TableFilterStatus), facets.statuses, query.status.clone())}
            {select("endpoint", t(Key::TableFilterEndpoint), facets.endpoints, query.endpoint.clone())}
            {select("model", t(Key::TableFilterModel), facets.models, query.model.clone())}
            {select("creator", t(Key::TableFilterCreator), facets.creators, query.creator.clone())}
            {text("meta_key", t(Key::TableFilterMetaKey), "text", query.meta_key.clone())}
            {text("meta_value", t(Key::TableFilterMetaValue), "text", query.meta_value.clone())}
            {text("from", t(Key::TableFilterFrom), "date", query.from.clone())}
            {text("to", t(Key::TableFilterTo), "date", query.to.clone())}
            {query.sort.clone().map(|s| view! { <input type="hidden" name="sort" value=s /> })}
            {query.dir.clone().map(|d| view! { <input type="hidden" name="dir" value=d /> })}
            {query.limit.map(|l| view! { <input type="hidden" name="limit" value=l.to_string() /> })}
            <span class="filter-actions">
                <button type="submit" class="btn btn-small" data-testid="apply-filters">{t(Key::TableApply)}</button>
                {clear}
            </span>
        </form>
    }
}

/// A column header that sorts by `key` (again: the other direction).
#[component]
fn SortHeader(label: &'static str, key: &'static str, query: BatchQuery) -> impl IntoView {
    let current = query.sort.clone().unwrap_or_else(|| "created".into());
    let dir = query.dir.clone().unwrap_or_else(|| "desc".into());
    let on = current == key;
    let next_dir = if on && dir == "desc" { "asc" } else { "desc" };
    let mut q = query.clone();
    q.sort = Some(key.to_string());
    q.dir = Some(next_dir.to_string());
    q.offset = None;
    let arrow = if on {
        if dir == "asc" {
            " ▲"
        } else {
            " ▼"
        }
    } else {
        ""
    };
    let aria = if on {
        if dir == "asc" {
            "ascending"
        } else {
            "descending"
        }
    } else {
        "none"
    };
    view! {
        <th aria-sort=aria>
            <a href=format!("/{}", q.to_query_string()) data-testid=format!("sort-{key}")>{label}{arrow}</a>
        </th>
    }
}

/// "Index updated …", or the upstream trouble the watcher last met.
#[component]
fn Freshness(initial: WatcherStatus) -> impl IntoView {
    let live = use_live();
    let status = move || live.status.get().unwrap_or_else(|| initial.clone());
    view! {
        <span class="muted" data-testid="last-heard">
            {move || {
                let s = status();
                match (s.last_error, s.last_success_at) {
                    (Some(e), Some(ok)) => {
                        let (before, after) = split_around(
                            &tf(Key::TableUpstreamTrouble, &[("error", &e)]),
                            "time",
                        );
                        view! {
                            <span class="error" data-testid="upstream-trouble">
                                {before} <Time ts=ok /> {after}
                            </span>
                        }.into_any()
                    }
                    (Some(e), None) => view! {
                        <span class="error" data-testid="upstream-trouble">{tf(Key::TableUpstreamUnreachable, &[("error", &e)])}</span>
                    }.into_any(),
                    (None, Some(ok)) => {
                        let (before, after) = split_around(t(Key::TableUpstreamAnswered), "time");
                        view! { <span>{before} <Time ts=ok /> {after}</span> }.into_any()
                    }
                    (None, None) => view! { <span>{t(Key::TableReadingUpstream)}</span> }.into_any(),
                }
            }}
        </span>
    }
}

/// `shown`: the rows' batches, which live changes update in place.
#[component]
fn Table(
    page: BatchPage,
    query: BatchQuery,
    shown: StoredValue<Vec<RwSignal<TableRow>>>,
) -> impl IntoView {
    let BatchPage {
        batches,
        total,
        offset,
        limit,
        watcher,
    } = page;
    if batches.is_empty() && offset == 0 && !query.is_filtered() {
        return view! {
            <section class="empty-state" data-testid="no-batches">
                <h2>{t(Key::TableEmptyTitle)}</h2>
                <p>{t(Key::TableEmptyHint)}</p>
                <A href="/batches/new" attr:class="btn btn-primary">{t(Key::TableNewBatch)}</A>
            </section>
        }
        .into_any();
    }
    let link_at = |off: u32| {
        let mut q = query.clone();
        q.offset = Some(off);
        format!("/{}", q.to_query_string())
    };
    let shown_to = offset as u64 + batches.len() as u64;
    let prev = (offset > 0).then(|| link_at(offset.saturating_sub(limit)));
    let next = (shown_to < total).then(|| link_at(offset + limit));
    // The upstream column, when there are several.
    let several = watcher.upstreams.len() > 1;
    // The rows' many lookups of the language find it here, not at the root.
    crate::i18n::provide();
    shown.set_value(Vec::new());
    // On the server the rows are written out here, in one go, each
    // rendered at most once a second (`row_cache`): the same HTML as
    // inside the page's tree, without carrying twenty rows of views
    // through the page's asynchronous render. The browser hydrates them as
    // the tbody's children.
    #[cfg(not(feature = "hydrate"))]
    let body = {
        let lang = crate::i18n::i18n().code();
        let html = crate::row_cache::render(batches, several, lang, format::now(), |b| {
            view! { <Row batch=b several shown /> }.to_html()
        });
        view! { <tbody inner_html=html></tbody> }
    };
    #[cfg(feature = "hydrate")]
    let body = {
        let rows = batches
            .into_iter()
            .map(|b| view! { <Row batch=b several shown /> })
            .collect_view();
        view! { <tbody>{rows}</tbody> }
    };
    let q = query.clone();
    view! {
        <div class="table-meta">
            <Freshness initial=watcher />
            <span data-testid="match-count">
                {if total == 0 { t(Key::TableNoMatch).to_string() } else {
                    tf(Key::TableRange, &[
                        ("from", &format::count(offset as u64 + 1)),
                        ("to", &format::count(shown_to)),
                        ("total", &format::count(total)),
                    ])
                }}
            </span>
            <PageSize limit query=query.clone() />
        </div>
        <div class="table-wrap">
            <table class="batches" data-testid="batch-table">
                <thead>
                    <tr>
                        <th>{t(Key::TableColBatch)}</th>
                        {several.then(|| view! { <th>{t(Key::TableColUpstream)}</th> })}
                        <SortHeader label=t(Key::TableColStatus) key="status" query=q.clone() />
                        <SortHeader label=t(Key::TableColEndpoint) key="endpoint" query=q.clone() />
                        <SortHeader label=t(Key::TableColModel) key="model" query=q.clone() />
                        <th>{t(Key::TableColProgress)}</th>
                        <th class="num">{t(Key::TableColCost)}</th>
                        <SortHeader label=t(Key::TableColCreated) key="created" query=q.clone() />
                        <th>{t(Key::TableColTimeLeft)}</th>
                        <SortHeader label=t(Key::TableColCreator) key="creator" query=q.clone() />
                        <th>{t(Key::TableColMetadata)}</th>
                    </tr>
                </thead>
                {body}
            </table>
        </div>
        <nav class="pager" aria-label=t(Key::TablePages)>
            {prev.map(|href| view! { <a href=href data-testid="prev-page">{t(Key::TablePrevious)}</a> })}
            {next.map(|href| view! { <a href=href data-testid="next-page">{t(Key::TableNext)}</a> })}
        </nav>
    }
    .into_any()
}

#[component]
fn PageSize(limit: u32, query: BatchQuery) -> impl IntoView {
    let options = PAGE_SIZES
        .iter()
        .map(|n| {
            let mut q = query.clone();
            q.limit = Some(*n);
            q.offset = None;
            let on = *n == limit;
            view! {
                <a href=format!("/{}", q.to_query_string()) class=if on { "chip chip-on" } else { "chip" } aria-current=on.then_some("true")>
                    {n.to_string()}
                </a>
            }
        })
        .collect_view();
    view! { <span class="page-size">{t(Key::TablePerPage)} " " {options}</span> }
}

/// One batch's row. In the browser its cells follow the batch as changes
/// arrive (its signal joins `shown`); the server renders it once, plainly:
/// a reactive closure would run twice there (once to look for resources,
/// once to write the HTML), and a signal made while the table is built
/// was, rarely and under load, found already disposed when the row read it
/// (a panic; the page still came out whole, from another run).
#[component]
fn Row(
    batch: TableRow,
    several: bool,
    shown: StoredValue<Vec<RwSignal<TableRow>>>,
) -> impl IntoView {
    let id = batch.id.clone();
    #[cfg(feature = "hydrate")]
    let cells = {
        let batch = RwSignal::new(batch);
        shown.update_value(|rows| rows.push(batch));
        move || cells(batch.get(), several)
    };
    #[cfg(not(feature = "hydrate"))]
    let cells = {
        let _ = shown;
        cells(batch, several)
    };
    view! {
        <tr data-testid="batch-row" data-id=id>
            {cells}
        </tr>
    }
}

/// What a batch cost by the usage it reports, priced by the server (its
/// page also shows an estimate for batches without usage, and the upper
/// bound while running).
fn cost_cell(cost: Option<f64>) -> impl IntoView {
    match cost {
        Some(usd) => view! {
            <td class="num" data-testid="row-cost" data-usd=format!("{usd}")>{format::usd(usd)}</td>
        }
        .into_any(),
        None => view! { <td class="num" data-testid="row-cost">"—"</td> }.into_any(),
    }
}

fn cells(batch: TableRow, several: bool) -> impl IntoView {
    use batchboard_core::dashboard::{display_upstream, split_qualified};
    let upstream = several.then(|| {
        let name = display_upstream(split_qualified(&batch.id).0).to_owned();
        view! { <td data-testid="row-upstream">{name}</td> }
    });
    let href = format!("/batches/{}", batch.id);
    let left = match (batch.status.is_terminal(), batch.expires_at) {
        (false, Some(exp)) => format::duration(exp - format::now()),
        _ => "—".into(),
    };
    let mut metadata = batch.metadata.clone().unwrap_or_default();
    let creator = metadata.remove(CREATED_BY).unwrap_or_else(|| "—".into());
    let metadata = metadata
        .into_iter()
        .map(|(k, v)| {
            let text = format!("{k}={v}");
            let title = text.clone();
            // A job's part: its chip leads to the job.
            if k == META_JOB && crate::api::check_id("job", &v).is_ok() {
                return view! { <a href=format!("/jobs/{v}") class="chip chip-job" title=title>{text}</a> }.into_any();
            }
            view! { <span class="chip" title=title>{text}</span> }.into_any()
        })
        .collect_view();
    let (id, title) = (batch.id.clone(), batch.id.clone());
    view! {
        <td><a href=href class="mono" title=title>{id}</a></td>
        {upstream}
        <td><StatusBadge status=batch.status.clone() /></td>
        <td class="mono">{batch.endpoint.clone()}</td>
        <td>{batch.model.clone().unwrap_or_else(|| "—".into())}</td>
        <td><Progress counts=batch.request_counts.clone() /></td>
        {cost_cell(batch.cost_usd)}
        <td><Time ts=batch.created_at /></td>
        <td>{left}</td>
        <td data-testid="created-by">{creator}</td>
        <td class="meta">{metadata}</td>
    }
}

#[cfg(all(test, not(feature = "hydrate")))]
mod tests {
    use super::*;
    use batchboard_core::RequestCounts;

    /// Rows with every kind of cell: no model, counts with failures, a
    /// cost, a running batch's time left, metadata with a job's part and
    /// text to escape. Times half a minute off a whole minute: the same
    /// words a second later.
    fn rows() -> Vec<TableRow> {
        let now = format::now();
        let mut meta = batchboard_core::Metadata::new();
        meta.insert(CREATED_BY.into(), "ana".into());
        meta.insert(META_JOB.into(), "job_0123456789abcdef".into());
        meta.insert("note".into(), "<a & \"b\">".into());
        vec![
            TableRow {
                id: "batch_equal_1".into(),
                status: "in_progress".into(),
                endpoint: "/v1/chat/completions".into(),
                model: Some("gpt-4o-mini".into()),
                created_at: now - 330,
                expires_at: Some(now + 3630),
                request_counts: RequestCounts {
                    total: 10,
                    completed: 4,
                    failed: 1,
                },
                metadata: Some(meta),
                cost_usd: Some(0.0123),
            },
            TableRow {
                id: "openai-2:batch_equal_2".into(),
                status: "something_new".into(),
                endpoint: "/v1/embeddings".into(),
                created_at: now - 86_430,
                ..Default::default()
            },
        ]
    }

    /// The remembered rows are the HTML the rows' views write as a list,
    /// whether rendered just now or copied.
    #[test]
    fn remembered_rows_are_what_the_views_write() {
        Owner::new().with(|| {
            let shown = StoredValue::new(Vec::new());
            // The same rows for both: made twice, a second apart, their
            // times' `datetime` would differ.
            let rows = rows();
            for several in [false, true] {
                let views = rows
                    .clone()
                    .into_iter()
                    .map(|b| view! { <Row batch=b several shown /> })
                    .collect_view()
                    .to_html();
                for _ in 0..2 {
                    let now = format::now();
                    let html = crate::row_cache::render(rows.clone(), several, "en", now, |b| {
                        view! { <Row batch=b several shown /> }.to_html()
                    });
                    assert_eq!(html, views);
                }
            }
        });
    }
}
