//! Scripts through Batchboard: an OpenAI-compatible Files + Batches API at
//! `/v1` for personal access tokens (`Authorization: Bearer bb_…`), so that
//! `OpenAI(base_url=".../v1", api_key="bb_…")` works unchanged. Behind it
//! are the services the pages use: files are checked while they stream,
//! roles apply, `created_by` is stamped, every change is audited. Errors
//! come in OpenAI's shape (`{"error": {"message", "type", "param",
//! "code"}}`). The upstream is the one the `Batchboard-Upstream` header
//! names, or the first.

mod batches;
mod files;

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;

use crate::auth::ClientIp;
use crate::http::HttpError;
use crate::state::AppState;
use batchboard_core::access::{CurrentUser, Role};
use batchboard_core::error::{ApiError, ErrorKind};
use batchboard_core::i18n::{Key, Msg};

/// The routes under `/v1`.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/files"),
    ("GET", "/v1/files"),
    ("GET", "/v1/files/{id}"),
    ("DELETE", "/v1/files/{id}"),
    ("GET", "/v1/files/{id}/content"),
    ("POST", "/v1/batches"),
    ("GET", "/v1/batches"),
    ("GET", "/v1/batches/{id}"),
    ("POST", "/v1/batches/{id}/cancel"),
];

pub fn is_gateway(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

pub fn router() -> Router<AppState> {
    use axum::routing::{get, post};
    Router::new()
        .route(
            "/v1/files",
            post(files::upload)
                .get(files::list)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::http::limits::UPLOAD_BODY_LIMIT as usize,
                )),
        )
        .route("/v1/files/{id}", get(files::get).delete(files::delete))
        .route("/v1/files/{id}/content", get(files::content))
        .route("/v1/batches", post(batches::create).get(batches::list))
        .route("/v1/batches/{id}", get(batches::get))
        .route("/v1/batches/{id}/cancel", post(batches::cancel))
}

/// An error in OpenAI's shape.
pub struct GatewayError(pub ApiError);

impl<E: Into<HttpError>> From<E> for GatewayError {
    fn from(e: E) -> Self {
        Self(e.into().into_api())
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let (status, body) = crate::http::body(&self.0);
        let kind = match body.kind {
            ErrorKind::Unauthenticated => "authentication_error",
            ErrorKind::Forbidden => "permission_error",
            ErrorKind::Busy => "rate_limit_error",
            ErrorKind::Upstream => "upstream_error",
            ErrorKind::Internal => "server_error",
            _ => "invalid_request_error",
        };
        // A file's problems: each with its line, in the message too.
        let mut message = match body.kind {
            ErrorKind::Unauthenticated => Msg::new(Key::ServerTokenRequired).to_string(),
            _ => body.message.clone(),
        };
        for e in body.errors.iter().take(10) {
            let at = e.line.map(|l| format!("line {l}: ")).unwrap_or_default();
            message.push_str(&format!("\n{at}{}", e.message));
        }
        let code = body.upstream_code.clone().or_else(|| match body.kind {
            ErrorKind::Problems => Some("invalid_file".to_owned()),
            ErrorKind::Unauthenticated => Some("invalid_api_key".to_owned()),
            _ => None,
        });
        let param = body.errors.first().and_then(|e| e.param.clone());
        let mut resp = (
            status,
            axum::Json(json!({
                "error": {
                    "message": message,
                    "type": kind,
                    "param": param,
                    "code": code,
                    "errors": body.errors,
                }
            })),
        )
            .into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        }
        resp
    }
}

pub type Result<T> = std::result::Result<T, GatewayError>;

/// Requests per token and minute, counted per replica.
#[derive(Default)]
pub struct RateLimit(Mutex<HashMap<String, (i64, u32)>>);

impl RateLimit {
    /// Counts a request of token `id`; `false` when over `per_minute`.
    fn admit(&self, id: &str, per_minute: u32) -> bool {
        let minute = crate::store::now() / 60;
        let Ok(mut m) = self.0.lock() else {
            return true;
        };
        if m.len() > 10_000 {
            m.retain(|_, (at, _)| *at == minute);
        }
        let e = m.entry(id.to_owned()).or_insert((minute, 0));
        if e.0 != minute {
            *e = (minute, 0);
        }
        e.1 += 1;
        e.1 <= per_minute
    }
}

/// The sign-in gate for `/v1`: a live personal access token, or 401; over
/// its rate, 429 with `retry-after`. The token's user (at the lower of the
/// token's and the user's role) is then the request's [`CurrentUser`].
pub async fn gate(state: AppState, mut req: Request, next: Next) -> Response {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    let (token, user) =
        match crate::access_tokens::verify(&state.db, &state.auth.users, &bearer).await {
            Ok(found) => found,
            Err(e) => return GatewayError(e).into_response(),
        };
    if !state.token_limits.admit(&token.id, state.token_rpm) {
        let msg = Msg::new(Key::ServerTokenRate).arg("n", state.token_rpm);
        let mut resp = GatewayError(ApiError::Busy(msg)).into_response();
        *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return resp;
    }
    let ip = req.extensions().get::<ClientIp>().map(|i| i.0.to_string());
    let db = state.db.clone();
    let id = token.id.clone();
    tokio::spawn(async move {
        if let Err(e) = db.token_used(&id, ip.as_deref()).await {
            tracing::warn!(error = %e, "cannot note a token's use");
        }
    });
    // Reads are audited here, once each (changes and downloads by their
    // handlers, with what they did).
    let read = (req.method() == axum::http::Method::GET && !req.uri().path().ends_with("/content"))
        .then(|| (user.clone(), req.uri().path().to_owned()));
    let client = req.extensions().get::<ClientIp>().copied();
    req.extensions_mut().insert(user);
    req.extensions_mut()
        .insert(TokenUpstream(token.upstream.clone()));
    let resp = next.run(req).await;
    if let Some((user, path)) = read {
        let detail = Msg::new(Key::AuditDetailApiRead).arg("status", resp.status().as_u16());
        audit(
            &state,
            &user,
            client.as_ref(),
            "api_read",
            &path,
            Some(detail),
        )
        .await;
    }
    resp
}

/// The default upstream of the request's token (`None`: the first).
#[derive(Debug, Clone)]
pub struct TokenUpstream(pub Option<String>);

/// The user the gate let in, if they may act as `role`.
fn require(user: &CurrentUser, role: Role) -> Result<()> {
    if user.may(role) {
        Ok(())
    } else {
        Err(GatewayError(ApiError::Forbidden(
            Msg::new(Key::ServerTokenNeedsRole).arg("role", role.as_str()),
        )))
    }
}

/// The upstream the `Batchboard-Upstream` header names, else the token's
/// default, else the first.
fn chosen(
    state: &AppState,
    headers: &HeaderMap,
    token: &TokenUpstream,
) -> Result<std::sync::Arc<crate::providers::Upstream>> {
    let name = headers
        .get("batchboard-upstream")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .or(token.0.as_deref())
        .filter(|n| !n.is_empty() && *n != "default");
    match name {
        None => Ok(state.upstreams.first()),
        Some(n) => state.upstreams.named(n).ok_or_else(|| {
            GatewayError(ApiError::Invalid(
                Msg::new(Key::ProblemUnknownUpstream).arg("name", n),
            ))
        }),
    }
}

/// Writes an audit entry for `user`.
async fn audit(
    state: &AppState,
    user: &CurrentUser,
    ip: Option<&ClientIp>,
    action: &str,
    target: &str,
    detail: Option<Msg>,
) {
    state
        .audit(crate::store::Audit {
            actor: &user.name,
            action,
            target: Some(target),
            detail,
            ip: ip.map(|i| i.0.to_string()).as_deref(),
        })
        .await;
}
