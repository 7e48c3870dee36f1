//! The audit log: `/audit`, for admins.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use super::components::Time;
use crate::api::auth::{audit_log, AuditEntry, AUDIT_ACTIONS};

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let before = Memo::new(move |_| {
        query
            .with(|q| q.get("before"))
            .and_then(|b| b.parse::<i64>().ok())
    });
    let action = Memo::new(move |_| query.with(|q| q.get("action")).filter(|a| !a.is_empty()));
    let page = Resource::new(
        move || (before.get(), action.get()),
        |(before, action)| audit_log(before, action, 100),
    );
    let filters = move || {
        let current = action.get();
        let all = view! {
            <A href="/audit" attr:class=if current.is_none() { "chip chip-on" } else { "chip" }>"all"</A>
        };
        let each = AUDIT_ACTIONS
            .iter()
            .map(|a| {
                let class = if current.as_deref() == Some(*a) {
                    "chip chip-on"
                } else {
                    "chip"
                };
                view! { <A href=format!("/audit?action={a}") attr:class=class>{*a}</A> }
            })
            .collect_view();
        view! { <nav class="page-size" aria-label="Filter">"Action: " {all} {each}</nav> }
    };
    view! {
        <Title text="Audit log" />
        <div class="page-head"><h1>"Audit log"</h1></div>
        {filters}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                page.get()
                    .map(|r| match r {
                        Ok(p) => {
                            let older = p.next_before.map(|b| {
                                let a = action.get().map(|a| format!("&action={a}")).unwrap_or_default();
                                view! { <nav class="pager"><A href=format!("/audit?before={b}{a}")>"Older »"</A></nav> }
                            });
                            let empty = p.entries.is_empty();
                            let rows = p.entries.into_iter().map(|e| view! { <Row e /> }).collect_view();
                            view! {
                                <div class="table-wrap">
                                    <table class="batches" data-testid="audit-table">
                                        <thead><tr>
                                            <th>"When"</th><th>"Who"</th><th>"Action"</th>
                                            <th>"Target"</th><th>"Detail"</th><th>"Address"</th>
                                        </tr></thead>
                                        <tbody>{rows}</tbody>
                                    </table>
                                </div>
                                {empty.then(|| view! { <p class="muted">"Nothing recorded yet."</p> })}
                                {older}
                            }
                            .into_any()
                        }
                        Err(e) => view! {
                            <section class="error-state" data-testid="audit-error">
                                <h2>"Could not load the audit log"</h2>
                                <p>{e.describe()}</p>
                            </section>
                        }
                        .into_any(),
                    })
            }}
        </Transition>
    }
}

#[component]
fn Row(e: AuditEntry) -> impl IntoView {
    let dash = || "—".to_string();
    let action = e.action.clone();
    view! {
        <tr data-testid="audit-row" data-action=action>
            <td><Time ts=e.at /></td>
            <td>{e.actor}</td>
            <td><span class="chip">{e.action}</span></td>
            <td class="mono">{e.target.unwrap_or_else(dash)}</td>
            <td>{e.detail.unwrap_or_else(dash)}</td>
            <td class="mono">{e.ip.unwrap_or_else(dash)}</td>
        </tr>
    }
}
