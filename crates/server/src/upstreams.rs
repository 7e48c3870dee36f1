//! The upstreams file (`--upstreams-file`, default `DATA_DIR/upstreams.toml`):
//! the named batch APIs a team uses, each with its kind, base URL, key (by
//! environment variable or file, never in the file itself), limits and the
//! roles that may create batches there.
//!
//! ```toml
//! [[upstream]]
//! name = "openai-prod"
//! kind = "openai"
//! base_url = "https://api.openai.com/v1"
//! key_env = "OPENAI_API_KEY"
//!
//! [[upstream]]
//! name = "azure-eu"
//! kind = "azure"
//! base_url = "https://my-resource.openai.azure.com/openai/v1"
//! key_file = "/run/secrets/azure-key"
//! deployments = ["gpt-4o-mini-batch"]
//! create_roles = ["admin"]
//! limits = { max_requests = 100000, completion_windows = ["24h"] }
//! ```
//!
//! Read whole and checked before use: a mistake is refused with what and
//! where (the line, the upstream, the field), and nothing of a bad file is
//! used.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use batchboard_core::access::Role;
use batchboard_upstream::dialect::Kind;
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

/// What is wrong with an upstreams file.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamsError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// TOML or a field of the wrong type; the message names the line.
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("{path}: upstream {name:?}: {message}")]
    Upstream {
        path: String,
        name: String,
        message: String,
    },
}

/// Per-upstream overrides of the Batch API's limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_requests: Option<u64>,
    pub max_bytes: Option<u64>,
    /// Completion windows offered (`24h`, `48h`, `7d`…).
    pub completion_windows: Option<Vec<String>>,
    /// Batch endpoints offered (default: the kind's, see
    /// [`Kind::endpoints`]).
    pub endpoints: Option<Vec<String>>,
    /// Tokens that may be enqueued at once, by model or deployment.
    #[serde(default)]
    pub enqueued_tokens: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    upstream: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    kind: String,
    base_url: String,
    key_env: Option<String>,
    key_file: Option<PathBuf>,
    /// The `whsec_…` secret of its webhooks, by variable name or file.
    webhook_secret_env: Option<String>,
    webhook_secret_file: Option<PathBuf>,
    organization: Option<String>,
    project: Option<String>,
    api_version: Option<String>,
    #[serde(default)]
    deployments: Vec<String>,
    #[serde(default)]
    limits: Limits,
    create_roles: Option<Vec<Role>>,
    /// Its own batch prices (a price table file like `--price-table`'s).
    price_table: Option<PathBuf>,
}

/// One upstream, checked, with its key read.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub name: String,
    pub kind: Kind,
    pub base_url: Url,
    /// `None`: the upstream needs no key (a local OpenAI-compatible server).
    pub key: Option<SecretString>,
    pub organization: Option<String>,
    pub project: Option<String>,
    /// Azure's older `/openai/...?api-version=` form.
    pub api_version: Option<String>,
    /// Azure: the Global-Batch deployments lines may name (empty: any).
    pub deployments: Vec<String>,
    pub limits: Limits,
    /// Who may create batches here (default: operators and admins).
    pub create_roles: Vec<Role>,
    /// Signs its webhooks (`POST /webhooks/{name}`), if it sends any.
    pub webhook_secret: Option<SecretString>,
    /// Its own prices (`price_table`); `None`: the server's table.
    pub prices: Option<batchboard_core::prices::PriceTable>,
}

/// Reads a price table file (TOML: `source`, `[models."…"]` with `input`,
/// `cached_input`, `output`, `max_output`).
pub fn read_prices(path: &Path) -> Result<batchboard_core::prices::PriceTable, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut table: batchboard_core::prices::PriceTable =
        toml::from_str(&text).map_err(|e| e.to_string())?;
    if table.source.is_empty() {
        table.source = path.display().to_string();
    }
    Ok(table)
}

/// Where the upstreams file is when `--upstreams-file` does not say.
pub fn default_path(data_dir: &Path) -> PathBuf {
    data_dir.join("upstreams.toml")
}

/// Reads and checks the file at `path`; `env` looks up environment
/// variables (the process's own in the server; tests pass their own).
pub fn load(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<UpstreamConfig>, UpstreamsError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| UpstreamsError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text, &shown, env)
}

/// Checks the text of an upstreams file (`path` names it in errors).
pub fn parse(
    text: &str,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<UpstreamConfig>, UpstreamsError> {
    let file: File = toml::from_str(text).map_err(|e| UpstreamsError::Syntax {
        path: path.into(),
        message: e.to_string().trim_end().replace('\n', " "),
    })?;
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(file.upstream.len());
    for e in file.upstream {
        let fail = |message: String| UpstreamsError::Upstream {
            path: path.into(),
            name: e.name.clone(),
            message,
        };
        if !valid_name(&e.name) {
            return Err(fail(
                "`name` must be 1 to 32 lower-case letters, digits or `-`".into(),
            ));
        }
        if !names.insert(e.name.clone()) {
            return Err(fail("the name is used twice".into()));
        }
        let kind = Kind::parse(&e.kind).ok_or_else(|| {
            let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            fail(format!(
                "`kind` {:?} is not one of {}",
                e.kind,
                kinds.join(", ")
            ))
        })?;
        let base_url = crate::config::parse_base_url(&e.base_url)
            .map_err(|m| fail(format!("`base_url`: {m}")))?;
        let key = match (&e.key_env, &e.key_file) {
            (Some(_), Some(_)) => {
                return Err(fail("give `key_env` or `key_file`, not both".into()))
            }
            (Some(var), None) => Some(
                env(var)
                    .filter(|k| !k.trim().is_empty())
                    .ok_or_else(|| fail(format!("`key_env`: the variable {var} is not set")))?,
            ),
            (None, Some(file)) => Some(
                std::fs::read_to_string(file)
                    .map_err(|err| fail(format!("`key_file` {}: {err}", file.display())))?
                    .trim()
                    .to_owned(),
            )
            .filter(|k| !k.is_empty()),
            (None, None) => None,
        };
        let needs_key = !matches!(kind, Kind::OpenaiCompatible);
        if key.is_none() && needs_key {
            return Err(fail(format!(
                "a {} upstream needs a key: `key_env` or `key_file`",
                kind.as_str()
            )));
        }
        if kind != Kind::Azure && (e.api_version.is_some() || !e.deployments.is_empty()) {
            return Err(fail(
                "`api_version` and `deployments` are for kind = \"azure\" only".into(),
            ));
        }
        if let Some(windows) = &e.limits.completion_windows {
            if let Some(bad) = windows.iter().find(|w| !valid_window(w)) {
                return Err(fail(format!(
                    "`limits.completion_windows`: {bad:?} is not a window such as \"24h\" or \"7d\""
                )));
            }
        }
        if let Some(endpoints) = &e.limits.endpoints {
            if kind.message_batches() {
                return Err(fail(
                    "`limits.endpoints`: an anthropic upstream takes message batches only".into(),
                ));
            }
            if let Some(bad) = endpoints
                .iter()
                .find(|p| !batchboard_core::ENDPOINTS.contains(&p.as_str()))
            {
                return Err(fail(format!(
                    "`limits.endpoints`: {bad:?} is not one of {}",
                    batchboard_core::ENDPOINTS.join(", ")
                )));
            }
        }
        let webhook_secret = match (&e.webhook_secret_env, &e.webhook_secret_file) {
            (Some(_), Some(_)) => {
                return Err(fail(
                    "give `webhook_secret_env` or `webhook_secret_file`, not both".into(),
                ))
            }
            (Some(var), None) => {
                Some(env(var).filter(|k| !k.trim().is_empty()).ok_or_else(|| {
                    fail(format!(
                        "`webhook_secret_env`: the variable {var} is not set"
                    ))
                })?)
            }
            (None, Some(file)) => Some(
                std::fs::read_to_string(file)
                    .map_err(|err| {
                        fail(format!("`webhook_secret_file` {}: {err}", file.display()))
                    })?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        if let Some(s) = &webhook_secret {
            if crate::webhooks_in::sign(s, "check", 0, b"").is_err() {
                return Err(fail(
                    "the webhook secret is not a `whsec_…` base64 key".into(),
                ));
            }
        }
        let prices = e
            .price_table
            .as_deref()
            .map(|p| {
                read_prices(p).map_err(|err| fail(format!("`price_table` {}: {err}", p.display())))
            })
            .transpose()?;
        out.push(UpstreamConfig {
            prices,
            name: e.name.clone(),
            kind,
            base_url,
            key: key.map(SecretString::from),
            organization: e.organization,
            project: e.project,
            api_version: e.api_version,
            deployments: e.deployments,
            limits: e.limits,
            create_roles: e
                .create_roles
                .unwrap_or_else(|| vec![Role::Operator, Role::Admin]),
            webhook_secret: webhook_secret.map(SecretString::from),
        });
    }
    Ok(out)
}

fn valid_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `24h`, `48h`, `7d`: a number and `h` or `d`.
fn valid_window(s: &str) -> bool {
    let Some(unit) = s.chars().last() else {
        return false;
    };
    matches!(unit, 'h' | 'd') && s[..s.len() - 1].parse::<u32>().is_ok_and(|n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(var: &str) -> Option<String> {
        (var == "OPENAI_API_KEY").then(|| "sk-from-env".to_owned())
    }

    #[test]
    fn a_file_with_every_kind_reads() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("azure-key");
        std::fs::write(&key_file, "azure-secret\n").unwrap();
        let text = format!(
            r#"
[[upstream]]
name = "openai-prod"
kind = "openai"
base_url = "https://api.openai.com/v1/"
key_env = "OPENAI_API_KEY"
project = "proj_1"

[[upstream]]
name = "azure-eu"
kind = "azure"
base_url = "https://res.openai.azure.com/openai/v1"
key_file = "{}"
deployments = ["gpt-4o-mini-batch"]
create_roles = ["admin"]
limits = {{ max_requests = 100000, max_bytes = 200000000, completion_windows = ["24h"] }}

[[upstream]]
name = "litellm"
kind = "openai-compatible"
base_url = "http://gateway:4000"
"#,
            key_file.display()
        );
        let ups = parse(&text, "upstreams.toml", &env).unwrap();
        assert_eq!(ups.len(), 3);
        assert_eq!(ups[0].kind, Kind::Openai);
        assert_eq!(ups[0].base_url.as_str(), "https://api.openai.com/v1");
        assert_eq!(ups[0].key.as_ref().unwrap().expose_secret(), "sk-from-env");
        assert_eq!(ups[0].create_roles, vec![Role::Operator, Role::Admin]);
        assert_eq!(ups[1].key.as_ref().unwrap().expose_secret(), "azure-secret");
        assert_eq!(ups[1].create_roles, vec![Role::Admin]);
        assert_eq!(ups[1].limits.max_requests, Some(100000));
        assert_eq!(ups[1].deployments, vec!["gpt-4o-mini-batch".to_string()]);
        assert!(ups[2].key.is_none());
        // The key is never in what is printed.
        assert!(!format!("{ups:?}").contains("sk-from-env"));
        assert!(!format!("{ups:?}").contains("azure-secret"));
    }

    #[test]
    fn mistakes_are_refused_saying_what_and_where() {
        let bad = |text: &str| parse(text, "up.toml", &env).unwrap_err().to_string();
        let one = |fields: &str| format!("[[upstream]]\nname = \"x\"\n{fields}\n");
        // Syntax and unknown fields: with the line.
        let e = bad("[[upstream]]\nname = \"x\"\nkind = openai\n");
        assert!(e.contains("up.toml") && e.contains("line 3"), "{e}");
        let e = bad(&one("kind = \"openai\"\nbase_url = \"https://a\"\nkey_env = \"OPENAI_API_KEY\"\nmodel = \"m\""));
        assert!(e.contains("unknown field") && e.contains("model"), "{e}");
        // Fields checked, naming the upstream.
        let e = bad(&one("kind = \"bedrock\"\nbase_url = \"https://a\""));
        assert!(
            e.contains("\"x\"") && e.contains("bedrock") && e.contains("anthropic"),
            "{e}"
        );
        let e = bad(&one(
            "kind = \"openai\"\nbase_url = \"ftp://a\"\nkey_env = \"OPENAI_API_KEY\"",
        ));
        assert!(e.contains("base_url") && e.contains("scheme"), "{e}");
        let e = bad(&one(
            "kind = \"openai\"\nbase_url = \"https://a\"\nkey_env = \"MISSING_KEY\"",
        ));
        assert!(e.contains("MISSING_KEY is not set"), "{e}");
        let e = bad(&one("kind = \"anthropic\"\nbase_url = \"https://a\""));
        assert!(e.contains("needs a key"), "{e}");
        let e = bad(&one("kind = \"openai\"\nbase_url = \"https://a\"\nkey_env = \"OPENAI_API_KEY\"\ndeployments = [\"d\"]"));
        assert!(e.contains("azure"), "{e}");
        let e = bad(&one("kind = \"groq\"\nbase_url = \"https://a\"\nkey_env = \"OPENAI_API_KEY\"\nlimits = { completion_windows = [\"soon\"] }"));
        assert!(e.contains("soon"), "{e}");
        let e = bad(&one("kind = \"groq\"\nbase_url = \"https://a\"\nkey_env = \"OPENAI_API_KEY\"\nlimits = { endpoints = [\"/v1/audio\"] }"));
        assert!(
            e.contains("\"/v1/audio\" is not one of /v1/responses"),
            "{e}"
        );
        let e = bad(&one("kind = \"anthropic\"\nbase_url = \"https://a\"\nkey_env = \"OPENAI_API_KEY\"\nlimits = { endpoints = [\"/v1/chat/completions\"] }"));
        assert!(e.contains("message batches only"), "{e}");
        let e = bad(&one("kind = \"openai\"\nbase_url = \"https://a\"\nkey_env = \"OPENAI_API_KEY\"\nwebhook_secret_env = \"NOT_SET\""));
        assert!(e.contains("NOT_SET is not set"), "{e}");
        let e = bad(&one("kind = \"openai\"\nbase_url = \"https://a\"\nkey_env = \"OPENAI_API_KEY\"\nwebhook_secret_env = \"OPENAI_API_KEY\""));
        assert!(e.contains("whsec_"), "{e}");
        let e =
            bad("[[upstream]]\nname = \"Bad Name\"\nkind = \"openai\"\nbase_url = \"https://a\"\n");
        assert!(e.contains("lower-case"), "{e}");
        let twice =
            "[[upstream]]\nname = \"a\"\nkind = \"openai-compatible\"\nbase_url = \"http://h\"\n";
        let e = bad(&format!("{twice}{twice}"));
        assert!(e.contains("used twice"), "{e}");
    }
}
