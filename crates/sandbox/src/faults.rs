//! Fault injection for tests (off unless configured): per route, answer with
//! an error status (optionally with `retry-after` and `x-should-retry`), add
//! latency, answer 200 with malformed JSON, drop the connection before doing
//! anything, or do the work and then cut the answer after some bytes; for the
//! first N matching requests or all of them, optionally after letting M
//! through (`skip=M`: the 11th page of a list, not the first).
//!
//! A rule is written `METHOD PATH: key=value,...`, for example
//! `GET /v1/batches: status=429, retry_after=2, times=3` or
//! `* /v1/files/*: latency_ms=500` or `POST /v1/files: drop` or
//! `GET /v1/files/*/content: drop_after=100000` or
//! `POST /v1/batches: drop_after=0, times=1` (the batch is created, the
//! client never hears of it) or `GET /v1/batches/*: malformed`.
//! `*` as method matches any; a `*` path segment matches any one segment, a
//! trailing `*` any rest.
//!
//! Rules can be replaced while the sandbox runs (`PUT /sandbox/faults` with
//! the key, one rule per line; an empty body clears them), so a test can
//! break the upstream at the moment it chooses.

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
    /// Do the work, then cut the answer after this many bytes.
    drop_after: Option<u64>,
    malformed: bool,
    should_retry: Option<bool>,
    times: Option<u64>,
    /// Matching requests let through before the fault applies.
    skip: u64,
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
            drop_after: None,
            malformed: false,
            should_retry: None,
            times: None,
            skip: 0,
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
                "skip" => fault.skip = num(v)?,
                "drop" => fault.drop = true,
                "drop_after" => fault.drop_after = Some(num(v)?),
                "malformed" => fault.malformed = true,
                "should_retry" => {
                    fault.should_retry = Some(match v.trim() {
                        "true" => true,
                        "false" => false,
                        _ => return Err("should_retry: true or false".into()),
                    })
                }
                other => return Err(format!("unknown option `{other}`")),
            }
        }
        if fault.status.is_none()
            && !fault.drop
            && !fault.malformed
            && fault.drop_after.is_none()
            && fault.latency.is_zero()
        {
            return Err("give status=, latency_ms=, drop, drop_after= or malformed".into());
        }
        Ok(fault)
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let method_ok = self.method.as_deref().is_none_or(|m| m == method);
        method_ok && path_matches(&self.path, path)
    }

    /// Counts a hit; false for the first `skip` hits and once `times`
    /// hits have been served after them.
    fn take(&self) -> bool {
        let n = self.hits.fetch_add(1, Ordering::Relaxed);
        n >= self.skip && self.times.is_none_or(|t| n - self.skip < t)
    }
}

/// `*` matches one segment; a trailing `*` matches any rest.
fn path_matches(pattern: &str, path: &str) -> bool {
    if let Some(prefix) = pattern.strip_suffix('*') {
        if !prefix.contains('*') {
            return path.starts_with(prefix);
        }
    }
    let (mut p, mut q) = (pattern.split('/'), path.split('/'));
    loop {
        match (p.next(), q.next()) {
            (None, None) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// The rules in force, replaceable at run time.
pub type Faults = Arc<std::sync::RwLock<Vec<Arc<Fault>>>>;

/// Parses rules, one per line (blank lines and `#` comments skipped).
pub fn parse_rules(text: &str) -> Result<Vec<Arc<Fault>>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            Fault::parse(l)
                .map(Arc::new)
                .map_err(|e| format!("'{l}': {e}"))
        })
        .collect()
}

/// Cuts a body after `keep` bytes with a connection error.
fn cut(body: Body, keep: u64) -> Body {
    use futures_util::StreamExt;
    let mut left = keep;
    let stream = body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        if left == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "fault injected",
            ));
        }
        let n = (chunk.len() as u64).min(left) as usize;
        left -= n as u64;
        Ok(chunk.slice(..n))
    });
    // A body shorter than `keep` still ends broken.
    let tail = futures_util::stream::once(async {
        Err::<bytes::Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fault injected",
        ))
    });
    let cut = stream
        .chain(tail)
        .scan(false, |failed, item| {
            // Stop after the first error.
            let out = if *failed { None } else { Some(item) };
            if let Some(Err(_)) = &out {
                *failed = true;
            }
            futures_util::future::ready(out)
        })
        .then(|item| async move {
            // Let what came before reach the client first, headers included:
            // the break happens mid-transfer, not before it starts.
            if item.is_err() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            item
        });
    Body::from_stream(cut)
}

pub async fn inject(State(faults): State<Faults>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    // Inside the nested `/v1` router the URI lacks the prefix; rules name full paths.
    let path = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| req.uri().path().to_owned(), |u| u.path().to_owned());
    let found = faults.read().ok().and_then(|rules| {
        rules
            .iter()
            .find(|f| f.matches(&method, &path) && f.take())
            .cloned()
    });
    let Some(fault) = found else {
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
    if fault.malformed {
        return (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            r#"{"object": "list", "data": [{"id": "batch_"#,
        )
            .into_response();
    }
    if let Some(status) = fault.status {
        let mut resp = SandboxError::Injected {
            status,
            message: format!("Injected fault: {status}"),
            retry_after: fault.retry_after,
        }
        .into_response();
        if let Some(advice) = fault.should_retry {
            resp.headers_mut().insert(
                "x-should-retry",
                axum::http::HeaderValue::from_static(if advice { "true" } else { "false" }),
            );
        }
        return resp;
    }
    let resp = next.run(req).await;
    match fault.drop_after {
        Some(keep) => {
            let (mut parts, body) = resp.into_parts();
            // The length would tell the client how much is missing; a cut
            // connection is what is being simulated, so keep it.
            parts.headers.remove(axum::http::header::TRANSFER_ENCODING);
            Response::from_parts(parts, cut(body, keep))
        }
        None => resp,
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
        let s = Fault::parse("GET /v1/batches: status=400, skip=2, times=1").unwrap();
        assert_eq!(
            (0..5).map(|_| s.take()).collect::<Vec<_>>(),
            [false, false, true, false, false]
        );
        let always = Fault::parse("GET /x: latency_ms=1, skip=1").unwrap();
        assert_eq!(
            (0..3).map(|_| always.take()).collect::<Vec<_>>(),
            [false, true, true]
        );
        let g = Fault::parse("* /v1/files/*: latency_ms=5").unwrap();
        assert!(g.matches("DELETE", "/v1/files/file-1"));
        let c = Fault::parse("GET /v1/files/*/content: drop_after=10").unwrap();
        assert!(c.matches("GET", "/v1/files/file-1/content"));
        assert!(!c.matches("GET", "/v1/files/file-1"));
        assert!(!c.matches("GET", "/v1/files/file-1/content/x"));
        assert!(Fault::parse("GET /x: malformed").is_ok());
        assert!(Fault::parse("GET /x: status=500, should_retry=maybe").is_err());
        assert_eq!(parse_rules("# none\n\nGET /x: drop\n").unwrap().len(), 1);
        assert!(parse_rules("GET /x: nothing").is_err());
        assert!(Fault::parse("GET /x").is_err());
        assert!(Fault::parse("GET /x: nothing").is_err());
        assert!(Fault::parse("GET /x: status=abc").is_err());
    }
}
