//! Which code each page's first load fetches (`cargo leptos build --split`).
//!
//! Every lazily loaded function is a split point, and wasm-split makes a
//! chunk for each combination of split points that shares code: with twelve
//! lazy pages and the validator, a first load fetched 95–120 small files
//! (Lighthouse performance 72–79). So the split points are the pages people
//! open most, one each, and two groups: the jobs pages, and the account and
//! admin pages (tokens, spend, budgets, audit, sessions, upstreams), each
//! group one chunk that serves all its pages: a first load fetches 25–34
//! files (Lighthouse 96–100; README, "In the browser").

use leptos::prelude::*;
use leptos_router::{lazy_route, LazyRoute};

use crate::audit::AuditPage;
use crate::batch_page::BatchPage;
use crate::batch_table::BatchesPage;
use crate::budgets_page::BudgetsPage;
use crate::jobs_page::{JobPage, JobsPage};
use crate::new_batch::NewBatchPage;
use crate::session::LoginPage;
use crate::sessions_page::SessionsPage;
use crate::spend_page::SpendPage;
use crate::tokens_page::TokensPage;
use crate::upstreams_page::UpstreamsPage;

// A page that is a split point of its own.
macro_rules! lazy_page {
    ($route:ident, $page:ident) => {
        pub struct $route;
        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }
            fn view(_this: Self) -> AnyView {
                view! { <$page /> }.into_any()
            }
        }
    };
}
lazy_page!(BatchesRoute, BatchesPage);
lazy_page!(NewBatchRoute, NewBatchPage);
lazy_page!(BatchRoute, BatchPage);
lazy_page!(LoginRoute, LoginPage);

/// The jobs pages: one lazily loaded function draws either.
#[derive(Clone, Copy)]
pub enum JobsPages {
    List,
    One,
}

#[leptos::lazy]
fn jobs_group(page: JobsPages) -> AnyView {
    match page {
        JobsPages::List => view! { <JobsPage /> }.into_any(),
        JobsPages::One => view! { <JobPage /> }.into_any(),
    }
}

/// The account and admin pages: one lazily loaded function draws any.
#[derive(Clone, Copy)]
pub enum MorePages {
    Tokens,
    Spend,
    Budgets,
    Audit,
    Sessions,
    Upstreams,
}

#[leptos::lazy]
fn more_group(page: MorePages) -> AnyView {
    match page {
        MorePages::Tokens => view! { <TokensPage /> }.into_any(),
        MorePages::Spend => view! { <SpendPage /> }.into_any(),
        MorePages::Budgets => view! { <BudgetsPage /> }.into_any(),
        MorePages::Audit => view! { <AuditPage /> }.into_any(),
        MorePages::Sessions => view! { <SessionsPage /> }.into_any(),
        MorePages::Upstreams => view! { <UpstreamsPage /> }.into_any(),
    }
}

// The pages of a group, each drawn by the group's function (as
// `#[lazy_route]` writes a route, with the group's function in place of
// one per page).
macro_rules! grouped_pages {
    ($group:ident, $preload:ident, $pages:ident { $($route:ident => $page:ident),* $(,)? }) => {
        $(
            pub struct $route;
            impl LazyRoute for $route {
                fn data() -> Self {
                    $route
                }
                async fn view(_this: Self) -> AnyView {
                    $group($pages::$page).await
                }
                async fn preload() {
                    #[cfg(feature = "hydrate")]
                    $preload().await;
                }
            }
        )*
    };
}
grouped_pages!(jobs_group, __preload_jobs_group, JobsPages {
    JobsRoute => List,
    JobRoute => One,
});
grouped_pages!(more_group, __preload_more_group, MorePages {
    TokensRoute => Tokens,
    SpendRoute => Spend,
    BudgetsRoute => Budgets,
    AuditRoute => Audit,
    SessionsRoute => Sessions,
    UpstreamsRoute => Upstreams,
});
