//! The page frame: header with navigation, main area, footer.

use leptos::prelude::*;
use leptos_router::components::A;

use super::components::Time;
use super::live::{use_live, Link};
use super::session::{may, me};
use crate::api::auth::Role;
use crate::api::{get_upstream_info, UpstreamInfo};

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let live = use_live();
    // Made here, once, and not in the footer: the footer sits in a Suspense
    // whose children the server renders again as resources resolve, so a
    // resource made there was made several times on the server but once in
    // the browser, and the data the server sent no longer lined up with it
    // (hydration failed on some fresh loads).
    let upstream = Resource::new(
        || me().is_some(),
        |signed_in| async move {
            if signed_in {
                Some(get_upstream_info().await)
            } else {
                None
            }
        },
    );
    // Once someone is signed in and the page has hydrated, join the
    // browser's one event stream.
    Effect::new(move |done: Option<bool>| {
        if done == Some(true) {
            return true;
        }
        match me().filter(|_| crate::hydrated()) {
            Some(u) => {
                live.connect(u.name);
                true
            }
            None => false,
        }
    });
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                <span class="brand-mark" aria-hidden="true">"▦"</span>
                " Batchboard"
            </a>
            <Suspense fallback=|| ()>
                {move || me().map(|u| view! {
                    <nav aria-label="Main">
                        <A href="/" exact=true>"Batches"</A>
                        {may(Role::Operator).then(|| view! { <A href="/batches/new">"New batch"</A> })}
                        {may(Role::Admin).then(|| view! { <A href="/audit">"Audit log"</A> })}
                    </nav>
                    <span class="who" data-testid="who">
                        <span title="Signed in">{u.name.clone()}</span>
                        " "
                        <span class="chip" data-testid="role">{u.role.to_string()}</span>
                    </span>
                    // A form, not a link: signing out changes state, so it is
                    // a POST (and works without JavaScript). Behind a
                    // sign-in proxy, signing out is the proxy's job.
                    {(!u.via_proxy).then(|| view! {
                        <form method="post" action="/auth/logout" class="signout">
                            <button type="submit" class="btn btn-small" data-testid="sign-out">"Sign out"</button>
                        </form>
                    })}
                })}
            </Suspense>
        </header>
        <UpstreamBanner />
        <main class="content">{children()}</main>
        <Suspense fallback=|| ()>{move || me().map(|_| view! { <Footer info=upstream /> })}</Suspense>
    }
}

/// On every page, while the watcher cannot reach the upstream: since when,
/// and that the pages show the index (what Batchboard saw last).
#[component]
fn UpstreamBanner() -> impl IntoView {
    let live = use_live();
    // Rendered on the server too: the first answer is already right.
    let initial = Resource::new(
        || me().is_some(),
        |signed_in| async move {
            if signed_in {
                crate::api::get_watcher_status().await.ok()
            } else {
                None
            }
        },
    );
    let banner = move || {
        let s = live.status.get().or_else(|| initial.get().flatten())?;
        let error = s.last_error?;
        Some(view! {
            <div class="banner banner-error" role="alert" data-testid="upstream-banner">
                <strong>"The upstream is not answering"</strong>
                " (" {error} "). "
                {match s.last_success_at {
                    Some(ok) => view! { "Last contact " <Time ts=ok /> ". " }.into_any(),
                    None => view! { "No contact since this server started. " }.into_any(),
                }}
                "Batches below are as last seen; creating, cancelling and downloads may fail until it answers again."
            </div>
        })
    };
    view! { <Suspense fallback=|| ()>{banner}</Suspense> }
}

/// Shows which upstream is in use (its base URL, never the key) and lets the
/// user check that it answers.
#[component]
fn Footer(info: Resource<Option<Result<UpstreamInfo, crate::api::AppError>>>) -> impl IntoView {
    let check = ServerAction::<crate::api::CheckUpstream>::new();
    let result = check.value();
    let pending = check.pending();

    view! {
        <footer class="footer">
            <span class="upstream" data-testid="upstream">
                "Upstream: "
                <Suspense fallback=|| view! { <span class="muted">"…"</span> }>
                    {move || {
                        info.get()
                            .flatten()
                            .map(|r| match r {
                                Ok(UpstreamInfo::Remote { base_url }) => {
                                    view! { <code>{base_url}</code> }.into_any()
                                }
                                Ok(UpstreamInfo::Sandbox) => {
                                    view! {
                                        <span class="badge badge-sandbox" title="The built-in sandbox: no key, no network, deterministic models">
                                            "Sandbox"
                                        </span>
                                    }
                                        .into_any()
                                }
                                Err(e) => {
                                    view! { <span class="error">{format!("unknown ({e})")}</span> }
                                        .into_any()
                                }
                            })
                    }}
                </Suspense>
            </span>
            <button
                class="btn btn-small"
                data-testid="check-upstream"
                on:click=move |_| {
                    check.dispatch(crate::api::CheckUpstream {});
                }
                disabled=move || pending.get()
            >
                {move || if pending.get() { "Checking…" } else { "Check connection" }}
            </button>
            <span class="check-result" data-testid="check-result" aria-live="polite">
                {move || {
                    result
                        .get()
                        .map(|r| match r {
                            Ok(r) => {
                                let class = if r.ok { "ok" } else { "error" };
                                view! { <span class=class>{r.detail}</span> }.into_any()
                            }
                            Err(e) => view! { <span class="error">{e.to_string()}</span> }.into_any(),
                        })
                }}
            </span>
            <LiveBadge />
            <span class="version">{concat!("v", env!("CARGO_PKG_VERSION"))}</span>
        </footer>
    }
}

/// Whether live updates flow, and the notification switch.
#[component]
fn LiveBadge() -> impl IntoView {
    let live = use_live();
    let here = leptos_router::hooks::use_location();
    // The sign-in page, returning to this very page.
    let sign_in_again = move || {
        let path = format!("{}{}", here.pathname.get(), here.search.get());
        batchboard_core::access::sign_in_path(&path)
    };
    view! {
        <span class="live" data-testid="live" data-state=move || live.link.get().name()>
            {move || match live.link.get() {
                Link::Idle => view! { <span class="muted">""</span> }.into_any(),
                Link::Live => view! { <span class="ok" title="Changes appear as they happen">"● Live"</span> }.into_any(),
                Link::Reconnecting => view! {
                    <span class="error" role="status">"Connection lost: reconnecting, then catching up…"</span>
                }.into_any(),
                // Back to this very page after signing in again; a full
                // load (rel=external), as this tab still thinks it is signed in.
                Link::SignedOut => view! {
                    <span class="error" role="status">
                        "Signed out. "
                        <a href=sign_in_again rel="external" data-testid="sign-in-again">"Sign in again"</a>
                    </span>
                }.into_any(),
            }}
        </span>
        <button class="btn btn-small" data-testid="notify-toggle" on:click=move |_| live.toggle_notifications()>
            {move || if live.notify.get() { "Notifications on" } else { "Notify me when my batches finish" }}
        </button>
    }
}
