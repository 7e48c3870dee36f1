//! Pages.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{get_upstream_info, UpstreamInfo};

#[component]
pub fn BatchesPage() -> impl IntoView {
    let info = Resource::new(|| (), |_| get_upstream_info());
    view! {
        <Title text="Batches" />
        <h1>"Batches"</h1>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                info.get()
                    .map(|r| match r {
                        Ok(info) => {
                            let name = match info {
                                UpstreamInfo::Sandbox => "the built-in sandbox".to_string(),
                                UpstreamInfo::Remote { base_url } => base_url,
                            };
                            view! {
                                <section class="empty-state" data-testid="upstream-ready">
                                    <h2>"Connected to " <code>{name}</code></h2>
                                    <p>
                                        "The batch table is not built yet: it arrives with the "
                                        "core dashboard. Use “Check connection” below to test "
                                        "the upstream."
                                    </p>
                                </section>
                            }
                                .into_any()
                        }
                        Err(e) => {
                            view! { <p class="error">{format!("Could not load: {e}")}</p> }
                                .into_any()
                        }
                    })
            }}
        </Suspense>
    }
}

#[component]
pub fn NewBatchPage() -> impl IntoView {
    view! {
        <Title text="New batch" />
        <h1>"New batch"</h1>
        <section class="empty-state">
            <p>"Creating batches from a JSONL file is not available in this version yet."</p>
        </section>
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(axum::http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <Title text="Not found" />
        <section class="empty-state">
            <h1>"Page not found"</h1>
            <p><a href="/">"Back to the batches"</a></p>
        </section>
    }
}
