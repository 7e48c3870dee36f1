//! The Upstreams page (`/upstreams`, any signed-in role): each batch API
//! this dashboard talks to, its kind and base URL (never its key), when the
//! watcher last reached it (or what went wrong), its running batches,
//! what a batch there may be (endpoints, windows, limits) and whether the
//! reader may create batches there.

use leptos::prelude::*;
use leptos_meta::Title;

use super::components::Time;
use super::live::use_live;
use crate::api::{UpstreamView, WatcherStatus};
use crate::i18n::{t, tf, Key};
use batchboard_core::limits::Offer;

#[component]
pub fn UpstreamsPage() -> impl IntoView {
    let list = Resource::new(|| (), |_| crate::api::list_upstreams());
    let status = Resource::new(|| (), |_| crate::api::get_watcher_status());
    let live = use_live();
    view! {
        <Title text=t(Key::UpstreamsTitle) />
        <div class="page-head"><h1>{t(Key::UpstreamsTitle)}</h1></div>
        <p class="muted">{t(Key::UpstreamsIntro)}</p>
        <Transition fallback=|| ()>
            {move || list.get().map(|r| match r {
                Ok(list) => {
                    let health = live
                        .status
                        .get()
                        .or_else(|| status.get().and_then(|s| s.ok()))
                        .unwrap_or_default();
                    view! { <Table list health /> }.into_any()
                }
                Err(e) => view! {
                    <section class="error-state">
                        <h2>{t(Key::UpstreamsLoadFailed)}</h2>
                        <p>{e.describe()}</p>
                    </section>
                }
                .into_any(),
            })}
        </Transition>
    }
}

#[component]
fn Table(list: Vec<UpstreamView>, health: WatcherStatus) -> impl IntoView {
    let rows = list
        .into_iter()
        .map(|u| {
            let h = health
                .upstreams
                .iter()
                .find(|h| h.display_name() == u.name)
                .cloned()
                .unwrap_or_default();
            let place = u
                .base_url
                .clone()
                .unwrap_or_else(|| t(Key::UpstreamsSandbox).to_string());
            let contact = match (h.last_error.clone(), h.last_success_at) {
                (Some(e), _) => view! { <span class="error" data-testid="upstream-error">{e}</span> }.into_any(),
                (None, Some(ts)) => view! { <Time ts /> }.into_any(),
                (None, None) => view! { <span class="muted">{t(Key::UpstreamsNotYet)}</span> }.into_any(),
            };
            let create = if u.may_create { t(Key::UpstreamsYes) } else { t(Key::UpstreamsNo) };
            view! {
                <tr data-testid="upstream-row" data-name=u.name.clone()>
                    <td><strong>{u.name.clone()}</strong></td>
                    <td>{u.kind.clone()}</td>
                    <td class="mono">{place}</td>
                    <td>{contact}</td>
                    <td data-testid="upstream-running">{crate::format::count(h.running.max(0) as u64)}</td>
                    <td data-testid="upstream-takes">{takes(&u.offer)}</td>
                    <td>{create}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="batches" data-testid="upstreams-table">
                <thead><tr>
                    <th>{t(Key::UpstreamsColName)}</th>
                    <th>{t(Key::UpstreamsColKind)}</th>
                    <th>{t(Key::UpstreamsColWhere)}</th>
                    <th>{t(Key::UpstreamsColContact)}</th>
                    <th>{t(Key::UpstreamsColRunning)}</th>
                    <th>{t(Key::UpstreamsColTakes)}</th>
                    <th>{t(Key::UpstreamsColCreate)}</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

/// What a batch on an upstream may be, in one line.
fn takes(o: &Offer) -> String {
    let fmt = crate::format::count;
    let mut parts = vec![if o.endpoints.is_empty() {
        t(Key::UpstreamsTakesEndpointsAll).to_string()
    } else {
        o.endpoints.join(", ")
    }];
    parts.push(tf(
        Key::UpstreamsTakesWindows,
        &[("windows", &o.windows.join(", "))],
    ));
    if let Some(n) = o.max_requests {
        parts.push(tf(Key::UpstreamsTakesRequests, &[("n", &fmt(n))]));
    }
    if let Some(b) = o.max_bytes {
        parts.push(tf(
            Key::UpstreamsTakesBytes,
            &[("size", &crate::format::bytes(b))],
        ));
    }
    if !o.deployments.is_empty() {
        parts.push(tf(
            Key::UpstreamsTakesDeployments,
            &[("list", &o.deployments.join(", "))],
        ));
    }
    for (model, n) in &o.enqueued_tokens {
        parts.push(tf(
            Key::UpstreamsTakesTokens,
            &[("model", model), ("n", &fmt(*n))],
        ));
    }
    parts.join(" · ")
}
