//! The batch table: `/`.

use std::time::Duration;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use super::components::{use_poll, Progress, StatusBadge, Time};
use super::format;
use crate::api::auth::Role;
use crate::api::{list_batches, BatchPage, PAGE_SIZES};
use crate::batch::{Batch, CREATED_BY};

#[component]
pub fn BatchesPage() -> impl IntoView {
    let query = use_query_map();
    let after = Memo::new(move |_| query.with(|q| q.get("after")).filter(|a| !a.is_empty()));
    let limit = Memo::new(move |_| {
        query
            .with(|q| q.get("limit"))
            .and_then(|l| l.parse::<u32>().ok())
            .filter(|l| (1..=100).contains(l))
            .unwrap_or(20)
    });
    let (active, set_active) = signal(false);
    let tick = use_poll(
        Duration::from_secs(3),
        Duration::from_secs(10),
        active.into(),
    );
    let page = Resource::new(
        move || (after.get(), limit.get(), tick.get()),
        |(after, limit, _)| list_batches(after, limit),
    );
    Effect::new(move |_| {
        if let Some(Ok(p)) = page.get() {
            set_active.set(p.batches.iter().any(|b| !b.status.is_terminal()));
        }
    });

    view! {
        <Title text="Batches" />
        <div class="page-head">
            <h1>"Batches"</h1>
            <Transition fallback=|| ()>
                {move || super::session::may(Role::Operator).then(|| view! {
                    <A href="/batches/new" attr:class="btn btn-primary">"New batch"</A>
                })}
            </Transition>
        </div>
        <Transition fallback=|| view! { <p class="muted" data-testid="loading">"Loading batches…"</p> }>
            {move || {
                page.get()
                    .map(|r| match r {
                        Ok(p) => view! { <Table page=p limit=limit.get() first=after.get().is_none() /> }.into_any(),
                        Err(e) => {
                            view! {
                                <section class="error-state" data-testid="list-error">
                                    <h2>"Could not load batches"</h2>
                                    <p>{e.describe()}</p>
                                    <p><a href="">"Try again"</a></p>
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
fn Table(page: BatchPage, limit: u32, first: bool) -> impl IntoView {
    let BatchPage {
        batches,
        has_more,
        last_id,
        fetched_at,
    } = page;
    if batches.is_empty() && first {
        return view! {
            <section class="empty-state" data-testid="no-batches">
                <h2>"No batches yet"</h2>
                <p>"Upload a JSONL file of requests to start one."</p>
                <A href="/batches/new" attr:class="btn btn-primary">"New batch"</A>
            </section>
        }
        .into_any();
    }
    let next = last_id
        .filter(|_| has_more)
        .map(|id| format!("/?after={id}&limit={limit}"));
    let rows = batches
        .into_iter()
        .map(|b| view! { <Row batch=b /> })
        .collect_view();
    view! {
        <div class="table-meta">
            <span class="muted" data-testid="last-heard">
                "Upstream answered " <Time ts=fetched_at />
            </span>
            <PageSize limit />
        </div>
        <div class="table-wrap">
            <table class="batches" data-testid="batch-table">
                <thead>
                    <tr>
                        <th>"Batch"</th>
                        <th>"Status"</th>
                        <th>"Endpoint"</th>
                        <th>"Model"</th>
                        <th>"Progress"</th>
                        <th>"Created"</th>
                        <th>"Time left"</th>
                        <th>"Created by"</th>
                        <th>"Metadata"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        <nav class="pager" aria-label="Pages">
            {(!first).then(|| view! { <A href=format!("/?limit={limit}")>"« First page"</A> })}
            {next.map(|href| view! { <A href=href attr:data-testid="next-page">"Next page »"</A> })}
        </nav>
    }
    .into_any()
}

#[component]
fn PageSize(limit: u32) -> impl IntoView {
    let options = PAGE_SIZES
        .iter()
        .map(|n| {
            view! {
                <A href=format!("/?limit={n}") attr:class=if *n == limit { "chip chip-on" } else { "chip" }>
                    {n.to_string()}
                </A>
            }
        })
        .collect_view();
    view! { <span class="page-size">"Per page: " {options}</span> }
}

#[component]
fn Row(batch: Batch) -> impl IntoView {
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
            view! { <span class="chip" title=title>{text}</span> }
        })
        .collect_view();
    let id = batch.id.clone();
    let data_id = id.clone();
    view! {
        <tr data-testid="batch-row" data-id=data_id>
            <td><A href=href attr:class="mono">{id}</A></td>
            <td><StatusBadge status=batch.status.clone() /></td>
            <td class="mono">{batch.endpoint.clone()}</td>
            <td>{batch.model.clone().unwrap_or_else(|| "—".into())}</td>
            <td><Progress batch=batch.clone() /></td>
            <td><Time ts=batch.created_at /></td>
            <td>{left}</td>
            <td data-testid="created-by">{creator}</td>
            <td class="meta">{metadata}</td>
        </tr>
    }
}
