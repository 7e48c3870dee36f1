//! Faults: the real dashboard against a real sandbox whose answers are
//! broken on purpose (`PUT /sandbox/faults`): rate-limit storms with
//! retry-after, server errors, the upstream's own retry advice, a create
//! whose answer is lost, uploads and downloads cut midway, malformed JSON,
//! a slow and then a vanished upstream. For each: the dashboard keeps
//! serving, the user gets a clear message, nothing is duplicated or lost.
//! Then the server's own limits: oversized bodies, the upload cap, slow
//! headers and silent bodies; and who may read `/metrics`.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::common::{server_fn, Stack};
use serde_json::Value;

const KEY: &str = "sk-faults-SECRET-5c1d";

/// Slow enough that batches are still running when they are cancelled.
const SLOW: &[&str] = &[
    "--sandbox-rps",
    "2",
    "--sandbox-validation-ms",
    "50",
    "--sandbox-finalizing-ms",
    "50",
];

fn requests(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"custom_id":"r{i}","method":"POST","url":"/v1/chat/completions","body":{{"model":"m","max_tokens":5,"messages":[{{"role":"user","content":"hello {i}"}}]}}}}"#
            ) + "\n"
        })
        .collect::<String>()
        .into_bytes()
}

/// One sample of `/metrics`, e.g. `batchboard_upstream_retries_total{route="…"}`.
async fn metric(base: &str, series: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

const CANCEL_RETRIES: &str =
    r#"batchboard_upstream_retries_total{route="POST /batches/{id}/cancel"}"#;

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_within_bounds() {
    let s = Stack::start("retry", KEY, SLOW, &["--metrics-allow", "127.0.0.1/32"]).await;
    let base = s.dash.base();
    let a = crate::common::create_upstream(&s.upstream_url(), KEY, 50).await;
    let b = crate::common::create_upstream(&s.upstream_url(), KEY, 50).await;

    // A storm of two 429s with retry-after: the user just sees it work.
    s.faults("POST /v1/batches/*/cancel: status=429, retry_after=1, times=2")
        .await;
    let started = Instant::now();
    let (status, body) = server_fn(&s.op, &base, "cancel_batch", &[("id", &a)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "retry-after was not honoured"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        ["cancelling", "cancelled"].contains(&v["status"].as_str().unwrap()),
        "{v}"
    );
    assert_eq!(metric(&base, CANCEL_RETRIES).await, 2.0);

    // Asked to wait longer than a person should: the call fails at once
    // with the upstream's message, and is not repeated.
    s.faults("POST /v1/batches/*/cancel: status=429, retry_after=120")
        .await;
    let started = Instant::now();
    let (status, body) = server_fn(&s.op, &base, "cancel_batch", &[("id", &b)]).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("Injected fault"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(metric(&base, CANCEL_RETRIES).await, 2.0);

    // The upstream says not to retry: one attempt.
    s.faults("POST /v1/batches/*/cancel: status=500, should_retry=false")
        .await;
    let (status, body) = server_fn(&s.op, &base, "cancel_batch", &[("id", &b)]).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains(r#""upstream_status":500"#), "{body}");
    assert_eq!(metric(&base, CANCEL_RETRIES).await, 2.0);

    // Server errors that do not stop: three more attempts, then a clear error.
    s.faults("POST /v1/batches/*/cancel: status=503").await;
    let (status, body) = server_fn(&s.op, &base, "cancel_batch", &[("id", &b)]).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains(r#""upstream_status":503"#), "{body}");
    assert_eq!(metric(&base, CANCEL_RETRIES).await, 5.0);
    let calls = metric(
        &base,
        r#"batchboard_upstream_calls_total{route="POST /batches/{id}/cancel",outcome="503"}"#,
    )
    .await;
    assert_eq!(calls, 4.0);

    // The upstream recovers: the same action works.
    s.faults("").await;
    let (status, body) = server_fn(&s.op, &base, "cancel_batch", &[("id", &b)]).await;
    assert_eq!(status, 200, "{body}");
    // Requests were counted by route and status.
    let cancels = metric(
        &base,
        r#"batchboard_http_requests_total{route="/api/cancel_batch",method="POST",status="200"}"#,
    )
    .await;
    assert!(cancels >= 2.0, "{cancels}");
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_makes_exactly_one_batch() {
    let s = Stack::start("create", KEY, SLOW, &[]).await;
    let base = s.dash.base();
    let upstream_batches = || async { s.upstream_get("/batches?limit=100").await["data"].clone() };

    // The upstream creates the batch, then the connection breaks before the
    // answer: Batchboard finds that batch instead of making a second one.
    s.faults("POST /v1/batches: drop_after=0").await;
    let (status, body) =
        crate::common::upload(&s.op, &base, requests(3), "/v1/chat/completions", "").await;
    assert_eq!(status, 200, "{body}");
    let made: Value = serde_json::from_str(&body).unwrap();
    let listed = upstream_batches().await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], made["id"]);
    assert_eq!(listed[0]["input_file_id"], made["input_file_id"]);

    // An upload cut midway and a rate-limited create: tried again, one batch.
    s.faults("POST /v1/files: drop, times=1\nPOST /v1/batches: status=429, retry_after=1, times=1")
        .await;
    let (status, body) =
        crate::common::upload(&s.op, &base, requests(3), "/v1/chat/completions", "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(upstream_batches().await.as_array().unwrap().len(), 2);

    // A create that keeps failing with a server error: a clear message,
    // and no batch appears.
    s.faults("POST /v1/batches: status=500").await;
    let (status, body) =
        crate::common::upload(&s.op, &base, requests(3), "/v1/chat/completions", "").await;
    assert_eq!(status, 502, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["message"].as_str().unwrap().contains("HTTP 500"), "{v}");
    assert_eq!(upstream_batches().await.as_array().unwrap().len(), 2);

    // Uploads that always break: refused, nothing created.
    s.faults("POST /v1/files: drop").await;
    let (status, body) =
        crate::common::upload(&s.op, &base, requests(3), "/v1/chat/completions", "").await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("could not be reached"), "{body}");
    assert_eq!(upstream_batches().await.as_array().unwrap().len(), 2);

    // The index holds what exists upstream, once each.
    s.faults("").await;
    let (status, page) = server_fn(&s.vi, &base, "list_batches", &[]).await;
    assert_eq!(status, 200, "{page}");
    let page: Value = serde_json::from_str(&page).unwrap();
    assert_eq!(page["total"], 2, "{page}");
}

#[tokio::test]
async fn a_download_cut_midway_fails_instead_of_ending_short() {
    let s = Stack::start("download", KEY, crate::common::FAST, &[]).await;
    let base = s.dash.base();
    let id = crate::common::create_upstream(&s.upstream_url(), KEY, 400).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let out = loop {
        let b = s.upstream_get(&format!("/batches/{id}")).await;
        if b["status"] == "completed" {
            break b["output_file_id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "batch did not finish: {b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let direct = reqwest::Client::new()
        .get(format!("{}/files/{out}/content", s.upstream_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(direct.len() > 50_000, "{}", direct.len());
    let url = format!("{base}/files/{out}/content?batch={id}&kind=output");

    // Cut after 20 kB: the browser's download fails; it never gets a
    // shorter file that looks complete.
    s.faults("GET /v1/files/*/content: drop_after=20000, times=1")
        .await;
    let r = s.vi.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.bytes().await.is_err(), "a cut download must fail");

    // Errors before the first byte are retried; the file arrives whole.
    s.faults("GET /v1/files/*/content: status=500, times=2")
        .await;
    let r = s.vi.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["content-length"].to_str().unwrap(),
        direct.len().to_string()
    );
    assert_eq!(r.bytes().await.unwrap(), direct);

    // A file the upstream keeps refusing: a clear error, not an empty file.
    s.faults("GET /v1/files/*/content: status=404").await;
    let r = s.vi.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("HTTP 404"), "{v}");
}

/// The batch table as a browser gets it (server-rendered HTML).
async fn front_page(http: &reqwest::Client, base: &str) -> String {
    let r = http
        .get(format!("{base}/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.text().await.unwrap()
}

#[tokio::test]
async fn a_broken_slow_or_vanished_upstream_leaves_the_dashboard_serving() {
    let s = Stack::start(
        "outage",
        KEY,
        crate::common::FAST,
        &["--upstream-timeout-ms", "700", "--watch-interval-ms", "300"],
    )
    .await;
    let base = s.dash.base();
    let id = crate::common::create_upstream(&s.upstream_url(), KEY, 2).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !front_page(&s.vi, &base).await.contains(&id) {
        assert!(Instant::now() < deadline, "the watcher never indexed {id}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Malformed JSON with status 200: a clear message about the upstream.
    s.faults("GET /v1/batches/*: malformed").await;
    let (status, body) = server_fn(&s.vi, &base, "get_batch", &[("id", "batch_notindexed")]).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("unreadable answer"), "{body}");

    // Every upstream call slower than the timeout: the watcher gives up on
    // each, the pages keep coming from the index and say since when.
    s.faults("* /v1/*: latency_ms=3000").await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let page = loop {
        let page = front_page(&s.vi, &base).await;
        if page.contains("upstream-banner") {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "no banner while the upstream is slow"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(page.contains("Last contact"), "{page}");
    assert!(page.contains("timed out"), "{page}");
    assert!(page.contains(&id), "the index is still shown");

    // Gone altogether: still serving, still saying so; ready says no.
    let s = {
        let Stack {
            dash, upstream, vi, ..
        } = s;
        drop(upstream);
        (dash, vi)
    };
    let (dash, vi) = s;
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let page = front_page(&vi, &base).await;
        if page.contains("upstream-banner") && page.contains("could not be reached") {
            assert!(page.contains(&id));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no banner once the upstream is gone"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let r = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let (status, body) = server_fn(&vi, &base, "get_batch", &[("id", &id)]).await;
    assert_eq!(
        status, 200,
        "a known batch is served from the index: {body}"
    );
    drop(dash);
}

/// Sends `head` (and nothing more) on a new connection; returns the connection.
fn raw(addr: &str, head: &str) -> std::net::TcpStream {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    c.write_all(head.as_bytes()).unwrap();
    c
}

/// Reads until the server closes (or 15 s pass, which fails the test).
fn read_to_close(c: &mut std::net::TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn own_limits_refuse_oversized_crowded_and_slow_requests() {
    let s = Stack::start(
        "limits",
        KEY,
        crate::common::FAST,
        &["--max-uploads", "1", "--read-timeout-secs", "1"],
    )
    .await;
    let base = s.dash.base();
    let addr = s.dash.addr.clone();
    let cookie = crate::common::session_cookie(&base, "op").await;
    let upload_head = |length: u64| {
        format!(
            "POST /api/batches HTTP/1.1\r\nHost: {addr}\r\nOrigin: {base}\r\nCookie: {cookie}\r\n\
             Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {length}\r\n\r\n"
        )
    };

    // Declared over 200 MB: refused before a byte of the body is read.
    let mut c = raw(&addr, &upload_head(300_000_000));
    let answer = read_to_close(&mut c);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("200 MB"), "{answer}");

    // Server functions take small arguments only.
    let big = "x".repeat(2 * 1024 * 1024);
    let (status, body) = server_fn(
        &s.op,
        &base,
        "count_tokens",
        &[("model", "m"), ("text", &big)],
    )
    .await;
    assert_eq!(status, 413, "{body}");

    // One upload at a time (--max-uploads 1): a second is refused while the
    // first is received.
    let mut first = raw(&addr, &upload_head(1_000_000));
    first
        .write_all(b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\n\r\n{")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) =
        crate::common::upload(&s.op, &base, requests(2), "/v1/chat/completions", "").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("Too many uploads"), "{body}");

    // The first went silent mid-body: after the read timeout it is refused,
    // and nothing reached the upstream.
    let answer = read_to_close(&mut first);
    assert!(answer.contains("nothing was uploaded"), "{answer}");
    assert_eq!(
        s.upstream_get("/files").await["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // With the slot free again, an upload goes through.
    let (status, body) =
        crate::common::upload(&s.op, &base, requests(2), "/v1/chat/completions", "").await;
    assert_eq!(status, 200, "{body}");

    // Headers that never finish: the connection is closed.
    let mut slow = raw(&addr, &format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n"));
    let started = Instant::now();
    let answer = read_to_close(&mut slow);
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // Metrics are off unless addresses are allowed.
    let r = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
