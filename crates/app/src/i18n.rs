//! The pages' side of the translation layer ([`batchboard_core::i18n`]).
//!
//! Every text a view shows comes from [`t`] or [`tf`] (or a [`Msg`] the
//! server sent, through [`msg`]); `strings_check.rs` fails on a text
//! written into a view. The server renders in the request's locale (the
//! `Locale` its middleware found) and puts that locale's table into the
//! page; the browser reads it from there before hydrating, so both render
//! the same words.

pub use batchboard_core::i18n::{I18n, Key, Msg, LOCALES};

use std::fmt::Display;

/// The id of the page's `<script type="application/json">` with the table.
pub const TABLE_ID: &str = "bb-i18n";

#[cfg(feature = "hydrate")]
thread_local! {
    static PAGE: std::cell::OnceCell<I18n> = const { std::cell::OnceCell::new() };
}

/// The reader's language.
pub fn i18n() -> I18n {
    #[cfg(feature = "hydrate")]
    {
        PAGE.with(|p| *p.get_or_init(from_page))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        from_request()
    }
}

/// The text of `key`.
pub fn t(key: Key) -> &'static str {
    i18n().t(key)
}

/// The text of `key` with its `{name}` arguments.
pub fn tf(key: Key, args: &[(&str, &dyn Display)]) -> String {
    i18n().f(key, args)
}

/// A text the server sent untranslated.
pub fn msg(m: &Msg) -> String {
    i18n().msg(m)
}

/// `one` or `other` for `n`, with `{n}` filled in.
pub fn plural(one: Key, other: Key, n: u64) -> String {
    i18n().plural(one, other, n)
}

/// Makes the reader's language known to every view below (on the server,
/// found once from the request instead of at every text).
pub fn provide() {
    leptos::prelude::provide_context(i18n());
}

/// On the server: the locale the request's middleware found (pages and
/// server functions alike), else English.
#[cfg(not(feature = "hydrate"))]
fn from_request() -> I18n {
    #[cfg(feature = "ssr")]
    {
        use leptos::prelude::use_context;
        // Found once per page (see `provide`); reading the request's parts
        // would copy them for every text.
        if let Some(l) = use_context::<I18n>() {
            return l;
        }
        if let Some(parts) = use_context::<axum::http::request::Parts>() {
            if let Some(l) = parts
                .extensions
                .get::<batchboard_server::http::locale::Locale>()
            {
                return I18n::get(l.0);
            }
        }
    }
    I18n::english()
}

/// In the browser: the table the server put into the page.
#[cfg(feature = "hydrate")]
fn from_page() -> I18n {
    #[derive(serde::Deserialize)]
    struct Sent {
        code: String,
        table: Vec<Option<String>>,
    }
    leptos::prelude::document()
        .get_element_by_id(TABLE_ID)
        .and_then(|e| e.text_content())
        .and_then(|json| serde_json::from_str::<Sent>(&json).ok())
        .map(|s| I18n::from_table(&s.code, s.table))
        .unwrap_or_default()
}

/// The page's table, as JSON safe inside a `<script>` element (server).
pub fn page_table() -> String {
    let l = i18n();
    let table = if l.code() == "en" {
        Vec::new()
    } else {
        l.table()
    };
    serde_json::json!({ "code": l.code(), "table": table })
        .to_string()
        .replace('<', "\\u003c")
}

/// `ts` in the reader's time zone and language, from the browser
/// (`Intl`); `None` on the server, which knows neither.
pub fn local_time(ts: i64) -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ts as f64 * 1000.0));
        Some(String::from(date.to_locale_string(
            i18n().code(),
            &wasm_bindgen::JsValue::UNDEFINED,
        )))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = ts;
        None
    }
}

/// A batch status in words (an unknown status as itself).
pub fn status(s: &batchboard_core::BatchStatus) -> String {
    i18n().status(s)
}

/// A role in words.
pub fn role(r: batchboard_core::access::Role) -> &'static str {
    t(I18n::role_key(r))
}
