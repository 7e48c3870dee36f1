//! Lines for Anthropic's Message Batches: a file's lines checked and turned
//! into the `requests` of a message batch. A line is either Anthropic's own
//! (`{"custom_id", "params": {Messages API params}}`) or an OpenAI
//! chat-completions request, converted:
//! - system (and developer) messages become `system`;
//! - `max_completion_tokens` or `max_tokens` becomes `max_tokens`, which
//!   Anthropic requires (else the form's value; else the line is refused);
//! - `temperature`, `top_p`, `stop` (as `stop_sequences`) and `metadata.user_id`
//!   carry over; text parts of a message's content are kept, other parts
//!   (images by URL, audio) are refused, saying which;
//! - `custom_id` must match Anthropic's `^[a-zA-Z0-9_-]{1,64}$`.
//!
//! No I/O: the server feeds lines from its spool and writes the body; the
//! page can show the first converted line before anything is uploaded.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::i18n::{Key, Msg};
use crate::validate::{Report, DEFAULT_ERROR_CAP};
use crate::BatchError;

/// Anthropic's limits for one message batch.
pub const MAX_REQUESTS: u64 = 100_000;
pub const MAX_BYTES: u64 = 256 * 1024 * 1024;
/// The endpoint a message batch's requests go to (its batch's `endpoint`).
pub const ENDPOINT: &str = "/v1/messages";

/// The files a message batch's results are offered as (see the upstream
/// client): what succeeded and what did not, in OpenAI's line shape, and
/// the results as Anthropic wrote them: `{batch}{suffix}`.
pub const SUCCEEDED_SUFFIX: &str = "--succeeded";
pub const FAILED_SUFFIX: &str = "--failed";
pub const RAW_SUFFIX: &str = "--results";

/// The raw results file of a message batch, when it has results.
pub fn raw_results_file(b: &crate::Batch) -> Option<String> {
    [&b.output_file_id, &b.error_file_id]
        .into_iter()
        .flatten()
        .find_map(|f| {
            f.strip_suffix(SUCCEEDED_SUFFIX)
                .or_else(|| f.strip_suffix(FAILED_SUFFIX))
        })
        .map(|batch| format!("{batch}{RAW_SUFFIX}"))
}

/// Whether `id` is a `custom_id` Anthropic accepts.
pub fn custom_id_ok(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// A problem with one line: its code, field and words.
struct Problem {
    code: &'static str,
    param: Option<String>,
    msg: Msg,
}

fn problem(code: &'static str, param: &str, msg: Msg) -> Problem {
    Problem {
        code,
        param: Some(param.to_owned()).filter(|p| !p.is_empty()),
        msg,
    }
}

/// Checks and converts a file's lines, one at a time (or in chunks).
pub struct Converter {
    default_max_tokens: Option<u64>,
    /// custom_id → the line it was first seen on.
    seen: HashMap<String, u64>,
    report: Report,
    /// Lines that took the default `max_tokens`.
    defaulted: u64,
    /// The first request, converted (for the page to show).
    first: Option<Value>,
    /// The start of a line whose end is in the next chunk.
    pending: Vec<u8>,
}

/// What a whole file came to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Converted {
    pub report: Report,
    /// Lines that took the default `max_tokens` (the form must give one).
    pub defaulted: u64,
    /// The first request, as it will be sent.
    pub first: Option<Value>,
}

impl Converter {
    /// `default_max_tokens`: the form's, for lines that do not say.
    pub fn new(default_max_tokens: Option<u64>) -> Self {
        Self {
            default_max_tokens,
            seen: HashMap::new(),
            report: Report::default(),
            defaulted: 0,
            first: None,
            pending: Vec::new(),
        }
    }

    /// The next bytes of the file, cut anywhere.
    pub fn chunk(&mut self, data: &[u8]) {
        let mut rest = data;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            let mut line = std::mem::take(&mut self.pending);
            line.extend_from_slice(&rest[..end]);
            let n = self.report.lines + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(&line).to_vec();
            self.line(n, &line);
            rest = &rest[end + 1..];
        }
        self.pending.extend_from_slice(rest);
    }

    /// The file's end after [`Converter::chunk`]s: its last line, and all
    /// it came to.
    pub fn finish_all(mut self) -> Converted {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            let n = self.report.lines + 1;
            self.line(n, &line);
        }
        Converted {
            defaulted: self.defaulted,
            first: self.first.take(),
            report: self.finish(),
        }
    }

    /// Line `n` (1-based, without its line ending): the request for the
    /// message batch, or `None` when the line is blank or has a problem
    /// (recorded in the report).
    pub fn line(&mut self, n: u64, raw: &[u8]) -> Option<Value> {
        self.report.lines += 1;
        self.report.bytes += raw.len() as u64 + 1;
        if raw.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        self.report.requests += 1;
        if self.report.requests == MAX_REQUESTS + 1 {
            self.fail(
                None,
                problem(
                    "too_many_requests",
                    "",
                    Msg::new(Key::ProblemTooManyRequests).arg("max", MAX_REQUESTS),
                ),
            );
        }
        match self.convert(n, raw) {
            Ok(request) => {
                if self.report.model.is_none() {
                    self.report.model = request["params"]["model"].as_str().map(str::to_owned);
                }
                if self.first.is_none() {
                    self.first = Some(request.clone());
                }
                Some(request)
            }
            Err(p) => {
                self.fail(
                    Some(n),
                    Problem {
                        msg: p.msg.arg("line", n),
                        ..p
                    },
                );
                None
            }
        }
    }

    fn fail(&mut self, line: Option<u64>, p: Problem) {
        self.report.error_count += 1;
        if self.report.errors.len() < DEFAULT_ERROR_CAP {
            self.report.errors.push(BatchError {
                code: p.code.into(),
                message: p.msg.to_string(),
                param: p.param,
                line,
                msg: Some(p.msg),
            });
        }
    }

    /// What was found: errors (with line numbers; a file without requests
    /// is one, as for the validator), requests, lines, bytes, the first
    /// model.
    pub fn finish(mut self) -> Report {
        if self.report.requests == 0 && self.report.error_count == 0 {
            self.fail(
                None,
                problem("empty_file", "", Msg::new(Key::ProblemEmptyFile)),
            );
        }
        self.report.endpoint = Some(ENDPOINT.into());
        self.report
    }

    fn convert(&mut self, n: u64, raw: &[u8]) -> Result<Value, Problem> {
        let v: Value = serde_json::from_slice(raw).map_err(|e| {
            problem(
                "invalid_json_line",
                "",
                Msg::new(Key::ProblemNotJson).arg("detail", e.to_string()),
            )
        })?;
        let Value::Object(o) = v else {
            return Err(problem(
                "invalid_request",
                "",
                Msg::new(Key::ProblemNotObject),
            ));
        };
        let custom_id = match o.get("custom_id") {
            Some(Value::String(s)) if s.is_empty() => {
                return Err(problem(
                    "empty_custom_id",
                    "custom_id",
                    Msg::new(Key::ProblemCustomIdEmpty),
                ))
            }
            Some(Value::String(s)) => s.clone(),
            _ => return Err(missing("custom_id")),
        };
        if !custom_id_ok(&custom_id) {
            return Err(problem(
                "invalid_custom_id",
                "custom_id",
                Msg::new(Key::ProblemCustomIdPattern).arg("id", &custom_id),
            ));
        }
        if self.seen.insert(custom_id.clone(), n).is_some() {
            return Err(problem(
                "duplicate_custom_id",
                "custom_id",
                Msg::new(Key::ProblemDuplicateCustomId).arg("id", &custom_id),
            ));
        }
        let params = match (o.get("params"), o.get("body")) {
            (Some(Value::Object(p)), _) => self.native(p.clone())?,
            (_, Some(Value::Object(body))) => {
                let url = o.get("url").and_then(Value::as_str).unwrap_or_default();
                if url != "/v1/chat/completions" {
                    return Err(problem(
                        "invalid_url",
                        "url",
                        Msg::new(Key::ProblemNotMessagesLine).arg("url", url),
                    ));
                }
                self.converted_chat(body)?
            }
            _ => return Err(missing("params")),
        };
        Ok(json!({ "custom_id": custom_id, "params": params }))
    }

    fn max_tokens(&mut self, given: Option<&Value>) -> Result<u64, Problem> {
        if given.is_none() && self.default_max_tokens.is_some() {
            self.defaulted += 1;
        }
        match given {
            Some(v) => v
                .as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| not_convertible("max_tokens", "a whole number of at least 1")),
            None => self.default_max_tokens.ok_or_else(|| {
                problem(
                    "missing_max_tokens",
                    "max_tokens",
                    Msg::new(Key::ProblemMaxTokensNeeded),
                )
            }),
        }
    }

    /// Anthropic's own params: `model`, `messages` and `max_tokens` (from
    /// the form when missing) are required; the rest goes as it is.
    fn native(&mut self, mut p: Map<String, Value>) -> Result<Value, Problem> {
        if !p.get("model").is_some_and(Value::is_string) {
            return Err(missing("params.model"));
        }
        if !p.get("messages").is_some_and(Value::is_array) {
            return Err(missing("params.messages"));
        }
        let max = self.max_tokens(p.get("max_tokens"))?;
        p.insert("max_tokens".into(), max.into());
        Ok(Value::Object(p))
    }

    /// An OpenAI chat-completions body, as Messages API params.
    fn converted_chat(&mut self, body: &Map<String, Value>) -> Result<Value, Problem> {
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("body.model"))?;
        let given = body
            .get("max_completion_tokens")
            .or_else(|| body.get("max_tokens"));
        let mut params = Map::new();
        params.insert("model".into(), model.into());
        params.insert("max_tokens".into(), self.max_tokens(given)?.into());
        let messages = body
            .get("messages")
            .and_then(Value::as_array)
            .ok_or_else(|| missing("body.messages"))?;
        let mut system = Vec::new();
        let mut out = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let field = format!("body.messages[{i}]");
            let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
            let text = texts(m.get("content"), &field)?;
            match role {
                "system" | "developer" => system.push(text.join("\n")),
                "user" | "assistant" => {
                    let content: Vec<Value> = text
                        .into_iter()
                        .map(|t| json!({ "type": "text", "text": t }))
                        .collect();
                    out.push(json!({ "role": role, "content": content }));
                }
                other => {
                    return Err(not_convertible(
                        &format!("{field}.role"),
                        &format!("the role {other:?}; Anthropic takes user and assistant"),
                    ))
                }
            }
        }
        if !system.is_empty() {
            params.insert("system".into(), system.join("\n\n").into());
        }
        params.insert("messages".into(), out.into());
        for key in ["temperature", "top_p"] {
            if let Some(v) = body.get(key) {
                params.insert(key.into(), v.clone());
            }
        }
        match body.get("stop") {
            Some(Value::String(s)) => {
                params.insert("stop_sequences".into(), json!([s]));
            }
            Some(Value::Array(a)) => {
                params.insert("stop_sequences".into(), Value::Array(a.clone()));
            }
            _ => {}
        }
        if let Some(user) = body.get("user").and_then(Value::as_str) {
            params.insert("metadata".into(), json!({ "user_id": user }));
        }
        for key in ["tools", "tool_choice", "response_format", "n", "logprobs"] {
            if body.get(key).is_some_and(|v| !v.is_null()) {
                return Err(not_convertible(
                    &format!("body.{key}"),
                    "not converted; write the line in Anthropic's own form",
                ));
            }
        }
        Ok(Value::Object(params))
    }
}

/// The text parts of a message's content (a string, or parts).
fn texts(content: Option<&Value>, field: &str) -> Result<Vec<String>, Problem> {
    match content {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(
                |(j, p)| match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("text") | None, Some(Value::String(t))) => Ok(t.clone()),
                    (kind, _) => Err(not_convertible(
                        &format!("{field}.content[{j}]"),
                        &format!(
                            "a {} part; only text is converted",
                            kind.unwrap_or("non-text")
                        ),
                    )),
                },
            )
            .collect(),
        _ => Err(missing(&format!("{field}.content"))),
    }
}

fn missing(field: &str) -> Problem {
    problem(
        "missing_required_parameter",
        field,
        Msg::new(Key::ProblemFieldMissing).arg("field", field),
    )
}

fn not_convertible(field: &str, detail: &str) -> Problem {
    problem(
        "not_convertible",
        field,
        Msg::new(Key::ProblemNotConvertible)
            .arg("field", field)
            .arg("detail", detail),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str, default_max: Option<u64>) -> Result<Value, Box<Report>> {
        let mut c = Converter::new(default_max);
        let out = c.line(1, line.as_bytes());
        let report = c.finish();
        out.ok_or(Box::new(report))
    }

    #[test]
    fn a_chat_completions_line_becomes_messages_params() {
        let line = r#"{"custom_id":"r-1","method":"POST","url":"/v1/chat/completions","body":{"model":"claude-sonnet-4-5","max_completion_tokens":100,"temperature":0.2,"stop":"END","user":"ana","messages":[{"role":"system","content":"Be brief."},{"role":"developer","content":[{"type":"text","text":"No lists."}]},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"},{"role":"user","content":[{"type":"text","text":"Again"}]}]}}"#;
        let r = one(line, None).unwrap();
        assert_eq!(r["custom_id"], "r-1");
        let p = &r["params"];
        assert_eq!(p["model"], "claude-sonnet-4-5");
        assert_eq!(p["max_tokens"], 100);
        assert_eq!(p["system"], "Be brief.\n\nNo lists.");
        assert_eq!(p["temperature"], 0.2);
        assert_eq!(p["stop_sequences"], json!(["END"]));
        assert_eq!(p["metadata"]["user_id"], "ana");
        let roles: Vec<&str> = p["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "assistant", "user"]);
        assert_eq!(p["messages"][2]["content"][0]["text"], "Again");
    }

    #[test]
    fn max_tokens_comes_from_the_line_or_the_form_or_is_asked_for() {
        let native = r#"{"custom_id":"a","params":{"model":"m","messages":[{"role":"user","content":"x"}]}}"#;
        assert_eq!(one(native, Some(256)).unwrap()["params"]["max_tokens"], 256);
        let report = one(native, None).unwrap_err();
        assert_eq!(report.errors[0].code, "missing_max_tokens");
        assert_eq!(report.errors[0].line, Some(1));
        assert!(
            report.errors[0].message.contains("max_tokens"),
            "{:?}",
            report.errors
        );
        let own = r#"{"custom_id":"a","params":{"model":"m","max_tokens":9,"messages":[]}}"#;
        assert_eq!(one(own, Some(256)).unwrap()["params"]["max_tokens"], 9);
    }

    #[test]
    fn chunks_cut_anywhere_give_the_same_result_and_count_defaults() {
        let file = "{\"custom_id\":\"a\",\"params\":{\"model\":\"m\",\"messages\":[]}}\r\n{\"custom_id\":\"b\",\"params\":{\"model\":\"m\",\"max_tokens\":5,\"messages\":[]}}";
        for cut in [1, 7, 40, file.len()] {
            let mut c = Converter::new(Some(1));
            for part in file.as_bytes().chunks(cut) {
                c.chunk(part);
            }
            let done = c.finish_all();
            assert!(done.report.is_ok(), "{cut}: {:?}", done.report.errors);
            assert_eq!((done.report.requests, done.defaulted), (2, 1), "{cut}");
            assert_eq!(done.first.unwrap()["custom_id"], "a");
        }
    }

    #[test]
    fn problems_say_which_line_and_field() {
        let mut c = Converter::new(Some(10));
        let lines = [
            r#"{"custom_id":"ok","params":{"model":"m","messages":[]}}"#,
            r#"{"custom_id":"has space","params":{"model":"m","messages":[]}}"#,
            r#"{"custom_id":"ok","params":{"model":"m","messages":[]}}"#,
            r#"{"custom_id":"e","url":"/v1/embeddings","body":{"model":"m","input":"x"}}"#,
            r#"{"custom_id":"i","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x"}}]}]}}"#,
            "",
            "{broken",
        ];
        for (i, l) in lines.iter().enumerate() {
            c.line(i as u64 + 1, l.as_bytes());
        }
        let r = c.finish();
        let found: Vec<(u64, &str, Option<&str>)> = r
            .errors
            .iter()
            .map(|e| (e.line.unwrap(), e.code.as_str(), e.param.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                (2, "invalid_custom_id", Some("custom_id")),
                (3, "duplicate_custom_id", Some("custom_id")),
                (4, "invalid_url", Some("url")),
                (5, "not_convertible", Some("body.messages[0].content[0]")),
                (7, "invalid_json_line", None),
            ]
        );
        assert_eq!((r.requests, r.lines), (6, 7));
        let empty = Converter::new(None);
        assert_eq!(empty.finish().errors[0].code, "empty_file");
    }
}
