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

/// The Content-Security-Policy of a page whose inline scripts carry
/// `nonce`: scripts from this site or with the nonce only (the WASM needs
/// `wasm-unsafe-eval`), connections, images and forms to this site only,
/// no plugins, no `<base>`, no framing. Styles may be inline (progress
/// bars are `style` attributes).
pub fn page_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

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
