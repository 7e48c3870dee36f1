//! What only Anthropic's Message Batches need: a create whose requests are
//! the body (no file), and results read from the batch's results, offered
//! to the rest of Batchboard as files.
//!
//! An ended message batch has one results stream, any order, each line
//! `{"custom_id", "result": {"type": "succeeded" | "errored" | "canceled" |
//! "expired", …}}`. The domain's batch instead names an output file (what
//! succeeded) and an error file (the rest), in OpenAI's result-line shape.
//! So [`crate::dialect`] gives an ended batch the file ids
//! `{batch}--succeeded` and `{batch}--failed`, and [`Client::file_content`]
//! answers them by reading the results and turning each line into OpenAI's
//! shape as it streams. `{batch}--results` is the results as Anthropic
//! wrote them.

use std::time::Duration;

use futures_util::TryStreamExt;
use reqwest::{Method, Response};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

use batchboard_core::{Batch, FileObject};

use crate::dialect::Kind;
use crate::{path_segment, Client, UpstreamError};

/// Which part of a message batch's results a file id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// What succeeded, in OpenAI's result-line shape.
    Succeeded,
    /// What errored, was canceled or expired, in OpenAI's shape.
    Failed,
    /// Every line as Anthropic wrote it.
    Raw,
}

impl Part {
    const ALL: [Part; 3] = [Part::Succeeded, Part::Failed, Part::Raw];

    fn suffix(self) -> &'static str {
        use batchboard_core::anthropic::{FAILED_SUFFIX, RAW_SUFFIX, SUCCEEDED_SUFFIX};
        match self {
            Part::Succeeded => SUCCEEDED_SUFFIX,
            Part::Failed => FAILED_SUFFIX,
            Part::Raw => RAW_SUFFIX,
        }
    }
}

/// The file id of `part` of `batch`'s results.
pub fn file_id(batch: &str, part: Part) -> String {
    format!("{batch}{}", part.suffix())
}

/// The batch and part a results file id names.
pub fn parse_file_id(id: &str) -> Option<(&str, Part)> {
    Part::ALL
        .into_iter()
        .find_map(|p| id.strip_suffix(p.suffix()).map(|b| (b, p)))
        .filter(|(b, _)| !b.is_empty())
}

/// The file object of a results file (Anthropic has no files API): its
/// name, and no size (the results are counted, not measured).
pub fn results_file(kind: Kind, id: &str) -> Option<FileObject> {
    if kind != Kind::Anthropic {
        return None;
    }
    let (batch, part) = parse_file_id(id)?;
    let name = match part {
        Part::Succeeded => "succeeded",
        Part::Failed => "failed",
        Part::Raw => "results",
    };
    Some(FileObject {
        id: id.to_owned(),
        object: "file".into(),
        filename: format!("{batch}_{name}.jsonl"),
        purpose: "batch_output".into(),
        status: "processed".into(),
        ..FileObject::default()
    })
}

/// One of Anthropic's result lines in OpenAI's shape, if it belongs to
/// `part` (`Raw` takes every line as it is).
pub fn convert(line: &[u8], part: Part) -> Option<Vec<u8>> {
    if part == Part::Raw {
        let mut out = line.to_vec();
        out.push(b'\n');
        return Some(out);
    }
    let v: Value = serde_json::from_slice(line).ok()?;
    let custom_id = v.get("custom_id").cloned().unwrap_or(Value::Null);
    let result = v.get("result").cloned().unwrap_or(Value::Null);
    let kind = result.get("type").and_then(Value::as_str).unwrap_or("");
    let succeeded = kind == "succeeded";
    if succeeded != (part == Part::Succeeded) {
        return None;
    }
    let id = |m: &Value| m.get("id").cloned().unwrap_or_else(|| json!(""));
    let converted = match kind {
        "succeeded" => {
            let message = result.get("message").cloned().unwrap_or(Value::Null);
            json!({
                "id": id(&message), "custom_id": custom_id, "error": null,
                "response": { "status_code": 200, "request_id": id(&message), "body": message },
            })
        }
        "errored" => {
            // `{"type": "error", "error": {"type", "message"}}`
            let e = result
                .get("error")
                .and_then(|e| e.get("error").or(Some(e)))
                .cloned()
                .unwrap_or(Value::Null);
            let status = match e.get("type").and_then(Value::as_str) {
                Some("api_error" | "overloaded_error") => 500,
                Some("rate_limit_error") => 429,
                _ => 400,
            };
            json!({
                "id": "", "custom_id": custom_id, "error": null,
                "response": { "status_code": status, "request_id": "", "body": {
                    "error": { "type": e.get("type"), "message": e.get("message"), "param": null, "code": null }
                }},
            })
        }
        other => {
            let (code, message) = match other {
                "canceled" => (
                    "batch_cancelled",
                    "This request was not run: the batch was canceled.",
                ),
                "expired" => (
                    "batch_expired",
                    "This request was not run before the batch expired.",
                ),
                _ => ("unknown_result", "The upstream reported an unknown result."),
            };
            json!({
                "id": "", "custom_id": custom_id, "response": null,
                "error": { "code": code, "message": message },
            })
        }
    };
    let mut out = serde_json::to_vec(&converted).ok()?;
    out.push(b'\n');
    Some(out)
}

impl Client {
    /// The content of a results file (see the module's doc): the batch's
    /// results, streamed and converted line by line.
    pub(crate) async fn anthropic_results(&self, id: &str) -> Result<Response, UpstreamError> {
        let Some((batch, part)) = parse_file_id(id) else {
            return Err(UpstreamError::Api {
                status: 404,
                message: format!("No results file {id}: message batches have no other files."),
                kind: Some("not_found_error".into()),
                code: None,
                param: None,
                request_id: None,
                retry_after: None,
                should_retry: Some(false),
            });
        };
        let path = format!("/messages/batches/{}/results", path_segment(batch));
        let resp = self
            .retrying("GET /messages/batches/{id}/results", || {
                self.send(self.request(Method::GET, &path))
            })
            .await?;
        let reader = tokio::io::BufReader::with_capacity(
            64 * 1024,
            tokio_util::io::StreamReader::new(resp.bytes_stream().map_err(std::io::Error::other)),
        );
        let lines = futures_util::stream::try_unfold(reader, move |mut r| async move {
            let mut buf = Vec::new();
            loop {
                buf.clear();
                if r.read_until(b'\n', &mut buf).await? == 0 {
                    return Ok::<_, std::io::Error>(None);
                }
                let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if let Some(out) = convert(line, part) {
                    return Ok(Some((bytes::Bytes::from(out), r)));
                }
            }
        });
        let body = reqwest::Body::wrap_stream(lines);
        let converted = http_response(body);
        Ok(Response::from(converted))
    }

    /// Creates a message batch from a body already on disk
    /// (`{"requests": [...]}`), streamed. Tried again only after an answer
    /// that says it did not happen (429 and the like): after a lost or
    /// garbled answer it may have, and nothing tells which batch it made.
    pub async fn create_message_batch(
        &self,
        body: &std::path::Path,
    ) -> Result<Batch, UpstreamError> {
        if !self.kind.message_batches() {
            return Err(UpstreamError::Config(
                "message batches are Anthropic's: other kinds create from a file".into(),
            ));
        }
        self.attempts(
            "POST /messages/batches",
            || async {
                let file = tokio::fs::File::open(body).await.map_err(|e| {
                    UpstreamError::Transport(format!("cannot read the requests: {e}"))
                })?;
                let len = file
                    .metadata()
                    .await
                    .map_err(|e| UpstreamError::Transport(e.to_string()))?
                    .len();
                let stream = tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024);
                let req = self
                    .request(Method::POST, "/messages/batches")
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(reqwest::header::CONTENT_LENGTH, len)
                    .body(reqwest::Body::wrap_stream(stream));
                // Up to 256 MB: allow an hour, as for an upload.
                let v: Value = self.json_within(req, Duration::from_secs(3600)).await?;
                crate::dialect::read_batch(Kind::Anthropic, v).map_err(UpstreamError::Decode)
            },
            |e| e.should_retry() && !e.is_ambiguous(),
            |_| std::future::ready(crate::Settle::TryAgain),
        )
        .await
    }
}

fn http_response(body: reqwest::Body) -> http::Response<reqwest::Body> {
    let mut resp = http::Response::new(body);
    resp.headers_mut().insert(
        reqwest::header::CONTENT_TYPE,
        reqwest::header::HeaderValue::from_static("application/jsonl"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_file_ids_name_their_batch_and_part() {
        for part in Part::ALL {
            let id = file_id("msgbatch_01", part);
            assert_eq!(parse_file_id(&id), Some(("msgbatch_01", part)));
            batchboard_core::dashboard::check_id("file", &id).unwrap();
        }
        assert_eq!(parse_file_id("file-abc"), None);
        assert_eq!(parse_file_id("--failed"), None);
        assert!(results_file(Kind::Openai, "msgbatch_01--failed").is_none());
        let f = results_file(Kind::Anthropic, "msgbatch_01--failed").unwrap();
        assert_eq!(f.filename, "msgbatch_01_failed.jsonl");
    }

    /// Lines from Anthropic's documentation, one of each result type.
    #[test]
    fn each_result_type_becomes_openais_line_in_its_file() {
        let ok = br#"{"custom_id":"my-second-request","result":{"type":"succeeded","message":{"id":"msg_014VwiXbi91y3JMjcpyGBHX5","type":"message","role":"assistant","model":"claude-3-5-sonnet-20240620","content":[{"type":"text","text":"Hello again!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":11,"output_tokens":36}}}}"#;
        let err = br#"{"custom_id":"my-first-request","result":{"type":"errored","error":{"type":"error","error":{"type":"invalid_request_error","message":"Validation error processing batch request"}}}}"#;
        let canceled = br#"{"custom_id":"c","result":{"type":"canceled"}}"#;
        let expired = br#"{"custom_id":"e","result":{"type":"expired"}}"#;
        let read =
            |b: Vec<u8>| -> batchboard_core::ResultLine { serde_json::from_slice(&b).unwrap() };
        let line = read(convert(ok, Part::Succeeded).unwrap());
        assert_eq!(line.custom_id, "my-second-request");
        let resp = line.response.unwrap();
        assert_eq!(resp.status_code, 200);
        assert_eq!(resp.body["content"][0]["text"], "Hello again!");
        assert!(convert(ok, Part::Failed).is_none());

        let line = read(convert(err, Part::Failed).unwrap());
        let resp = line.response.unwrap();
        assert_eq!(resp.status_code, 400);
        assert_eq!(
            resp.body["error"]["message"],
            "Validation error processing batch request"
        );
        assert!(convert(err, Part::Succeeded).is_none());

        for (raw, code) in [
            (&canceled[..], "batch_cancelled"),
            (&expired[..], "batch_expired"),
        ] {
            let line = read(convert(raw, Part::Failed).unwrap());
            assert!(line.response.is_none());
            assert_eq!(line.error.unwrap().code, code);
        }
        assert_eq!(convert(err, Part::Raw).unwrap(), [&err[..], b"\n"].concat());
    }
}
