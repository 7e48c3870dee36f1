//! `/v1/files`: upload (checked while it streams; problems by line in
//! OpenAI's error shape, nothing forwarded), list (the caller's uploads),
//! retrieve, delete and content. A token's user may read a file they
//! uploaded here or one of an indexed batch; other ids are "not found".

use axum::extract::{Multipart, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::{audit, chosen, require, Result, TokenUpstream};
use crate::auth::ClientIp;
use crate::files::{bad_form, small_text};
use crate::services::intake::Intake;
use crate::state::AppState;
use batchboard_core::access::{CurrentUser, Role};
use batchboard_core::dashboard::{check_id, split_qualified};
use batchboard_core::error::ApiError;
use batchboard_core::i18n::{Key, Msg};

/// `POST /v1/files` (multipart `purpose` = `batch`, `file`).
pub async fn upload(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    ip: Option<Extension<ClientIp>>,
    Extension(token): Extension<TokenUpstream>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Result<Json<Value>> {
    require(&user, Role::Operator)?;
    let Ok(_permit) = state.uploads.clone().try_acquire_owned() else {
        return Err(ApiError::Busy(Msg::new(Key::ServerUploadsBusy)).into());
    };
    let target = chosen(&state, &headers, &token)?;
    target.check_may_create(user.role)?;
    let mut purpose = None;
    let mut received = None;
    while let Some(mut field) = form.next_field().await.map_err(bad_form)? {
        match field.name().unwrap_or_default() {
            "purpose" => purpose = Some(small_text(&mut field).await.map_err(bad_form)??),
            "file" if received.is_none() => {
                let filename = field
                    .file_name()
                    .filter(|n| !n.is_empty())
                    .unwrap_or("batch.jsonl")
                    .to_owned();
                let mut intake = Intake::start(&state, &target, None, &filename, None)?;
                while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
                    intake.push(chunk).await?;
                }
                received = Some((intake, filename));
            }
            _ => {}
        }
    }
    if purpose.as_deref().is_some_and(|p| p != "batch") {
        return Err(ApiError::Invalid(Msg::new(Key::ServerPurposeBatch)).into());
    }
    let (intake, filename) =
        received.ok_or_else(|| ApiError::Invalid(Msg::new(Key::ServerFileMissing)))?;
    let checked = intake.finish().await?;
    if !checked.report.is_ok() {
        return Err(crate::http::HttpError::file(checked.report).into());
    }
    let mut checked = checked;
    let requests = checked.report.requests;
    let report =
        crate::services::submit::estimate_tokens(std::mem::take(&mut checked.report)).await;
    let estimate = batchboard_core::spend::Estimate::of(
        &report,
        &crate::services::spend::prices(&state, &target.name),
    );
    let mut file = checked.upload(&target.client, &filename).await?;
    file.id = target.qualify(&file.id);
    let data = serde_json::to_string(&file).unwrap_or_default();
    state
        .db
        .add_token_file(&file.id, &user.name, &data, estimate.as_ref())
        .await?;
    let detail = Msg::new(Key::AuditDetailCreated)
        .arg("file", &filename)
        .arg("n", requests)
        .arg("tokens", "?");
    audit(
        &state,
        &user,
        ip.as_deref(),
        "create",
        &file.id,
        Some(detail),
    )
    .await;
    Ok(Json(serde_json::to_value(file).unwrap_or_default()))
}

/// `GET /v1/files`: the files the caller uploaded here, newest first.
pub async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
) -> Result<Json<Value>> {
    let data: Vec<Value> = state
        .db
        .token_files(&user.name, 1000)
        .await?
        .iter()
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    Ok(Json(
        json!({ "object": "list", "data": data, "has_more": false }),
    ))
}

/// Whether `user` may read file `id`: theirs, or a batch's (an admin: any
/// the dashboard knows). "Not found" otherwise, so ids are not probed.
async fn readable(state: &AppState, user: &CurrentUser, id: &str) -> Result<()> {
    check_id("file", id)?;
    let owner = state.db.token_file_owner(id).await?;
    let ok = owner.as_deref() == Some(user.name.as_str())
        || (owner.is_some() && user.may(Role::Admin))
        || state.db.is_batch_file(id).await?;
    if ok {
        Ok(())
    } else {
        Err(ApiError::NotFound(Msg::new(Key::ServerFileNotFound).arg("id", id)).into())
    }
}

/// `GET /v1/files/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    readable(&state, &user, &id).await?;
    let (upstream, own) = state.upstreams.route(&id)?;
    let mut file = upstream.client.get_file(own).await?;
    file.id = upstream.qualify(&file.id);
    Ok(Json(serde_json::to_value(file).unwrap_or_default()))
}

/// `DELETE /v1/files/{id}`: one the caller uploaded (an admin: any uploaded here).
pub async fn delete(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    ip: Option<Extension<ClientIp>>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    require(&user, Role::Operator)?;
    check_id("file", &id)?;
    let owner = state.db.token_file_owner(&id).await?;
    let mine = owner.as_deref() == Some(user.name.as_str());
    if !(mine || (owner.is_some() && user.may(Role::Admin))) {
        return Err(ApiError::NotFound(Msg::new(Key::ServerFileNotFound).arg("id", &id)).into());
    }
    let (upstream, own) = state.upstreams.route(&id)?;
    upstream.client.delete_file(own).await?;
    state.db.remove_token_file(&id).await?;
    audit(&state, &user, ip.as_deref(), "delete", &id, None).await;
    Ok(Json(json!({ "id": id, "object": "file", "deleted": true })))
}

/// `GET /v1/files/{id}/content`: streamed (audited).
pub async fn content(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    ip: Option<Extension<ClientIp>>,
    Path(id): Path<String>,
) -> Result<Response> {
    readable(&state, &user, &id).await?;
    let (upstream, own) = state.upstreams.route(&id)?;
    let body = upstream.client.file_content(own).await?;
    let detail = Msg::new(Key::AuditDetailFile)
        .arg_text("kind", Key::AuditDetailFileAny)
        .arg("id", &id);
    audit(&state, &user, ip.as_deref(), "download", &id, Some(detail)).await;
    let name = format!("{}.jsonl", split_qualified(&id).1);
    Ok(crate::files::stream_file(
        body,
        upstream.client.policy().call_timeout,
        &name,
    ))
}
