//! Jobs larger than one batch, over real HTTP against the real binary and
//! sandbox: split to an upstream's limits, scheduled under its
//! enqueued-token limit, transient failures sent again, one merged result;
//! and a job survives `kill -9` of the server without a part submitted
//! twice or a line lost.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, sandbox, Fetch, Proc, TempDir, PASSWORD};

const KEY: &str = "sk-jobs-test";

struct Board {
    dash: Option<Proc>,
    sandbox: Proc,
    data: std::path::PathBuf,
    file: std::path::PathBuf,
    http: reqwest::Client,
    _dir: TempDir,
}

/// A sandbox that fails `failures` of requests (`429=0.1`) and imitates an
/// enqueued-token limit of `tokens.0` for `gpt-4o-mini`, and a dashboard
/// whose upstream `limited` (that sandbox) takes `max_requests` a batch and
/// is configured with a limit of `tokens.1`.
async fn board(
    name: &str,
    failures: &str,
    tokens: (u64, u64),
    max_requests: u64,
    rps: &str,
) -> Board {
    let dir = TempDir::new(name);
    let data = dir.0.join("data");
    common::add_user(&data, "op", "operator", PASSWORD);
    let limit = format!("gpt-4o-mini={}", tokens.0);
    let sb = sandbox(
        &dir.0.join("sb"),
        KEY,
        &[
            "--sandbox-rps",
            rps,
            "--sandbox-validation-ms",
            "50",
            "--sandbox-finalizing-ms",
            "50",
            "--sandbox-request-failures",
            failures,
            "--sandbox-enqueued-tokens",
            &limit,
        ],
    );
    let file = dir.0.join("upstreams.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[[upstream]]
name = "limited"
kind = "openai-compatible"
base_url = "{}/v1"
key_env = "TEST_SANDBOX_KEY"
limits = {{ max_requests = {max_requests}, enqueued_tokens = {{ "gpt-4o-mini" = {configured} }} }}
"#,
            sb.base(),
            configured = tokens.1
        ),
    )
    .unwrap();
    let mut b = Board {
        dash: None,
        sandbox: sb,
        data,
        file,
        http: reqwest::Client::new(),
        _dir: dir,
    };
    b.start().await;
    b
}

impl Board {
    /// Starts (or starts again) the dashboard on the same data.
    async fn start(&mut self) {
        let addr = format!("127.0.0.1:{}", common::free_port());
        let mut cmd = common::serve_command(&addr, &self.data);
        cmd.args(["--upstream-url", &format!("{}/v1", self.sandbox.base())])
            .arg("--upstreams-file")
            .arg(&self.file)
            .args(["--watch-interval-ms", "300"])
            .env("OPENAI_API_KEY", KEY)
            .env("TEST_SANDBOX_KEY", KEY);
        let dash = Proc::spawn(cmd, addr);
        self.http = common::signed_in(&dash.base(), "op", PASSWORD).await;
        self.dash = Some(dash);
    }

    /// `kill -9`: no shutdown of any kind.
    fn kill(&mut self) {
        if let Some(mut d) = self.dash.take() {
            d.child.kill().unwrap();
            let _ = d.child.wait();
        }
    }

    fn base(&self) -> String {
        self.dash.as_ref().unwrap().base()
    }

    async fn create(&self, content: String, more: &[(&str, &str)]) -> (u16, Value) {
        let mut form = reqwest::multipart::Form::new()
            .text("upstream", "limited")
            .text("endpoint", "/v1/chat/completions")
            .text("completion_window", "24h")
            .text("metadata", r#"{"project":"jobs-test"}"#);
        for (k, v) in more {
            form = form.text(k.to_string(), v.to_string());
        }
        let form = form.part(
            "file",
            reqwest::multipart::Part::bytes(content.into_bytes()).file_name("big.jsonl"),
        );
        let r = self
            .http
            .post(format!("{}/api/jobs", self.base()))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn job(&self, id: &str) -> Value {
        let (status, text) =
            common::server_fn(&self.http, &self.base(), "get_job", &[("id", id)]).await;
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    /// The job once it has ended.
    async fn ended(&self, id: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let j = self.job(id).await;
            if ["completed", "cancelled"].contains(&j["status"].as_str().unwrap()) {
                return j;
            }
            assert!(Instant::now() < deadline, "{j}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn merged(&self, id: &str, format: &str) -> String {
        let r = self
            .http
            .get(format!(
                "{}/api/jobs/{id}/merged?format={format}",
                self.base()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }

    /// Every batch the sandbox has, newest first.
    async fn upstream_batches(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = format!("{}/v1/batches?limit=100", self.sandbox.base());
            if let Some(a) = &after {
                url.push_str(&format!("&after={a}"));
            }
            let page: Value = reqwest::Client::new()
                .get(url)
                .bearer_auth(KEY)
                .fetch_json()
                .await;
            let data = page["data"].as_array().unwrap().clone();
            after = data.last().map(|b| b["id"].as_str().unwrap().to_owned());
            out.extend(data);
            if page["has_more"] != true {
                return out;
            }
        }
    }
}

fn chat(i: usize) -> String {
    format!(
        r#"{{"custom_id":"r{i}","method":"POST","url":"/v1/chat/completions","body":{{"model":"gpt-4o-mini","max_tokens":5,"messages":[{{"role":"user","content":"hello number {i}"}}]}}}}"#
    )
}

fn lines(n: usize) -> String {
    (0..n).map(|i| chat(i) + "\n").collect()
}

/// Checks the merged JSONL: `n` lines in input order, each `custom_id`
/// once, all succeeded; returns how many came from a retry.
fn check_merged(text: &str, n: usize) -> usize {
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), n);
    let mut seen = HashSet::new();
    let mut retried = 0;
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["line"], i as u64 + 1, "{r}");
        assert_eq!(r["custom_id"], format!("r{i}"), "{r}");
        assert!(seen.insert(r["custom_id"].as_str().unwrap().to_owned()));
        assert_eq!(r["outcome"], "ok", "{r}");
        assert_eq!(
            r["result"]["response"]["body"]["choices"][0]["message"]["content"],
            format!("echo: hello number {i}"),
            "{r}"
        );
        if r["attempt"].as_u64().unwrap() > 1 {
            retried += 1;
        }
    }
    retried
}

/// No part's batch was made twice: each tag (job, part, try) names one
/// batch, and each batch that failed failed for the enqueued-token limit.
fn check_no_part_twice(batches: &[Value], job: &str) -> usize {
    let mut tags: BTreeMap<String, usize> = BTreeMap::new();
    for b in batches {
        if b["metadata"]["batchboard_job"] != job {
            continue;
        }
        let tag = b["metadata"]["batchboard_part"]
            .as_str()
            .unwrap()
            .to_owned();
        *tags.entry(tag).or_default() += 1;
        if b["status"] == "failed" {
            assert_eq!(
                b["errors"]["data"][0]["code"], "token_limit_exceeded",
                "{b}"
            );
        }
    }
    assert!(tags.values().all(|n| *n == 1), "{tags:?}");
    tags.len()
}

/// A job of 95 requests where one batch takes 20: five parts; the upstream
/// is configured with twice the token limit it has (others' batches use the
/// rest), so some parts fail with `token_limit_exceeded` and wait, without
/// counting as an attempt; a fifth of the requests fail with 429 and are
/// sent again until all succeed; one merged result in input order.
#[tokio::test]
async fn a_job_is_split_scheduled_retried_and_merged() {
    let b = board("jobs-small", "429=0.2", (200, 400), 20, "500").await;
    // Bad input: nothing is created, and the line is named.
    let (status, body) = b.create(lines(3) + "{not json\n", &[]).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["line"], 4, "{body}");
    let (status, body) = b.create(lines(3), &[("max_attempts", "0")]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("max_attempts"));
    let many: serde_json::Map<String, Value> = (0..14)
        .map(|i| (format!("k{i}"), Value::String("v".into())))
        .collect();
    let many = Value::Object(many).to_string();
    let (status, body) = b.create(lines(3), &[("metadata", &many)]).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("at most 13 pairs"),
        "{body}"
    );
    assert!(b.upstream_batches().await.is_empty());

    let (status, job) = b.create(lines(95), &[("max_attempts", "10")]).await;
    assert_eq!(status, 200, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["requests"], 95);
    let parts = job["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 5, "{job}");
    assert!(parts.iter().all(|p| p["requests"].as_u64().unwrap() <= 20));
    let j = b.ended(&id, Duration::from_secs(120)).await;
    assert_eq!(j["status"], "completed", "{j}");
    assert_eq!(
        (j["ok"].as_u64(), j["failed"].as_u64()),
        (Some(95), Some(0)),
        "{j}"
    );
    let retries = j["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["attempt"].as_u64().unwrap() > 1)
        .count();
    assert!(retries > 0, "a fifth failing, yet nothing was retried: {j}");
    let waits: u64 = j["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["waits"].as_u64().unwrap())
        .sum();
    assert!(waits > 0, "no part waited for the token limit: {j}");
    let text = b.merged(&id, "jsonl").await;
    assert!(check_merged(&text, 95) > 0);
    let csv = b.merged(&id, "csv").await;
    assert_eq!(csv.lines().count(), 96);
    let batches = b.upstream_batches().await;
    check_no_part_twice(&batches, &id);
    // The parts' batches carry the form's metadata, and appear in the table.
    let ours: Vec<&Value> = batches
        .iter()
        .filter(|x| x["metadata"]["batchboard_job"] == id.as_str())
        .collect();
    assert!(ours.iter().all(|x| x["metadata"]["project"] == "jobs-test"));
    assert!(ours.iter().all(|x| x["metadata"]["created_by"] == "op"));
    let (status, list) = common::server_fn(&b.http, &b.base(), "list_jobs", &[]).await;
    assert_eq!(status, 200);
    assert!(list.contains(&id));
    assert!(!list.contains(KEY) && !b.dash.as_ref().unwrap().output().contains(KEY));
}

/// 120,000 requests; the token limit admits about two parts at a time; 3 %
/// of requests fail transiently; the server is killed with SIGKILL twice
/// mid-run and started again. In the end: 120,000 merged lines, each
/// `custom_id` once, all succeeded, and no part submitted twice.
#[tokio::test]
async fn a_large_job_survives_kill_9_twice_without_a_part_twice_or_a_line_lost() {
    // A request is about 7 input tokens by the dashboard's estimate (about
    // 5 by the sandbox's); a part of 20,000, some 140,000: a limit of
    // 350,000 takes two at a time.
    let mut b = board(
        "jobs-kill",
        "429=0.02,500=0.01",
        (350_000, 350_000),
        20_000,
        "20000",
    )
    .await;
    let (status, job) = b.create(lines(120_000), &[("max_attempts", "10")]).await;
    assert_eq!(status, 200, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["parts"].as_array().unwrap().len(), 6, "{job}");
    for _ in 0..2 {
        // Until a part runs, then kill -9 and start again.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let j = b.job(&id).await;
            let running = j["parts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["state"] == "running");
            if running || j["status"] == "completed" {
                break;
            }
            assert!(Instant::now() < deadline, "{j}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        b.kill();
        b.start().await;
    }
    let j = b.ended(&id, Duration::from_secs(600)).await;
    assert_eq!(j["status"], "completed", "{j}");
    assert_eq!(
        (j["ok"].as_u64(), j["failed"].as_u64()),
        (Some(120_000), Some(0)),
        "{j}"
    );
    let text = b.merged(&id, "jsonl").await;
    check_merged(&text, 120_000);
    let batches = b.upstream_batches().await;
    let tags = check_no_part_twice(&batches, &id);
    assert!(tags >= 6, "{tags}");
    let parts = j["parts"].as_array().unwrap();
    let waits: u64 = parts.iter().map(|p| p["waits"].as_u64().unwrap()).sum();
    let tokens: Vec<u64> = parts
        .iter()
        .map(|p| p["tokens"].as_u64().unwrap())
        .collect();
    eprintln!(
        "job of 120,000: {} parts ({} retries), {} batches, {waits} waits for the token limit, part tokens {tokens:?}",
        parts.len(),
        parts.iter().filter(|p| p["attempt"].as_u64().unwrap() > 1).count(),
        tags
    );
}

/// Cancelling a job: nothing more is submitted, running parts are
/// cancelled upstream, and the merged result still has every request once
/// (those that never ran as the upstream reported them, `batch_cancelled`).
#[tokio::test]
async fn a_cancelled_job_stops_and_its_result_covers_what_finished() {
    let b = board("jobs-cancel", "429=0.01", (1_000_000, 1_000_000), 10, "4").await;
    let (status, job) = b.create(lines(60), &[]).await;
    assert_eq!(status, 200, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !b.job(&id).await["parts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["state"] == "running")
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, text) = common::server_fn(&b.http, &b.base(), "cancel_job", &[("id", &id)]).await;
    assert_eq!(status, 200, "{text}");
    let j = b.ended(&id, Duration::from_secs(60)).await;
    assert_eq!(j["status"], "cancelled", "{j}");
    let ok = j["ok"].as_u64().unwrap();
    assert!(ok < 60, "{j}");
    assert_eq!(ok + j["failed"].as_u64().unwrap(), 60, "{j}");
    assert!(
        j["parts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["attempt"] == 1),
        "nothing is retried after a cancel: {j}"
    );
    let rows: Vec<Value> = b
        .merged(&id, "jsonl")
        .await
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 60);
    let ids: HashSet<&str> = rows
        .iter()
        .map(|r| r["custom_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 60);
    assert!(rows.iter().any(|r| r["outcome"] != "ok"));
    assert_eq!(
        rows.iter().filter(|r| r["outcome"] == "ok").count() as u64,
        ok
    );
    // Upstream, every part's batch has ended: none runs on.
    for x in b.upstream_batches().await {
        assert!(
            ["completed", "cancelled", "failed"].contains(&x["status"].as_str().unwrap()),
            "{x}"
        );
    }
    // Another's job is not found as such, and cancelling needs an operator.
    let (status, _) = common::server_fn(&b.http, &b.base(), "get_job", &[("id", "job_nope")]).await;
    assert_eq!(status, 404);
}
