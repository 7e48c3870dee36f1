//! The dashboard's own HTTP surface (pages, server functions, upload and
//! download routes) in front of a real sandbox upstream: input checks, the
//! refusal of bad files before anything goes upstream, and that the key never
//! shows up in any response.

use crate::common::Fetch;
use crate::common::{sandbox, Proc, TempDir};
use serde_json::Value;

const KEY: &str = "sk-dashboard-SECRET-4d1c";

struct Setup {
    dash: Proc,
    upstream: Proc,
    http: reqwest::Client,
    _dir: TempDir,
}

async fn setup() -> Setup {
    setup_with_key(KEY).await
}

/// The dashboard with `key` on a sandbox that accepts only [`KEY`].
async fn setup_with_key(key: &str) -> Setup {
    let dir = TempDir::new("dashboard");
    crate::common::add_user(
        &dir.0.join("data"),
        "op",
        "operator",
        crate::common::PASSWORD,
    );
    let upstream = sandbox(&dir.0.join("up"), KEY, crate::common::FAST);
    let addr = format!("127.0.0.1:{}", crate::common::free_port());
    let mut cmd = crate::common::serve_command(&addr, &dir.0.join("data"));
    cmd.args(["--upstream-url", &format!("{}/v1", upstream.base())])
        .env("OPENAI_API_KEY", key);
    let dash = Proc::spawn(cmd, addr);
    let http = crate::common::signed_in(&dash.base(), "op", crate::common::PASSWORD).await;
    Setup {
        dash,
        upstream,
        http,
        _dir: dir,
    }
}

fn chat(id: &str) -> String {
    format!(
        r#"{{"custom_id":"{id}","method":"POST","url":"/v1/chat/completions","body":{{"model":"m","messages":[{{"role":"user","content":"{id}"}}]}}}}"#
    )
}

impl Setup {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.dash.base())
    }

    async fn create(&self, content: String, endpoint: &str, metadata: &str) -> (u16, Value) {
        let (status, text) = crate::common::upload(
            &self.http,
            &self.dash.base(),
            content.into_bytes(),
            endpoint,
            metadata,
        )
        .await;
        assert!(!text.contains(KEY));
        (status, serde_json::from_str(&text).unwrap())
    }

    /// How many items an upstream list route returns (read directly, with the key).
    async fn upstream_count(&self, path: &str) -> usize {
        let v: Value = self
            .http
            .get(format!("{}/v1{path}", self.upstream.base()))
            .bearer_auth(KEY)
            .fetch_json()
            .await;
        v["data"].as_array().unwrap().len()
    }

    /// Calls a server function the way the browser does (URL-encoded form).
    async fn server_fn(&self, name: &str, args: &[(&str, &str)]) -> (u16, String) {
        crate::common::server_fn(&self.http, &self.dash.base(), name, args).await
    }
}

#[tokio::test]
async fn bad_files_and_fields_are_refused_before_anything_goes_upstream() {
    let s = setup().await;
    let bad = format!("{}\n{{broken\n{}\n", chat("a"), chat("a"));
    let (status, body) = s.create(bad, "/v1/chat/completions", "{}").await;
    assert_eq!(status, 422, "{body}");
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors[0]["line"], 2);
    assert_eq!(errors[0]["code"], "invalid_json_line");
    assert_eq!(errors[1]["line"], 3);
    assert_eq!(errors[1]["code"], "duplicate_custom_id");
    assert_eq!(body["error_count"], 2);

    let good = format!("{}\n", chat("a"));
    let (status, body) = s.create(good.clone(), "/v1/embeddings", "{}").await;
    assert_eq!(status, 422, "url differing from the endpoint: {body}");
    let (status, body) = s.create(good.clone(), "/v1/nope", "{}").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().starts_with("endpoint"));
    let too_many: String = format!(
        "{{{}}}",
        (0..17)
            .map(|i| format!(r#""k{i}":"v""#))
            .collect::<Vec<_>>()
            .join(",")
    );
    let (status, body) = s
        .create(good.clone(), "/v1/chat/completions", &too_many)
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("metadata"),
        "{body}"
    );
    let (status, _) = s.create(String::new(), "/v1/chat/completions", "{}").await;
    assert_eq!(status, 422, "empty file");

    assert_eq!(
        s.upstream_count("/files").await,
        0,
        "no file reached the upstream"
    );
    assert_eq!(
        s.upstream_count("/batches?limit=100").await,
        0,
        "no batch was created"
    );

    let (status, body) = s
        .create(good, "/v1/chat/completions", r#"{"team":"x"}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metadata"]["team"], "x");
    assert_eq!(
        body["metadata"]["created_by"], "op",
        "the creator is stamped into the metadata"
    );
    assert_eq!(s.upstream_count("/batches?limit=100").await, 1);
}

#[tokio::test]
async fn server_functions_check_their_input_and_map_upstream_errors() {
    let s = setup().await;
    let (status, body) = s
        .server_fn("list_batches", &[("query[limit]", "500")])
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("limit must be between 1 and 200"), "{body}");
    let (status, body) = s.server_fn("get_batch", &[("id", "../etc")]).await;
    assert_eq!(status, 400);
    assert!(body.contains("is not a batch id"), "{body}");
    let (status, body) = s.server_fn("get_batch", &[("id", "batch_nope")]).await;
    assert_eq!(status, 404);
    assert!(
        body.contains("No batch found") && body.contains("404"),
        "{body}"
    );
    assert!(!body.contains(KEY));
}

#[tokio::test]
async fn a_walkthrough_never_shows_the_key() {
    let s = setup().await;
    let (status, created) = s
        .create(
            format!("{}\n{}\n", chat("a"), chat("b")),
            "/v1/chat/completions",
            "{}",
        )
        .await;
    assert_eq!(status, 200);
    let id = created["id"].as_str().unwrap().to_string();
    let batch = loop {
        let (_, body) = s.server_fn("get_batch", &[("id", &id)]).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["status"] == "completed" {
            break v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let out = batch["output_file_id"].as_str().unwrap();
    let mut bodies = Vec::new();
    for path in [
        "/".to_string(),
        "/batches/new".to_string(),
        format!("/batches/{id}"),
        "/readyz".into(),
        "/healthz".into(),
        "/nope".into(),
        "/login".into(),
        "/audit".into(),
    ] {
        let r = match s.http.get(s.url(&path)).send().await {
            Ok(r) => r,
            Err(e) => panic!("GET {path}: {e:?}\nserver output:\n{}", s.dash.output()),
        };
        bodies.push((path, format!("{:?}", r.headers()), r.text().await.unwrap()));
    }
    let r = s
        .http
        .get(s.url(&format!("/files/{out}/content?batch={id}&kind=output")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-disposition"],
        format!("attachment; filename=\"{id}_output.jsonl\"").as_str()
    );
    let headers = format!("{:?}", r.headers());
    let text = r.text().await.unwrap();
    assert_eq!(text.lines().count(), 2);
    bodies.push(("download".into(), headers, text));
    for (name, args) in [
        ("list_batches", vec![("query[limit]", "20")]),
        ("batch_facets", vec![]),
        ("get_batch", vec![("id", id.as_str())]),
        ("cancel_batch", vec![("id", id.as_str())]),
        ("check_upstream", vec![]),
        ("upstream_info", vec![]),
        ("whoami", vec![]),
        ("audit_log", vec![("limit", "50")]),
    ] {
        let (_, body) = s.server_fn(name, &args).await;
        bodies.push((name.to_string(), String::new(), body));
    }
    for (what, headers, body) in &bodies {
        assert!(
            !body.contains(KEY) && !headers.contains(KEY),
            "the key leaked in {what}"
        );
    }
    // Cancelling a completed batch: the upstream's 409, readable.
    assert!(bodies
        .iter()
        .any(|(w, _, b)| w == "cancel_batch" && b.contains("Cannot cancel")));
    let (status, logs) = s.dash.stop();
    assert!(status.success());
    assert!(!logs.contains(KEY), "the key leaked into the logs");
}

/// A failure of Batchboard's own disk answers 500 in the one error shape,
/// with a request id that the log holds the detail under, and nothing of
/// the detail (no path, no OS error) in the body.
#[tokio::test]
async fn a_disk_failure_answers_500_without_its_detail() {
    let s = setup().await;
    // The upload directory cannot be made: a plain file stands in its place.
    std::fs::write(s._dir.0.join("data/uploads"), b"not a directory").unwrap();
    let (status, text) = crate::common::upload(
        &s.http,
        &s.dash.base(),
        format!("{}\n", chat("a")).into_bytes(),
        "/v1/chat/completions",
        "{}",
    )
    .await;
    assert_eq!(status, 500, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["kind"], "internal", "{body}");
    assert_eq!(body["status"], 500, "{body}");
    let id = body["request_id"]
        .as_str()
        .expect("a request id")
        .to_owned();
    assert!(!id.is_empty() && id != "-", "{body}");
    for leak in ["uploads", "data", "/tmp", "exists", "directory", "os error"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
    assert_eq!(
        s.upstream_count("/files").await,
        0,
        "nothing reached the upstream"
    );
    let (_, logs) = s.dash.stop();
    assert!(
        logs.lines()
            .any(|l| l.contains(&id) && l.contains("internal error") && l.contains("os error")),
        "the log has the detail under {id}: {logs}"
    );
}

/// The New batch form sent without JavaScript (a browser asking for HTML):
/// a refusal comes back as the form with every problem and its line (once),
/// and a valid file lands on the new batch's page. Scripts still get JSON.
#[tokio::test]
async fn the_form_without_javascript_answers_pages_not_json() {
    let s = setup().await;
    let post = |content: String| {
        let form = reqwest::multipart::Form::new()
            .text("endpoint", "/v1/chat/completions")
            .text("completion_window", "24h")
            .text("metadata", "")
            .part(
                "file",
                reqwest::multipart::Part::bytes(content.into_bytes()).file_name("form.jsonl"),
            );
        s.http
            .post(s.url("/api/batches"))
            .header("accept", "text/html,application/xhtml+xml")
            .multipart(form)
            .send()
    };
    let page = |path: &'static str| s.http.get(s.url(path)).header("accept", "text/html").send();

    let bad = format!("{}\n{{broken\n{}\n", chat("a"), chat("a"));
    let r = post(bad).await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/batches/new");
    let html = page("/batches/new").await.unwrap().text().await.unwrap();
    assert!(html.contains(r#"data-testid="upload-error""#), "{html}");
    for problem in ["Line 2", "Line 3", "custom_id"] {
        assert!(html.contains(problem), "{problem} missing from the page");
    }
    // Shown once: a later visit starts clean.
    let html = page("/batches/new").await.unwrap().text().await.unwrap();
    assert!(!html.contains(r#"data-testid="upload-error""#));
    assert_eq!(s.upstream_count("/files").await, 0, "nothing went upstream");

    let r = post(format!("{}\n", chat("ok"))).await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/batches/batch_"), "{to}");
    let r = page("/").await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// The upstream's refusal of the key (its text names the key, masked, at
/// OpenAI) reaches browsers as fixed text; the original goes to the log.
#[tokio::test]
async fn a_refused_key_is_reported_without_the_upstreams_text() {
    let s = setup_with_key("sk-not-the-right-key").await;
    let (status, body) = s.server_fn("cancel_batch", &[("id", "batch_abc123")]).await;
    assert_eq!(status, 401, "{body}");
    let e: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(e["upstream_status"], 401, "{body}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("refused the API key"),
        "{body}"
    );
    assert!(!body.contains("Incorrect API key"), "{body}");
    assert!(!body.contains("sk-"), "{body}");
}
