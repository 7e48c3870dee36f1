//! Several upstreams in one dashboard, over real HTTP: the flags' upstream
//! (the sandbox's OpenAI dialect) and, from an upstreams file, the
//! sandbox's Azure and Anthropic dialects. Batches of all of them in one
//! table with ids that say where they live; create, results, downloads,
//! cancel and retry each go to the batch's own upstream.

use serde_json::Value;

use crate::common::{self, sandbox, Fetch, Proc, TempDir, FAST, PASSWORD};

const KEY: &str = "sk-providers-test";

struct Board {
    dash: Proc,
    sandbox: Proc,
    compat: Proc,
    file: std::path::PathBuf,
    http: reqwest::Client,
    _dir: TempDir,
}

async fn board() -> Board {
    let dir = TempDir::new("providers");
    let data = dir.0.join("data");
    common::add_user(&data, "op", "operator", PASSWORD);
    let sb = sandbox(&dir.0.join("sb"), KEY, FAST);
    // A second OpenAI-compatible server, reached at its root (no /v1).
    let compat = sandbox(&dir.0.join("compat"), KEY, FAST);
    let file = dir.0.join("upstreams.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[[upstream]]
name = "azure"
kind = "azure"
base_url = "{sb}/azure"
api_version = "2024-10-21"
key_env = "TEST_SANDBOX_KEY"
deployments = ["gpt-4o-mini-batch"]

[[upstream]]
name = "claude"
kind = "anthropic"
base_url = "{sb}/anthropic"
key_env = "TEST_SANDBOX_KEY"

[[upstream]]
name = "admins-only"
kind = "openai-compatible"
base_url = "{sb}/v1"
key_env = "TEST_SANDBOX_KEY"
create_roles = ["admin"]

[[upstream]]
name = "compat"
kind = "openai-compatible"
base_url = "{compat}"
key_env = "TEST_SANDBOX_KEY"
limits = {{ max_requests = 3, completion_windows = ["24h", "48h"], endpoints = ["/v1/chat/completions"], enqueued_tokens = {{ big = 20 }} }}
"#,
            sb = sb.base(),
            compat = compat.base()
        ),
    )
    .unwrap();
    let addr = format!("127.0.0.1:{}", common::free_port());
    let mut cmd = common::serve_command(&addr, &data);
    cmd.args(["--upstream-url", &format!("{}/v1", sb.base())])
        .arg("--upstreams-file")
        .arg(&file)
        .args(["--watch-interval-ms", "300"])
        .env("OPENAI_API_KEY", KEY)
        .env("TEST_SANDBOX_KEY", KEY);
    let dash = Proc::spawn(cmd, addr);
    let http = common::signed_in(&dash.base(), "op", PASSWORD).await;
    Board {
        dash,
        sandbox: sb,
        compat,
        file,
        http,
        _dir: dir,
    }
}

/// JSON lines, read.
fn jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn chat(id: &str, model: &str) -> String {
    format!(
        r#"{{"custom_id":"{id}","method":"POST","url":"/v1/chat/completions","body":{{"model":"{model}","messages":[{{"role":"user","content":"hi {id}"}}]}}}}"#
    )
}

impl Board {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.dash.base())
    }

    /// The New batch form, sent to the upstream `upstream`.
    async fn create_on(&self, upstream: &str, content: String) -> (u16, Value) {
        self.create_with(upstream, content, &[]).await
    }

    /// The New batch form with more fields.
    async fn create_with(
        &self,
        upstream: &str,
        content: String,
        more: &[(&str, &str)],
    ) -> (u16, Value) {
        let size = content.len().to_string();
        let mut form = reqwest::multipart::Form::new().text("upstream", upstream.to_string());
        for (k, v) in [
            ("endpoint", "/v1/chat/completions"),
            ("completion_window", "24h"),
            ("metadata", "{}"),
        ] {
            // The fields `more` gives instead.
            if !more.iter().any(|(m, _)| *m == k) {
                form = form.text(k, v);
            }
        }
        for (k, v) in more {
            form = form.text(k.to_string(), v.to_string());
        }
        let form = form.text("file_size", size).part(
            "file",
            reqwest::multipart::Part::bytes(content.into_bytes()).file_name("in.jsonl"),
        );
        let r = self
            .http
            .post(self.url("/api/batches"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(!text.contains(KEY), "{text}");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn call(&self, name: &str, args: &[(&str, &str)]) -> (u16, Value) {
        let (status, text) = common::server_fn(&self.http, &self.dash.base(), name, args).await;
        assert!(!text.contains(KEY), "{text}");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// The batch, once the watcher has seen it end.
    async fn ended(&self, id: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (status, b) = self.call("get_batch", &[("id", id)]).await;
            assert_eq!(status, 200, "{b}");
            if ["completed", "failed", "cancelled", "expired"]
                .contains(&b["status"].as_str().unwrap())
            {
                return b;
            }
            assert!(std::time::Instant::now() < deadline, "{b}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The body of a GET of the dashboard's `path`.
    async fn text(&self, path: &str) -> String {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// At the sandbox's Anthropic directly (as a script would): creates a
    /// message batch of `requests`, or (`None`) lists them.
    async fn anthropic(&self, requests: Option<Value>) -> Value {
        let url = format!("{}/anthropic/v1/messages/batches", self.sandbox.base());
        let http = reqwest::Client::new();
        let req = match requests {
            Some(r) => http.post(url).json(&serde_json::json!({ "requests": r })),
            None => http.get(url),
        };
        req.header("x-api-key", KEY)
            .header("anthropic-version", "2023-06-01")
            .fetch_json()
            .await
    }

    /// `/readyz` as a signed-in user reads it.
    async fn ready(&self) -> Value {
        serde_json::from_str(&self.text("/readyz").await).unwrap()
    }

    /// The upstreams `/readyz` names.
    async fn ready_names(&self) -> Vec<String> {
        self.ready().await["upstreams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn table_ids(&self) -> Vec<String> {
        let (status, page) = self.call("list_batches", &[("query[limit]", "100")]).await;
        assert_eq!(status, 200, "{page}");
        page["batches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn batches_of_every_upstream_share_one_table_and_go_back_to_their_own() {
    let b = board().await;

    // Created through the dashboard on the default upstream and on Azure.
    let lines = format!(
        "{}\n{}\n",
        chat("a", "gpt-4o-mini"),
        chat("b", "gpt-4o-mini")
    );
    let (status, plain) = b.create_on("", lines.clone()).await;
    assert_eq!(status, 200, "{plain}");
    let plain_id = plain["id"].as_str().unwrap().to_owned();
    assert!(plain_id.starts_with("batch_"), "{plain_id}");
    let azure_lines = format!(
        "{}\n{}\n",
        chat("a", "gpt-4o-mini-batch"),
        chat("b", "gpt-4o-mini-batch")
    );
    let (status, azure) = b.create_on("azure", azure_lines).await;
    assert_eq!(status, 200, "{azure}");
    let azure_id = azure["id"].as_str().unwrap().to_owned();
    assert!(azure_id.starts_with("azure.batch_"), "{azure_id}");
    assert!(
        azure["input_file_id"]
            .as_str()
            .unwrap()
            .starts_with("azure.file-"),
        "{azure}"
    );
    assert_eq!(
        azure["expires_at"],
        Value::Null,
        "Azure batches do not expire"
    );

    // A message batch made at Anthropic directly (by a script, say): the
    // dashboard's poller finds it.
    let created = b
        .anthropic(Some(serde_json::json!([
            {"custom_id": "ok", "params": {"model": "claude", "max_tokens": 20, "messages": [{"role": "user", "content": "hello"}]}},
            {"custom_id": "bad", "params": {"model": "claude", "max_tokens": 20, "messages": [{"role": "system", "content": "x"}]}}
        ])))
        .await;
    let claude_id = format!("claude.{}", created["id"].as_str().unwrap());

    // One table, ids that say where each batch lives.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let ids = b.table_ids().await;
        if [&plain_id, &azure_id, &claude_id]
            .iter()
            .all(|id| ids.contains(id))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{ids:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // Each one's results come from its own upstream.
    for (id, ok, failed) in [(&plain_id, 2, 0), (&azure_id, 2, 0), (&claude_id, 1, 1)] {
        let batch = b.ended(id).await;
        assert_eq!(batch["status"], "completed", "{batch}");
        let (status, results) = b.call("batch_results", &[("id", id)]).await;
        assert_eq!(status, 200, "{id}: {results}");
        assert_eq!(results["ok"], ok, "{id}: {results}");
        assert_eq!(results["failed"], failed, "{id}: {results}");
        let out = batch["output_file_id"].as_str().unwrap();
        let r = b
            .http
            .get(b.url(&format!("/files/{out}/content?batch={id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{id}");
        let text = r.text().await.unwrap();
        assert_eq!(text.lines().count(), ok as usize, "{id}: {text}");
    }

    // Anthropic keeps a message batch's requests to itself: the merged
    // download has the results, and no request.
    let merged = b
        .text(&format!("/api/batches/{claude_id}/merged?format=jsonl"))
        .await;
    let rows: Vec<Value> = jsonl(&merged);
    assert_eq!(rows.len(), 2, "{merged}");
    assert!(
        rows.iter()
            .all(|r| r["request"].is_null() && r["result"].is_object()),
        "{merged}"
    );

    // And the results as Anthropic wrote them, by link.
    let raw = format!("{claude_id}--results");
    let text = b
        .text(&format!("/files/{raw}/content?batch={claude_id}"))
        .await;
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains(r#""type":"errored""#), "{text}");

    // Retrying its failure needs the requests: refused, saying why.
    let (status, body) = b.call("retry_failed", &[("id", &claude_id)]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("no input file"), "{body}");

    // An upstream the role may not create on, and one that does not exist.
    let (status, body) = b.create_on("admins-only", lines.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("admins-only"), "{body}");
    let (status, body) = b.create_on("nowhere", lines).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("nowhere"), "{body}");

    // /readyz names each upstream.
    let ready = b.ready().await;
    assert_eq!(
        b.ready_names().await,
        ["default", "azure", "claude", "admins-only", "compat"],
        "{ready}"
    );
    // No upstream's key in any page or log line.
    let page = b.text("/upstreams").await;
    assert!(page.contains("admins-only"), "{page}");
    assert!(!page.contains(KEY));
    assert!(!b.dash.output().contains(KEY), "a key in the log");
    assert!(
        ready["upstreams"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["ready"] == true),
        "{ready}"
    );
}

#[tokio::test]
async fn a_message_batch_is_cancelled_through_the_dashboard() {
    let b = board().await;
    let many: Vec<Value> = (0..3000)
        .map(|i| serde_json::json!({"custom_id": format!("m{i}"), "params": {"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}}))
        .collect();
    let created = b.anthropic(Some(Value::Array(many))).await;
    let id = format!("claude.{}", created["id"].as_str().unwrap());
    let (status, batch) = b.call("cancel_batch", &[("id", &id)]).await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["id"], id.as_str());
    assert_eq!(batch["status"], "cancelling");
    let ended = b.ended(&id).await;
    assert_eq!(ended["status"], "cancelled", "{ended}");
}

/// A file for OpenAI's chat completions, sent to an Anthropic upstream:
/// converted line by line; what cannot be converted is refused with its
/// line before anything reaches Anthropic.
#[tokio::test]
async fn chat_lines_become_a_message_batch_on_anthropic() {
    let b = board().await;
    let system = r#"{"custom_id":"s","method":"POST","url":"/v1/chat/completions","body":{"model":"claude","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hello"}]}}"#;
    let native = r#"{"custom_id":"n","params":{"model":"claude","max_tokens":3,"messages":[{"role":"user","content":"one two three four"}]}}"#;
    let bad = r#"{"custom_id":"bad","params":{"model":"claude","max_tokens":5,"messages":[{"role":"system","content":"x"}]}}"#;
    let file = format!("{system}\n{native}\n{bad}\n");
    // No max_tokens on the chat line, none in the form: refused, saying where.
    let (status, body) = b.create_on("claude", file.clone()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["line"], 1, "{body}");
    assert_eq!(body["errors"][0]["code"], "missing_max_tokens", "{body}");
    let listed = b.anthropic(None).await;
    assert_eq!(listed["data"], serde_json::json!([]), "nothing was created");

    let (status, batch) = b
        .create_with(
            "claude",
            file,
            &[("max_tokens", "50"), ("metadata", r#"{"team":"nlp"}"#)],
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    let id = batch["id"].as_str().unwrap().to_owned();
    // Kept by the dashboard (Anthropic keeps no metadata), and still there
    // after the poller has read the batch again.
    assert_eq!(batch["metadata"]["created_by"], "op", "{batch}");
    assert!(id.starts_with("claude.msgbatch_"), "{id}");
    let ended = b.ended(&id).await;
    assert_eq!(ended["status"], "completed", "{ended}");
    assert_eq!(ended["metadata"]["team"], "nlp", "{ended}");
    let (_, mine) = b
        .call(
            "list_batches",
            &[("query[creator]", "op"), ("query[limit]", "50")],
        )
        .await;
    assert!(mine.to_string().contains(&id), "{mine}");
    let (status, results) = b
        .call("batch_results", &[("id", &id), ("query[limit]", "50")])
        .await;
    assert_eq!(status, 200, "{results}");
    assert_eq!(results["ok"], 2, "{results}");
    assert_eq!(results["failed"], 1, "{results}");
    let answers: Vec<&str> = results["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["answer"].as_str().unwrap_or_default())
        .collect();
    assert!(answers.contains(&"echo: hello"), "{results}");
    // The native line kept its own max_tokens (3 words).
    assert!(answers.contains(&"echo: one two"), "{results}");

    // The requests were kept as sent: rows in file order with their
    // request, and the failure can be retried (on Anthropic again).
    let merged = b
        .text(&format!("/api/batches/{id}/merged?format=jsonl"))
        .await;
    let rows: Vec<Value> = jsonl(&merged);
    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r["custom_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["s", "n", "bad"], "{merged}");
    assert_eq!(
        rows[0]["request"]["params"]["system"], "Be brief.",
        "{merged}"
    );
    let (status, retry) = b.call("retry_failed", &[("id", &id)]).await;
    assert_eq!(status, 200, "{retry}");
    let retry_id = retry["id"].as_str().unwrap();
    assert!(
        retry_id.starts_with("claude.msgbatch_") && retry_id != id,
        "{retry}"
    );
    assert_eq!(retry["request_counts"]["total"], 1, "{retry}");
    assert_eq!(retry["metadata"]["retry_of"], id.as_str(), "{retry}");
    // Once is enough: a second retry names the first.
    let (status, again) = b.call("retry_failed", &[("id", &id)]).await;
    assert_eq!(status, 400, "{again}");
    assert!(again.to_string().contains(retry_id), "{again}");
}

/// The second OpenAI-compatible server, without `/v1` in its URL: a batch
/// created there, its results, and a retry of its failure there; and a
/// batch cancelled on Azure.
#[tokio::test]
async fn a_server_without_v1_and_azure_create_cancel_and_retry() {
    let b = board().await;
    let broken = r#"{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[],"max_completion_tokens":5}}"#;
    let file = format!("{}\n{broken}\n", chat("a", "m"));
    let (status, created) = b.create_on("compat", file).await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("compat.batch_"), "{id}");
    let ended = b.ended(&id).await;
    assert_eq!(ended["status"], "completed", "{ended}");
    let (status, results) = b.call("batch_results", &[("id", &id)]).await;
    assert_eq!(status, 200, "{results}");
    assert_eq!(
        (results["ok"].as_u64(), results["failed"].as_u64()),
        (Some(1), Some(1)),
        "{results}"
    );
    let (status, retry) = b.call("retry_failed", &[("id", &id)]).await;
    assert_eq!(status, 200, "{retry}");
    assert!(
        retry["id"].as_str().unwrap().starts_with("compat.batch_"),
        "{retry}"
    );
    assert_eq!(retry["metadata"]["retry_of"], id.as_str(), "{retry}");

    let many: String = (0..2000)
        .map(|i| chat(&format!("m{i}"), "gpt-4o-mini-batch") + "\n")
        .collect();
    let (status, big) = b.create_on("azure", many).await;
    assert_eq!(status, 200, "{big}");
    let big_id = big["id"].as_str().unwrap().to_owned();
    let (status, cancelling) = b.call("cancel_batch", &[("id", &big_id)]).await;
    assert_eq!(status, 200, "{cancelling}");
    assert_eq!(cancelling["id"], big_id.as_str());
    let ended = b.ended(&big_id).await;
    assert_eq!(ended["status"], "cancelled", "{ended}");
    // What the cancel stopped is retried on Azure.
    let (status, retry) = b.call("retry_failed", &[("id", &big_id)]).await;
    assert_eq!(status, 200, "{retry}");
    assert!(
        retry["id"].as_str().unwrap().starts_with("azure.batch_"),
        "{retry}"
    );
    assert_eq!(retry["metadata"]["retry_of"], big_id.as_str(), "{retry}");
    let (status, results) = b.call("batch_results", &[("id", &big_id)]).await;
    assert_eq!(status, 200, "{results}");
    let unfinished = results["failed"].as_u64().unwrap() + results["not_run"].as_u64().unwrap();
    assert!(unfinished > 0, "{results}");
    // The retry holds exactly those, once Azure has counted them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, r) = b
            .call("get_batch", &[("id", retry["id"].as_str().unwrap())])
            .await;
        if let Some(total) = r["request_counts"]["total"].as_u64().filter(|t| *t > 0) {
            assert_eq!(total, unfinished, "{r}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{r}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The upstreams file is read again when it changes: an upstream added is
/// polled and can be used, one removed is gone; a file with a mistake is
/// refused and the upstreams stay as they were.
#[tokio::test]
async fn a_change_of_the_upstreams_file_takes_effect_without_a_restart() {
    let b = board().await;
    let before = b.ready_names().await;
    assert_eq!(before.len(), 5, "{before:?}");
    std::fs::write(
        &b.file,
        format!(
            "[[upstream]]\nname = \"late\"\nkind = \"openai-compatible\"\nbase_url = \"{}\"\nkey_env = \"TEST_SANDBOX_KEY\"\n",
            b.compat.base()
        ),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        // Readiness answers are reused for 5 s.
        let names = b.ready_names().await;
        if names == ["default", "late"] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{names:?}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let (status, created) = b.create_on("late", format!("{}\n", chat("a", "m"))).await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("late.batch_"), "{id}");
    assert_eq!(b.ended(&id).await["status"], "completed");
    let (status, body) = b.create_on("azure", format!("{}\n", chat("a", "m"))).await;
    assert_eq!(status, 400, "a removed upstream: {body}");

    // A mistake: refused, logged, and nothing changes.
    std::fs::write(
        &b.file,
        "[[upstream]]\nname = \"bad\"\nkind = \"bedrock\"\n",
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    assert_eq!(b.ready_names().await, ["default", "late"]);
    assert!(
        b.dash.output().contains("does not check"),
        "{}",
        b.dash.output()
    );
}

/// An upstream's configured limits apply before anything is created: its
/// windows, its requests per batch, its endpoints (configured, or the
/// kind's: Azure has no moderations), a model's enqueued tokens, Azure's
/// deployments.
#[tokio::test]
async fn each_upstream_limits_are_checked_before_anything_is_created() {
    let b = board().await;
    let lines = |n: usize, model: &str| -> String {
        (0..n)
            .map(|i| chat(&format!("r{i}"), model) + "\n")
            .collect()
    };
    let (status, body) = b.create_on("compat", lines(4, "m")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("at most 3"), "{body}");
    let (status, body) = b
        .create_with("compat", lines(2, "m"), &[("completion_window", "7d")])
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("24h, 48h"), "{body}");
    let (status, body) = b
        .create_with("compat", lines(2, "m"), &[("completion_window", "48h")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["completion_window"], "48h");
    let (status, body) = b.create_on("azure", lines(2, "gpt-4o")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("not a deployment"), "{body}");
    let embedding = r#"{"custom_id":"e","method":"POST","url":"/v1/embeddings","body":{"model":"m","input":"hi"}}"#;
    let (status, body) = b
        .create_with(
            "compat",
            format!("{embedding}\n"),
            &[("endpoint", "/v1/embeddings")],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string()
            .contains("takes /v1/chat/completions, not /v1/embeddings; nothing was created"),
        "{body}"
    );
    let moderation = r#"{"custom_id":"m","method":"POST","url":"/v1/moderations","body":{"model":"gpt-4o-mini-batch","input":"hi"}}"#;
    let (status, body) = b
        .create_with(
            "azure",
            format!("{moderation}\n"),
            &[("endpoint", "/v1/moderations")],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("not /v1/moderations"), "{body}");
    // Some 30 words: more than the 20 tokens `big` may have enqueued.
    let long = chat("long", "big").replace("hi long", &"many words here ".repeat(10));
    let (status, body) = b.create_on("compat", format!("{long}\n")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string()
            .contains("input tokens for big; the upstream compat enqueues at most 20"),
        "{body}"
    );
    // Only the one batch that passed was made; no file was left behind.
    let files: Value = reqwest::Client::new()
        .get(format!("{}/v1/files", b.compat.base()))
        .bearer_auth(KEY)
        .fetch_json()
        .await;
    assert_eq!(files["data"].as_array().unwrap().len(), 1, "{files}");
    let (status, views) = b.call("upstreams", &[]).await;
    assert_eq!(status, 200, "{views}");
    let compat = views
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "compat")
        .unwrap();
    assert_eq!(
        compat["offer"]["windows"],
        serde_json::json!(["24h", "48h"])
    );
    assert_eq!(
        compat["offer"]["endpoints"],
        serde_json::json!(["/v1/chat/completions"])
    );
    assert!(!views.to_string().contains(KEY));
}

/// OpenAI's image and video batch endpoints: checked (a prompt is
/// required), run, and read in the results table.
#[tokio::test]
async fn image_and_video_batches_run_and_read() {
    let b = board().await;
    let line = |id: &str, url: &str, body: &str| {
        format!(r#"{{"custom_id":"{id}","method":"POST","url":"{url}","body":{body}}}"#)
    };
    let no_prompt = line("x", "/v1/images/generations", r#"{"model":"gpt-image-1"}"#) + "\n";
    let (status, body) = b
        .create_with("", no_prompt, &[("endpoint", "/v1/images/generations")])
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["param"], "body.prompt", "{body}");
    for (url, body, answer) in [
        (
            "/v1/images/generations",
            r#"{"model":"gpt-image-1","prompt":"a red fox","n":2}"#,
            "[images: 2] a red fox",
        ),
        (
            "/v1/videos",
            r#"{"model":"sora-2","prompt":"waves"}"#,
            "[video video_",
        ),
    ] {
        let (status, created) = b
            .create_with("", line("a", url, body) + "\n", &[("endpoint", url)])
            .await;
        assert_eq!(status, 200, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(b.ended(&id).await["status"], "completed");
        let (status, results) = b.call("batch_results", &[("id", &id)]).await;
        assert_eq!(status, 200, "{results}");
        let got = results["rows"][0]["answer"].as_str().unwrap_or_default();
        assert!(got.starts_with(answer), "{url}: {results}");
    }
}
