//! The page frame: header with navigation, main area, footer.

use leptos::prelude::*;
use leptos_router::components::A;

use super::components::Time;
use super::live::{use_live, Link};
use super::session::{may, me};
use crate::api::auth::Role;
use crate::api::{get_upstream_info, UpstreamInfo};
use crate::i18n::{self, t, tf, Key, LOCALES};

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
                    <nav aria-label=t(Key::NavMain)>
                        <A href="/" exact=true>{t(Key::NavBatches)}</A>
                        {may(Role::Operator).then(|| view! { <A href="/batches/new">{t(Key::NavNewBatch)}</A> })}
                        <A href="/jobs">{t(Key::NavJobs)}</A>
                        <A href="/upstreams">{t(Key::NavUpstreams)}</A>
                        <A href="/spend">{t(Key::NavSpend)}</A>
                        <A href="/tokens">{t(Key::NavTokens)}</A>
                        {may(Role::Admin).then(|| view! { <A href="/budgets">{t(Key::NavBudgets)}</A> })}
                        {may(Role::Admin).then(|| view! { <A href="/audit">{t(Key::NavAudit)}</A> })}
                        {may(Role::Admin).then(|| view! { <A href="/sessions">{t(Key::NavSessions)}</A> })}
                    </nav>
                    <span class="who" data-testid="who">
                        <span title=t(Key::NavSignedIn)>{u.name.clone()}</span>
                        " "
                        <span class="chip" data-testid="role" data-role=u.role.to_string()>{i18n::role(u.role)}</span>
                    </span>
                    // A form, not a link: signing out changes state, so it is
                    // a POST (and works without JavaScript). Behind a
                    // sign-in proxy, signing out is the proxy's job.
                    {(!u.via_proxy).then(|| view! {
                        <form method="post" action="/auth/logout" class="signout">
                            <button type="submit" class="btn btn-small" data-testid="sign-out">{t(Key::NavSignOut)}</button>
                        </form>
                    })}
                })}
            </Suspense>
            <LanguageSwitch />
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
                <strong>{t(Key::BannerTitle)}</strong>
                " (" {error} "). "
                {match s.last_success_at {
                    Some(ok) => view! { {t(Key::BannerLastContact)} " " <Time ts=ok /> ". " }.into_any(),
                    None => view! { {t(Key::BannerNoContact)} " " }.into_any(),
                }}
                {t(Key::BannerAsLastSeen)}
            </div>
        })
    };
    view! { <Suspense fallback=|| ()>{banner}</Suspense> }
}

/// Shows which upstream is in use (its base URL, never the key) and lets the
/// user check that it answers.
#[component]
fn Footer(info: Resource<Option<Result<UpstreamInfo, crate::api::AppError>>>) -> impl IntoView {
    let live = use_live();
    let check = ServerAction::<crate::api::CheckUpstream>::new();
    let result = check.value();
    let pending = check.pending();

    view! {
        <footer class="footer">
            <span class="upstream" data-testid="upstream">
                {t(Key::FooterUpstream)} " "
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
                                        <span class="badge badge-sandbox" title=t(Key::FooterSandboxHint)>
                                            {t(Key::FooterSandbox)}
                                        </span>
                                    }
                                        .into_any()
                                }
                                Err(e) => {
                                    view! { <span class="error">{tf(Key::FooterUnknown, &[("error", &e.describe())])}</span> }
                                        .into_any()
                                }
                            })
                    }}
                </Suspense>
            </span>
            {move || {
                // With several upstreams, each one's state at a glance.
                let s = live.status.get()?;
                (s.upstreams.len() > 1).then(|| {
                    let chips = s
                        .upstreams
                        .iter()
                        .map(|u| {
                            let class = if u.last_error.is_some() { "chip chip-error" } else { "chip" };
                            let title = u.last_error.clone().unwrap_or_default();
                            let name = u.display_name().to_owned();
                            view! { <A href="/upstreams" attr:class=class attr:title=title>{name}</A> }
                        })
                        .collect_view();
                    view! { <span class="footer-upstreams" data-testid="footer-upstreams">{chips}</span> }
                })
            }}
            <button
                class="btn btn-small"
                data-testid="check-upstream"
                on:click=move |_| {
                    check.dispatch(crate::api::CheckUpstream {});
                }
                disabled=move || pending.get()
            >
                {move || if pending.get() { t(Key::FooterChecking) } else { t(Key::FooterCheck) }}
            </button>
            <span class="check-result" data-testid="check-result" aria-live="polite">
                {move || {
                    result
                        .get()
                        .map(|r| match r {
                            // One upstream: its answer; several: each named.
                            Ok(answers) => {
                                let several = answers.len() > 1;
                                answers
                                    .into_iter()
                                    .map(|(name, r)| {
                                        let class = if r.ok { "ok" } else { "error" };
                                        let detail = r.msg.as_ref().map(i18n::msg).unwrap_or(r.detail);
                                        let text = if several { format!("{name}: {detail} ") } else { detail };
                                        view! { <span class=class>{text}</span> }
                                    })
                                    .collect_view()
                                    .into_any()
                            }
                            Err(e) => view! { <span class="error">{e.describe()}</span> }.into_any(),
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
                Link::Live => view! { <span class="ok" title=t(Key::LiveBadgeHint)>"● " {t(Key::LiveBadgeLive)}</span> }.into_any(),
                Link::Reconnecting => view! {
                    <span class="error" role="status">{t(Key::LiveBadgeReconnecting)}</span>
                }.into_any(),
                // Back to this very page after signing in again; a full
                // load (rel=external), as this tab still thinks it is signed in.
                Link::SignedOut => view! {
                    <span class="error" role="status">
                        {t(Key::LiveBadgeSignedOut)} " "
                        <a href=sign_in_again rel="external" data-testid="sign-in-again">{t(Key::LiveBadgeSignInAgain)}</a>
                    </span>
                }.into_any(),
            }}
        </span>
        <button class="btn btn-small" data-testid="notify-toggle" on:click=move |_| live.toggle_notifications()>
            {move || if live.notify.get() { t(Key::LiveBadgeNotifyOn) } else { t(Key::LiveBadgeNotifyOff) }}
        </button>
    }
}

/// The language switch: a form of one button per language (works without
/// JavaScript); the server remembers the choice and returns to this page.
#[component]
fn LanguageSwitch() -> impl IntoView {
    let here = leptos_router::hooks::use_location();
    let next = move || format!("{}{}", here.pathname.get(), here.search.get());
    let current = i18n::i18n().code();
    view! {
        <form method="post" action="/locale" class="lang-switch" aria-label=t(Key::NavLanguage) data-testid="lang-switch">
            <input type="hidden" name="next" value=next />
            {LOCALES
                .iter()
                .map(|(code, name)| {
                    let here = *code == current;
                    view! {
                        <button
                            type="submit"
                            name="lang"
                            value=*code
                            lang=*code
                            class="btn btn-small btn-lang"
                            aria-pressed=if here { "true" } else { "false" }
                            disabled=here
                            data-testid=format!("lang-{code}")
                        >
                            {*name}
                        </button>
                    }
                })
                .collect_view()}
        </form>
    }
}
