//! The sandbox over real HTTP, as an OpenAI SDK would call it: every route,
//! every status transition, the validation error codes, pagination edges,
//! auth failures and persistence across a restart.

use crate::common::Fetch;
use std::time::{Duration, Instant};

use crate::common::{sandbox, Proc, TempDir, FAST};
use batchboard_core::{Batch, BatchStatus, FileObject, List};
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

const KEY: &str = "sk-sandbox-test";

struct Api {
    base: String,
    http: reqwest::Client,
    _proc: Proc,
    dir: TempDir,
}

impl Api {
    fn start(speed: &[&str]) -> Self {
        let dir = TempDir::new("sandbox");
        let proc = sandbox(&dir.0, KEY, speed);
        Self {
            base: format!("{}/v1", proc.base()),
            http: reqwest::Client::new(),
            _proc: proc,
            dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn upload(&self, name: &str, content: Vec<u8>, purpose: &str) -> reqwest::Response {
        // Field order as the official SDKs send it: purpose, then file.
        let form = Form::new()
            .text("purpose", purpose.to_string())
            .part("file", Part::bytes(content).file_name(name.to_string()));
        self.http
            .post(self.url("/files"))
            .bearer_auth(KEY)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    async fn upload_ok(&self, content: &str) -> FileObject {
        let r = self
            .upload("input.jsonl", content.as_bytes().to_vec(), "batch")
            .await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
    }

    async fn create(&self, file_id: &str, endpoint: &str, window: &str) -> Batch {
        let r = self
            .post(
                "/batches",
                json!({"input_file_id": file_id, "endpoint": endpoint, "completion_window": window,
                       "metadata": {"purpose": "test"}}),
            )
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        r.json().await.unwrap()
    }

    async fn batch(&self, id: &str) -> Batch {
        let r = self.get(&format!("/batches/{id}")).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Polls until the batch is terminal, recording each status seen.
    async fn wait(&self, id: &str) -> (Batch, Vec<BatchStatus>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            let b = self.batch(id).await;
            if seen.last() != Some(&b.status) {
                seen.push(b.status.clone());
            }
            if b.status.is_terminal() {
                return (b, seen);
            }
            assert!(
                Instant::now() < deadline,
                "batch {id} stuck in {}",
                b.status
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn content(&self, file_id: &str) -> Vec<Value> {
        let r = self.get(&format!("/files/{file_id}/content")).await;
        assert_eq!(r.status(), 200);
        r.text()
            .await
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn chat_line(id: &str, text: &str) -> String {
    json!({"custom_id": id, "method": "POST", "url": "/v1/chat/completions",
           "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}})
    .to_string()
}

fn chat_file(n: usize) -> String {
    (0..n)
        .map(|i| chat_line(&format!("req-{i}"), &format!("question {i}")))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

async fn error_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"].is_string(), "OpenAI error shape: {v}");
    assert!(
        v["error"].get("type").is_some()
            && v["error"].get("code").is_some()
            && v["error"].get("param").is_some()
    );
    (status, v["error"].clone())
}

#[tokio::test]
async fn auth_is_required_and_checked() {
    let api = Api::start(FAST);
    let r = api.http.get(api.url("/batches")).send().await.unwrap();
    let (status, _) = error_of(r).await;
    assert_eq!(status, 401);
    let r = api
        .http
        .get(api.url("/batches"))
        .bearer_auth("sk-wrong")
        .send()
        .await
        .unwrap();
    let (status, e) = error_of(r).await;
    assert_eq!(status, 401);
    assert_eq!(e["code"], "invalid_api_key");
    let r = api.get("/no/such/route").await;
    assert_eq!(error_of(r).await.0, 404);
}

#[tokio::test]
async fn files_upload_list_retrieve_content_delete() {
    let api = Api::start(FAST);
    let a = api.upload_ok(&chat_file(2)).await;
    assert!(a.id.starts_with("file-"));
    assert_eq!(a.object, "file");
    assert_eq!(a.purpose, "batch");
    assert_eq!(a.filename, "input.jsonl");
    assert_eq!(a.bytes as usize, chat_file(2).len());
    assert_eq!(
        a.expires_at,
        Some(a.created_at + 30 * 24 * 3600),
        "batch files expire after 30 days"
    );
    let b: FileObject = api
        .upload("notes.txt", b"hello".to_vec(), "user_data")
        .await
        .json()
        .await
        .unwrap();

    let got: FileObject = api
        .get(&format!("/files/{}", a.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, a);
    let body = api
        .get(&format!("/files/{}/content", a.id))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(body, chat_file(2));

    let all: List<FileObject> = api.get("/files").await.json().await.unwrap();
    assert_eq!(
        all.data.iter().map(|f| &f.id).collect::<Vec<_>>(),
        vec![&b.id, &a.id],
        "newest first"
    );
    let asc: List<FileObject> = api
        .get("/files?order=asc&limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(asc.data[0].id, a.id);
    assert!(asc.has_more);
    let after: List<FileObject> = api
        .get(&format!("/files?order=asc&after={}", a.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after.data.len(), 1);
    assert_eq!(after.data[0].id, b.id);
    let batch_only: List<FileObject> = api.get("/files?purpose=batch").await.json().await.unwrap();
    assert_eq!(batch_only.data.len(), 1);

    let r = api.upload("x.jsonl", b"x".to_vec(), "nonsense").await;
    assert_eq!(error_of(r).await.0, 400);
    let r = api.upload("x.jsonl", Vec::new(), "batch").await;
    assert_eq!(error_of(r).await.0, 400);

    let r = api
        .http
        .delete(api.url(&format!("/files/{}", b.id)))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"id": b.id, "object": "file", "deleted": true}));
    assert_eq!(
        error_of(api.get(&format!("/files/{}", b.id)).await).await.0,
        404
    );
    assert_eq!(
        error_of(api.get(&format!("/files/{}/content", b.id)).await)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn a_batch_runs_to_completed_with_results_joined_by_custom_id() {
    let api = Api::start(FAST);
    let mut content = chat_file(4);
    // A request the model API refuses: no `messages`.
    content.push_str(
        &json!({"custom_id": "bad-body", "method": "POST", "url": "/v1/chat/completions",
                             "body": {"model": "gpt-4o-mini"}})
        .to_string(),
    );
    content.push('\n');
    let file = api.upload_ok(&content).await;
    let created = api.create(&file.id, "/v1/chat/completions", "24h").await;
    assert_eq!(created.status, BatchStatus::Validating);
    assert_eq!(created.object, "batch");
    assert!(created.id.starts_with("batch_"));
    assert_eq!(created.expires_at, Some(created.created_at + 86_400));
    assert_eq!(created.metadata.as_ref().unwrap()["purpose"], "test");

    let (b, seen) = api.wait(&created.id).await;
    assert_eq!(b.status, BatchStatus::Completed, "{b:?}");
    assert_eq!(seen.first(), Some(&BatchStatus::Validating));
    assert_eq!(b.request_counts.total, 5);
    assert_eq!(b.request_counts.completed, 4);
    assert_eq!(b.request_counts.failed, 1);
    assert_eq!(b.model.as_deref(), Some("gpt-4o-mini"));
    let usage = b.usage.clone().unwrap();
    assert!(usage.input_tokens > 0 && usage.output_tokens > 0);
    assert_eq!(usage.total_tokens, usage.input_tokens + usage.output_tokens);
    let (c, i, f, d) = (
        b.created_at,
        b.in_progress_at.unwrap(),
        b.finalizing_at.unwrap(),
        b.completed_at.unwrap(),
    );
    assert!(c <= i && i <= f && f <= d, "timestamps in order: {b:?}");
    assert!(b.failed_at.is_none() && b.cancelled_at.is_none() && b.expired_at.is_none());

    let out = api.content(b.output_file_id.as_deref().unwrap()).await;
    assert_eq!(out.len(), 4);
    for line in &out {
        let id = line["custom_id"].as_str().unwrap();
        let n = id.strip_prefix("req-").unwrap();
        assert_eq!(line["response"]["status_code"], 200);
        assert_eq!(line["error"], Value::Null);
        assert!(line["id"].as_str().unwrap().starts_with("batch_req_"));
        assert_eq!(
            line["response"]["body"]["choices"][0]["message"]["content"],
            format!("echo: question {n}")
        );
    }
    let errors = api.content(b.error_file_id.as_deref().unwrap()).await;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["custom_id"], "bad-body");
    assert_eq!(errors[0]["response"]["status_code"], 400);
    assert_eq!(errors[0]["response"]["body"]["error"]["param"], "messages");

    let out_file: FileObject = api
        .get(&format!("/files/{}", b.output_file_id.unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(out_file.purpose, "batch_output");
    assert!(out_file.filename.contains(&b.id));
}

#[tokio::test]
async fn embeddings_are_deterministic_across_batches() {
    let api = Api::start(FAST);
    let line = |id: &str| {
        json!({"custom_id": id, "method": "POST", "url": "/v1/embeddings",
                                 "body": {"model": "text-embedding-3-small", "input": "the same text"}}).to_string()
    };
    let file = api
        .upload_ok(&format!("{}\n{}\n", line("a"), line("b")))
        .await;
    let (b, _) = api
        .wait(&api.create(&file.id, "/v1/embeddings", "24h").await.id)
        .await;
    assert_eq!(b.status, BatchStatus::Completed);
    let out = api.content(b.output_file_id.as_deref().unwrap()).await;
    let v0 = &out[0]["response"]["body"]["data"][0]["embedding"];
    assert!(v0.as_array().unwrap().len() == 8);
    assert_eq!(v0, &out[1]["response"]["body"]["data"][0]["embedding"]);
}

#[tokio::test]
async fn a_batch_whose_requests_all_fail_completes_without_output_file() {
    let api = Api::start(FAST);
    let bad = |id: &str| {
        json!({"custom_id": id, "method": "POST", "url": "/v1/chat/completions",
                                "body": {"model": "m", "messages": "not a list"}})
        .to_string()
    };
    let file = api
        .upload_ok(&format!("{}\n{}\n", bad("x"), bad("y")))
        .await;
    let (b, _) = api
        .wait(&api.create(&file.id, "/v1/chat/completions", "24h").await.id)
        .await;
    assert_eq!(b.status, BatchStatus::Completed);
    assert_eq!(b.output_file_id, None);
    assert_eq!(b.request_counts.failed, 2);
    assert_eq!(
        api.content(b.error_file_id.as_deref().unwrap()).await.len(),
        2
    );
}

/// Creates a batch from `content` and returns its errors as (code, line).
async fn validation_errors(api: &Api, content: &str, endpoint: &str) -> Vec<(String, Option<u64>)> {
    let file = api.upload_ok(content).await;
    let (b, seen) = api
        .wait(&api.create(&file.id, endpoint, "24h").await.id)
        .await;
    assert_eq!(b.status, BatchStatus::Failed, "{b:?}");
    assert_eq!(seen, vec![BatchStatus::Validating, BatchStatus::Failed]);
    assert!(b.failed_at.is_some());
    assert!(b.output_file_id.is_none() && b.error_file_id.is_none());
    b.errors
        .unwrap()
        .data
        .into_iter()
        .map(|e| {
            assert!(!e.message.is_empty());
            (e.code, e.line)
        })
        .collect()
}

#[tokio::test]
async fn validation_failures_carry_openai_codes_and_line_numbers() {
    let api = Api::start(FAST);
    let ep = "/v1/chat/completions";
    let e = |c: &str, l: u64| (c.to_string(), Some(l));
    let good = chat_line("a", "hi");

    assert_eq!(
        validation_errors(&api, &format!("{good}\n{{oops\n"), ep).await,
        vec![e("invalid_json_line", 2)]
    );
    assert_eq!(
        validation_errors(&api, &format!("{good}\n{good}\n"), ep).await,
        vec![e("duplicate_custom_id", 2)]
    );
    assert_eq!(
        validation_errors(&api, &format!("{good}\n"), "/v1/embeddings").await,
        vec![e("url_mismatch", 1)]
    );
    let other_model = good
        .replace("\"a\"", "\"b\"")
        .replace("gpt-4o-mini", "gpt-4.1");
    assert_eq!(
        validation_errors(&api, &format!("{good}\n{other_model}\n"), ep).await,
        vec![e("model_mismatch", 2)]
    );
    let get = good.replace("\"a\"", "\"b\"").replace("POST", "GET");
    assert_eq!(
        validation_errors(&api, &format!("{good}\n{get}\n"), ep).await,
        vec![e("invalid_method", 2)]
    );
    let no_id = json!({"method": "POST", "url": ep, "body": {"model": "gpt-4o-mini"}}).to_string();
    assert_eq!(
        validation_errors(&api, &format!("{no_id}\n"), ep).await,
        vec![e("missing_required_parameter", 1)]
    );
    assert_eq!(
        validation_errors(&api, "\n\n", ep).await,
        vec![("empty_file".to_string(), None)]
    );
    let many = chat_file(50_001);
    let errs = validation_errors(&api, &many, ep).await;
    assert_eq!(errs, vec![e("too_many_tasks", 50_001)]);
}

#[tokio::test]
async fn create_checks_its_arguments() {
    let api = Api::start(FAST);
    let file = api.upload_ok(&chat_file(1)).await;
    let other: FileObject = api
        .upload("n.txt", b"x".to_vec(), "user_data")
        .await
        .json()
        .await
        .unwrap();
    let ep = "/v1/chat/completions";
    let cases = [
        (
            json!({"endpoint": ep, "completion_window": "24h"}),
            400,
            "input_file_id",
        ),
        (
            json!({"input_file_id": file.id, "endpoint": "/v1/nope", "completion_window": "24h"}),
            400,
            "endpoint",
        ),
        (
            json!({"input_file_id": file.id, "endpoint": ep, "completion_window": "1y"}),
            400,
            "completion_window",
        ),
        (
            json!({"input_file_id": other.id, "endpoint": ep, "completion_window": "24h"}),
            400,
            "input_file_id",
        ),
        (
            json!({"input_file_id": file.id, "endpoint": ep, "completion_window": "24h",
                "metadata": (0..17).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}),
            400,
            "metadata",
        ),
        (
            json!({"input_file_id": file.id, "endpoint": ep, "completion_window": "24h",
                "metadata": {"k".repeat(65): "v"}}),
            400,
            "metadata",
        ),
        (
            json!({"input_file_id": file.id, "endpoint": ep, "completion_window": "24h",
                "metadata": {"k": "v".repeat(513)}}),
            400,
            "metadata",
        ),
    ];
    for (body, status, param) in cases {
        let (s, e) = error_of(api.post("/batches", body.clone()).await).await;
        assert_eq!(s, status, "{body}");
        assert_eq!(e["param"], param, "{body}");
    }
    let (s, _) = error_of(
        api.post(
            "/batches",
            json!({"input_file_id": "file-missing", "endpoint": ep, "completion_window": "24h"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 404);
    // At the limits exactly: accepted.
    let meta: serde_json::Map<String, Value> = (0..16)
        .map(|i| (format!("{i:0>64}"), json!("v".repeat(512))))
        .collect();
    let r = api
        .post("/batches", json!({"input_file_id": file.id, "endpoint": ep, "completion_window": "24h", "metadata": meta}))
        .await;
    assert_eq!(r.status(), 200);
    let all: List<Batch> = api.get("/batches").await.json().await.unwrap();
    assert_eq!(all.data.len(), 1, "refused creations leave nothing behind");
}

/// 100 requests a second, short validation and finalizing: a batch of 200
/// runs for about two seconds.
const TWO_SECONDS_PER_200: &[&str] = &[
    "--sandbox-rps",
    "100",
    "--sandbox-validation-ms",
    "50",
    "--sandbox-finalizing-ms",
    "50",
];

#[tokio::test]
async fn cancel_keeps_partial_results_and_marks_the_rest() {
    // Slow enough to cancel in the middle: 200 requests at 100 per second.
    let api = Api::start(TWO_SECONDS_PER_200);
    let file = api.upload_ok(&chat_file(200)).await;
    let b = api.create(&file.id, "/v1/chat/completions", "24h").await;
    loop {
        let now = api.batch(&b.id).await;
        if now.request_counts.completed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = api
        .post(&format!("/batches/{}/cancel", b.id), json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let cancelling: Batch = r.json().await.unwrap();
    assert_eq!(cancelling.status, BatchStatus::Cancelling);
    assert!(cancelling.cancelling_at.is_some());
    let (done, seen) = api.wait(&b.id).await;
    assert_eq!(done.status, BatchStatus::Cancelled);
    assert!(seen.contains(&BatchStatus::Cancelling));
    assert!(done.cancelled_at.is_some());
    let out = api.content(done.output_file_id.as_deref().unwrap()).await;
    let errs = api.content(done.error_file_id.as_deref().unwrap()).await;
    assert!(
        !out.is_empty() && out.len() < 200,
        "partial results: {}",
        out.len()
    );
    assert_eq!(out.len() + errs.len(), 200, "every request accounted for");
    assert!(errs.iter().all(|e| e["error"]["code"] == "batch_cancelled"));
    assert_eq!(done.request_counts.completed as usize, out.len());

    // Cancelling a finished batch is a conflict.
    let (s, _) = error_of(
        api.post(&format!("/batches/{}/cancel", b.id), json!({}))
            .await,
    )
    .await;
    assert_eq!(s, 409);
    let (s, _) = error_of(api.post("/batches/batch_nope/cancel", json!({})).await).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_batch_past_its_window_expires_with_batch_expired_lines() {
    let api = Api::start(&[
        "--sandbox-rps",
        "50",
        "--sandbox-validation-ms",
        "0",
        "--sandbox-finalizing-ms",
        "0",
    ]);
    let file = api.upload_ok(&chat_file(300)).await;
    let b = api.create(&file.id, "/v1/chat/completions", "2s").await;
    let (done, _) = api.wait(&b.id).await;
    assert_eq!(done.status, BatchStatus::Expired);
    assert!(done.expired_at.unwrap() >= done.expires_at.unwrap());
    let errs = api.content(done.error_file_id.as_deref().unwrap()).await;
    assert!(errs.iter().all(|e| e["error"]["code"] == "batch_expired"));
    let out_len = match &done.output_file_id {
        Some(id) => api.content(id).await.len(),
        None => 0,
    };
    assert!(out_len > 0, "work done before expiry is kept");
    assert_eq!(out_len + errs.len(), 300);
}

#[tokio::test]
async fn batches_list_pages_newest_first() {
    let api = Api::start(&[
        "--sandbox-rps",
        "500",
        "--sandbox-validation-ms",
        "60000",
        "--sandbox-finalizing-ms",
        "0",
    ]);
    let file = api.upload_ok(&chat_file(1)).await;
    let mut ids = Vec::new();
    for _ in 0..25 {
        ids.push(api.create(&file.id, "/v1/chat/completions", "24h").await.id);
    }
    ids.reverse();
    let first: List<Batch> = api.get("/batches").await.json().await.unwrap();
    assert_eq!(first.data.len(), 20, "default limit is 20");
    assert!(first.has_more);
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/batches?limit=10&after={a}"),
            None => "/batches?limit=10".into(),
        };
        let page: List<Batch> = api.get(&path).await.json().await.unwrap();
        assert_eq!(page.first_id.as_ref(), page.data.first().map(|b| &b.id));
        assert_eq!(page.last_id.as_ref(), page.data.last().map(|b| &b.id));
        seen.extend(page.data.iter().map(|b| b.id.clone()));
        if !page.has_more {
            break;
        }
        after = page.last_id;
    }
    assert_eq!(seen, ids);
    let last: List<Batch> = api
        .get(&format!("/batches?after={}", ids[24]))
        .await
        .json()
        .await
        .unwrap();
    assert!(last.data.is_empty() && !last.has_more && last.first_id.is_none());
    for bad in ["0", "101", "x"] {
        let r = api.get(&format!("/batches?limit={bad}")).await;
        assert_eq!(r.status(), 400, "limit={bad}");
    }
}

#[tokio::test]
async fn state_survives_a_restart() {
    let api = Api::start(FAST);
    let file = api.upload_ok(&chat_file(3)).await;
    let (b, _) = api
        .wait(&api.create(&file.id, "/v1/chat/completions", "24h").await.id)
        .await;
    let Api { dir, _proc, .. } = api;
    let (status, _) = _proc.stop();
    assert!(status.success());
    let proc = sandbox(&dir.0, KEY, FAST);
    let http = reqwest::Client::new();
    let again: Batch = http
        .get(format!("{}/v1/batches/{}", proc.base(), b.id))
        .bearer_auth(KEY)
        .fetch_json()
        .await;
    assert_eq!(again, b);
    let out = http
        .get(format!(
            "{}/v1/files/{}/content",
            proc.base(),
            b.output_file_id.unwrap()
        ))
        .bearer_auth(KEY)
        .fetch_text()
        .await;
    assert_eq!(out.lines().count(), 3);
}

#[tokio::test]
async fn faults_are_injected_per_route_when_configured() {
    let api = Api::start(&[
        "--sandbox-fault",
        "GET /v1/batches: status=429, retry_after=2, times=2",
        "--sandbox-fault",
        "POST /v1/files: drop",
        "--sandbox-fault",
        "GET /v1/files/*: status=500",
        "--sandbox-fault",
        "GET /v1/files: latency_ms=300",
    ]);
    for _ in 0..2 {
        let r = api.get("/batches").await;
        assert_eq!(r.headers()["retry-after"], "2");
        let (status, e) = error_of(r).await;
        assert_eq!(status, 429);
        assert_eq!(e["code"], "rate_limit_exceeded");
    }
    assert_eq!(
        api.get("/batches").await.status(),
        200,
        "only the first two fail"
    );
    let form = Form::new()
        .text("purpose", "batch")
        .part("file", Part::bytes(b"{}".to_vec()).file_name("x.jsonl"));
    let sent = api
        .http
        .post(api.url("/files"))
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await;
    let broken = match sent {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(broken, "the upload's answer was cut off");
    assert_eq!(api.get("/files/file-x").await.status(), 500);
    let started = Instant::now();
    assert_eq!(api.get("/files").await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Without rules nothing is injected (every other test), and a bad rule
    // stops the program with a line naming the option.
    let out = crate::common::command()
        .args([
            "sandbox",
            "--api-key",
            "k",
            "--sandbox-fault",
            "GET /x: bogus=1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--sandbox-fault"));
}

#[tokio::test]
async fn forwarding_sends_each_request_to_another_server_with_bounded_concurrency() {
    // The target: a second sandbox, whose built-in models also answer
    // directly at /v1/chat/completions; slow, and failing one request.
    let target_dir = TempDir::new("forward-target");
    let target = sandbox(
        &target_dir.0,
        "sk-target",
        &[
            "--sandbox-fault",
            "POST /v1/chat/completions: latency_ms=200",
        ],
    );
    let forward = format!("{}/v1", target.base());
    let api = Api::start(&[
        "--sandbox-validation-ms",
        "0",
        "--sandbox-finalizing-ms",
        "0",
        "--forward-url",
        &forward,
        "--forward-key",
        "sk-target",
        "--forward-concurrency",
        "4",
    ]);
    let mut content = chat_file(24);
    content.push_str(
        &json!({"custom_id": "bad", "method": "POST", "url": "/v1/chat/completions",
                             "body": {"model": "gpt-4o-mini"}})
        .to_string(),
    );
    content.push('\n');
    let file = api.upload_ok(&content).await;
    let started = Instant::now();
    let (b, _) = api
        .wait(&api.create(&file.id, "/v1/chat/completions", "24h").await.id)
        .await;
    let took = started.elapsed();
    assert_eq!(b.status, BatchStatus::Completed, "{:?}", b.errors);
    assert_eq!(
        (b.request_counts.completed, b.request_counts.failed),
        (24, 1)
    );
    let out = api.content(b.output_file_id.as_deref().unwrap()).await;
    for line in &out {
        let n = line["custom_id"]
            .as_str()
            .unwrap()
            .strip_prefix("req-")
            .unwrap()
            .to_string();
        assert_eq!(
            line["response"]["body"]["choices"][0]["message"]["content"],
            format!("echo: question {n}")
        );
    }
    let errs = api.content(b.error_file_id.as_deref().unwrap()).await;
    assert_eq!(
        errs[0]["response"]["status_code"], 400,
        "the target's own 400 is kept"
    );
    assert!(
        b.usage.unwrap().total_tokens > 0,
        "usage taken from the target's answers"
    );
    // 13 requests of 200 ms each: one at a time would need 2.6 s, four at a
    // time about 0.8 s; more than four at once would be under 0.6 s.
    assert!(
        took >= Duration::from_millis(600),
        "more than 4 in flight: {took:?}"
    );
    assert!(
        took < Duration::from_millis(2400),
        "requests were not concurrent: {took:?}"
    );
}

/// Runs an official Python SDK's script (installed by `scripts/bootstrap.sh
/// --test`) against a sandbox: request shapes, multipart field names, query
/// parameters, headers and response fields as the SDK expects them.
async fn python_sdk(script: &str) {
    let api = Api::start(FAST);
    let root = api.base.trim_end_matches("/v1");
    let path = format!("{}/tests/sdk/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new("python3")
        .arg(&path)
        .env("OPENAI_BASE_URL", &api.base)
        .env("OPENAI_API_KEY", KEY)
        .env("SANDBOX_URL", root)
        .env("SANDBOX_KEY", KEY)
        .output()
        .await
        .expect("python3 (scripts/bootstrap.sh --test installs the SDKs)");
    assert!(
        out.status.success(),
        "{script}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `openai` SDK drives the sandbox's OpenAI dialect without any change.
#[tokio::test]
async fn the_official_python_sdk_works_unchanged() {
    python_sdk("openai_python.py").await;
}

/// The `openai` SDK's `AzureOpenAI` client drives the Azure dialect.
#[tokio::test]
async fn the_openai_sdk_azure_client_works_unchanged() {
    python_sdk("azure_python.py").await;
}

/// The `anthropic` SDK drives the Anthropic dialect's Message Batches.
#[tokio::test]
async fn the_anthropic_sdk_works_unchanged() {
    python_sdk("anthropic_python.py").await;
}

/// An imitated enqueued-token limit: a second batch of the model that
/// would exceed it while the first runs fails validation with OpenAI's
/// `token_limit_exceeded`; once the first has finished, it fits again.
#[tokio::test]
async fn an_enqueued_token_limit_fails_what_would_exceed_it() {
    // 200 requests at 100 per second: the first batch runs for 2 s. The
    // file below is about 2,300 bytes of prompt: 573 tokens at four bytes a
    // token. One batch fits; two at once do not.
    let mut args = TWO_SECONDS_PER_200.to_vec();
    args.extend(["--sandbox-enqueued-tokens", "gpt-4o-mini=1000"]);
    let api = Api::start(&args);
    let file = api.upload_ok(&chat_file(200)).await;
    let first = api.create(&file.id, "/v1/chat/completions", "24h").await;
    loop {
        if api.batch(&first.id).await.status == BatchStatus::InProgress {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = api.create(&file.id, "/v1/chat/completions", "24h").await;
    let (second, _) = api.wait(&second.id).await;
    assert_eq!(second.status, BatchStatus::Failed);
    let e = &second.errors.unwrap().data[0];
    assert_eq!(e.code, "token_limit_exceeded");
    assert!(
        e.message.contains("gpt-4o-mini") && e.message.contains("1000"),
        "{}",
        e.message
    );
    let (first, _) = api.wait(&first.id).await;
    assert_eq!(first.status, BatchStatus::Completed);
    let third = api.create(&file.id, "/v1/chat/completions", "24h").await;
    assert_eq!(api.wait(&third.id).await.0.status, BatchStatus::Completed);
}

/// Imitated request failures: about the configured share of requests
/// answer 429 or 500 in the error file, the same ones when run again in
/// the same batch, others in another batch.
#[tokio::test]
async fn request_failures_come_at_the_configured_rates() {
    let mut speed = FAST.to_vec();
    speed.extend(["--sandbox-request-failures", "429=0.2,500=0.1"]);
    let api = Api::start(&speed);
    let file = api.upload_ok(&chat_file(1000)).await;
    let b = api.create(&file.id, "/v1/chat/completions", "24h").await;
    let (b, _) = api.wait(&b.id).await;
    assert_eq!(b.status, BatchStatus::Completed);
    let errors = api.content(b.error_file_id.as_deref().unwrap()).await;
    let status = |s: u64| {
        errors
            .iter()
            .filter(|l| l["response"]["status_code"] == s)
            .count()
    };
    assert!((150..250).contains(&status(429)), "{}", status(429));
    assert!((60..140).contains(&status(500)), "{}", status(500));
    assert_eq!(
        errors[0]["response"]["body"]["error"]["type"],
        if errors[0]["response"]["status_code"] == 429 {
            "rate_limit_exceeded"
        } else {
            "server_error"
        }
    );
    assert_eq!(b.request_counts.failed as usize, errors.len());
}
