//! Server functions of jobs: the list, one job with its parts, cancel.
//! Jobs are created by `POST /api/jobs` (a file upload, like batches).

use leptos::prelude::*;

use super::AppError;
#[cfg(feature = "ssr")]
use super::{actor, state};
pub use batchboard_core::jobs::{JobView, PartView};
#[cfg(feature = "ssr")]
use batchboard_server::http::actor::{Operator, Viewer};

/// The newest jobs (without their parts).
#[server(endpoint = "list_jobs")]
pub async fn list_jobs() -> Result<Vec<JobView>, AppError> {
    actor::<Viewer>().await?;
    Ok(batchboard_server::services::jobs::list(&state()?, 200).await?)
}

/// One job with its parts.
#[server(endpoint = "get_job")]
pub async fn get_job(id: String) -> Result<JobView, AppError> {
    actor::<Viewer>().await?;
    Ok(batchboard_server::services::jobs::get(&state()?, &id)
        .await?
        .1)
}

/// Stops scheduling the job and cancels its running parts.
#[server(endpoint = "cancel_job")]
pub async fn cancel_job(id: String) -> Result<JobView, AppError> {
    let actor = actor::<Operator>().await?;
    let job = batchboard_server::services::jobs::cancel(&state()?, &id).await?;
    actor.audit("cancel", Some(&id), None).await;
    Ok(job)
}
