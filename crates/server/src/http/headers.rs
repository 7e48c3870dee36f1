//! Headers every response carries, whatever answered it.

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// `nosniff` (files are what their type says), no framing by other sites
/// (clickjacking: `frame-ancestors 'none'` and the older `X-Frame-Options`),
/// and no page address sent to other sites in `Referer`.
const SECURITY: [(HeaderName, &str); 4] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
    (header::REFERRER_POLICY, "same-origin"),
];

/// Adds [`SECURITY`] to every response that did not set its own.
pub async fn security(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    for (name, value) in SECURITY {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    resp
}
