//! Reading a batch's results: the joined view of input and result lines by
//! `custom_id` (shared by the server, which builds it, and the browser,
//! which shows it), and the extraction of a readable answer from a response
//! body of any batch endpoint.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::i18n::{Key, Msg};

/// How a request of the input file ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A 2xx response.
    Ok,
    /// An error line, or a response with a non-2xx status.
    Failed,
    /// No result at all (the batch was cancelled, expired or failed first).
    NotRun,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::NotRun => "not_run",
        }
    }
}

/// Which rows a results page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultsQuery {
    /// `failed` (failed or never ran), `ok`, or everything when empty.
    #[serde(default)]
    pub show: String,
    /// Only failures with this error code.
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub offset: u64,
    #[serde(default)]
    pub limit: u64,
}

impl ResultsQuery {
    pub fn wants(&self, outcome: Outcome, code: Option<&str>) -> bool {
        let by_outcome = match self.show.as_str() {
            "failed" => outcome != Outcome::Ok,
            "ok" => outcome == Outcome::Ok,
            _ => true,
        };
        by_outcome && (self.code.is_empty() || code == Some(self.code.as_str()))
    }
}

/// Token usage reported in a response body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowUsage {
    pub input: u64,
    pub output: u64,
    pub total: u64,
    /// Of `input`, read from the prompt cache.
    #[serde(default)]
    pub cached: u64,
    /// Of `output`, spent reasoning.
    #[serde(default)]
    pub reasoning: u64,
}

/// One request, joined with its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRow {
    /// Line in the input file (1-based).
    pub line: u64,
    pub custom_id: String,
    pub outcome: Outcome,
    /// What the result line says (its fields sit beside the ones above).
    #[serde(flatten)]
    pub result: Reading,
}

/// A page of the results table with the totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultsPage {
    pub rows: Vec<ResultRow>,
    /// Rows matching the query.
    pub matched: u64,
    pub offset: u64,
    pub limit: u64,
    pub ok: u64,
    pub failed: u64,
    pub not_run: u64,
    /// Failures by error code, most frequent first.
    pub error_groups: Vec<(String, u64)>,
}

/// What a result line says, read from its JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    pub status_code: Option<u16>,
    /// A readable preview of the answer ("" when none).
    pub answer: String,
    /// For embeddings: the vector's dimensions.
    pub embedding_dims: Option<u64>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub usage: Option<RowUsage>,
    /// `answer` untranslated, when Batchboard worded it (a refusal, tool
    /// calls, embeddings, a moderation verdict): shown in the reader's
    /// language; `answer` (English) is what exports carry.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::i18n::lenient"
    )]
    pub answer_msg: Option<Msg>,
}

impl Reading {
    pub fn outcome(&self) -> Outcome {
        match self.status_code {
            Some(s) if (200..300).contains(&s) && self.error_code.is_none() => Outcome::Ok,
            _ => Outcome::Failed,
        }
    }
}

/// Reads a result line (`{"custom_id", "response": {"status_code", "body"},
/// "error"}`); `preview` caps the answer's length in characters.
pub fn read_result(line: &Value, preview: usize) -> Reading {
    let response = line.get("response").filter(|r| !r.is_null());
    let body = response.and_then(|r| r.get("body"));
    let status_code = response
        .and_then(|r| r.get("status_code"))
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok());
    let error = line
        .get("error")
        .filter(|e| !e.is_null())
        .or_else(|| body.and_then(|b| b.get("error")).filter(|e| !e.is_null()));
    let error_code = error.map(|e| {
        str_at(e, "code")
            .or_else(|| str_at(e, "type"))
            .map(str::to_owned)
            .unwrap_or_else(|| format!("http_{}", status_code.unwrap_or(0)))
    });
    let error_code = error_code.or_else(|| match status_code {
        Some(s) if !(200..300).contains(&s) => Some(format!("http_{s}")),
        None => Some("no_response".into()),
        _ => None,
    });
    let error_message = error.and_then(|e| str_at(e, "message")).map(str::to_owned);
    let (answer, embedding_dims) = body.map(answer_of).unwrap_or_default();
    let answer_msg = answer.msg.map(|mut m| {
        for (_, v) in &mut m.args {
            *v = truncate(v, preview);
        }
        m
    });
    Reading {
        status_code,
        answer: truncate(&answer.text, preview),
        answer_msg,
        embedding_dims,
        error_code,
        error_message,
        usage: body.and_then(usage_of),
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn truncate(s: &str, chars: usize) -> String {
    match s.char_indices().nth(chars) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// A result's answer: the model's own text, or Batchboard's wording of
/// what came back (with its untranslated [`Msg`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// In English for a worded answer.
    pub text: String,
    pub msg: Option<Msg>,
}

impl Answer {
    fn text(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            msg: None,
        }
    }

    fn worded(msg: Msg) -> Self {
        Self {
            text: msg.to_string(),
            msg: Some(msg),
        }
    }
}

/// The answer text of a chat, completions or responses body; for
/// embeddings the vector size; for moderations the verdict.
pub fn answer_of(body: &Value) -> (Answer, Option<u64>) {
    if let Some(choice) = body.get("choices").and_then(|c| c.get(0)) {
        if let Some(text) = choice.get("text").and_then(Value::as_str) {
            return (Answer::text(text), None);
        }
        let message = choice.get("message");
        if let Some(text) = message
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
        {
            return (Answer::text(text), None);
        }
        if let Some(text) = message
            .and_then(|m| m.get("refusal"))
            .and_then(Value::as_str)
        {
            return (
                Answer::worded(Msg::new(Key::AnswerRefused).arg("text", text)),
                None,
            );
        }
        if let Some(calls) = message
            .and_then(|m| m.get("tool_calls"))
            .and_then(Value::as_array)
        {
            let names: Vec<&str> = calls
                .iter()
                .filter_map(|c| c.pointer("/function/name").and_then(Value::as_str))
                .collect();
            let msg = Msg::new(Key::AnswerToolCall).arg("names", names.join(", "));
            return (Answer::worded(msg), None);
        }
    }
    if let Some(output) = body.get("output").and_then(Value::as_array) {
        let text: Vec<&str> = output
            .iter()
            .filter_map(|item| item.get("content").and_then(Value::as_array))
            .flatten()
            .filter(|c| c.get("type").and_then(Value::as_str) == Some("output_text"))
            .filter_map(|c| c.get("text").and_then(Value::as_str))
            .collect();
        if !text.is_empty() {
            return (Answer::text(&text.join("\n")), None);
        }
    }
    // Anthropic's Messages API: text blocks (tool use named like OpenAI's).
    if body.get("type").and_then(Value::as_str) == Some("message") {
        let blocks = body.get("content").and_then(Value::as_array);
        let of = |kind: &str, field: &str| -> Vec<&str> {
            blocks
                .into_iter()
                .flatten()
                .filter(|c| c.get("type").and_then(Value::as_str) == Some(kind))
                .filter_map(|c| c.get(field).and_then(Value::as_str))
                .collect()
        };
        let text = of("text", "text");
        if !text.is_empty() {
            return (Answer::text(&text.join("\n")), None);
        }
        let tools = of("tool_use", "name");
        if !tools.is_empty() {
            let msg = Msg::new(Key::AnswerToolCall).arg("names", tools.join(", "));
            return (Answer::worded(msg), None);
        }
    }
    // A video job.
    if body.get("object").and_then(Value::as_str) == Some("video") {
        let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("");
        let msg = Msg::new(Key::AnswerVideo)
            .arg("id", text("id"))
            .arg("status", text("status"));
        return (Answer::worded(msg), None);
    }
    if let Some(data) = body.get("data").and_then(Value::as_array) {
        // Images: how many, and what the model made of the prompt.
        let images = data
            .iter()
            .filter(|d| d.get("url").is_some() || d.get("b64_json").is_some())
            .count();
        if images > 0 {
            let revised = data
                .iter()
                .find_map(|d| d.get("revised_prompt").and_then(Value::as_str))
                .unwrap_or("");
            let msg = Msg::new(Key::AnswerImages)
                .arg("n", images)
                .arg("text", revised);
            return (Answer::worded(msg), None);
        }
        if let Some(dims) = data
            .first()
            .and_then(|d| d.get("embedding"))
            .and_then(Value::as_array)
            .map(|e| e.len() as u64)
        {
            let msg = if data.len() == 1 {
                Msg::new(Key::AnswerEmbedding).arg("dims", dims)
            } else {
                Msg::new(Key::AnswerEmbeddings)
                    .arg("n", data.len())
                    .arg("dims", dims)
            };
            return (Answer::worded(msg), Some(dims));
        }
    }
    if let Some(results) = body.get("results").and_then(Value::as_array) {
        if let Some(r) = results.first() {
            let flagged = r.get("flagged").and_then(Value::as_bool).unwrap_or(false);
            let categories: Vec<&str> = r
                .get("categories")
                .and_then(Value::as_object)
                .map(|c| {
                    c.iter()
                        .filter(|(_, v)| v.as_bool() == Some(true))
                        .map(|(k, _)| k.as_str())
                        .collect()
                })
                .unwrap_or_default();
            let msg = if flagged {
                Msg::new(Key::AnswerFlagged).arg("categories", categories.join(", "))
            } else {
                Msg::new(Key::AnswerNotFlagged)
            };
            return (Answer::worded(msg), None);
        }
    }
    (Answer::default(), None)
}

/// `usage` in any of the endpoints' spellings.
pub fn usage_of(body: &Value) -> Option<RowUsage> {
    let u = body.get("usage").filter(|u| u.is_object())?;
    let n = |keys: &[&str]| keys.iter().find_map(|k| u.get(*k).and_then(Value::as_u64));
    let input = n(&["prompt_tokens", "input_tokens"]).unwrap_or(0);
    let output = n(&["completion_tokens", "output_tokens"]).unwrap_or(0);
    let total = n(&["total_tokens"]).unwrap_or(input + output);
    let detail = |outer: &[&str], inner: &str| {
        outer
            .iter()
            .find_map(|k| u.get(*k)?.get(inner)?.as_u64())
            .unwrap_or(0)
    };
    Some(RowUsage {
        input,
        output,
        total,
        cached: detail(
            &["prompt_tokens_details", "input_tokens_details"],
            "cached_tokens",
        ),
        reasoning: detail(
            &["completion_tokens_details", "output_tokens_details"],
            "reasoning_tokens",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_come_out_of_every_endpoint_shape() {
        let chat = json!({"choices":[{"message":{"role":"assistant","content":"hi there"}}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}});
        assert_eq!(answer_of(&chat).0.text, "hi there");
        assert_eq!(
            usage_of(&chat),
            Some(RowUsage {
                input: 3,
                output: 2,
                total: 5,
                ..RowUsage::default()
            })
        );
        let cached = json!({"usage":{"prompt_tokens":30,"prompt_tokens_details":{"cached_tokens":20},"completion_tokens":9,"completion_tokens_details":{"reasoning_tokens":4}}});
        let u = usage_of(&cached).unwrap();
        assert_eq!((u.cached, u.reasoning, u.total), (20, 4, 39));
        let message = json!({"type":"message","role":"assistant","content":[{"type":"text","text":"Hello"},{"type":"text","text":"again"}],"usage":{"input_tokens":11,"output_tokens":36}});
        assert_eq!(answer_of(&message).0.text, "Hello\nagain");
        assert_eq!(usage_of(&message).unwrap().total, 47);
        let tool =
            json!({"type":"message","content":[{"type":"tool_use","name":"lookup","input":{}}]});
        assert!(answer_of(&tool).0.msg.is_some());
        let images = json!({"created":1,"data":[{"url":"https://x/1.png","revised_prompt":"a red fox"},{"url":"https://x/2.png"}]});
        assert_eq!(answer_of(&images).0.text, "[images: 2] a red fox");
        let video = json!({"id":"video_1","object":"video","status":"completed"});
        assert_eq!(answer_of(&video).0.text, "[video video_1: completed]");
        let completion = json!({"choices":[{"text":"done"}]});
        assert_eq!(answer_of(&completion).0.text, "done");
        let response = json!({"output":[{"type":"message","content":[{"type":"output_text","text":"a"},{"type":"output_text","text":"b"}]}],"usage":{"input_tokens":1,"output_tokens":1}});
        assert_eq!(answer_of(&response).0.text, "a\nb");
        assert_eq!(usage_of(&response).map(|u| u.total), Some(2));
        let emb = json!({"data":[{"embedding":[0.1,0.2,0.3]}]});
        assert_eq!(answer_of(&emb).0.text, "embedding, 3 dimensions");
        assert_eq!(answer_of(&emb).1, Some(3));
        let ko = crate::i18n::I18n::get("ko");
        assert_eq!(
            ko.msg(answer_of(&emb).0.msg.as_ref().unwrap()),
            "임베딩, 3차원"
        );
        let modr =
            json!({"results":[{"flagged":true,"categories":{"violence":true,"hate":false}}]});
        assert_eq!(answer_of(&modr).0.text, "flagged: violence");
        let tools = json!({"choices":[{"message":{"content":null,"tool_calls":[{"function":{"name":"lookup"}}]}}]});
        assert_eq!(answer_of(&tools).0.text, "[tool call: lookup]");
    }

    #[test]
    fn failures_are_read_from_the_error_line_or_the_response() {
        let bad = json!({"custom_id":"a","response":{"status_code":400,"body":{"error":{"message":"messages must not be empty","type":"invalid_request_error","code":null}}},"error":null});
        let r = read_result(&bad, 100);
        assert_eq!(r.outcome(), Outcome::Failed);
        assert_eq!(r.error_code.as_deref(), Some("invalid_request_error"));
        assert_eq!(
            r.error_message.as_deref(),
            Some("messages must not be empty")
        );
        let expired = json!({"custom_id":"b","response":null,"error":{"code":"batch_expired","message":"This request could not be executed before the completion window expired."}});
        let r = read_result(&expired, 100);
        assert_eq!(
            (r.outcome(), r.error_code.as_deref(), r.status_code),
            (Outcome::Failed, Some("batch_expired"), None)
        );
        let ok = json!({"custom_id":"c","response":{"status_code":200,"body":{"choices":[{"message":{"content":"ünïcode answer that is long"}}]}},"error":null});
        let r = read_result(&ok, 11);
        assert_eq!(
            (r.outcome(), r.answer.as_str()),
            (Outcome::Ok, "ünïcode ans…")
        );
        let server = json!({"custom_id":"d","response":{"status_code":500,"body":{}}});
        assert_eq!(
            read_result(&server, 10).error_code.as_deref(),
            Some("http_500")
        );
    }

    #[test]
    fn queries_pick_rows() {
        let q = ResultsQuery {
            show: "failed".into(),
            ..Default::default()
        };
        assert!(
            q.wants(Outcome::Failed, Some("x"))
                && q.wants(Outcome::NotRun, None)
                && !q.wants(Outcome::Ok, None)
        );
        let q = ResultsQuery {
            code: "x".into(),
            ..Default::default()
        };
        assert!(q.wants(Outcome::Failed, Some("x")) && !q.wants(Outcome::Failed, Some("y")));
    }
}
