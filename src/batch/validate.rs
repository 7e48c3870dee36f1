//! The JSONL batch input validator: one implementation for the server, the
//! sandbox and (compiled to WASM) the browser. It is fed one line at a time,
//! so a 200 MB file never needs to be in memory, and it does no I/O.
//!
//! Error codes follow those the Batch API reports in `errors.data[].code`.

use std::collections::HashSet;

use super::{BatchError, ENDPOINTS, MAX_FILE_BYTES, MAX_REQUESTS};

/// How many problems are kept in detail; the rest are only counted.
pub const DEFAULT_ERROR_CAP: usize = 100;

/// What the validator found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The first problems, in line order (at most the cap).
    pub errors: Vec<BatchError>,
    /// All problems, including those past the cap.
    pub error_count: u64,
    /// Requests (non-blank lines).
    pub requests: u64,
    pub bytes: u64,
    /// The `url` of the first request, if any.
    pub endpoint: Option<String>,
    /// The `body.model` of the first request that has one.
    pub model: Option<String>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.error_count == 0
    }
}

#[derive(Debug)]
pub struct Validator {
    expected_endpoint: Option<String>,
    cap: usize,
    seen_ids: HashSet<String>,
    report: Report,
    model_line: u64,
}

impl Validator {
    /// `expected_endpoint`: the batch's endpoint when known (every line's
    /// `url` must equal it); otherwise the first line's `url` sets it.
    pub fn new(expected_endpoint: Option<&str>) -> Self {
        Self {
            expected_endpoint: expected_endpoint.map(str::to_owned),
            cap: DEFAULT_ERROR_CAP,
            seen_ids: HashSet::new(),
            report: Report::default(),
            model_line: 0,
        }
    }

    pub fn with_error_cap(mut self, cap: usize) -> Self {
        self.cap = cap;
        self
    }

    fn error(&mut self, code: &str, line: Option<u64>, param: Option<&str>, message: String) {
        self.report.error_count += 1;
        if self.report.errors.len() < self.cap {
            self.report.errors.push(BatchError {
                code: code.into(),
                message,
                param: param.map(str::to_owned),
                line,
            });
        }
    }

    /// Feeds one line (without its line ending) with its 1-based number. The
    /// byte count must include line endings, so it is added separately by
    /// [`Validator::add_bytes`] or [`Validator::feed_bytes`].
    pub fn line(&mut self, line_no: u64, raw: &[u8]) {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.report.requests += 1;
        if self.report.requests == MAX_REQUESTS as u64 + 1 {
            self.error(
                "too_many_tasks",
                Some(line_no),
                None,
                format!("The file has more than {MAX_REQUESTS} requests; the limit per batch is {MAX_REQUESTS}."),
            );
        }
        let value: serde_json::Value = match serde_json::from_slice(raw) {
            Ok(v) => v,
            Err(e) => {
                self.error(
                    "invalid_json_line",
                    Some(line_no),
                    None,
                    format!("Line {line_no} is not valid JSON: {e}."),
                );
                return;
            }
        };
        let Some(obj) = value.as_object() else {
            self.error(
                "invalid_json_line",
                Some(line_no),
                None,
                format!("Line {line_no} is not a JSON object."),
            );
            return;
        };

        match obj.get("custom_id").and_then(|v| v.as_str()) {
            None => self.error(
                "missing_required_parameter",
                Some(line_no),
                Some("custom_id"),
                format!("Line {line_no}: `custom_id` is missing or not a string."),
            ),
            Some("") => self.error(
                "missing_required_parameter",
                Some(line_no),
                Some("custom_id"),
                format!("Line {line_no}: `custom_id` is empty."),
            ),
            Some(id) => {
                if !self.seen_ids.insert(id.to_owned()) {
                    self.error(
                        "duplicate_custom_id",
                        Some(line_no),
                        Some("custom_id"),
                        format!("Line {line_no}: the custom_id `{id}` is used more than once; each must be unique."),
                    );
                }
            }
        }

        match obj.get("method").and_then(|v| v.as_str()) {
            Some("POST") => {}
            other => self.error(
                "invalid_method",
                Some(line_no),
                Some("method"),
                format!(
                    "Line {line_no}: `method` must be \"POST\", not {}.",
                    other.map_or("missing".into(), |m| format!("\"{m}\""))
                ),
            ),
        }

        match obj.get("url").and_then(|v| v.as_str()) {
            None => self.error(
                "missing_required_parameter",
                Some(line_no),
                Some("url"),
                format!("Line {line_no}: `url` is missing or not a string."),
            ),
            Some(url) => {
                if !ENDPOINTS.contains(&url) {
                    self.error(
                        "invalid_url",
                        Some(line_no),
                        Some("url"),
                        format!(
                            "Line {line_no}: `url` \"{url}\" is not a batch endpoint (one of {}).",
                            ENDPOINTS.join(", ")
                        ),
                    );
                }
                if self.report.endpoint.is_none() {
                    self.report.endpoint = Some(url.to_owned());
                }
                let expected = self
                    .expected_endpoint
                    .clone()
                    .or_else(|| self.report.endpoint.clone());
                if let Some(expected) = expected {
                    if url != expected {
                        self.error(
                            "url_mismatch",
                            Some(line_no),
                            Some("url"),
                            format!("Line {line_no}: `url` \"{url}\" differs from the batch endpoint \"{expected}\"; all requests must use the same one."),
                        );
                    }
                }
            }
        }

        match obj.get("body") {
            Some(serde_json::Value::Object(body)) => {
                match body.get("model").and_then(|m| m.as_str()) {
                    Some(model) => match &self.report.model {
                        None => {
                            self.report.model = Some(model.to_owned());
                            self.model_line = line_no;
                        }
                        Some(first) if first != model => {
                            let (first, first_line) = (first.clone(), self.model_line);
                            self.error(
                            "model_mismatch",
                            Some(line_no),
                            Some("body.model"),
                            format!("Line {line_no}: model \"{model}\" differs from \"{first}\" (line {first_line}); a batch uses one model."),
                        );
                        }
                        Some(_) => {}
                    },
                    None => self.error(
                        "missing_required_parameter",
                        Some(line_no),
                        Some("body.model"),
                        format!("Line {line_no}: `body.model` is missing or not a string."),
                    ),
                }
            }
            _ => self.error(
                "invalid_request",
                Some(line_no),
                Some("body"),
                format!("Line {line_no}: `body` must be a JSON object."),
            ),
        }
    }

    /// Counts bytes of the file (line endings included).
    pub fn add_bytes(&mut self, n: u64) {
        self.report.bytes += n;
    }

    /// Feeds a whole file held in memory (tests, small files).
    pub fn feed_bytes(&mut self, data: &[u8]) {
        self.add_bytes(data.len() as u64);
        for (i, line) in data.split(|b| *b == b'\n').enumerate() {
            self.line(i as u64 + 1, line);
        }
    }

    pub fn finish(mut self) -> Report {
        if self.report.bytes > MAX_FILE_BYTES {
            let bytes = self.report.bytes;
            self.error(
                "file_too_large",
                None,
                None,
                format!(
                    "The file has {bytes} bytes; the limit is {MAX_FILE_BYTES} bytes (200 MB)."
                ),
            );
        }
        if self.report.requests == 0 && self.report.error_count == 0 {
            self.error("empty_file", None, None, "The file has no requests.".into());
        }
        self.report
    }
}

/// Validates a file held in memory.
pub fn validate_bytes(data: &[u8], expected_endpoint: Option<&str>) -> Report {
    let mut v = Validator::new(expected_endpoint);
    v.feed_bytes(data);
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, model: &str) -> String {
        format!(
            r#"{{"custom_id":"{id}","method":"POST","url":"/v1/chat/completions","body":{{"model":"{model}","messages":[]}}}}"#
        )
    }

    fn codes(r: &Report) -> Vec<(String, Option<u64>)> {
        r.errors.iter().map(|e| (e.code.clone(), e.line)).collect()
    }

    #[test]
    fn a_good_file_passes_with_statistics() {
        let data = format!("{}\n{}\n", line("a", "m"), line("b", "m"));
        let r = validate_bytes(data.as_bytes(), Some("/v1/chat/completions"));
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(r.requests, 2);
        assert_eq!(r.model.as_deref(), Some("m"));
        assert_eq!(r.endpoint.as_deref(), Some("/v1/chat/completions"));
        assert_eq!(r.bytes, data.len() as u64);
    }

    #[test]
    fn each_problem_is_reported_with_its_line() {
        let data = [
            line("a", "m"),
            "{not json".into(),
            line("a", "m"),
            line("c", "other"),
            r#"{"custom_id":"d","method":"GET","url":"/v1/chat/completions","body":{"model":"m"}}"#
                .into(),
            r#"{"custom_id":"e","method":"POST","url":"/v1/embeddings","body":{"model":"m"}}"#
                .into(),
            r#"{"method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}"#.into(),
            "[1,2]".into(),
        ]
        .join("\n");
        let r = validate_bytes(data.as_bytes(), None);
        assert_eq!(
            codes(&r),
            vec![
                ("invalid_json_line".into(), Some(2)),
                ("duplicate_custom_id".into(), Some(3)),
                ("model_mismatch".into(), Some(4)),
                ("invalid_method".into(), Some(5)),
                ("url_mismatch".into(), Some(6)),
                ("missing_required_parameter".into(), Some(7)),
                ("invalid_json_line".into(), Some(8)),
            ]
        );
        assert!(r.errors[2].message.contains("line 1"));
    }

    #[test]
    fn endpoint_given_by_the_batch_wins() {
        let r = validate_bytes(line("a", "m").as_bytes(), Some("/v1/embeddings"));
        assert_eq!(codes(&r), vec![("url_mismatch".into(), Some(1))]);
    }

    #[test]
    fn empty_and_blank_files_are_empty() {
        assert_eq!(
            codes(&validate_bytes(b"", None)),
            vec![("empty_file".into(), None)]
        );
        assert_eq!(
            codes(&validate_bytes(b"\n \n", None)),
            vec![("empty_file".into(), None)]
        );
    }

    #[test]
    fn too_many_requests_and_the_error_cap() {
        let mut v = Validator::new(None).with_error_cap(3);
        for i in 0..=MAX_REQUESTS as u64 {
            v.line(i + 1, line(&format!("r{i}"), "m").as_bytes());
        }
        for i in 0..5 {
            v.line(MAX_REQUESTS as u64 + 2 + i, b"oops");
        }
        let r = v.finish();
        assert_eq!(r.errors[0].code, "too_many_tasks");
        assert_eq!(r.errors[0].line, Some(MAX_REQUESTS as u64 + 1));
        assert_eq!(r.errors.len(), 3);
        assert_eq!(r.error_count, 6);
    }

    #[test]
    fn crlf_line_endings_are_accepted() {
        let data = format!("{}\r\n{}\r\n", line("a", "m"), line("b", "m"));
        assert!(validate_bytes(data.as_bytes(), None).is_ok());
    }
}
