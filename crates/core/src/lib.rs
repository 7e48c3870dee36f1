//! Batchboard's domain: the one set of wire types of the Batch and Files
//! APIs, the JSONL validator, the price table, reading result lines, and what
//! the dashboard's browser side and server exchange. Shared by the upstream
//! client, the sandbox, the server and the browser (WASM).
//!
//! Pure Rust with no I/O: this crate must never depend on tokio, reqwest,
//! sqlx, axum, leptos or anything else that does I/O or needs a runtime, so
//! that it compiles to wasm32 and its tests run in seconds.
//!
//! Parsing is tolerant, as the real API demands: fields the spec calls
//! required may be `null` or missing, unknown fields are ignored, and an
//! unknown status string is kept as itself.

pub mod access;
pub mod anthropic;
pub mod dashboard;
pub mod error;
pub mod i18n;
pub mod jobs;
pub mod limits;
pub mod prices;
pub mod progress;
pub mod result_lines;
pub mod spend;
pub mod validate;
mod wire;

pub use wire::*;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use i18n::{Key, Msg};

/// The endpoints a batch may target.
pub const ENDPOINTS: &[&str] = &[
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
];

/// Limits of the Batch API.
pub const MAX_REQUESTS: usize = 50_000;
pub const MAX_FILE_BYTES: u64 = 200 * 1024 * 1024;
/// The metadata key Batchboard stamps with the name of whoever created a batch.
pub const CREATED_BY: &str = "created_by";
pub const MAX_METADATA_PAIRS: usize = 16;
pub const MAX_METADATA_KEY_CHARS: usize = 64;
pub const MAX_METADATA_VALUE_CHARS: usize = 512;

/// The Batch API's metadata limits; the message names the pair at fault.
pub fn check_metadata(m: &Metadata) -> Result<(), Msg> {
    if m.len() > MAX_METADATA_PAIRS {
        return Err(Msg::new(Key::ProblemMetadataTooMany)
            .arg("n", m.len())
            .arg("max", MAX_METADATA_PAIRS));
    }
    for (k, v) in m {
        if k.is_empty() {
            return Err(Msg::new(Key::ProblemMetadataEmptyKey));
        }
        if k.chars().count() > MAX_METADATA_KEY_CHARS {
            return Err(Msg::new(Key::ProblemMetadataLongKey)
                .arg("key", k)
                .arg("max", MAX_METADATA_KEY_CHARS));
        }
        if v.chars().count() > MAX_METADATA_VALUE_CHARS {
            return Err(Msg::new(Key::ProblemMetadataLongValue)
                .arg("key", k)
                .arg("max", MAX_METADATA_VALUE_CHARS));
        }
    }
    Ok(())
}

/// `null` becomes the type's default.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BatchStatus {
    Validating,
    Failed,
    InProgress,
    Finalizing,
    Completed,
    Expired,
    Cancelling,
    Cancelled,
    /// A status this version does not know, shown as itself.
    Other(String),
}

impl BatchStatus {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Validating => "validating",
            Self::Failed => "failed",
            Self::InProgress => "in_progress",
            Self::Finalizing => "finalizing",
            Self::Completed => "completed",
            Self::Expired => "expired",
            Self::Cancelling => "cancelling",
            Self::Cancelled => "cancelled",
            Self::Other(s) => s,
        }
    }

    /// No further change will come.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Failed | Self::Completed | Self::Expired | Self::Cancelled
        )
    }

    /// Cancelling makes sense in this state.
    pub fn can_cancel(&self) -> bool {
        matches!(self, Self::Validating | Self::InProgress | Self::Finalizing)
    }
}

impl From<&str> for BatchStatus {
    fn from(s: &str) -> Self {
        match s {
            "validating" => Self::Validating,
            "failed" => Self::Failed,
            "in_progress" => Self::InProgress,
            "finalizing" => Self::Finalizing,
            "completed" => Self::Completed,
            "expired" => Self::Expired,
            "cancelling" => Self::Cancelling,
            "cancelled" => Self::Cancelled,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for BatchStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for BatchStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for BatchStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        Ok(Self::from(s.as_str()))
    }
}

impl Default for BatchStatus {
    fn default() -> Self {
        Self::Other(String::new())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    #[serde(default, deserialize_with = "null_default")]
    pub total: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub completed: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub failed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    #[serde(default, deserialize_with = "null_default")]
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    #[serde(default, deserialize_with = "null_default")]
    pub reasoning_tokens: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default, deserialize_with = "null_default")]
    pub input_tokens: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub input_tokens_details: InputTokensDetails,
    #[serde(default, deserialize_with = "null_default")]
    pub output_tokens: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub output_tokens_details: OutputTokensDetails,
    #[serde(default, deserialize_with = "null_default")]
    pub total_tokens: u64,
}

/// One problem found in a batch's input file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchError {
    #[serde(default, deserialize_with = "null_default")]
    pub code: String,
    #[serde(default, deserialize_with = "null_default")]
    pub message: String,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub line: Option<u64>,
    /// `message`, untranslated (Batchboard's own checks only): what the
    /// dashboard shows, in its reader's language.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::i18n::lenient"
    )]
    pub msg: Option<Msg>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchErrors {
    #[serde(default = "list_object")]
    pub object: String,
    #[serde(default, deserialize_with = "null_default")]
    pub data: Vec<BatchError>,
}

fn list_object() -> String {
    "list".into()
}

fn batch_object() -> String {
    "batch".into()
}

/// Metadata: string keys and values. Values that are not strings (from a
/// lenient provider) are kept as their JSON text rather than refused.
pub type Metadata = BTreeMap<String, String>;

fn tolerant_metadata<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Metadata>, D::Error> {
    let raw = Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?;
    Ok(raw.map(|m| {
        m.into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect()
    }))
}

/// The Batch object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub id: String,
    #[serde(default = "batch_object", deserialize_with = "null_default")]
    pub object: String,
    #[serde(default, deserialize_with = "null_default")]
    pub endpoint: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub errors: Option<BatchErrors>,
    #[serde(default, deserialize_with = "null_default")]
    pub input_file_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub completion_window: String,
    #[serde(default)]
    pub status: BatchStatus,
    #[serde(default)]
    pub output_file_id: Option<String>,
    #[serde(default)]
    pub error_file_id: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub created_at: i64,
    #[serde(default)]
    pub in_progress_at: Option<i64>,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub finalizing_at: Option<i64>,
    #[serde(default)]
    pub completed_at: Option<i64>,
    #[serde(default)]
    pub failed_at: Option<i64>,
    #[serde(default)]
    pub expired_at: Option<i64>,
    #[serde(default)]
    pub cancelling_at: Option<i64>,
    #[serde(default)]
    pub cancelled_at: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    pub request_counts: RequestCounts,
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(default, deserialize_with = "tolerant_metadata")]
    pub metadata: Option<Metadata>,
}

/// A page of a list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct List<T> {
    #[serde(default = "list_object", deserialize_with = "null_default")]
    pub object: String,
    #[serde(default = "Vec::new", deserialize_with = "null_default")]
    pub data: Vec<T>,
    #[serde(default)]
    pub first_id: Option<String>,
    #[serde(default)]
    pub last_id: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub has_more: bool,
}

/// The File object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileObject {
    pub id: String,
    #[serde(default = "file_object", deserialize_with = "null_default")]
    pub object: String,
    #[serde(default, deserialize_with = "null_default")]
    pub bytes: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub created_at: i64,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    pub filename: String,
    #[serde(default, deserialize_with = "null_default")]
    pub purpose: String,
    #[serde(default = "processed", deserialize_with = "null_default")]
    pub status: String,
    #[serde(default)]
    pub status_details: Option<String>,
}

fn file_object() -> String {
    "file".into()
}

fn processed() -> String {
    "processed".into()
}

/// The error object of the upstream's API (the `error` of `{"error": {...}}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAiError {
    #[serde(default, deserialize_with = "null_default")]
    pub message: String,
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAiErrorBody {
    pub error: OpenAiError,
}

impl OpenAiErrorBody {
    /// `{"error": {"message", "type", "param", "code"}}`.
    pub fn new(
        kind: &str,
        message: impl Into<String>,
        param: Option<&str>,
        code: Option<&str>,
    ) -> Self {
        Self {
            error: OpenAiError {
                message: message.into(),
                kind: kind.into(),
                param: param.map(str::to_owned),
                code: code.map(str::to_owned),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_parses_nulls_unknown_fields_and_unknown_status() {
        let json = r#"{
            "id": "batch_1", "object": "batch", "endpoint": "/v1/chat/completions",
            "model": null, "errors": null, "input_file_id": "file-1",
            "completion_window": "24h", "status": "paused_for_maintenance",
            "output_file_id": null, "error_file_id": null, "created_at": 1711471533,
            "in_progress_at": null, "expires_at": null, "request_counts": null,
            "usage": null, "metadata": {"a": "b", "n": 3}, "brand_new_field": {"x": 1}
        }"#;
        let b: Batch = serde_json::from_str(json).unwrap();
        assert_eq!(
            b.status,
            BatchStatus::Other("paused_for_maintenance".into())
        );
        assert_eq!(b.status.to_string(), "paused_for_maintenance");
        assert_eq!(b.request_counts, RequestCounts::default());
        let m = b.metadata.unwrap();
        assert_eq!(m["a"], "b");
        assert_eq!(m["n"], "3");
    }

    #[test]
    fn status_round_trips() {
        for s in [
            "validating",
            "failed",
            "in_progress",
            "finalizing",
            "completed",
            "expired",
            "cancelling",
            "cancelled",
        ] {
            let st = BatchStatus::from(s);
            assert!(!matches!(st, BatchStatus::Other(_)));
            assert_eq!(serde_json::to_string(&st).unwrap(), format!("\"{s}\""));
        }
        assert!(BatchStatus::Completed.is_terminal());
        assert!(BatchStatus::InProgress.can_cancel());
        assert!(!BatchStatus::Cancelling.can_cancel());
    }
}
