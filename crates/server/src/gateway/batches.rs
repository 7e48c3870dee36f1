//! `/v1/batches`: create (from a file the caller uploaded here; checked as
//! the form is: endpoint, window, metadata, the upstream's limits; the
//! creator stamped), list (the upstream's list, paged with `after`),
//! retrieve (from the index when it has ended) and cancel.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{audit, chosen, require, GatewayError, Result, TokenUpstream};
use crate::auth::ClientIp;
use crate::state::AppState;
use batchboard_core::access::{CurrentUser, Role};
use batchboard_core::dashboard::{check_id, split_qualified};
use batchboard_core::error::ApiError;
use batchboard_core::i18n::{Key, Msg};
use batchboard_core::{Batch, CreateBatch};

fn to_json(b: &Batch) -> Json<Value> {
    Json(serde_json::to_value(b).unwrap_or_default())
}

/// `POST /v1/batches` (OpenAI's body: `input_file_id`, `endpoint`,
/// `completion_window`, `metadata`, `output_expires_after`).
pub async fn create(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    ip: Option<Extension<ClientIp>>,
    Json(mut req): Json<CreateBatch>,
) -> Result<Json<Value>> {
    require(&user, Role::Operator)?;
    check_id("file", &req.input_file_id)?;
    let owner = state.db.token_file_owner(&req.input_file_id).await?;
    if owner.as_deref() != Some(user.name.as_str()) {
        return Err(ApiError::NotFound(
            Msg::new(Key::ServerFileNotFound).arg("id", &req.input_file_id),
        )
        .into());
    }
    let (upstream, own) = state.upstreams.route(&req.input_file_id)?;
    upstream.check_may_create(user.role)?;
    let metadata = req
        .metadata
        .take()
        .map(|m| serde_json::to_string(&m).unwrap_or_default());
    let expiry = req
        .output_expires_after
        .take()
        .map(|e| e.seconds.to_string());
    let mut new = crate::files::check_form(
        Some(req.endpoint.clone()),
        Some(req.completion_window.clone()),
        metadata,
        expiry,
    )?;
    if !upstream.offer.windows.contains(&new.completion_window) {
        return Err(ApiError::Invalid(
            Msg::new(Key::ServerWindowNotOffered)
                .arg("name", upstream.display_name())
                .arg("windows", upstream.offer.windows.join(", "))
                .arg("window", &new.completion_window),
        )
        .into());
    }
    crate::services::submit::stamp_creator(&mut new.metadata, &user.name)
        .map_err(|m| GatewayError(ApiError::Invalid(m)))?;
    let estimate = state.db.token_file_estimate(&req.input_file_id).await?;
    let budget = crate::services::spend::Guard::check_estimate(
        &state,
        (&user.name, user.role),
        &upstream.name,
        estimate,
        new.metadata.as_ref(),
        false,
    )
    .await?;
    let create = CreateBatch {
        input_file_id: own.to_owned(),
        endpoint: new.endpoint,
        completion_window: new.completion_window,
        metadata: new.metadata,
        output_expires_after: new
            .output_expires_after
            .map(batchboard_core::ExpiresAfter::created_at),
    };
    let batch = upstream.qualify_batch(upstream.client.create_batch(&create).await?);
    state.index(&batch).await;
    budget.created(&state, &batch.id).await;
    audit(&state, &user, ip.as_deref(), "create", &batch.id, None).await;
    Ok(to_json(&batch))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    after: Option<String>,
    limit: Option<u32>,
}

/// `GET /v1/batches?after=&limit=`: the chosen upstream's batches, newest
/// first, with the dashboard's ids.
pub async fn list(
    State(state): State<AppState>,
    Extension(token): Extension<TokenUpstream>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>> {
    let upstream = chosen(&state, &headers, &token)?;
    let after = q.after.as_deref().map(|a| split_qualified(a).1);
    let limit = q.limit.unwrap_or(20).clamp(1, 100);
    let page = upstream.client.list_batches(after, limit).await?;
    let data: Vec<Batch> = page
        .data
        .into_iter()
        .map(|b| upstream.qualify_batch(b))
        .collect();
    Ok(Json(json!({
        "object": "list",
        "first_id": data.first().map(|b| b.id.clone()),
        "last_id": data.last().map(|b| b.id.clone()),
        "has_more": page.has_more,
        "data": data,
    })))
}

/// `GET /v1/batches/{id}`.
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>> {
    Ok(to_json(&state.batch(&id).await?))
}

/// `POST /v1/batches/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    ip: Option<Extension<ClientIp>>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    require(&user, Role::Operator)?;
    check_id("batch", &id)?;
    let (upstream, own) = state.upstreams.route(&id)?;
    let batch = upstream.qualify_batch(upstream.client.cancel_batch(own).await?);
    state.index(&batch).await;
    audit(&state, &user, ip.as_deref(), "cancel", &id, None).await;
    Ok(to_json(&batch))
}
