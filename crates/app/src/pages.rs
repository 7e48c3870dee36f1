//! Pages.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::i18n::{t, Key};

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(axum::http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <Title text=t(Key::NotFoundTitle) />
        <section class="empty-state">
            <h1>{t(Key::NotFoundHeading)}</h1>
            <p><a href="/">{t(Key::NotFoundBack)}</a></p>
        </section>
    }
}
