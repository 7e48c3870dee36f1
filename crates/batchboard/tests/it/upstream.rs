//! The typed upstream client against the real sandbox over HTTP: every call,
//! error mapping, and streaming of a large file in bounded memory.

use std::io::Write;

use crate::common::{sandbox, TempDir, FAST};
use batchboard_core::BatchStatus;
use batchboard_core::{CreateBatch, ExpiresAfter};
use batchboard_upstream::anthropic::Part;
use batchboard_upstream::dialect::Kind;
use batchboard_upstream::provider::Access;
use batchboard_upstream::{Client, UpstreamError};
use futures_util::StreamExt;
use secrecy::SecretString;

const KEY: &str = "sk-upstream-test";

fn client(base: &str, key: &str) -> Client {
    Client::new(
        url::Url::parse(&format!("{base}/v1")).unwrap(),
        Some(&SecretString::from(key.to_string())),
        Some("org-test"),
        None,
    )
    .unwrap()
}

fn write_jsonl(dir: &TempDir, name: &str, lines: usize) -> std::path::PathBuf {
    let path = dir.0.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..lines {
        writeln!(
            f,
            r#"{{"custom_id":"c{i}","method":"POST","url":"/v1/chat/completions","body":{{"model":"m","messages":[{{"role":"user","content":"hi {i}"}}]}}}}"#
        )
        .unwrap();
    }
    f.flush().unwrap();
    path
}

#[tokio::test]
async fn every_call_works_against_the_sandbox() {
    let dir = TempDir::new("upstream");
    let sb = sandbox(&dir.0.join("sb"), KEY, FAST);
    let c = client(&sb.base(), KEY);
    c.probe().await.unwrap();
    let path = write_jsonl(&dir, "in.jsonl", 3);
    let file = c.upload_file(&path, "in.jsonl", "batch").await.unwrap();
    assert_eq!(file.filename, "in.jsonl");
    assert_eq!(c.get_file(&file.id).await.unwrap(), file);
    let batch = c
        .create_batch(&CreateBatch {
            input_file_id: file.id.clone(),
            endpoint: "/v1/chat/completions".into(),
            completion_window: "24h".into(),
            metadata: Some([("k".to_string(), "v".to_string())].into()),
            output_expires_after: Some(ExpiresAfter::created_at(3600)),
        })
        .await
        .unwrap();
    let listed = c.list_batches(None, 10).await.unwrap();
    assert_eq!(listed.data[0].id, batch.id);
    let done = loop {
        let b = c.get_batch(&batch.id).await.unwrap();
        if b.status.is_terminal() {
            break b;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(done.status, BatchStatus::Completed);
    let resp = c
        .file_content(done.output_file_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap().lines().count(), 3);
    let out = c
        .get_file(done.output_file_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(
        out.expires_at,
        Some(out.created_at + 3600),
        "output_expires_after reached the upstream"
    );
}

#[tokio::test]
async fn upstream_errors_keep_status_message_code_and_request_id() {
    let dir = TempDir::new("upstream-err");
    let sb = sandbox(&dir.0.join("sb"), KEY, FAST);
    let c = client(&sb.base(), KEY);
    match c.get_batch("batch_missing").await {
        Err(UpstreamError::Api {
            status,
            message,
            kind,
            request_id,
            ..
        }) => {
            assert_eq!(status, 404);
            assert!(message.contains("batch_missing"), "{message}");
            assert_eq!(kind.as_deref(), Some("invalid_request_error"));
            assert!(request_id.is_some(), "x-request-id kept");
        }
        other => panic!("expected a 404, got {other:?}"),
    }
    let wrong = client(&sb.base(), "sk-wrong");
    match wrong.list_batches(None, 1).await {
        Err(e @ UpstreamError::Api { status: 401, .. }) => {
            let UpstreamError::Api { code, .. } = &e else {
                unreachable!()
            };
            assert_eq!(code.as_deref(), Some("invalid_api_key"));
            assert!(!e.to_string().contains("sk-wrong"), "{e}");
        }
        other => panic!("expected a 401, got {other:?}"),
    }
    match c.list_batches(None, 1000).await {
        Err(UpstreamError::Api {
            status: 400, param, ..
        }) => assert_eq!(param.as_deref(), Some("limit")),
        other => panic!("expected a 400, got {other:?}"),
    }
    let dead = client("http://127.0.0.1:9", KEY);
    assert!(matches!(
        dead.probe().await,
        Err(UpstreamError::Transport(_))
    ));
}

/// Peak resident memory of a process, from /proc.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_200_mb_file_streams_up_and_down_in_bounded_memory() {
    let dir = TempDir::new("upstream-big");
    let sb = sandbox(&dir.0.join("sb"), KEY, FAST);
    let c = client(&sb.base(), KEY);
    // Just under the Batch API's 200 MB limit.
    let path = dir.0.join("big.jsonl");
    let line = format!(
        r#"{{"custom_id":"x","method":"POST","url":"/v1/embeddings","body":{{"model":"m","input":"{}"}}}}"#,
        "a".repeat(1000)
    );
    let target: u64 = 199 * 1024 * 1024;
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut written = 0u64;
        while written < target {
            f.write_all(line.as_bytes()).unwrap();
            f.write_all(b"\n").unwrap();
            written += line.len() as u64 + 1;
        }
        f.flush().unwrap();
    }
    let size = std::fs::metadata(&path).unwrap().len();
    let before = peak_rss_kib(sb.child.id());
    let file = c.upload_file(&path, "big.jsonl", "batch").await.unwrap();
    assert_eq!(file.bytes, size);
    let mut stream = c.file_content(&file.id).await.unwrap().bytes_stream();
    let mut got = 0u64;
    while let Some(chunk) = stream.next().await {
        got += chunk.unwrap().len() as u64;
    }
    assert_eq!(got, size);
    let after = peak_rss_kib(sb.child.id());
    // The whole file would be 199 MiB; streaming keeps the sandbox far below.
    assert!(
        after < before + 64 * 1024,
        "sandbox peak memory grew from {before} KiB to {after} KiB moving a {size}-byte file"
    );
}

fn client_of(kind: Kind, base: &str, api_version: Option<&str>) -> Client {
    let base = url::Url::parse(base).unwrap();
    let key = SecretString::from(KEY.to_string());
    Client::connect(Access {
        kind,
        api_version,
        ..Access::compatible(&base, Some(&key))
    })
    .unwrap()
}

async fn until_ended(c: &Client, id: &str) -> batchboard_core::Batch {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let b = c.get_batch(id).await.unwrap();
        if b.status.is_terminal() {
            return b;
        }
        assert!(std::time::Instant::now() < deadline, "{b:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn lines_of(c: &Client, file_id: &str) -> Vec<batchboard_core::ResultLine> {
    let text = c.file_content(file_id).await.unwrap().text().await.unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Azure's dated API and its v1 API, reached from a bare resource URL:
/// the key in `api-key`, `api-version` on every dated call, no expiry.
#[tokio::test]
async fn an_azure_client_works_with_either_api() {
    let dir = TempDir::new("upstream-azure");
    let sb = sandbox(&dir.0.join("sb"), KEY, FAST);
    let root = format!("{}/azure", sb.base());
    let dated = client_of(Kind::Azure, &root, Some("2024-10-21"));
    let v1 = client_of(Kind::Azure, &format!("{root}/openai/v1/"), None);
    dated.probe().await.unwrap();
    let path = write_jsonl(&dir, "in.jsonl", 3);
    let file = dated.upload_file(&path, "in.jsonl", "batch").await.unwrap();
    let batch = dated
        .create_batch(&CreateBatch {
            input_file_id: file.id,
            endpoint: "/v1/chat/completions".into(),
            completion_window: "24h".into(),
            metadata: None,
            output_expires_after: None,
        })
        .await
        .unwrap();
    assert_eq!(batch.expires_at, None);
    let done = until_ended(&v1, &batch.id).await;
    assert_eq!(done.status, BatchStatus::Completed);
    let out = lines_of(&dated, done.output_file_id.as_deref().unwrap()).await;
    assert_eq!(out.len(), 3);
    // The Azure account is not the OpenAI one.
    let openai = client(&sb.base(), KEY);
    assert!(openai.get_batch(&batch.id).await.is_err());
}

/// Anthropic: a message batch created from a body on disk, read into the
/// domain's batch, its results offered as an output and an error file in
/// OpenAI's line shape, and the raw results as Anthropic wrote them.
#[tokio::test]
async fn an_anthropic_client_creates_reads_and_cancels_message_batches() {
    let dir = TempDir::new("upstream-anthropic");
    let sb = sandbox(&dir.0.join("sb"), KEY, FAST);
    let c = client_of(Kind::Anthropic, &format!("{}/anthropic", sb.base()), None);
    c.probe().await.unwrap();
    let request = |id: &str, role: &str| {
        serde_json::json!({"custom_id": id, "params": {"model": "claude", "max_tokens": 20,
            "messages": [{"role": role, "content": format!("hi {id}")}]}})
    };
    let body = dir.0.join("body.json");
    let requests = vec![
        request("a", "user"),
        request("b", "user"),
        request("bad", "system"),
    ];
    std::fs::write(
        &body,
        serde_json::json!({ "requests": requests }).to_string(),
    )
    .unwrap();
    let batch = c.create_message_batch(&body).await.unwrap();
    assert!(batch.id.starts_with("msgbatch_"), "{batch:?}");
    assert_eq!(batch.status, BatchStatus::InProgress);
    assert_eq!(batch.request_counts.total, 3);
    assert_eq!(c.list_batches(None, 5).await.unwrap().data[0].id, batch.id);
    let done = until_ended(&c, &batch.id).await;
    assert_eq!(done.status, BatchStatus::Completed);
    assert_eq!(
        (done.request_counts.completed, done.request_counts.failed),
        (2, 1)
    );
    let ok = lines_of(&c, done.output_file_id.as_deref().unwrap()).await;
    let mut ids: Vec<_> = ok.iter().map(|l| l.custom_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["a", "b"]);
    let answer = &ok[0].response.as_ref().unwrap().body;
    assert!(answer["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("echo: hi"));
    let failed = lines_of(&c, done.error_file_id.as_deref().unwrap()).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].response.as_ref().unwrap().status_code, 400);
    let raw = c
        .file_content(&batchboard_upstream::anthropic::file_id(
            &batch.id,
            Part::Raw,
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(raw.lines().count(), 3);
    assert!(raw.contains(r#""type":"errored""#), "{raw}");
    let file = c
        .get_file(done.error_file_id.as_deref().unwrap())
        .await
        .unwrap();
    assert!(file.filename.ends_with("_failed.jsonl"));

    // Cancel: what had not run ends canceled, in the error file.
    let many: Vec<_> = (0..3000)
        .map(|i| request(&format!("m{i}"), "user"))
        .collect();
    std::fs::write(&body, serde_json::json!({ "requests": many }).to_string()).unwrap();
    let big = c.create_message_batch(&body).await.unwrap();
    let cancelling = c.cancel_batch(&big.id).await.unwrap();
    assert_eq!(cancelling.status, BatchStatus::Cancelling);
    let cancelled = until_ended(&c, &big.id).await;
    assert_eq!(cancelled.status, BatchStatus::Cancelled);
    let failed = lines_of(&c, cancelled.error_file_id.as_deref().unwrap()).await;
    assert!(failed.iter().any(|l| l
        .error
        .as_ref()
        .is_some_and(|e| e.code == "batch_cancelled")));
    // Files belong to other kinds.
    assert!(matches!(
        c.upload_file(&body, "x.jsonl", "batch").await,
        Err(UpstreamError::Config(_))
    ));
}
