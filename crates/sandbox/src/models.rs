//! Deterministic built-in models: the same request always gets the same
//! answer, so results can be checked. A request whose body is not valid for
//! its endpoint gets a 400 with OpenAI's error object, as the real API does.

use serde_json::{json, Value};

use batchboard_core::{OpenAiErrorBody, Usage};

/// The answer to one request: HTTP status and JSON body.
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub usage: Usage,
}

fn invalid(message: impl Into<String>, param: &str) -> Reply {
    Reply {
        status: 400,
        body: error_body("invalid_request_error", message, Some(param)),
        usage: Usage::default(),
    }
}

/// An OpenAI error body, as a reply's JSON.
pub fn error_body(kind: &str, message: impl Into<String>, param: Option<&str>) -> Value {
    serde_json::to_value(OpenAiErrorBody::new(kind, message, param, None)).unwrap_or_default()
}

/// Rough token count: one per four characters, at least one per word.
pub fn tokens(text: &str) -> u64 {
    let chars = text.chars().count() as u64;
    let words = text.split_whitespace().count() as u64;
    chars.div_ceil(4).max(words)
}

/// Chat usage with the sandbox's stand-ins for prompt caching and
/// reasoning, so that costs can be checked by hand: the system (or
/// developer) messages' tokens count as read from the cache, and a
/// reasoning model (`o…`, `gpt-5…`) reasons as many tokens as it answers,
/// counted in its output.
fn chat_usage(prompt: u64, system: u64, answer: u64, model: &str) -> Usage {
    let reasoning = if model.starts_with('o') || model.starts_with("gpt-5") {
        answer
    } else {
        0
    };
    let mut u = usage(prompt, answer + reasoning);
    u.input_tokens_details.cached_tokens = system.min(prompt);
    u.output_tokens_details.reasoning_tokens = reasoning;
    u
}

fn usage(input: u64, output: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        total_tokens: input + output,
        ..Usage::default()
    }
}

/// Text of a message `content`: a string, or an array of parts with `text`.
fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => None,
    }
}

/// FNV-1a, for stable pseudo-random numbers from text.
fn fnv(text: &str, seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A unit vector that depends only on the text.
pub fn embed(text: &str, dims: usize) -> Vec<f32> {
    let raw: Vec<f64> = (0..dims)
        .map(|i| (fnv(text, i as u64) % 2001) as f64 / 1000.0 - 1.0)
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-9);
    raw.iter().map(|x| (x / norm) as f32).collect()
}

/// A request that failed as the real API's sometimes do (see
/// [`crate::quirks`]): a rate limit or a server error, OpenAI's words.
pub fn failure(status: u16) -> Reply {
    let (kind, message) = match status {
        429 => (
            "rate_limit_exceeded",
            "Rate limit reached for requests. Please try again later.",
        ),
        s if s >= 500 => (
            "server_error",
            "The server had an error while processing your request. Sorry about that!",
        ),
        _ => (
            "invalid_request_error",
            "The request could not be processed.",
        ),
    };
    Reply {
        status,
        body: error_body(kind, message, None),
        usage: Usage::default(),
    }
}

/// Runs one request of a batch.
pub fn run(endpoint: &str, body: &Value, request_id: &str, created: i64) -> Reply {
    let model = body.get("model").and_then(Value::as_str).unwrap_or("");
    if model.is_empty() {
        return invalid("you must provide a model parameter", "model");
    }
    match endpoint {
        "/v1/chat/completions" => chat(body, model, request_id, created),
        "/v1/completions" => completion(body, model, request_id, created),
        "/v1/responses" => response(body, model, request_id, created),
        "/v1/embeddings" => embeddings(body, model),
        "/v1/moderations" => moderations(body, model, request_id),
        "/v1/messages" => message(body, model, request_id),
        "/v1/images/generations" | "/v1/images/edits" => images(body, request_id, created),
        "/v1/videos" => video(body, model, request_id, created),
        other => invalid(format!("Unsupported endpoint {other}"), "url"),
    }
}

fn chat(body: &Value, model: &str, id: &str, created: i64) -> Reply {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return invalid("'messages' is a required property", "messages");
    };
    if messages.is_empty() {
        return invalid("'messages' must contain at least one message", "messages");
    }
    let mut prompt = String::new();
    let mut last_user = String::new();
    let mut system = 0;
    for (i, m) in messages.iter().enumerate() {
        let Some(role) = m.get("role").and_then(Value::as_str) else {
            return invalid(
                format!("messages[{i}].role is required"),
                &format!("messages[{i}].role"),
            );
        };
        let text = m.get("content").and_then(content_text).unwrap_or_default();
        if matches!(role, "system" | "developer") {
            system += tokens(&text);
        }
        prompt.push_str(&text);
        if role == "user" {
            last_user = text;
        }
    }
    let answer = format!("echo: {last_user}");
    let u = chat_usage(tokens(&prompt), system, tokens(&answer), model);
    Reply {
        status: 200,
        body: json!({
            "id": format!("chatcmpl-{id}"),
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": answer, "refusal": null },
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {
                "prompt_tokens": u.input_tokens,
                "prompt_tokens_details": { "cached_tokens": u.input_tokens_details.cached_tokens },
                "completion_tokens": u.output_tokens,
                "completion_tokens_details": {
                    "reasoning_tokens": u.output_tokens_details.reasoning_tokens
                },
                "total_tokens": u.total_tokens
            },
            "system_fingerprint": "fp_sandbox"
        }),
        usage: u,
    }
}

/// Anthropic's Messages API: `max_tokens` required, roles `user` and
/// `assistant` only (the system prompt is the top-level `system`). The
/// answer echoes the last user message, cut at `max_tokens` words.
fn message(body: &Value, model: &str, id: &str) -> Reply {
    let Some(max_tokens) = body.get("max_tokens").and_then(Value::as_u64) else {
        return invalid("max_tokens: Field required", "max_tokens");
    };
    if max_tokens == 0 {
        return invalid(
            "max_tokens: Input should be greater than or equal to 1",
            "max_tokens",
        );
    }
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return invalid("messages: Field required", "messages");
    };
    if messages.is_empty() {
        return invalid("messages: at least one message is required", "messages");
    }
    let mut prompt = body
        .get("system")
        .and_then(content_text)
        .unwrap_or_default();
    let mut last_user = String::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        if role != "user" && role != "assistant" {
            return invalid(
                format!("messages.{i}.role: Input should be 'user' or 'assistant' (the system prompt is the top-level `system` parameter)"),
                &format!("messages.{i}.role"),
            );
        }
        let text = m.get("content").and_then(content_text).unwrap_or_default();
        prompt.push(' ');
        prompt.push_str(&text);
        if role == "user" {
            last_user = text;
        }
    }
    let full = format!("echo: {last_user}");
    let words: Vec<&str> = full.split_whitespace().collect();
    let cut = words.len() as u64 > max_tokens;
    let answer = if cut {
        words[..max_tokens as usize].join(" ")
    } else {
        full
    };
    let u = usage(tokens(&prompt), tokens(&answer));
    Reply {
        status: 200,
        body: json!({
            "id": format!("msg_{id}"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{ "type": "text", "text": answer }],
            "stop_reason": if cut { "max_tokens" } else { "end_turn" },
            "stop_sequence": null,
            "usage": { "input_tokens": u.input_tokens, "output_tokens": u.output_tokens }
        }),
        usage: u,
    }
}

/// Images: `n` (default 1) made-up URLs named by the prompt's hash, and
/// the prompt back as `revised_prompt`.
fn images(body: &Value, id: &str, created: i64) -> Reply {
    let Some(prompt) = body.get("prompt").and_then(Value::as_str) else {
        return invalid("'prompt' is a required property (a string)", "prompt");
    };
    let n = body
        .get("n")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .clamp(1, 10);
    let data: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "url": format!("https://sandbox.invalid/images/{id}-{:016x}-{i}.png", fnv(prompt, i)),
                "revised_prompt": prompt,
            })
        })
        .collect();
    Reply {
        status: 200,
        body: json!({ "created": created, "data": data }),
        usage: usage(tokens(prompt), 0),
    }
}

/// A video job, done at once.
fn video(body: &Value, model: &str, id: &str, created: i64) -> Reply {
    let Some(prompt) = body.get("prompt").and_then(Value::as_str) else {
        return invalid("'prompt' is a required property (a string)", "prompt");
    };
    Reply {
        status: 200,
        body: json!({
            "id": format!("video_{id}"),
            "object": "video",
            "model": model,
            "status": "completed",
            "progress": 100,
            "created_at": created,
            "completed_at": created,
            "prompt": prompt,
            "seconds": body.get("seconds").cloned().unwrap_or_else(|| json!("4")),
            "size": body.get("size").cloned().unwrap_or_else(|| json!("720x1280")),
        }),
        usage: usage(tokens(prompt), 0),
    }
}

fn completion(body: &Value, model: &str, id: &str, created: i64) -> Reply {
    let Some(prompt) = body.get("prompt").and_then(Value::as_str) else {
        return invalid("'prompt' is a required property (a string)", "prompt");
    };
    let text = format!("echo: {prompt}");
    let u = usage(tokens(prompt), tokens(&text));
    Reply {
        status: 200,
        body: json!({
            "id": format!("cmpl-{id}"),
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [{ "index": 0, "text": text, "logprobs": null, "finish_reason": "stop" }],
            "usage": {
                "prompt_tokens": u.input_tokens,
                "completion_tokens": u.output_tokens,
                "total_tokens": u.total_tokens
            }
        }),
        usage: u,
    }
}

fn response(body: &Value, model: &str, id: &str, created: i64) -> Reply {
    let input = match body.get("input") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|m| m.get("content").and_then(content_text))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => return invalid("'input' is a required property", "input"),
    };
    let text = format!("echo: {input}");
    let u = usage(tokens(&input), tokens(&text));
    Reply {
        status: 200,
        body: json!({
            "id": format!("resp_{id}"),
            "object": "response",
            "created_at": created,
            "status": "completed",
            "model": model,
            "output": [{
                "type": "message",
                "id": format!("msg_{id}"),
                "status": "completed",
                "role": "assistant",
                "content": [{ "type": "output_text", "text": text, "annotations": [] }]
            }],
            "usage": {
                "input_tokens": u.input_tokens,
                "input_tokens_details": { "cached_tokens": 0 },
                "output_tokens": u.output_tokens,
                "output_tokens_details": { "reasoning_tokens": 0 },
                "total_tokens": u.total_tokens
            }
        }),
        usage: u,
    }
}

fn inputs(body: &Value) -> Option<Vec<String>> {
    match body.get("input")? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

fn embeddings(body: &Value, model: &str) -> Reply {
    let Some(texts) = inputs(body) else {
        return invalid(
            "'input' must be a string or a non-empty array of strings",
            "input",
        );
    };
    let dims = match body.get("dimensions") {
        None => 8,
        Some(d) => match d.as_u64() {
            Some(n @ 1..=3072) => n as usize,
            _ => {
                return invalid(
                    "'dimensions' must be an integer from 1 to 3072",
                    "dimensions",
                )
            }
        },
    };
    let input_tokens: u64 = texts.iter().map(|t| tokens(t)).sum();
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| json!({ "object": "embedding", "index": i, "embedding": embed(t, dims) }))
        .collect();
    Reply {
        status: 200,
        body: json!({
            "object": "list",
            "data": data,
            "model": model,
            "usage": { "prompt_tokens": input_tokens, "total_tokens": input_tokens }
        }),
        usage: usage(input_tokens, 0),
    }
}

fn moderations(body: &Value, model: &str, id: &str) -> Reply {
    let Some(texts) = inputs(body) else {
        return invalid(
            "'input' must be a string or a non-empty array of strings",
            "input",
        );
    };
    let results: Vec<Value> = texts
        .iter()
        .map(|_| json!({ "flagged": false, "categories": {}, "category_scores": {} }))
        .collect();
    Reply {
        status: 200,
        body: json!({ "id": format!("modr-{id}"), "model": model, "results": results }),
        usage: usage(texts.iter().map(|t| tokens(t)).sum(), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_echoes_the_last_user_message() {
        let body = json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello there"}
        ]});
        let r = run("/v1/chat/completions", &body, "x", 0);
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body["choices"][0]["message"]["content"],
            "echo: hello there"
        );
        assert!(r.usage.total_tokens > 0);
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embed("same", 16);
        assert_eq!(a, embed("same", 16));
        assert_ne!(a, embed("other", 16));
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }

    #[test]
    fn invalid_bodies_get_a_400_like_openai() {
        let r = run("/v1/chat/completions", &json!({"model": "m"}), "x", 0);
        assert_eq!(r.status, 400);
        assert_eq!(r.body["error"]["type"], "invalid_request_error");
        assert_eq!(r.body["error"]["param"], "messages");
    }
}
