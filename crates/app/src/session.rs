//! Who is signed in, as the pages see it, and the sign-in page.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::auth::{safe_next, whoami, CurrentUser, Role};
use crate::api::AppError;

/// The signed-in user, loaded once per page load and shared by the frame
/// and the pages (which hide what the role may not do; the server refuses
/// it anyway).
#[derive(Clone, Copy)]
pub struct Me(pub Resource<Result<Option<CurrentUser>, AppError>>);

pub fn provide_me() {
    provide_context(Me(Resource::new(|| (), |_| whoami())));
}

/// The user, once known (`None` while loading or when signed out). Read it
/// inside a `Suspense` or `Transition`.
pub fn me() -> Option<CurrentUser> {
    use_context::<Me>()
        .and_then(|Me(r)| r.get())
        .and_then(|r| r.ok())
        .flatten()
}

/// Whether the signed-in user's role allows `role`.
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
            Some("invalid") => Some("Wrong name or password.".to_string()),
            Some("throttled") => {
                let secs: u64 = q
                    .get("retry_after")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(900);
                Some(format!(
                    "Too many failed attempts. Try again in {} minute{}.",
                    secs.div_ceil(60),
                    if secs.div_ceil(60) == 1 { "" } else { "s" }
                ))
            }
            _ => None,
        })
    };
    view! {
        <Title text="Sign in" />
        // Already signed in: straight on to where they were going.
        <Suspense fallback=|| ()>
            {move || me().map(|_| view! { <leptos_router::components::Redirect path=next() /> })}
        </Suspense>
        <section class="login panel">
            <h1>"Sign in"</h1>
            {move || error().map(|e| view! { <p class="error" role="alert" data-testid="login-error">{e}</p> })}
            // A plain form: signing in works without JavaScript.
            <form method="post" action="/auth/login" class="login-form">
                <label>
                    "Name"
                    <input name="username" data-testid="username" autocomplete="username" required autofocus />
                </label>
                <label>
                    "Password"
                    <input name="password" data-testid="password" type="password" autocomplete="current-password" required />
                </label>
                <input type="hidden" name="next" prop:value=next />
                <button type="submit" class="btn btn-primary" data-testid="sign-in">"Sign in"</button>
            </form>
            <p class="muted">"Accounts are made by an administrator with " <code>"batchboard user add"</code> "."</p>
        </section>
    }
}

/// Shown instead of a page whose role the user lacks.
#[component]
pub fn NeedsRole(role: Role, what: &'static str) -> impl IntoView {
    let have = me()
        .map(|u| u.role.to_string())
        .unwrap_or_else(|| "none".into());
    view! {
        <section class="error-state" data-testid="needs-role">
            <h2>{format!("You cannot {what}")}</h2>
            <p>{format!("This needs the {role} role; yours is {have}. Ask an administrator.")}</p>
        </section>
    }
}
