//! The audit log: `/audit`, for admins.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use super::components::Time;
use crate::api::auth::{audit_log, AuditEntry, AUDIT_ACTIONS};
use crate::i18n::{t, Key};

/// An action's label: its machine name (the filter's value, `data-action`)
/// in the reader's language; an action this version does not know, as is.
fn action_label(action: &str) -> String {
    let key = match action {
        "sign_in" => Key::AuditActionSignIn,
        "sign_in_failed" => Key::AuditActionSignInFailed,
        "sign_out" => Key::AuditActionSignOut,
        "create" => Key::AuditActionCreate,
        "cancel" => Key::AuditActionCancel,
        "download" => Key::AuditActionDownload,
        "denied" => Key::AuditActionDenied,
        "end_session" => Key::AuditActionEndSession,
        "delete" => Key::AuditActionDelete,
        "api_read" => Key::AuditActionApiRead,
        "create_token" => Key::AuditActionCreateToken,
        "set_budget" => Key::AuditActionSetBudget,
        "budget_override" => Key::AuditActionBudgetOverride,
        "revoke_token" => Key::AuditActionRevokeToken,
        other => return other.to_string(),
    };
    t(key).to_string()
}

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
            <A href="/audit" attr:class=if current.is_none() { "chip chip-on" } else { "chip" }>{t(Key::AuditAll)}</A>
        };
        let each = AUDIT_ACTIONS
            .iter()
            .map(|a| {
                let class = if current.as_deref() == Some(*a) {
                    "chip chip-on"
                } else {
                    "chip"
                };
                view! { <A href=format!("/audit?action={a}") attr:class=class>{action_label(a)}</A> }
            })
            .collect_view();
        view! { <nav class="page-size" aria-label=t(Key::AuditFilter)>{t(Key::AuditFilterLabel)} " " {all} {each}</nav> }
    };
    view! {
        <Title text=t(Key::AuditTitle) />
        <div class="page-head"><h1>{t(Key::AuditTitle)}</h1></div>
        {filters}
        <Transition fallback=|| view! { <p class="muted">{t(Key::AuditLoading)}</p> }>
            {move || {
                page.get()
                    .map(|r| match r {
                        Ok(p) => {
                            let older = p.next_before.map(|b| {
                                let a = action.get().map(|a| format!("&action={a}")).unwrap_or_default();
                                view! { <nav class="pager"><A href=format!("/audit?before={b}{a}")>{t(Key::AuditOlder)}</A></nav> }
                            });
                            let empty = p.entries.is_empty();
                            let rows = p.entries.into_iter().map(|e| view! { <Row e /> }).collect_view();
                            view! {
                                <div class="table-wrap">
                                    <table class="batches" data-testid="audit-table">
                                        <thead><tr>
                                            <th>{t(Key::AuditColWhen)}</th>
                                            <th>{t(Key::AuditColWho)}</th>
                                            <th>{t(Key::AuditColAction)}</th>
                                            <th>{t(Key::AuditColTarget)}</th>
                                            <th>{t(Key::AuditColDetail)}</th>
                                            <th>{t(Key::AuditColAddress)}</th>
                                        </tr></thead>
                                        <tbody>{rows}</tbody>
                                    </table>
                                </div>
                                {empty.then(|| view! { <p class="muted">{t(Key::AuditEmpty)}</p> })}
                                {older}
                            }
                            .into_any()
                        }
                        Err(e) => view! {
                            <section class="error-state" data-testid="audit-error">
                                <h2>{t(Key::AuditLoadFailed)}</h2>
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
    let label = action_label(&e.action);
    view! {
        <tr data-testid="audit-row" data-action=e.action>
            <td><Time ts=e.at /></td>
            <td>{e.actor}</td>
            <td><span class="chip">{label}</span></td>
            <td class="mono">{e.target.unwrap_or_else(dash)}</td>
            <td>{e.detail_msg.as_ref().map(crate::i18n::msg).or(e.detail).unwrap_or_else(dash)}</td>
            <td class="mono">{e.ip.unwrap_or_else(dash)}</td>
        </tr>
    }
}
