//! Batchboard's OpenAI-compatible `/v1` for personal access tokens, driven
//! by the official `openai` Python SDK (tests/sdk/gateway_python.py)
//! against the real binary and sandbox; tokens made with the CLI.

use crate::common::{self, sandbox, Proc, TempDir, FAST, PASSWORD};

const KEY: &str = "sk-gateway-test-5c1";

/// `batchboard token …` on `data`; its output.
fn token(data: &std::path::Path, args: &[&str]) -> String {
    let out = common::command()
        .arg("token")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn the_official_sdk_works_through_v1_with_personal_tokens() {
    let dir = TempDir::new("gateway");
    let data = dir.0.join("data");
    common::add_user(&data, "op", "operator", PASSWORD);
    common::add_user(&data, "vi", "viewer", PASSWORD);
    common::add_user(&data, "ad", "admin", PASSWORD);
    let sb = sandbox(&dir.0.join("sb"), KEY, FAST);
    let addr = format!("127.0.0.1:{}", common::free_port());
    let mut cmd = common::serve_command(&addr, &data);
    cmd.args(["--upstream-url", &format!("{}/v1", sb.base())])
        .args(["--watch-interval-ms", "300"])
        .env("OPENAI_API_KEY", KEY);
    let dash = Proc::spawn(cmd, addr);
    // Made before the server reads them: tokens live in the database.
    let op = token(&data, &["create", "--user", "op", "--name", "script"]);
    let vi = token(&data, &["create", "--user", "vi", "--name", "notebook"]);
    let gone = token(
        &data,
        &[
            "create",
            "--user",
            "op",
            "--name",
            "old",
            "--expires-days",
            "1",
        ],
    );
    assert!(op.starts_with("bb_") && op.len() > 70, "{op}");
    // A viewer cannot make an operator's token.
    let out = common::command()
        .args([
            "token",
            "create",
            "--user",
            "vi",
            "--name",
            "x",
            "--role",
            "operator",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let id = gone
        .trim_start_matches("bb_")
        .split('_')
        .next()
        .unwrap()
        .to_owned();
    token(&data, &["revoke", &id]);
    let listed = token(&data, &["list"]);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(
        !listed.contains(&op[16..]),
        "a secret in the list: {listed}"
    );

    let script = format!("{}/tests/sdk/gateway_python.py", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new("python3")
        .arg(&script)
        .env("BB_URL", format!("{}/v1", dash.base()))
        .env("OP_TOKEN", &op)
        .env("VIEWER_TOKEN", &vi)
        .env("REVOKED_TOKEN", &gone)
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .output()
        .await
        .expect("python3 (scripts/bootstrap.sh --test installs the SDK)");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && printed.trim() == "ok",
        "{printed}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        dash.output()
    );
    // Every change was audited in the token user's name; no key or token
    // secret in the log.
    let log = dash.output();
    assert!(!log.contains(KEY) && !log.contains(&op[16..]), "{log}");
    let http = common::signed_in(&dash.base(), "op", PASSWORD).await;
    let (status, tokens) = common::server_fn(&http, &dash.base(), "list_tokens", &[]).await;
    assert_eq!(status, 200, "{tokens}");
    let tokens: serde_json::Value = serde_json::from_str(&tokens).unwrap();
    let script = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "script")
        .unwrap();
    assert!(script["last_used_at"].as_i64().is_some(), "{tokens}");
    assert_eq!(script["last_used_ip"], "127.0.0.1", "{tokens}");
    assert!(!tokens.to_string().contains(&op[16..]));
    // The audit log has the token user's uploads, creates, downloads and
    // reads, in their name.
    let admin = common::signed_in(&dash.base(), "ad", PASSWORD).await;
    let (status, log) =
        common::server_fn(&admin, &dash.base(), "audit_log", &[("limit", "200")]).await;
    assert_eq!(status, 200, "{log}");
    for action in ["create", "download", "api_read"] {
        let entry = format!(r#""actor":"op","action":"{action}""#);
        assert!(log.contains(&entry), "{entry}: {log}");
    }
}

/// Over a token's rate: 429 with `retry-after`, in OpenAI's shape.
#[tokio::test]
async fn a_token_over_its_rate_is_told_to_wait() {
    let dir = TempDir::new("gateway-rate");
    let data = dir.0.join("data");
    common::add_user(&data, "vi", "viewer", PASSWORD);
    let addr = format!("127.0.0.1:{}", common::free_port());
    let mut cmd = common::serve_command(&addr, &data);
    cmd.args(["--token-requests-per-minute", "3"]);
    let dash = Proc::spawn(cmd, addr);
    let vi = token(&data, &["create", "--user", "vi", "--name", "eager"]);
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = http
            .get(format!("{}/v1/files", dash.base()))
            .bearer_auth(&vi)
            .send()
            .await
            .unwrap();
        statuses.push((r.status().as_u16(), r.headers().get("retry-after").cloned()));
        if r.status() == 429 {
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
        }
    }
    assert_eq!(
        statuses.iter().map(|s| s.0).collect::<Vec<_>>(),
        [200, 200, 200, 429]
    );
    assert!(statuses[3].1.is_some());
    // No token at all: 401 naming what is needed.
    let r = http
        .get(format!("{}/v1/batches", dash.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("Bearer bb_"));
}

/// With several upstreams, `/v1` goes to the `Batchboard-Upstream` header's,
/// else the token's default, else the first.
#[tokio::test]
async fn a_token_has_a_default_upstream_and_the_header_overrides_it() {
    let dir = TempDir::new("gateway-upstreams");
    let data = dir.0.join("data");
    common::add_user(&data, "op", "operator", PASSWORD);
    let sb = sandbox(&dir.0.join("sb"), KEY, FAST);
    let other = sandbox(&dir.0.join("other"), KEY, FAST);
    let file = dir.0.join("upstreams.toml");
    std::fs::write(
        &file,
        format!(
            "[[upstream]]\nname = \"other\"\nkind = \"openai-compatible\"\nbase_url = \"{}/v1\"\nkey_env = \"OPENAI_API_KEY\"\n",
            other.base()
        ),
    )
    .unwrap();
    let addr = format!("127.0.0.1:{}", common::free_port());
    let mut cmd = common::serve_command(&addr, &data);
    cmd.args(["--upstream-url", &format!("{}/v1", sb.base())])
        .arg("--upstreams-file")
        .arg(&file)
        .env("OPENAI_API_KEY", KEY);
    let dash = Proc::spawn(cmd, addr);
    let first = common::create_upstream(&format!("{}/v1", sb.base()), KEY, 1).await;
    let theirs = common::create_upstream(&format!("{}/v1", other.base()), KEY, 1).await;
    let plain = token(&data, &["create", "--user", "op", "--name", "plain"]);
    let to_other = token(
        &data,
        &[
            "create",
            "--user",
            "op",
            "--name",
            "o",
            "--upstream",
            "other",
        ],
    );
    let list = |tok: String, header: Option<&'static str>| {
        let url = format!("{}/v1/batches", dash.base());
        async move {
            let mut r = reqwest::Client::new().get(url).bearer_auth(tok);
            if let Some(h) = header {
                r = r.header("batchboard-upstream", h);
            }
            let v: serde_json::Value = r.send().await.unwrap().json().await.unwrap();
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(plain.clone(), None).await, vec![first.clone()]);
    assert_eq!(
        list(to_other.clone(), None).await,
        [format!("other.{theirs}")]
    );
    assert_eq!(list(to_other, Some("default")).await, [first]);
    assert_eq!(
        list(plain, Some("other")).await,
        [format!("other.{theirs}")]
    );
}
