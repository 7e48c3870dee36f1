//! Webhooks from upstreams (OpenAI's `batch.completed`, `batch.failed`,
//! `batch.expired`, `batch.cancelled`…): `POST /webhooks/{upstream}`,
//! verified as Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`,
//! keyed with the base64 part of the `whsec_…` secret; several signatures
//! may be listed). Unsigned (400), stale beyond five minutes (400),
//! mis-signed (401) or replayed (400, same `webhook-id`) deliveries change
//! nothing. A valid one refreshes its batch from the upstream at once, which
//! pushes it to every viewer. While an upstream's webhooks arrive, the
//! watcher polls its unfinished batches once a minute instead of every few
//! seconds.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::state::AppState;
use crate::store::{now, on_db, Db, DbError};

pub const ROUTE: &str = "/webhooks/{upstream}";
/// How far a delivery's timestamp may be from now.
pub const TOLERANCE_SECS: i64 = 300;
/// Webhooks count as arriving if one did within this long.
pub const HEALTHY_SECS: i64 = 24 * 3600;
/// How often unfinished batches are read while webhooks arrive.
pub const SLOW_POLL_SECS: i64 = 60;

/// Why a delivery is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("missing webhook-id, webhook-timestamp or webhook-signature")]
    Unsigned,
    #[error("webhook-timestamp is not within five minutes of now")]
    Stale,
    #[error("no signature matches")]
    BadSignature,
    #[error("this webhook-id was already received")]
    Replayed,
    #[error("the secret is not a whsec_ base64 key")]
    BadSecret,
}

/// The signature of `body` under `secret` (`whsec_…`, or bare base64).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, Refused> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| Refused::BadSecret)?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).map_err(|_| Refused::BadSecret)?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Checks a delivery's headers and body against `secret` at time `now`.
pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8], now: i64) -> Result<String, Refused> {
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok()).map(str::trim);
    let (Some(id), Some(ts), Some(sigs)) = (
        get("webhook-id"),
        get("webhook-timestamp"),
        get("webhook-signature"),
    ) else {
        return Err(Refused::Unsigned);
    };
    let ts: i64 = ts.parse().map_err(|_| Refused::Unsigned)?;
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err(Refused::Stale);
    }
    let want = sign(secret, id, ts, body)?;
    let matches = sigs.split(' ').any(|s| {
        use subtle::ConstantTimeEq;
        s.len() == want.len() && bool::from(s.as_bytes().ct_eq(want.as_bytes()))
    });
    if matches {
        Ok(id.to_owned())
    } else {
        Err(Refused::BadSignature)
    }
}

impl Db {
    /// Records delivery `id`; `false` if it was already received.
    pub async fn first_delivery(&self, id: &str, upstream: &str) -> Result<bool, DbError> {
        let t = now();
        let n = on_db!(self, p => {
            sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < $1")
                .bind(t - 7 * 86_400)
                .execute(p)
                .await?;
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, upstream, received_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(upstream)
            .bind(t)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// When upstream `name` last sent a valid webhook.
    pub async fn last_webhook(&self, name: &str) -> Result<Option<i64>, DbError> {
        let (at,): (Option<i64>,) = on_db!(self, p => {
            sqlx::query_as("SELECT MAX(received_at) FROM webhook_deliveries WHERE upstream = $1")
                .bind(name)
                .fetch_one(p)
                .await?
        });
        Ok(at)
    }
}

/// `off` (no secret), `configured` (none received lately) or `healthy`.
pub async fn health(state: &AppState, upstream: &crate::providers::Upstream) -> &'static str {
    if upstream.webhook_secret.is_none() {
        return "off";
    }
    match state.db.last_webhook(&upstream.name).await {
        Ok(Some(at)) if now() - at < HEALTHY_SECS => "healthy",
        _ => "configured",
    }
}

fn refuse(status: StatusCode, why: impl std::fmt::Display) -> Response {
    (
        status,
        Json(json!({ "error": { "message": why.to_string() } })),
    )
        .into_response()
}

/// `POST /webhooks/{upstream}` (`default` names the first upstream).
pub async fn receive(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let own = if name == "default" { "" } else { name.as_str() };
    let Some(upstream) = state.upstreams.named(own) else {
        return refuse(StatusCode::NOT_FOUND, "no such upstream");
    };
    let Some(secret) = upstream.webhook_secret.as_ref() else {
        return refuse(
            StatusCode::NOT_FOUND,
            "webhooks are not set up for this upstream",
        );
    };
    let id = match verify(secret.expose_secret(), &headers, &body, now()) {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(upstream = %name, error = %e, "webhook refused");
            let status = match e {
                Refused::BadSignature => StatusCode::UNAUTHORIZED,
                _ => StatusCode::BAD_REQUEST,
            };
            return refuse(status, e);
        }
    };
    match state.db.first_delivery(&id, &upstream.name).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(upstream = %name, webhook = %id, "webhook replayed; refused");
            return refuse(StatusCode::BAD_REQUEST, Refused::Replayed);
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record a webhook");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot record the delivery",
            );
        }
    }
    let event: Value = serde_json::from_slice(&body).unwrap_or_default();
    let kind = event["type"].as_str().unwrap_or_default().to_owned();
    let batch = event["data"]["id"].as_str().unwrap_or_default().to_owned();
    tracing::info!(upstream = %name, webhook = %id, event = %kind, batch = %batch, "webhook received");
    if kind.starts_with("batch.") && !batch.is_empty() {
        match upstream.client.get_batch(&batch).await {
            Ok(b) => {
                state.index(&upstream.qualify_batch(b)).await;
            }
            Err(e) => tracing::warn!(batch = %batch, error = %e, "webhook: cannot read the batch"),
        }
    }
    (StatusCode::OK, Json(json!({ "received": true }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_every_refusal_is_told_apart() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"type":"batch.completed","data":{"id":"batch_1"}}"#;
        let sig = sign(secret, "msg_1", 1000, body).unwrap();
        let mut h = HeaderMap::new();
        h.insert("webhook-id", "msg_1".parse().unwrap());
        h.insert("webhook-timestamp", "1000".parse().unwrap());
        h.insert(
            "webhook-signature",
            format!("v1,bogus {sig}").parse().unwrap(),
        );
        assert_eq!(verify(secret, &h, body, 1100), Ok("msg_1".into()));
        assert_eq!(verify(secret, &h, body, 1000 + 301), Err(Refused::Stale));
        assert_eq!(verify(secret, &h, b"{}", 1000), Err(Refused::BadSignature));
        assert_eq!(
            verify("whsec_b3RoZXJzZWNyZXQ=", &h, body, 1000),
            Err(Refused::BadSignature)
        );
        h.remove("webhook-signature");
        assert_eq!(verify(secret, &h, body, 1000), Err(Refused::Unsigned));
    }
}
