//! The typed upstream client against the real sandbox over HTTP: every call,
//! error mapping, and streaming of a large file in bounded memory.

use std::io::Write;

use crate::common::{sandbox, TempDir, FAST};
use batchboard_core::BatchStatus;
use batchboard_core::{CreateBatch, ExpiresAfter};
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
