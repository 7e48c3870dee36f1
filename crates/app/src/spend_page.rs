//! The Spend page (`/spend`, viewers and up): what batches cost per period,
//! grouped by user, team, upstream, model or endpoint, with the batch
//! table's filters in the URL. The chart is SVG drawn on the server (each
//! bar's value in its `<title>`, readable without JavaScript; hydrated, the
//! value under the pointer is also written below it), the same figures are
//! in the table under it, and the CSV is a link.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::components::{filter_select, filter_text};
use super::format;
use crate::api::batch_facets;
use crate::api::spend_fns::{get_spend, BudgetStatus, SpendQuery, SpendReport};
use crate::i18n::{t, tf, Key};
use batchboard_core::spend::{GROUPS, PERIODS};

/// Groups drawn apart in the chart; the rest are one bar part, "others".
const SERIES: usize = 6;
const W: f64 = 720.0;
const H: f64 = 220.0;
const PAD_L: f64 = 64.0;
const PAD_B: f64 = 24.0;

fn query_from_url(q: &leptos_router::params::ParamsMap) -> SpendQuery {
    let text = |k: &str| q.get(k).filter(|v| !v.trim().is_empty());
    SpendQuery {
        period: text("period"),
        group: text("group"),
        from: text("from"),
        to: text("to"),
        upstream: text("upstream"),
        model: text("model"),
        endpoint: text("endpoint"),
        creator: text("creator"),
        team: text("team"),
    }
}

fn period_label(p: &str) -> &'static str {
    match p {
        "day" => t(Key::SpendPeriodDay),
        "week" => t(Key::SpendPeriodWeek),
        _ => t(Key::SpendPeriodMonth),
    }
}

fn group_label(g: &str, team_key: &str) -> String {
    match g {
        "team" => tf(Key::SpendGroupTeam, &[("key", &team_key)]),
        "upstream" => t(Key::SpendGroupUpstream).to_string(),
        "model" => t(Key::SpendGroupModel).to_string(),
        "endpoint" => t(Key::SpendGroupEndpoint).to_string(),
        _ => t(Key::SpendGroupUser).to_string(),
    }
}

fn name_or_none(n: &str) -> String {
    if n.is_empty() {
        t(Key::SpendNone).to_string()
    } else {
        n.to_string()
    }
}

#[component]
pub fn SpendPage() -> impl IntoView {
    let url = use_query_map();
    let query = Memo::new(move |_| url.with(query_from_url));
    let report = Resource::new(move || query.get(), get_spend);
    let facets = Resource::new(|| (), |_| batch_facets());
    view! {
        <Title text=t(Key::SpendTitle) />
        <div class="page-head"><h1>{t(Key::SpendTitle)}</h1></div>
        <p class="muted">{t(Key::SpendIntro)}</p>
        <Transition fallback=|| ()>
            {move || facets.get().map(|f| view! { <Filters facets=f.unwrap_or_default() query=query.get() /> })}
        </Transition>
        <Transition fallback=|| ()>
            {move || report.get().map(|r| match r {
                Ok(r) => view! { <Report r query=query.get() /> }.into_any(),
                Err(e) => view! {
                    <section class="error-state" data-testid="spend-error"><p>{e.describe()}</p></section>
                }.into_any(),
            })}
        </Transition>
    }
}

/// The form: period, grouping, dates and the table's filters (a plain GET
/// form, so it works without JavaScript).
#[component]
fn Filters(facets: batchboard_core::dashboard::Facets, query: SpendQuery) -> impl IntoView {
    let names = |v: Vec<String>| v.into_iter().map(|s| (s.clone(), s)).collect();
    let periods = PERIODS
        .iter()
        .map(|p| (p.to_string(), period_label(p).to_string()))
        .collect();
    let groups = GROUPS
        .iter()
        .map(|g| (g.to_string(), group_label(g, "team")))
        .collect();
    view! {
        <form class="filters panel" method="get" action="/spend" data-testid="spend-filters">
            {filter_select("period", t(Key::SpendPeriod), periods, Some(query.period().to_string()))}
            {filter_select("group", t(Key::SpendGroup), groups, Some(query.group().to_string()))}
            {filter_text("from", t(Key::TableFilterFrom), "date", query.from.clone())}
            {filter_text("to", t(Key::TableFilterTo), "date", query.to.clone())}
            {(!facets.upstreams.is_empty()).then(|| filter_select("upstream", t(Key::TableFilterUpstream), names(facets.upstreams.clone()), query.upstream.clone()))}
            {filter_select("model", t(Key::TableFilterModel), names(facets.models), query.model.clone())}
            {filter_select("endpoint", t(Key::TableFilterEndpoint), names(facets.endpoints), query.endpoint.clone())}
            {filter_select("creator", t(Key::TableFilterCreator), names(facets.creators), query.creator.clone())}
            {filter_text("team", t(Key::SpendTeam), "text", query.team.clone())}
            <span class="filter-actions">
                <button type="submit" class="btn btn-small" data-testid="spend-apply">{t(Key::SpendShow)}</button>
            </span>
        </form>
    }
}

#[component]
fn Report(r: SpendReport, query: SpendQuery) -> impl IntoView {
    let csv = format!("/api/spend.csv?{}", query.to_query_string());
    let total = tf(
        Key::SpendTotal,
        &[
            ("usd", &format::usd(r.usd)),
            ("n", &format::count(r.batches)),
        ],
    );
    let estimated = (r.estimated_usd > 0.0).then(|| {
        tf(
            Key::SpendEstimatedPart,
            &[("usd", &format::usd(r.estimated_usd))],
        )
    });
    let unpriced = (r.unpriced > 0).then(|| {
        view! { <p class="muted" data-testid="spend-unpriced">{tf(Key::SpendUnpriced, &[("n", &r.unpriced)])}</p> }
    });
    let body = if r.groups.is_empty() {
        view! { <p class="muted" data-testid="spend-empty">{t(Key::SpendEmpty)}</p> }.into_any()
    } else {
        view! {
            <Chart r=r.clone() query=query.clone() />
            <Table r=r.clone() query=query.clone() />
        }
        .into_any()
    };
    view! {
        <section class="panel" data-testid="spend-summary">
            <p>
                <strong data-testid="spend-total" data-usd=format!("{}", r.usd)>{total}</strong>
                " " {estimated}
                " " <a href=csv class="btn btn-small" data-testid="spend-csv" download="spend.csv" rel="external">{t(Key::SpendCsv)}</a>
            </p>
            {unpriced}
        </section>
        <Budgets budgets=r.budgets.clone() />
        {body}
    }
}

/// This month's budgets and how much of each is spent.
#[component]
fn Budgets(budgets: Vec<BudgetStatus>) -> impl IntoView {
    if budgets.is_empty() {
        return ().into_any();
    }
    let rows = budgets
        .into_iter()
        .map(|b| {
            let level = b.level();
            let class = match level {
                100 => "budget budget-over",
                80 => "budget budget-warn",
                _ => "budget",
            };
            let scope = t(b.scope.key());
            let note = match level {
                100 => Some(t(Key::SpendBudgetOver)),
                80 => Some(t(Key::SpendBudgetWarn)),
                _ => None,
            };
            let width = format!("width: {:.1}%", b.percent().min(100.0));
            view! {
                <li class=class data-testid="budget" data-scope=b.scope.as_str() data-name=b.name.clone() data-level=level.to_string()>
                    <span>{scope} " " <strong>{b.name.clone()}</strong></span>
                    <span class="budget-bar" aria-hidden="true"><span style=width></span></span>
                    <span>{tf(Key::SpendBudgetLine, &[
                        ("spent", &format::usd(b.spent_usd)),
                        ("limit", &format::usd(b.limit_usd)),
                        ("percent", &format!("{:.0}", b.percent())),
                    ])}</span>
                    {note.map(|n| view! { <span class="chip">{n}</span> })}
                </li>
            }
        })
        .collect_view();
    view! {
        <section class="panel" data-testid="spend-budgets">
            <h2>{t(Key::SpendBudgets)}</h2>
            <ul class="budgets">{rows}</ul>
        </section>
    }
    .into_any()
}

/// The chart's series: the largest groups, then the rest as one.
fn series(r: &SpendReport) -> Vec<(String, Vec<f64>)> {
    let mut out: Vec<(String, Vec<f64>)> = r
        .groups
        .iter()
        .take(SERIES)
        .map(|g| (name_or_none(&g.name), g.by_period.clone()))
        .collect();
    if r.groups.len() > SERIES {
        let mut rest = vec![0.0; r.periods.len()];
        for g in &r.groups[SERIES..] {
            for (i, v) in g.by_period.iter().enumerate() {
                rest[i] += v;
            }
        }
        out.push((t(Key::SpendOthers).to_string(), rest));
    }
    out
}

/// Stacked bars, one per period, in SVG.
#[component]
fn Chart(r: SpendReport, query: SpendQuery) -> impl IntoView {
    let hover = RwSignal::new(None::<String>);
    let series = series(&r);
    let n = r.periods.len().max(1);
    let top = (0..r.periods.len())
        .map(|i| series.iter().map(|(_, v)| v[i]).sum::<f64>())
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let slot = (W - PAD_L) / n as f64;
    let bar = (slot * 0.7).max(1.0);
    let mut rects = Vec::new();
    for (i, period) in r.periods.iter().enumerate() {
        let mut y = H - PAD_B;
        for (s, (name, values)) in series.iter().enumerate() {
            let v = values[i];
            if v <= 0.0 {
                continue;
            }
            let h = v / top * (H - PAD_B);
            y -= h;
            let x = PAD_L + i as f64 * slot + (slot - bar) / 2.0;
            let label = format!("{name} · {period}: {}", format::usd(v));
            let shown = label.clone();
            rects.push(view! {
                <rect class=format!("series-{s}") x=format!("{x:.1}") y=format!("{y:.1}")
                    width=format!("{bar:.1}") height=format!("{h:.1}")
                    data-testid="spend-bar" data-group=name.clone() data-period=period.clone()
                    data-usd=format!("{v}")
                    on:mouseenter=move |_| hover.set(Some(shown.clone()))
                    on:mouseleave=move |_| hover.set(None)>
                    <title>{label}</title>
                </rect>
            });
        }
    }
    // Period labels: as many as fit.
    let every = (n as f64 / 12.0).ceil().max(1.0) as usize;
    let labels = r
        .periods
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, p)| {
            let x = PAD_L + i as f64 * slot + slot / 2.0;
            view! { <text x=format!("{x:.1}") y=format!("{:.1}", H - 6.0) class="axis" text-anchor="middle">{p.clone()}</text> }
        })
        .collect_view();
    let legend = series
        .iter()
        .enumerate()
        .map(|(s, (name, _))| {
            view! { <li><span class=format!("swatch series-{s}") aria-hidden="true"></span>{name.clone()}</li> }
        })
        .collect_view();
    let caption = tf(
        Key::SpendChart,
        &[
            ("period", &period_label(query.period()).to_lowercase()),
            (
                "group",
                &group_label(query.group(), &r.team_key).to_lowercase(),
            ),
        ],
    );
    view! {
        <figure class="panel spend-chart" data-testid="spend-chart">
            <figcaption>{caption.clone()}</figcaption>
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=caption preserveAspectRatio="none">
                <line x1=PAD_L y1=H - PAD_B x2=W y2=H - PAD_B class="axis-line" />
                <text x="4" y="12" class="axis">{format::usd(top)}</text>
                {rects}
                {labels}
            </svg>
            <ul class="legend">{legend}</ul>
            <p class="muted" data-testid="spend-hover" aria-live="polite">{move || hover.get()}</p>
        </figure>
    }
}

/// The chart's figures, and each group's tokens.
#[component]
fn Table(r: SpendReport, query: SpendQuery) -> impl IntoView {
    let heads = r
        .periods
        .iter()
        .map(|p| view! { <th class="num">{p.clone()}</th> })
        .collect_view();
    let rows = r
        .groups
        .iter()
        .map(|g| {
            let name = name_or_none(&g.name);
            let cells = g
                .by_period
                .iter()
                .zip(&r.periods)
                .map(|(v, p)| {
                    view! {
                        <td class="num" data-testid="spend-cell" data-group=name.clone() data-period=p.clone() data-usd=format!("{v}")>
                            {if *v > 0.0 { format::usd(*v) } else { String::new() }}
                        </td>
                    }
                })
                .collect_view();
            view! {
                <tr data-testid="spend-row" data-group=name.clone() data-usd=format!("{}", g.usd)>
                    <th scope="row">{name.clone()}</th>
                    {cells}
                    <td class="num"><strong>{format::usd(g.usd)}</strong></td>
                    <td class="num">{format::count(g.batches)}</td>
                    <td class="num">{(g.estimated_usd > 0.0).then(|| format::usd(g.estimated_usd))}</td>
                    <td class="num">{format::count(g.tokens.input)}</td>
                    <td class="num">{format::count(g.tokens.cached)}</td>
                    <td class="num">{format::count(g.tokens.output)}</td>
                    <td class="num">{format::count(g.tokens.reasoning)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="batches spend-table" data-testid="spend-table">
                <thead><tr>
                    <th>{group_label(query.group(), &r.team_key)}</th>
                    {heads}
                    <th class="num">{t(Key::SpendColTotal)}</th>
                    <th class="num">{t(Key::SpendColBatches)}</th>
                    <th class="num">{t(Key::SpendColEstimated)}</th>
                    <th class="num">{t(Key::SpendColInput)}</th>
                    <th class="num">{t(Key::SpendColCached)}</th>
                    <th class="num">{t(Key::SpendColOutput)}</th>
                    <th class="num">{t(Key::SpendColReasoning)}</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}
