//! Fault injection for tests (off unless configured): per route, answer with
//! an error status (optionally with `retry-after`), add latency, or drop the
//! connection mid-answer; for the first N matching requests or all of them.
//!
//! A rule is written `METHOD PATH: key=value,...`, for example
//! `GET /v1/batches: status=429, retry_after=2, times=3` or
//! `* /v1/files/*: latency_ms=500` or `POST /v1/files: drop`.
//! `*` as method matches any; a trailing `*` in the path matches any rest.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::SandboxError;

#[derive(Debug)]
pub struct Fault {
    method: Option<String>,
    path: String,
    status: Option<StatusCode>,
    retry_after: Option<u64>,
    latency: Duration,
    drop: bool,
    times: Option<u64>,
    hits: AtomicU64,
}

impl Fault {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (route, opts) = spec
            .split_once(':')
            .ok_or("expected `METHOD PATH: options`")?;
        let mut route = route.split_whitespace();
        let (Some(method), Some(path), None) = (route.next(), route.next(), route.next()) else {
            return Err("expected `METHOD PATH` before the colon".into());
        };
        let mut fault = Fault {
            method: (method != "*").then(|| method.to_ascii_uppercase()),
            path: path.to_owned(),
            status: None,
            retry_after: None,
            latency: Duration::ZERO,
            drop: false,
            times: None,
            hits: AtomicU64::new(0),
        };
        for opt in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
            let num = |v: &str| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("{k}: not a number"))
            };
            match k.trim() {
                "status" => {
                    fault.status = Some(
                        StatusCode::from_u16(num(v)? as u16)
                            .map_err(|_| "status: not an HTTP status".to_string())?,
                    )
                }
                "retry_after" => fault.retry_after = Some(num(v)?),
                "latency_ms" => fault.latency = Duration::from_millis(num(v)?),
                "times" => fault.times = Some(num(v)?),
                "drop" => fault.drop = true,
                other => return Err(format!("unknown option `{other}`")),
            }
        }
        if fault.status.is_none() && !fault.drop && fault.latency.is_zero() {
            return Err("give status=, latency_ms= or drop".into());
        }
        Ok(fault)
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let method_ok = self.method.as_deref().is_none_or(|m| m == method);
        let path_ok = match self.path.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == self.path,
        };
        method_ok && path_ok
    }

    /// Counts a hit; false once `times` hits have been served.
    fn take(&self) -> bool {
        let n = self.hits.fetch_add(1, Ordering::Relaxed);
        self.times.is_none_or(|t| n < t)
    }
}

pub async fn inject(State(faults): State<Arc<Vec<Fault>>>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    // Inside the nested `/v1` router the URI lacks the prefix; rules name full paths.
    let path = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| req.uri().path().to_owned(), |u| u.path().to_owned());
    let Some(fault) = faults
        .iter()
        .find(|f| f.matches(&method, &path) && f.take())
    else {
        return next.run(req).await;
    };
    tracing::info!(%method, %path, "sandbox: injecting a fault");
    if !fault.latency.is_zero() {
        tokio::time::sleep(fault.latency).await;
    }
    if fault.drop {
        // Headers go out, then the body fails: the client sees a broken transfer.
        let broken = futures_util::stream::once(async {
            Err::<bytes::Bytes, _>(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "fault injected",
            ))
        });
        return Response::new(Body::from_stream(broken));
    }
    match fault.status {
        Some(status) => SandboxError::Injected {
            status,
            message: format!("Injected fault: {status}"),
            retry_after: fault.retry_after,
        }
        .into_response(),
        None => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_match() {
        let f = Fault::parse("GET /v1/batches: status=429, retry_after=2, times=1").unwrap();
        assert!(f.matches("GET", "/v1/batches"));
        assert!(!f.matches("POST", "/v1/batches"));
        assert!(f.take());
        assert!(!f.take());
        let g = Fault::parse("* /v1/files/*: latency_ms=5").unwrap();
        assert!(g.matches("DELETE", "/v1/files/file-1"));
        assert!(Fault::parse("GET /x").is_err());
        assert!(Fault::parse("GET /x: nothing").is_err());
        assert!(Fault::parse("GET /x: status=abc").is_err());
    }
}
