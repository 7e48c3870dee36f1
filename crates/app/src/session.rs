//! Who is signed in, as the pages see it, and the sign-in page.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::auth::{safe_next, whoami, CurrentUser, Role};
use crate::api::AppError;
use crate::i18n::{self, plural, t, tf, Key};

/// The signed-in user, loaded once per page load and shared by the frame
/// and the pages (which hide what the role may not do; the server refuses
/// it anyway).
#[derive(Clone, Copy)]
pub struct Me(pub Resource<Result<Option<CurrentUser>, AppError>>);

pub fn provide_me() {
    provide_context(Me(Resource::new(|| (), |_| whoami())));
}

/// The user, once known (`None` while loading or when signed out). Read it
/// inside a `Suspense` or `Transition` (Leptos's debug-build warning about
/// a read outside one names the caller: hence `track_caller`).
#[track_caller]
pub fn me() -> Option<CurrentUser> {
    let Me(r) = use_context::<Me>()?;
    r.get()?.ok().flatten()
}

/// Whether the signed-in user's role allows `role`.
#[track_caller]
pub fn may(role: Role) -> bool {
    me().is_some_and(|u| u.may(role))
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    // Only paths of this site: never `//host` or a scheme.
    let next =
        move || query.with(|q| safe_next(q.get("next").as_deref().unwrap_or("/")).to_string());
    let error = move || {
        query.with(|q| match q.get("error").as_deref() {
            Some("invalid") => Some(t(Key::LoginWrong).to_string()),
            Some("throttled") => {
                let secs: u64 = q
                    .get("retry_after")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(900);
                Some(plural(
                    Key::LoginThrottledOne,
                    Key::LoginThrottledOther,
                    secs.div_ceil(60),
                ))
            }
            _ => None,
        })
    };
    view! {
        <Title text=t(Key::LoginTitle) />
        // Already signed in: straight on to where they were going.
        <Suspense fallback=|| ()>
            {move || me().map(|_| view! { <leptos_router::components::Redirect path=next() /> })}
        </Suspense>
        <section class="login panel">
            <h1>{t(Key::LoginTitle)}</h1>
            {move || error().map(|e| view! { <p class="error" role="alert" data-testid="login-error">{e}</p> })}
            // A plain form: signing in works without JavaScript.
            <form method="post" action="/auth/login" class="login-form">
                <label>
                    {t(Key::LoginName)}
                    <input name="username" data-testid="username" autocomplete="username" required autofocus />
                </label>
                <label>
                    {t(Key::LoginPassword)}
                    <input name="password" data-testid="password" type="password" autocomplete="current-password" required />
                </label>
                <input type="hidden" name="next" value=next />
                <button type="submit" class="btn btn-primary" data-testid="sign-in">{t(Key::LoginButton)}</button>
            </form>
            <p class="muted">
                {t(Key::LoginAccountsBefore)} " " <code>"batchboard user add"</code> {t(Key::LoginAccountsAfter)}
            </p>
        </section>
    }
}

/// Shown instead of a page whose role the user lacks.
#[component]
pub fn NeedsRole(role: Role, what: &'static str) -> impl IntoView {
    let have = me()
        .map(|u| i18n::role(u.role))
        .unwrap_or_else(|| t(Key::RoleNone));
    view! {
        <section class="error-state" data-testid="needs-role">
            <h2>{tf(Key::LoginCannot, &[("what", &what)])}</h2>
            <p>{tf(Key::LoginNeedsRole, &[("role", &i18n::role(role)), ("have", &have)])}</p>
        </section>
    }
}
