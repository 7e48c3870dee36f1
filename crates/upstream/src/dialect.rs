//! The kinds of upstream Batchboard speaks to, and what each sends, read
//! into the domain's batch. Read tolerantly: a status in another case, a
//! time as text instead of seconds, an answer wrapped in `{"job": …}`, an
//! unknown field or status never makes a batch unreadable.
//!
//! - OpenAI, Groq and OpenAI-compatible servers (SGLang, LiteLLM, vLLM):
//!   OpenAI's shapes.
//! - Azure OpenAI: OpenAI's shapes; statuses sometimes capitalised
//!   (`Completed`, `InProgress`) and times sometimes RFC 3339 text.
//! - Together: upper-case statuses, RFC 3339 times, `model_id`,
//!   `job_deadline`, a create answered as `{"job": …}` and a list as a bare
//!   array.
//! - Anthropic Message Batches: `processing_status` (`in_progress`,
//!   `canceling`, `ended`) and per-outcome request counts; no files (the
//!   results are read from the batch's `/results`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use batchboard_core::{Batch, BatchStatus, List, RequestCounts};

/// Which API an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Openai,
    Azure,
    Groq,
    Together,
    Anthropic,
    OpenaiCompatible,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Openai,
        Kind::Azure,
        Kind::Groq,
        Kind::Together,
        Kind::Anthropic,
        Kind::OpenaiCompatible,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Openai => "openai",
            Kind::Azure => "azure",
            Kind::Groq => "groq",
            Kind::Together => "together",
            Kind::Anthropic => "anthropic",
            Kind::OpenaiCompatible => "openai-compatible",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Message batches (Anthropic): the requests go in the create's body,
    /// not an uploaded file; there is no files API, and a batch carries no
    /// metadata.
    pub fn message_batches(self) -> bool {
        self == Kind::Anthropic
    }

    /// The batch endpoints the kind's documentation lists (empty: every one
    /// OpenAI offers). A message batch's lines become `/v1/messages`.
    pub fn endpoints(self) -> &'static [&'static str] {
        match self {
            Kind::Openai | Kind::OpenaiCompatible => &[],
            Kind::Azure => &["/v1/responses", "/v1/chat/completions", "/v1/embeddings"],
            Kind::Groq => &["/v1/chat/completions"],
            Kind::Together => &["/v1/chat/completions", "/v1/completions"],
            Kind::Anthropic => &[batchboard_core::anthropic::ENDPOINT],
        }
    }
}

/// Time fields of OpenAI's batch, which some providers send as text.
const TIMES: [&str; 9] = [
    "created_at",
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
];

/// A batch as `kind` sends it: a retrieve's, a create's or a cancel's
/// answer, or one element of a list.
pub fn read_batch(kind: Kind, v: Value) -> Result<Batch, String> {
    match kind {
        Kind::Anthropic => read_anthropic(v),
        _ => read_openai_shaped(v),
    }
}

/// A page of batches as `kind` lists them: OpenAI's `{"data": [...]}`, or
/// a bare array (Together). An element that cannot be read is skipped
/// with a warning rather than hiding the whole page.
pub fn read_list(kind: Kind, v: Value) -> Result<List<Batch>, String> {
    let (items, rest) = match v {
        Value::Array(items) => (items, Map::new()),
        Value::Object(mut o) => match o.remove("data") {
            Some(Value::Array(items)) => (items, o),
            Some(Value::Null) | None => (Vec::new(), o),
            Some(other) => return Err(format!("`data` is not a list: {other}")),
        },
        other => return Err(format!("not a list of batches: {other}")),
    };
    let mut data = Vec::with_capacity(items.len());
    for item in items {
        match read_batch(kind, item) {
            Ok(b) => data.push(b),
            Err(e) => {
                tracing::warn!(kind = kind.as_str(), error = %e, "upstream: a listed batch could not be read; skipped")
            }
        }
    }
    let text = |k: &str| rest.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(List {
        object: "list".into(),
        first_id: text("first_id"),
        last_id: text("last_id"),
        has_more: rest
            .get("has_more")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        data,
    })
}

fn read_openai_shaped(v: Value) -> Result<Batch, String> {
    let mut o = match v {
        Value::Object(mut o) => match o.remove("job") {
            Some(Value::Object(job)) => job,
            Some(other) => {
                o.insert("job".into(), other);
                o
            }
            None => o,
        },
        other => return Err(format!("not a batch: {other}")),
    };
    if let Some(Value::String(s)) = o.get("status") {
        let s = normal_status(s);
        o.insert("status".into(), Value::String(s));
    }
    for field in TIMES {
        if let Some(t) = o.get(field) {
            let seconds = match t {
                Value::Null | Value::Number(_) => None,
                other => Some(unix(other)),
            };
            if let Some(s) = seconds {
                o.insert(field.into(), s.map_or(Value::Null, Value::from));
            }
        }
    }
    // Together's names for what OpenAI calls `model` and `expires_at`.
    if !o.get("model").is_some_and(Value::is_string) {
        if let Some(m) = o.get("model_id").cloned() {
            o.insert("model".into(), m);
        }
    }
    if o.get("expires_at").is_none_or(Value::is_null) {
        if let Some(t) = o.get("job_deadline").and_then(unix) {
            o.insert("expires_at".into(), Value::from(t));
        }
    }
    serde_json::from_value(Value::Object(o)).map_err(|e| format!("not a batch: {e}"))
}

/// `in_progress` from `InProgress`, `IN_PROGRESS`, `in-progress`; the
/// British `cancelled`/`cancelling` from the American spellings.
fn normal_status(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    let mut prev_lower = false;
    for c in s.trim().chars() {
        if c == '-' || c == ' ' || c == '_' {
            out.push('_');
            prev_lower = false;
        } else if c.is_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.extend(c.to_lowercase());
            prev_lower = false;
        } else {
            out.push(c);
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
        }
    }
    match out.as_str() {
        "canceled" => "cancelled".into(),
        "canceling" => "cancelling".into(),
        _ => out,
    }
}

/// Unix seconds from a number, a number in text, or RFC 3339 text
/// (`2024-08-20T18:37:24.100435Z`, Azure's seven fraction digits too).
fn unix(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(n) = s.parse::<i64>() {
                return Some(n);
            }
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .ok()
                .map(|t| t.unix_timestamp())
        }
        _ => None,
    }
}

/// Anthropic's per-outcome counts.
#[derive(Debug, Default, Deserialize)]
struct AnthropicCounts {
    #[serde(default)]
    processing: u64,
    #[serde(default)]
    succeeded: u64,
    #[serde(default)]
    errored: u64,
    #[serde(default)]
    canceled: u64,
    #[serde(default)]
    expired: u64,
}

fn read_anthropic(v: Value) -> Result<Batch, String> {
    let Value::Object(o) = v else {
        return Err(format!("not a message batch: {v}"));
    };
    let id = o
        .get("id")
        .and_then(Value::as_str)
        .ok_or("a message batch without an id")?
        .to_owned();
    let time = |k: &str| o.get(k).and_then(unix);
    let counts: AnthropicCounts = o
        .get("request_counts")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| format!("request_counts: {e}"))?
        .unwrap_or_default();
    let c = &counts;
    let ended = time("ended_at");
    let cancel = time("cancel_initiated_at");
    let status = match o.get("processing_status").and_then(Value::as_str) {
        Some("in_progress") => BatchStatus::InProgress,
        Some("canceling") => BatchStatus::Cancelling,
        Some("ended") if cancel.is_some() => BatchStatus::Cancelled,
        Some("ended") if c.succeeded + c.errored == 0 && c.expired > 0 => BatchStatus::Expired,
        Some("ended") => BatchStatus::Completed,
        Some(other) => BatchStatus::from(normal_status(other).as_str()),
        None => BatchStatus::default(),
    };
    let when = |s: BatchStatus| (status == s).then_some(ended).flatten();
    let created_at = time("created_at").unwrap_or_default();
    // Results are read from the batch once it has ended (see `anthropic`).
    let results = o.get("results_url").is_some_and(Value::is_string);
    let part = |n: u64, part| (results && n > 0).then(|| crate::anthropic::file_id(&id, part));
    let output_file_id = part(c.succeeded, crate::anthropic::Part::Succeeded);
    let error_file_id = part(
        c.errored + c.canceled + c.expired,
        crate::anthropic::Part::Failed,
    );
    Ok(Batch {
        id,
        object: "batch".into(),
        endpoint: batchboard_core::anthropic::ENDPOINT.into(),
        completion_window: "24h".into(),
        created_at,
        in_progress_at: Some(created_at),
        expires_at: time("expires_at"),
        completed_at: when(BatchStatus::Completed),
        expired_at: when(BatchStatus::Expired),
        cancelled_at: when(BatchStatus::Cancelled),
        cancelling_at: cancel,
        output_file_id,
        error_file_id,
        request_counts: RequestCounts {
            total: c.processing + c.succeeded + c.errored + c.canceled + c.expired,
            completed: c.succeeded,
            failed: c.errored + c.canceled + c.expired,
        },
        status,
        ..Batch::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_have_one_name_each() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("bedrock"), None);
    }

    #[test]
    fn statuses_in_any_case_or_spelling_become_the_domains() {
        for (given, want) in [
            ("in_progress", "in_progress"),
            ("InProgress", "in_progress"),
            ("IN_PROGRESS", "in_progress"),
            ("in-progress", "in_progress"),
            ("Completed", "completed"),
            ("CANCELLED", "cancelled"),
            ("canceled", "cancelled"),
            ("Canceling", "cancelling"),
            ("somethingNew", "something_new"),
        ] {
            assert_eq!(normal_status(given), want, "{given}");
        }
    }

    #[test]
    fn an_openai_batch_reads_as_itself() {
        let v = json!({"id": "batch_abc", "object": "batch", "endpoint": "/v1/chat/completions",
            "errors": null, "input_file_id": "file-1", "completion_window": "24h",
            "status": "in_progress", "output_file_id": null, "error_file_id": null,
            "created_at": 1714508499, "in_progress_at": 1714508500, "expires_at": 1714594899,
            "request_counts": {"total": 100, "completed": 40, "failed": 2},
            "metadata": {"team": "ml"}, "usage": null, "model": "gpt-4o-mini"});
        for kind in [Kind::Openai, Kind::Groq, Kind::OpenaiCompatible] {
            let b = read_batch(kind, v.clone()).unwrap();
            assert_eq!(b.status, BatchStatus::InProgress);
            assert_eq!(b.created_at, 1714508499);
            assert_eq!(b.request_counts.completed, 40);
            assert_eq!(b.model.as_deref(), Some("gpt-4o-mini"));
        }
    }

    #[test]
    fn azure_capitalised_statuses_and_text_times_are_read() {
        // As Azure OpenAI has answered: a capitalised status and RFC 3339
        // times with seven fraction digits.
        let v = json!({"id": "batch_6caaf24d-54a5-46be-b1b7-518884fcbdde", "object": "batch",
            "endpoint": "/chat/completions", "input_file_id": "file-b4fa7277f3eb4722ac18b90f46102c3f",
            "completion_window": "24h", "status": "Completed",
            "output_file_id": "file-f2ddaf43-b48b-46dd-b264-90da10c7a85b", "error_file_id": null,
            "created_at": "2024-07-19T17:13:57.2491382+00:00", "completed_at": 1721409237,
            "expires_at": null, "request_counts": {"total": 3, "completed": 3, "failed": 0},
            "metadata": null});
        let b = read_batch(Kind::Azure, v).unwrap();
        assert_eq!(b.status, BatchStatus::Completed);
        assert_eq!(b.created_at, 1721409237);
        assert_eq!(b.completed_at, Some(1721409237));
        assert_eq!(b.expires_at, None);
        assert_eq!(b.request_counts.total, 3);
        let b = read_batch(Kind::Azure, json!({"id": "b", "status": "InProgress"})).unwrap();
        assert_eq!(b.status, BatchStatus::InProgress);
    }

    #[test]
    fn together_jobs_are_unwrapped_and_read() {
        let v = json!({"job": {"id": "01234567-8901-2345-6789-012345678901",
            "user_id": "user_789", "input_file_id": "file-input123abc",
            "file_size_bytes": 1048576, "status": "IN_PROGRESS",
            "job_deadline": "2024-01-16T15:30:00Z", "created_at": "2024-01-15T15:30:00Z",
            "endpoint": "/v1/chat/completions", "progress": 75.0,
            "model_id": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            "output_file_id": null, "error_file_id": null, "error": null, "completed_at": null}});
        let b = read_batch(Kind::Together, v).unwrap();
        assert_eq!(b.id, "01234567-8901-2345-6789-012345678901");
        assert_eq!(b.status, BatchStatus::InProgress);
        assert_eq!(b.created_at, 1705332600);
        assert_eq!(b.expires_at, Some(1705419000));
        assert_eq!(
            b.model.as_deref(),
            Some("meta-llama/Llama-3.3-70B-Instruct-Turbo")
        );
        assert_eq!(b.input_file_id, "file-input123abc");
        // Together lists as a bare array.
        let list = read_list(
            Kind::Together,
            json!([{"id": "a", "status": "COMPLETED", "created_at": "2024-01-15T15:30:00Z"},
                   {"id": "b", "status": "CANCELLED"}]),
        )
        .unwrap();
        assert_eq!(list.data.len(), 2);
        assert_eq!(list.data[0].status, BatchStatus::Completed);
        assert_eq!(list.data[1].status, BatchStatus::Cancelled);
        assert!(!list.has_more);
    }

    #[test]
    fn anthropic_message_batches_become_batches() {
        // The example of Anthropic's documentation (retrieve).
        let v = json!({"id": "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message_batch",
            "processing_status": "in_progress",
            "request_counts": {"processing": 100, "succeeded": 50, "errored": 30, "canceled": 10, "expired": 10},
            "ended_at": null, "created_at": "2024-08-20T18:37:24.100435Z",
            "expires_at": "2024-08-21T18:37:24.100435Z", "archived_at": null,
            "cancel_initiated_at": null,
            "results_url": null});
        let b = read_batch(Kind::Anthropic, v).unwrap();
        assert_eq!(b.id, "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF");
        assert_eq!(b.status, BatchStatus::InProgress);
        assert_eq!(b.endpoint, "/v1/messages");
        assert_eq!(b.created_at, 1724179044);
        assert_eq!(b.expires_at, Some(1724265444));
        let c = &b.request_counts;
        assert_eq!((c.total, c.completed, c.failed), (200, 50, 50));

        let ended = |counts: Value, cancel: Value| {
            read_batch(
                Kind::Anthropic,
                json!({"id": "m", "processing_status": "ended", "request_counts": counts,
                    "created_at": "2024-08-20T18:37:24Z", "ended_at": "2024-08-20T19:37:24Z",
                    "cancel_initiated_at": cancel}),
            )
            .unwrap()
        };
        let done = ended(json!({"succeeded": 9, "errored": 1}), Value::Null);
        assert_eq!(done.status, BatchStatus::Completed);
        assert_eq!(done.completed_at, Some(1724182644));
        let stopped = ended(
            json!({"succeeded": 2, "canceled": 8}),
            json!("2024-08-20T19:00:00Z"),
        );
        assert_eq!(stopped.status, BatchStatus::Cancelled);
        assert_eq!(stopped.cancelled_at, Some(1724182644));
        assert_eq!(stopped.cancelling_at, Some(1724180400));
        let late = ended(json!({"expired": 5}), Value::Null);
        assert_eq!(late.status, BatchStatus::Expired);
        let b = read_batch(
            Kind::Anthropic,
            json!({"id": "m", "processing_status": "canceling"}),
        )
        .unwrap();
        assert_eq!(b.status, BatchStatus::Cancelling);
        // Anthropic lists as OpenAI does.
        let list = read_list(
            Kind::Anthropic,
            json!({"data": [{"id": "m1", "processing_status": "ended"}], "has_more": true,
                   "first_id": "m1", "last_id": "m1"}),
        )
        .unwrap();
        assert_eq!(list.data.len(), 1);
        assert!(list.has_more);
        assert_eq!(list.last_id.as_deref(), Some("m1"));
    }

    #[test]
    fn a_listed_batch_that_cannot_be_read_is_skipped_not_the_page() {
        let list = read_list(
            Kind::Openai,
            json!({"object": "list", "data": [{"id": "ok", "status": "failed"}, 42], "has_more": false}),
        )
        .unwrap();
        assert_eq!(list.data.len(), 1);
        assert_eq!(list.data[0].status, BatchStatus::Failed);
    }
}
