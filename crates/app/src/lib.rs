//! Batchboard's user interface: the Leptos pages, rendered on the server
//! (`ssr`) and hydrated in the browser (`hydrate`, WASM), and the server
//! functions they call.
//!
//! Server functions are thin: they find the caller, call the server crate,
//! and return. The browser build must never depend on the server, upstream
//! or sandbox crates (they are `ssr`-only dependencies), nor on tokio, sqlx
//! or axum.

// Upstream errors carry the whole OpenAI error (message, type, code, param,
// request id, retry-after) by value; they are rare, so their size is fine.
#![allow(clippy::result_large_err)]
#![recursion_limit = "256"]

pub mod api;
mod audit;
mod batch_page;
mod batch_table;
mod budgets_page;
mod components;
pub mod format;
pub mod i18n;
mod jobs_page;
mod layout;
pub mod live;
mod memo;
mod new_batch;
mod pages;
mod progress_chart;
mod results_view;
mod routes;
#[cfg(not(feature = "hydrate"))]
mod row_cache;
pub mod session;
mod sessions_page;
mod spend_page;
#[cfg(test)]
mod strings_check;
mod tokens_page;
mod upstreams_page;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, Lazy, SsrMode};

use layout::Layout;
use pages::NotFound;
use routes::{
    AuditRoute, BatchRoute, BatchesRoute, BudgetsRoute, JobRoute, JobsRoute, LoginRoute,
    NewBatchRoute, SessionsRoute, SpendRoute, TokensRoute, UpstreamsRoute,
};

/// The address of the site's `ext` file (`css`, `js`, `wasm`): named after
/// its content when the build hashed the names (cached for a year).
fn asset(options: &LeptosOptions, ext: &str) -> String {
    #[cfg(feature = "ssr")]
    {
        use batchboard_server::http::assets::Hashes;
        static HASHES: std::sync::OnceLock<Option<Hashes>> = std::sync::OnceLock::new();
        let hashes = HASHES.get_or_init(Hashes::beside_binary);
        Hashes::href(
            hashes.as_ref().filter(|_| options.hash_files),
            &options.output_name,
            ext,
        )
    }
    #[cfg(not(feature = "ssr"))]
    format!("/pkg/{}.{ext}", options.output_name)
}

/// Loads the WASM and hydrates the page once the page itself has loaded.
/// Unlike Leptos' `HydrationScripts` there is no preload in the head: on a
/// slow phone the 470 KB of WASM then never competes with the page's HTML
/// and stylesheet, so it paints sooner (Lighthouse counted the preloaded
/// WASM against the largest paint: 3.3 s instead of about 1 s). The page
/// reads fine without it meanwhile, as without JavaScript.
fn hydration_script(options: &LeptosOptions) -> String {
    format!(
        "const go=()=>import({js:?}).then(m=>m.default({{module_or_path:{wasm:?}}}).then(()=>m.hydrate()));\
         if(document.readyState===\"complete\")go();else addEventListener(\"load\",go,{{once:true}});",
        js = asset(options, "js"),
        wasm = asset(options, "wasm"),
    )
}

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // The page's Content-Security-Policy names this response's nonce,
    // which its inline scripts carry (ours below, and Leptos' own).
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(resp)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) {
        if let Ok(v) = axum::http::HeaderValue::from_str(
            &batchboard_server::http::headers::page_policy(&nonce),
        ) {
            resp.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, v);
        }
    }
    i18n::provide();
    let lang = i18n::i18n().code();
    view! {
        <!DOCTYPE html>
        <html lang=lang>
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <link rel="stylesheet" href=asset(&options, "css") />
                <AutoReload options=options.clone() />
                <script type="module" nonce=leptos::nonce::use_nonce()>{hydration_script(&options)}</script>
                <MetaTags />
                // The reader's language's texts, read by the browser before it
                // hydrates (data, never run; the nonce keeps every script
                // element of the page under one rule).
                <script type="application/json" id=i18n::TABLE_ID nonce=leptos::nonce::use_nonce() inner_html=i18n::page_table()></script>
                // Which changes this page's data has seen: the event
                // stream says whether any came before it opened.
                <meta name=live::VERSION_META content=live::rendered_version() />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    i18n::provide();
    provide_meta_context();
    session::provide_me();
    let live = live::provide_live();
    // Effects run only in the browser, once hydration has attached the event
    // handlers: the mark lets tests (and curious users) see the page is live.
    Effect::new(move |_| {
        if let (true, Some(body)) = (hydrated(), document().body()) {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        // The tab says how many batches are running, live.
        <Title formatter=move |page: String| {
            // Only the browser knows (the event stream tells it). The server
            // formats the title after the page's reactive owner is gone,
            // and on another thread, where reading a signal panics (the
            // arena is not there): a 500 for about one page in 500 under
            // load. So it reads nothing.
            #[cfg(feature = "hydrate")]
            let running = live
                .status
                .try_with(|s| s.as_ref().map(|s| s.running))
                .flatten()
                .unwrap_or(0);
            #[cfg(not(feature = "hydrate"))]
            let running = {
                let _ = live;
                0
            };
            let prefix = if running > 0 { format!("({running}) ") } else { String::new() };
            if page.is_empty() { format!("{prefix}Batchboard") } else { format!("{prefix}{page} · Batchboard") }
        } />
        <Router>
            <Layout>
                <Routes fallback=|| view! { <NotFound /> }>
                    // Async: the server waits for the data and sends whole
                    // pages, so they read fine without JavaScript.
                    <Route path=path!("/") view={Lazy::<BatchesRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/batches/new") view={Lazy::<NewBatchRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/batches/:id") view={Lazy::<BatchRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/audit") view={Lazy::<AuditRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/sessions") view={Lazy::<SessionsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/upstreams") view={Lazy::<UpstreamsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/jobs") view={Lazy::<JobsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/jobs/:id") view={Lazy::<JobRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/tokens") view={Lazy::<TokensRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/spend") view={Lazy::<SpendRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/budgets") view={Lazy::<BudgetsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/login") view={Lazy::<LoginRoute>::new()} ssr=SsrMode::Async />
                </Routes>
            </Layout>
        </Router>
    }
}

#[cfg(feature = "hydrate")]
thread_local! {
    static HYDRATED: ArcRwSignal<bool> = ArcRwSignal::new(false);
}

/// Whether the whole page has hydrated, its lazily loaded page included
/// (reactive; never on the server). Browser-only work that changes what the
/// page shows waits for it: hydration is asynchronous with lazy pages, and a
/// signal changed before its node hydrated would leave the node stale.
pub fn hydrated() -> bool {
    #[cfg(feature = "hydrate")]
    {
        HYDRATED.with(|h| h.get())
    }
    #[cfg(not(feature = "hydrate"))]
    false
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // As `leptos::mount::hydrate_lazy`, and then say it is done.
    let _ = any_spawner::Executor::init_wasm_bindgen();
    let Some(body) = document().body() else {
        return;
    };
    leptos::task::spawn_local(async move {
        let owner = leptos::mount::hydrate_from_async(body, App).await;
        owner.forget();
        HYDRATED.with(|h| h.set(true));
    });
}
