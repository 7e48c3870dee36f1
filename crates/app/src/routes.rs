//! Which code each page's first load fetches (`cargo leptos build --split`).
//!
//! Every lazily loaded function is a split point, and wasm-split makes a
//! chunk for each combination of split points that shares code: with twelve
//! lazy pages and the validator, a first load fetched 95–120 small files
//! (Lighthouse performance 72–79). So the split points are the pages people
//! open most, one each, and two groups: the jobs pages, and the account and
//! admin pages (tokens, spend, budgets, audit, sessions, upstreams), each
//! group one chunk that serves all its pages.

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

/// The pages of a group: one lazily loaded function draws any of them.
#[derive(Clone, Copy)]
pub enum Grouped {
    Jobs,
    Job,
    Tokens,
    Spend,
    Budgets,
    Audit,
    Sessions,
    Upstreams,
}

#[leptos::lazy]
fn jobs_group(page: Grouped) -> AnyView {
    match page {
        Grouped::Job => view! { <JobPage /> }.into_any(),
        _ => view! { <JobsPage /> }.into_any(),
    }
}

#[leptos::lazy]
fn more_group(page: Grouped) -> AnyView {
    match page {
        Grouped::Spend => view! { <SpendPage /> }.into_any(),
        Grouped::Budgets => view! { <BudgetsPage /> }.into_any(),
        Grouped::Audit => view! { <AuditPage /> }.into_any(),
        Grouped::Sessions => view! { <SessionsPage /> }.into_any(),
        Grouped::Upstreams => view! { <UpstreamsPage /> }.into_any(),
        _ => view! { <TokensPage /> }.into_any(),
    }
}

// A page drawn by its group's function (as `#[lazy_route]` writes it, with
// the group's function in place of one per page).
macro_rules! grouped_page {
    ($route:ident, $group:ident, $preload:ident, $page:expr) => {
        pub struct $route;
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }
            async fn view(_this: Self) -> AnyView {
                $group($page).await
            }
            async fn preload() {
                #[cfg(feature = "hydrate")]
                $preload().await;
            }
        }
    };
}
grouped_page!(JobsRoute, jobs_group, __preload_jobs_group, Grouped::Jobs);
grouped_page!(JobRoute, jobs_group, __preload_jobs_group, Grouped::Job);
grouped_page!(
    TokensRoute,
    more_group,
    __preload_more_group,
    Grouped::Tokens
);
grouped_page!(SpendRoute, more_group, __preload_more_group, Grouped::Spend);
grouped_page!(
    BudgetsRoute,
    more_group,
    __preload_more_group,
    Grouped::Budgets
);
grouped_page!(AuditRoute, more_group, __preload_more_group, Grouped::Audit);
grouped_page!(
    SessionsRoute,
    more_group,
    __preload_more_group,
    Grouped::Sessions
);
grouped_page!(
    UpstreamsRoute,
    more_group,
    __preload_more_group,
    Grouped::Upstreams
);
