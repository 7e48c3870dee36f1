//! How each kind of upstream is reached: which forms of base URL it is
//! given in, how its key is sent, and what else each request carries.
//!
//! | kind | key header | base URL without a path becomes |
//! |---|---|---|
//! | openai | `Authorization: Bearer` | `/v1` |
//! | azure | `api-key` | the resource's endpoint (as the SDKs' `azure_endpoint`, any path) gets `/openai/v1`, or `/openai` with an `api_version` (then `?api-version=` on every call) |
//! | groq | Bearer | `/openai/v1` |
//! | together | Bearer | `/v1` |
//! | anthropic | `x-api-key` and `anthropic-version` | `/v1` (also added to any path not ending in it) |
//! | openai-compatible | Bearer | left as given (SGLang, LiteLLM, vLLM often serve at the root) |

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::dialect::Kind;
use crate::UpstreamError;

/// The `anthropic-version` Batchboard speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Where an upstream is and how to sign in to it.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub kind: Kind,
    pub base: &'a Url,
    pub key: Option<&'a SecretString>,
    /// OpenAI's `OpenAI-Organization` and `OpenAI-Project` headers.
    pub organization: Option<&'a str>,
    pub project: Option<&'a str>,
    /// Azure's dated API (`2024-10-21`); without it, Azure's v1 API.
    pub api_version: Option<&'a str>,
}

impl<'a> Access<'a> {
    /// A server speaking OpenAI's API at `base`, taken as given.
    pub fn compatible(base: &'a Url, key: Option<&'a SecretString>) -> Self {
        Self {
            kind: Kind::OpenaiCompatible,
            base,
            key,
            organization: None,
            project: None,
            api_version: None,
        }
    }
}

fn value(text: &str, what: &str) -> Result<HeaderValue, UpstreamError> {
    HeaderValue::from_str(text)
        .map_err(|_| UpstreamError::Config(format!("{what} is not a valid header value")))
}

/// The headers every call carries: the key (marked sensitive, so it is
/// never printed) in the kind's header, and the kind's extra headers.
pub(crate) fn headers(a: &Access<'_>) -> Result<HeaderMap, UpstreamError> {
    let mut headers = HeaderMap::new();
    if let Some(key) = a.key {
        let (name, text) = match a.kind {
            Kind::Azure => ("api-key", key.expose_secret().to_owned()),
            Kind::Anthropic => ("x-api-key", key.expose_secret().to_owned()),
            _ => (
                AUTHORIZATION.as_str(),
                format!("Bearer {}", key.expose_secret()),
            ),
        };
        let mut v = value(&text, "the API key")?;
        v.set_sensitive(true);
        headers.insert(name, v);
    }
    if a.kind == Kind::Anthropic {
        headers.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
    }
    for (name, given) in [
        ("openai-organization", a.organization),
        ("openai-project", a.project),
    ] {
        if let Some(v) = given {
            headers.insert(name, value(v, name)?);
        }
    }
    Ok(headers)
}

/// The base every path is put after, without a trailing slash: the given
/// URL, completed where the kind has a known API path (see the table).
pub(crate) fn root(a: &Access<'_>) -> String {
    let mut url = a.base.clone();
    url.set_query(None);
    url.set_fragment(None);
    let path = url.path().trim_end_matches('/').to_owned();
    let extra = match a.kind {
        Kind::Openai | Kind::Together if path.is_empty() => "/v1",
        Kind::Groq if path.is_empty() => "/openai/v1",
        // The resource's endpoint, as the SDKs' `azure_endpoint`.
        Kind::Azure if path.ends_with("/openai/v1") => "",
        Kind::Azure if path.ends_with("/openai") && a.api_version.is_some() => "",
        Kind::Azure if path.ends_with("/openai") => "/v1",
        Kind::Azure if a.api_version.is_some() => "/openai",
        Kind::Azure => "/openai/v1",
        Kind::Anthropic if !path.ends_with("/v1") => "/v1",
        _ => "",
    };
    format!("{}{extra}", url.as_str().trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_of(kind: Kind, base: &str, api_version: Option<&str>) -> String {
        let base = Url::parse(base).unwrap();
        root(&Access {
            kind,
            api_version,
            ..Access::compatible(&base, None)
        })
    }

    #[test]
    fn each_kind_completes_a_bare_host_and_keeps_a_given_path() {
        for (kind, base, version, want) in [
            (
                Kind::Openai,
                "https://api.openai.com",
                None,
                "https://api.openai.com/v1",
            ),
            (
                Kind::Openai,
                "https://api.openai.com/v1/",
                None,
                "https://api.openai.com/v1",
            ),
            (
                Kind::OpenaiCompatible,
                "http://host:4000",
                None,
                "http://host:4000",
            ),
            (
                Kind::OpenaiCompatible,
                "http://host:4000/",
                None,
                "http://host:4000",
            ),
            (
                Kind::OpenaiCompatible,
                "http://gw/llm/v1",
                None,
                "http://gw/llm/v1",
            ),
            (
                Kind::Groq,
                "https://api.groq.com",
                None,
                "https://api.groq.com/openai/v1",
            ),
            (
                Kind::Together,
                "https://api.together.xyz",
                None,
                "https://api.together.xyz/v1",
            ),
            (
                Kind::Azure,
                "https://r.openai.azure.com",
                None,
                "https://r.openai.azure.com/openai/v1",
            ),
            (
                Kind::Azure,
                "https://r.openai.azure.com/openai",
                None,
                "https://r.openai.azure.com/openai/v1",
            ),
            (
                Kind::Azure,
                "https://r.openai.azure.com/",
                Some("2024-10-21"),
                "https://r.openai.azure.com/openai",
            ),
            (
                Kind::Azure,
                "https://r.openai.azure.com/openai/",
                Some("2024-10-21"),
                "https://r.openai.azure.com/openai",
            ),
            (
                Kind::Anthropic,
                "https://api.anthropic.com",
                None,
                "https://api.anthropic.com/v1",
            ),
            (
                Kind::Anthropic,
                "http://h/anthropic",
                None,
                "http://h/anthropic/v1",
            ),
            (
                Kind::Anthropic,
                "http://h/anthropic/v1/",
                None,
                "http://h/anthropic/v1",
            ),
        ] {
            assert_eq!(root_of(kind, base, version), want, "{kind:?} {base}");
        }
    }

    #[test]
    fn the_key_goes_in_the_kinds_header_and_is_marked_sensitive() {
        let base = Url::parse("http://h").unwrap();
        let key = SecretString::from("sk-secret".to_owned());
        for (kind, name, want) in [
            (Kind::OpenaiCompatible, "authorization", "Bearer sk-secret"),
            (Kind::Azure, "api-key", "sk-secret"),
            (Kind::Anthropic, "x-api-key", "sk-secret"),
        ] {
            let h = headers(&Access {
                kind,
                ..Access::compatible(&base, Some(&key))
            })
            .unwrap();
            assert_eq!(h[name], want, "{kind:?}");
            assert!(h[name].is_sensitive());
            assert_eq!(h.len(), if kind == Kind::Anthropic { 2 } else { 1 });
        }
    }
}
