//! Pre-flight checks on the server, and results people can read, over real
//! HTTP against a real sandbox: the results table joined by custom_id, the
//! failure filter and error groups, merged JSONL/CSV downloads, and "retry
//! failures" creating a batch of exactly the failed or unfinished requests.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::{server_fn, TempDir};
use serde_json::Value;

const KEY: &str = "sk-results-SECRET-91ab";

type Setup = crate::common::Stack;

async fn setup(tag: &str, speed: &[&str]) -> Setup {
    crate::common::Stack::start(tag, KEY, speed, &[]).await
}

/// `batchboard example-file`: returns the file and the ids made to fail.
fn example(dir: &TempDir, requests: u64, fail_every: u64) -> (Vec<u8>, BTreeSet<String>) {
    let path = dir.0.join(format!("example-{requests}-{fail_every}.jsonl"));
    let out = crate::common::run_ok(
        crate::common::command()
            .args([
                "example-file",
                "--requests",
                &requests.to_string(),
                "--megabytes",
                "0.2",
            ])
            .args(["--fail-every", &fail_every.to_string(), "--out"])
            .arg(&path),
    );
    let failing = out.lines().map(str::to_owned).collect();
    (std::fs::read(&path).unwrap(), failing)
}

impl Setup {
    fn base(&self) -> String {
        self.dash.base()
    }

    async fn create(&self, content: Vec<u8>, endpoint: &str) -> (u16, Value) {
        let metadata = r#"{"team":"results"}"#;
        let (status, text) =
            crate::common::upload(&self.op, &self.base(), content, endpoint, metadata).await;
        assert!(!text.contains(KEY));
        (status, serde_json::from_str(&text).unwrap())
    }

    async fn batch(&self, id: &str) -> Value {
        let (status, body) = server_fn(&self.vi, &self.base(), "get_batch", &[("id", id)]).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    async fn wait_for(&self, id: &str, status: &str) -> Value {
        let start = Instant::now();
        loop {
            let b = self.batch(id).await;
            if b["status"] == status {
                return b;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "still {}",
                b["status"]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn results(&self, id: &str, show: &str, code: &str, offset: u64, limit: u64) -> Value {
        let (offset, limit) = (offset.to_string(), limit.to_string());
        let args = [
            ("id", id),
            ("query[show]", show),
            ("query[code]", code),
            ("query[offset]", offset.as_str()),
            ("query[limit]", limit.as_str()),
        ];
        let (status, body) = server_fn(&self.vi, &self.base(), "batch_results", &args).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.vi
            .get(format!("{}{path}", self.base()))
            .send()
            .await
            .unwrap()
    }

    /// The custom_ids in a batch's input file, read through the dashboard.
    async fn file_ids(&self, batch: &Value) -> Vec<String> {
        let (id, file_id) = (
            batch["id"].as_str().unwrap(),
            batch["input_file_id"].as_str().unwrap(),
        );
        let text = self
            .get(&format!("/files/{file_id}/content?batch={id}"))
            .await
            .text()
            .await
            .unwrap();
        text.lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["custom_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }
}

fn ids(rows: &Value) -> BTreeSet<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["custom_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_finished_batch_reads_as_a_table_downloads_merged_and_retries_its_failures() {
    let s = setup("results", crate::common::FAST).await;
    let (file, failing) = example(&s.dir, 60, 7);
    assert_eq!(failing.len(), 8);
    let (status, created) = s.create(file, "/v1/chat/completions").await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let b = s.wait_for(&id, "completed").await;
    assert_eq!(b["request_counts"]["failed"], 8);

    // The whole table, in input order, paged.
    let page = s.results(&id, "", "", 0, 25).await;
    assert_eq!(
        (
            page["ok"].as_u64(),
            page["failed"].as_u64(),
            page["not_run"].as_u64()
        ),
        (Some(52), Some(8), Some(0))
    );
    assert_eq!(page["matched"], 60);
    let rows = page["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 25);
    assert_eq!(rows[0]["line"], 1);
    assert_eq!(rows[0]["custom_id"], "req-000000");
    assert_eq!(rows[0]["outcome"], "ok");
    assert_eq!(rows[0]["status_code"], 200);
    assert!(
        rows[0]["answer"].as_str().unwrap().starts_with("echo: "),
        "{}",
        rows[0]
    );
    assert!(rows[0]["usage"]["input"].as_u64().unwrap() > 0);
    let page3 = s.results(&id, "", "", 50, 25).await;
    assert_eq!(page3["rows"].as_array().unwrap().len(), 10);
    assert_eq!(page3["rows"][0]["line"], 51);

    // Failures only: exactly the requests made to fail, with code and message.
    let failed = s.results(&id, "failed", "", 0, 100).await;
    assert_eq!(failed["matched"], 8);
    assert_eq!(ids(&failed["rows"]), failing);
    let row = &failed["rows"][0];
    assert_eq!(row["status_code"], 400);
    assert_eq!(row["error_code"], "invalid_request_error");
    assert!(
        row["error_message"].as_str().unwrap().contains("messages"),
        "{row}"
    );
    assert_eq!(
        failed["error_groups"],
        serde_json::json!([["invalid_request_error", 8]])
    );
    let by_code = s
        .results(&id, "failed", "invalid_request_error", 0, 100)
        .await;
    assert_eq!(by_code["matched"], 8);
    assert_eq!(
        s.results(&id, "failed", "rate_limit_exceeded", 0, 100)
            .await["matched"],
        0
    );

    // Merged CSV: one row per request, answers extracted, quoted properly.
    let r = s.get(&format!("/api/batches/{id}/merged?format=csv")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-disposition"],
        format!("attachment; filename=\"{id}_merged.csv\"").as_str()
    );
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 61);
    assert!(lines[0].starts_with("line,custom_id,outcome,status_code,answer"));
    assert!(
        lines[1].starts_with("1,req-000000,ok,200,echo: "),
        "{}",
        lines[1]
    );
    assert!(
        lines[7].starts_with("7,req-000006,failed,400,,,invalid_request_error,"),
        "{}",
        lines[7]
    );

    // Merged JSONL: the original request and result lines, untouched.
    let jsonl = s
        .get(&format!("/api/batches/{id}/merged?format=jsonl"))
        .await
        .text()
        .await
        .unwrap();
    let merged: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(merged.len(), 60);
    for m in &merged {
        assert_eq!(m["custom_id"], m["request"]["custom_id"]);
        assert_eq!(m["custom_id"], m["result"]["custom_id"]);
        let failed = failing.contains(m["custom_id"].as_str().unwrap());
        assert_eq!(m["outcome"], if failed { "failed" } else { "ok" });
    }
    assert_eq!(
        s.get(&format!("/api/batches/{id}/merged?format=xml"))
            .await
            .status(),
        400
    );

    // A viewer may read but not retry.
    let (status, _) = server_fn(&s.vi, &s.base(), "retry_failed", &[("id", &id)]).await;
    assert_eq!(status, 403);

    // Retry: a new batch of exactly the failed requests, linked to this one.
    let (status, body) = server_fn(&s.op, &s.base(), "retry_failed", &[("id", &id)]).await;
    assert_eq!(status, 200, "{body}");
    let retry: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(retry["metadata"]["retry_of"], id.as_str());
    assert_eq!(retry["metadata"]["created_by"], "op");
    assert_eq!(retry["metadata"]["team"], "results");
    let retried: BTreeSet<String> = s.file_ids(&retry).await.into_iter().collect();
    assert_eq!(retried, failing);
    let (status, body) = server_fn(&s.op, &s.base(), "retry_failed", &[("id", &id)]).await;
    assert_eq!(
        status, 400,
        "a second retry of one batch is refused: {body}"
    );
    assert!(body.contains("already retried"), "{body}");
    let rid = retry["id"].as_str().unwrap().to_owned();
    let rb = s.wait_for(&rid, "completed").await;
    assert_eq!(rb["request_counts"]["total"], 8);
    // Its failures are the same ones again (the requests are still bad); a
    // batch without failures has nothing to retry.
    let (file, _) = example(&s.dir, 5, 0);
    let (_, clean) = s.create(file, "/v1/chat/completions").await;
    let clean_id = clean["id"].as_str().unwrap().to_owned();
    s.wait_for(&clean_id, "completed").await;
    let (status, body) = server_fn(&s.op, &s.base(), "retry_failed", &[("id", &clean_id)]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("no failed or unfinished requests"), "{body}");
}

#[tokio::test]
async fn requests_a_cancel_stopped_are_shown_and_retried() {
    // Slow: the batch is cancelled while most requests wait.
    let s = setup(
        "results-cancel",
        &[
            "--sandbox-rps",
            "20",
            "--sandbox-validation-ms",
            "50",
            "--sandbox-finalizing-ms",
            "50",
        ],
    )
    .await;
    let (file, failing) = example(&s.dir, 300, 10);
    let (_, created) = s.create(file, "/v1/chat/completions").await;
    let id = created["id"].as_str().unwrap().to_owned();
    s.wait_for(&id, "in_progress").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = server_fn(&s.op, &s.base(), "cancel_batch", &[("id", &id)]).await;
    assert_eq!(status, 200, "{body}");
    s.wait_for(&id, "cancelled").await;

    let page = s.results(&id, "failed", "", 0, 200).await;
    let (ok, failed, not_run) = (
        page["ok"].as_u64().unwrap(),
        page["failed"].as_u64().unwrap(),
        page["not_run"].as_u64().unwrap(),
    );
    assert_eq!(ok + failed + not_run, 300);
    // Like the real API, the sandbox writes a `batch_cancelled` error line
    // for each request it did not run (one with no line at all would count
    // as `not_run`).
    let groups = page["error_groups"].as_array().unwrap();
    let cancelled = groups
        .iter()
        .find(|g| g[0] == "batch_cancelled")
        .and_then(|g| g[1].as_u64())
        .unwrap_or(0);
    assert!(cancelled > 0 && ok > 0, "{ok} ok, {groups:?}");
    assert_eq!(page["matched"].as_u64(), Some(failed + not_run));

    let (status, body) = server_fn(&s.op, &s.base(), "retry_failed", &[("id", &id)]).await;
    assert_eq!(status, 200, "{body}");
    let retry: Value = serde_json::from_str(&body).unwrap();
    let retried = s.file_ids(&retry).await;
    assert_eq!(retried.len() as u64, failed + not_run);
    let ok_page = s.results(&id, "ok", "", 0, 200).await;
    let ok_ids = ids(&ok_page["rows"]);
    assert_eq!(ok_ids.len() as u64, ok);
    assert!(
        retried.iter().all(|r| !ok_ids.contains(r)),
        "no finished request is retried"
    );
    assert!(
        failing.iter().all(|f| !ok_ids.contains(f)),
        "a bad request never shows as ok"
    );
}

#[tokio::test]
async fn a_batch_that_failed_validation_upstream_shows_every_request_as_never_run() {
    let s = setup("results-failed", crate::common::FAST).await;
    // Made with another tool, straight on the upstream, with a duplicate id.
    let line = |id: &str| {
        format!(
            r#"{{"custom_id":"{id}","method":"POST","url":"/v1/chat/completions","body":{{"model":"m","messages":[{{"role":"user","content":"x"}}]}}}}"#
        )
    };
    let body = [line("a"), line("b"), line("a")].join("\n") + "\n";
    let id =
        crate::common::create_upstream_from(&format!("{}/v1", s.upstream.base()), KEY, body).await;
    s.wait_for(&id, "failed").await;
    let page = s.results(&id, "", "", 0, 10).await;
    assert_eq!(page["not_run"], 3);
    assert_eq!(page["error_groups"], serde_json::json!([["not_run", 3]]));
    assert_eq!(page["rows"][2]["line"], 3);
    assert_eq!(page["rows"][2]["outcome"], "not_run");
    // Retrying them would fail the same way: refused, with the reason.
    let (status, body) = server_fn(&s.op, &s.base(), "retry_failed", &[("id", &id)]).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("do not pass the check") && body.contains("custom_id"),
        "{body}"
    );
}

#[tokio::test]
async fn results_of_a_running_batch_are_refused_clearly() {
    let s = setup(
        "results-running",
        &["--sandbox-rps", "1", "--sandbox-validation-ms", "50"],
    )
    .await;
    let (file, _) = example(&s.dir, 50, 0);
    let (_, created) = s.create(file, "/v1/chat/completions").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, body) = server_fn(
        &s.vi,
        &s.base(),
        "batch_results",
        &[("id", &id), ("query[limit]", "10")],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("when it has ended"), "{body}");
    assert_eq!(
        s.get(&format!("/api/batches/{id}/merged")).await.status(),
        400
    );
}

#[tokio::test]
async fn the_server_checks_embedding_inputs_with_the_real_tokenizer_and_counts_tokens() {
    let s = setup("results-tokens", crate::common::FAST).await;
    // About 18,000 tokens: over the 8,192 an input may have. The server
    // counts with the model's encoding and refuses it before upload.
    let long: String = (0..9000).map(|i| format!("w{i} ")).collect();
    let line = |id: &str, input: &str| {
        format!(
            r#"{{"custom_id":"{id}","method":"POST","url":"/v1/embeddings","body":{{"model":"text-embedding-3-small","input":"{input}"}}}}"#
        )
    };
    let file = format!("{}\n{}\n", line("short", "hello"), line("long", &long));
    let (status, body) = s.create(file.into_bytes(), "/v1/embeddings").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["line"], 2);
    assert_eq!(body["errors"][0]["param"], "body.input[0]");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("tokens"),
        "{body}"
    );

    let (status, body) = server_fn(
        &s.op,
        &s.base(),
        "count_tokens",
        &[("model", "gpt-4o-mini"), ("sample", "hello world")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["tokens"].as_u64(), v["encoding"].as_str()),
        (Some(2), Some("o200k_base"))
    );
    let big = "x".repeat(300 * 1024);
    let (status, _) = server_fn(
        &s.op,
        &s.base(),
        "count_tokens",
        &[("model", "m"), ("sample", &big)],
    )
    .await;
    assert_eq!(status, 400, "oversized samples are refused");

    let (status, body) = server_fn(&s.vi, &s.base(), "pricing", &[]).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    let mini = &v["default"]["models"]["gpt-4o-mini"];
    assert!(mini["input"].as_f64().unwrap() > 0.0);
    assert!(mini["cached_input"].as_f64().unwrap() < mini["input"].as_f64().unwrap());
    assert_eq!(v["upstreams"], serde_json::json!({}));
}
