//! The reader's language: chosen with the switch in the header (remembered
//! in a cookie and, when signed in, in the session), else the browser's
//! `Accept-Language`, else English. Every request carries the result as a
//! [`Locale`] extension, which the pages and server functions render with.

use axum::extract::{Form, Request};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use batchboard_core::access::safe_next;
use batchboard_core::i18n;
use serde::Deserialize;
use tower_sessions::Session;

/// The cookie that remembers the choice (a year; not a secret).
pub const COOKIE: &str = "bb_locale";
const SESSION_KEY: &str = "locale";

/// The locale this request is answered in (a code of [`i18n::LOCALES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locale(pub &'static str);

fn from_cookie(headers: &HeaderMap) -> Option<&'static str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .and_then(i18n::supported)
}

/// Middleware: finds the request's [`Locale`] (inside the session layer).
pub async fn resolve(
    session: Option<axum::Extension<Session>>,
    mut req: Request,
    next: Next,
) -> Response {
    let session = session.map(|axum::Extension(s)| s);
    let mut code = from_cookie(req.headers());
    if code.is_none() {
        if let Some(s) = session.as_ref().filter(|s| s.id().is_some()) {
            code = s
                .get::<String>(SESSION_KEY)
                .await
                .ok()
                .flatten()
                .as_deref()
                .and_then(i18n::supported);
        }
    }
    let code = code.unwrap_or_else(|| {
        i18n::negotiate(
            req.headers()
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        )
    });
    req.extensions_mut().insert(Locale(code));
    next.run(req).await
}

#[derive(Debug, Deserialize)]
pub struct Choice {
    lang: String,
    #[serde(default)]
    next: String,
}

/// `POST /locale` (the header's switch; a form, so it works without
/// JavaScript): remembers the choice and returns to the page.
pub async fn choose(
    session: Option<axum::Extension<Session>>,
    user: Option<axum::Extension<batchboard_core::access::CurrentUser>>,
    Form(choice): Form<Choice>,
) -> Response {
    // Only a signed-in session remembers it (a made-up session cookie
    // must not make a session row).
    let session = session
        .map(|axum::Extension(s)| s)
        .filter(|_| user.as_ref().is_some_and(|u| !u.via_proxy));
    let back = Redirect::to(safe_next(&choice.next));
    let Some(code) = i18n::supported(&choice.lang) else {
        return back.into_response();
    };
    if let Some(s) = session.filter(|s| s.id().is_some()) {
        if let Err(e) = s.insert(SESSION_KEY, code).await {
            tracing::warn!(error = %e, "remembering the language in the session");
        }
    }
    let mut resp = back.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={code}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly"
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; bb_locale=ko; b=2"),
        );
        assert_eq!(from_cookie(&h), Some("ko"));
        h.insert(header::COOKIE, HeaderValue::from_static("bb_locale=xx"));
        assert_eq!(from_cookie(&h), None);
    }
}
