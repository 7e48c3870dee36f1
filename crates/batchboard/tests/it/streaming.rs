//! Uploads that stream through: a file whose size is announced goes on to
//! the upstream while it arrives, and nothing invalid or unfinished is ever
//! completed there. The sandbox counts the uploads it saw begin and the
//! ones abandoned midway (`GET /sandbox/stats`), which shows the file really
//! was on its way upstream before it was refused.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::common::{upload, upload_unsized, Fetch, Stack, FAST};
use serde_json::Value;

const KEY: &str = "sk-streaming-SECRET-77a0";

/// `n` valid chat requests of about 1 KiB each.
fn requests(n: usize) -> String {
    let pad = "x".repeat(900);
    (0..n)
        .map(|i| {
            format!(
                r#"{{"custom_id":"r{i}","method":"POST","url":"/v1/chat/completions","body":{{"model":"m","max_tokens":5,"messages":[{{"role":"user","content":"{pad} {i}"}}]}}}}"#
            ) + "\n"
        })
        .collect()
}

async fn stats(s: &Stack) -> Value {
    reqwest::Client::new()
        .get(format!("{}/sandbox/stats", s.upstream.base()))
        .bearer_auth(KEY)
        .fetch_json()
        .await
}

/// Waits until the sandbox has seen `n` uploads abandoned; its stats then.
async fn abandoned(s: &Stack, n: u64) -> Value {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let v = stats(s).await;
        if v["uploads_abandoned"] == n || Instant::now() > until {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn upstream_counts(s: &Stack) -> (usize, usize) {
    let files = s.upstream_get("/files").await["data"]
        .as_array()
        .unwrap()
        .len();
    let batches = s.upstream_get("/batches").await["data"]
        .as_array()
        .unwrap()
        .len();
    (files, batches)
}

#[tokio::test]
async fn a_file_whose_last_line_is_bad_leaves_no_file_and_no_batch_upstream() {
    let s = Stack::start("stream-bad-last", KEY, FAST, &[]).await;
    let base = s.dash.base();
    // 4 MiB of good requests, then a last line that is not JSON.
    let good = requests(4000);
    let bad = format!("{good}{{\"custom_id\": \"last\", \"method\": \"POST\"\n");
    let (status, body) = upload(&s.op, &base, bad.into_bytes(), "/v1/chat/completions", "").await;
    assert_eq!(status, 422, "{body}");
    let refusal: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refusal["error_count"], 1, "{refusal}");
    assert_eq!(refusal["errors"][0]["line"], 4001, "{refusal}");

    // The file was on its way (megabytes had reached the upstream) and
    // was abandoned before its end: no file, no batch.
    let st = abandoned(&s, 1).await;
    assert_eq!(st["uploads_begun"], 1, "{st}");
    assert_eq!(st["uploads_abandoned"], 1, "{st}");
    assert!(
        st["uploads_abandoned_bytes"].as_u64().unwrap() > 1_000_000,
        "the file did not stream through: {st}"
    );
    assert_eq!(upstream_counts(&s).await, (0, 0));

    // The same file without its bad line goes through in one upload, whole.
    let size = good.len() as u64;
    let (status, body) = upload(&s.op, &base, good.into_bytes(), "/v1/chat/completions", "").await;
    assert_eq!(status, 200, "{body}");
    let batch: Value = serde_json::from_str(&body).unwrap();
    let st = stats(&s).await;
    assert_eq!(st["uploads_begun"], 2, "{st}");
    assert_eq!(st["uploads_abandoned"], 1, "{st}");
    let file = s
        .upstream_get(&format!(
            "/files/{}",
            batch["input_file_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(file["bytes"], size, "{file}");
    assert_eq!(upstream_counts(&s).await, (1, 1));

    // A problem in the middle stops the stream there; every problem is
    // still reported with its line.
    let mut lines: Vec<String> = requests(3000).lines().map(str::to_owned).collect();
    lines[10] = "not json".into();
    lines[2999] =
        r#"{"custom_id":"r0","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}"#
            .into();
    let text = lines.join("\n") + "\n";
    let (status, body) = upload(&s.op, &base, text.into_bytes(), "/v1/chat/completions", "").await;
    assert_eq!(status, 422, "{body}");
    let refusal: Value = serde_json::from_str(&body).unwrap();
    let at: Vec<u64> = refusal["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["line"].as_u64())
        .collect();
    assert!(at.contains(&11) && at.contains(&3000), "{refusal}");
    // (The problem is in the first chunk, so the upload may be abandoned
    // before the upstream saw it begin: whatever began there was abandoned.)
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let st = stats(&s).await;
        let (begun, gone) = (
            st["uploads_begun"].as_u64().unwrap(),
            st["uploads_abandoned"].as_u64().unwrap(),
        );
        if gone + 1 == begun {
            break;
        }
        assert!(
            Instant::now() < until,
            "an upload began and was not abandoned: {st}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(upstream_counts(&s).await, (1, 1));

    // Without the size (a form posted without JavaScript), the file is
    // stored first and uploaded once checked: it works the same.
    let (status, body) = upload_unsized(
        &s.op,
        &base,
        requests(5).into_bytes(),
        "/v1/chat/completions",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(upstream_counts(&s).await, (2, 2));
}

#[tokio::test]
async fn a_client_that_disconnects_mid_upload_leaves_nothing_upstream() {
    let s = Stack::start("stream-disconnect", KEY, FAST, &[]).await;
    let base = s.dash.base();
    let addr = s.dash.addr.clone();
    let cookie = crate::common::session_cookie(&base, "op").await;
    let file = requests(8000); // about 8 MiB, of which half is sent
    let head = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"endpoint\"\r\n\r\n/v1/chat/completions\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"file_size\"\r\n\r\n{}\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\n\r\n",
        file.len()
    );
    let length = head.len() + file.len() + "\r\n--XyZ--\r\n".len();
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        c,
        "POST /api/batches HTTP/1.1\r\nHost: {addr}\r\nOrigin: {base}\r\nCookie: {cookie}\r\n\
         Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {length}\r\n\r\n{head}"
    )
    .unwrap();
    c.write_all(&file.as_bytes()[..file.len() / 2]).unwrap();
    // The upload has reached the upstream: then the client goes away.
    let until = Instant::now() + Duration::from_secs(10);
    while stats(&s).await["uploads_begun"] != 1 {
        assert!(Instant::now() < until, "the upload never began upstream");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(c);

    let st = abandoned(&s, 1).await;
    assert_eq!(st["uploads_abandoned"], 1, "{st}");
    assert!(
        st["uploads_abandoned_bytes"].as_u64().unwrap() > 1_000_000,
        "the file did not stream through: {st}"
    );
    assert_eq!(upstream_counts(&s).await, (0, 0));
    // The dashboard is fine, and nothing was indexed.
    let (status, page) = crate::common::server_fn(&s.vi, &base, "list_batches", &[]).await;
    assert_eq!(status, 200, "{page}");
    let page: Value = serde_json::from_str(&page).unwrap();
    assert_eq!(page["total"], 0, "{page}");
}
