//! The site's static files and how browsers may cache what we send.
//!
//! `cargo leptos build` names the WASM, JS and CSS after their content
//! (`hash-files`) and writes the hashes to `hash.txt` beside the binary;
//! release builds (`--precompress`) also write `.br` and `.gz` copies. So
//! `/pkg/*` is served precompressed when the browser accepts it, and cached
//! for a year (`immutable`): a new build has new names. Everything else
//! (pages, server functions) is revalidated on every use and compressed on
//! the fly, except event streams and downloads, which stream as they are.

use std::path::{Path, PathBuf};

use axum::http::{header, HeaderValue};
use axum::Router;
use tower_http::compression::predicate::{NotForContentType, Predicate};
use tower_http::compression::{CompressionLayer, DefaultPredicate};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// For files whose name changes with their content.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For pages and everything else: may be stored, but asked again each time
/// (pages differ per user, so never by a shared cache).
pub const REVALIDATE: &str = "private, no-cache";

/// The content hashes `cargo leptos build` wrote beside the binary, if it
/// hashed the file names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Hashes {
    pub js: String,
    pub wasm: String,
    pub css: String,
}

impl Hashes {
    /// `hash.txt` beside the running binary (where Leptos looks too).
    pub fn beside_binary() -> Option<Self> {
        let exe = std::env::current_exe().ok()?;
        let text = std::fs::read_to_string(exe.parent()?.join("hash.txt")).ok()?;
        Self::parse(&text)
    }

    /// Lines `js: <hash>`, `wasm: <hash>`, `css: <hash>`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut h = Self::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim().to_string();
            match k.trim() {
                "js" => h.js = v,
                "wasm" => h.wasm = v,
                "css" => h.css = v,
                _ => {}
            }
        }
        (!h.js.is_empty() && !h.wasm.is_empty() && !h.css.is_empty()).then_some(h)
    }

    /// `/pkg/<name>.<hash>.<ext>` for `js`, `wasm` or `css`, or
    /// `/pkg/<name>.<ext>` without hashes.
    pub fn href(hashes: Option<&Self>, name: &str, ext: &str) -> String {
        let hash = hashes.map(|h| match ext {
            "js" => &h.js,
            "wasm" => &h.wasm,
            _ => &h.css,
        });
        match hash {
            Some(hash) => format!("/pkg/{name}.{hash}.{ext}"),
            None => format!("/pkg/{name}.{ext}"),
        }
    }
}

/// `/pkg`: the WASM, JS and CSS, precompressed where a copy exists.
/// Immutable when the names are hashed; revalidated otherwise (a build
/// without hashes reuses the names).
pub fn pkg_router<S: Clone + Send + Sync + 'static>(site_root: &Path, hashed: bool) -> Router<S> {
    let dir: PathBuf = site_root.join("pkg");
    let files = ServeDir::new(dir).precompressed_br().precompressed_gzip();
    let cache = if hashed { IMMUTABLE } else { REVALIDATE };
    Router::new().nest_service(
        "/pkg",
        tower::ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::overriding(
                header::CACHE_CONTROL,
                HeaderValue::from_static(cache),
            ))
            .service(files),
    )
}

/// Compresses pages and JSON on the fly (brotli or gzip, as the browser
/// accepts), but not event streams (they must flush each event), files
/// already compressed, or result downloads (large; they stream through
/// at disk speed instead).
pub fn compression() -> CompressionLayer<impl Predicate> {
    let predicate = DefaultPredicate::new()
        .and(NotForContentType::const_new("application/jsonl"))
        .and(NotForContentType::const_new("text/csv"))
        .and(NotForContentType::const_new("application/octet-stream"))
        .and(NotForContentType::const_new("application/wasm"));
    CompressionLayer::new()
        .quality(tower_http::CompressionLevel::Fastest)
        .compress_when(predicate)
}

/// Sets `Cache-Control: private, no-cache` on whatever did not set its own.
pub fn revalidate_by_default() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static(REVALIDATE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_hash_file() {
        let h = Hashes::parse("js: abc\nwasm: def\ncss: ghi\n").expect("hashes");
        assert_eq!(h.wasm, "def");
        assert_eq!(Hashes::href(Some(&h), "bb", "css"), "/pkg/bb.ghi.css");
        assert_eq!(Hashes::href(Some(&h), "bb", "wasm"), "/pkg/bb.def.wasm");
        assert_eq!(Hashes::href(None, "bb", "js"), "/pkg/bb.js");
        assert_eq!(Hashes::parse("js: abc\n"), None);
    }
}
