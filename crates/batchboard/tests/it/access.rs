//! Team access over real HTTP: nothing answers without a session, roles are
//! enforced on the server, sessions survive restarts, sign-in is throttled,
//! cross-site requests are refused, proxy-header sign-in trusts only its
//! proxies, and the audit log records who did what.

use crate::common::Fetch;
use std::path::{Path, PathBuf};

use crate::common::{add_user, browser, server_fn, sign_in, signed_in, Proc, TempDir, PASSWORD};
use reqwest::multipart::{Form, Part};
use serde_json::Value;

/// `batchboard serve` on a free port with the embedded (slow) sandbox, so
/// that batches stay cancellable while a test looks at them.
fn serve(data: &Path, extra: &[&str]) -> Proc {
    serve_on(
        data,
        format!("127.0.0.1:{}", crate::common::free_port()),
        extra,
    )
}

fn serve_on(data: &Path, addr: String, extra: &[&str]) -> Proc {
    let mut cmd = crate::common::serve_command(&addr, data);
    cmd.args(["--sandbox-rps", "0.5", "--sandbox-validation-ms", "200"])
        .args(extra);
    Proc::spawn(cmd, addr)
}

fn data_dir(tag: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new(tag);
    let data = dir.0.join("data");
    (dir, data)
}

fn chat_file(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"custom_id":"r{i}","method":"POST","url":"/v1/chat/completions","body":{{"model":"m","messages":[{{"role":"user","content":"{i}"}}]}}}}"#
            ) + "\n"
        })
        .collect()
}

async fn create(http: &reqwest::Client, base: &str, n: usize) -> (u16, Value) {
    let (status, body) = crate::common::upload(
        http,
        base,
        chat_file(n).into_bytes(),
        "/v1/chat/completions",
        "",
    )
    .await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

async fn list(http: &reqwest::Client, base: &str) -> Vec<Value> {
    let (status, body) = server_fn(http, base, "list_batches", &[("query[limit]", "100")]).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["batches"].as_array().unwrap().clone()
}

#[derive(serde::Deserialize)]
struct Inventory {
    pages: Vec<String>,
    server_fns: Vec<Route>,
    routes: Vec<Route>,
    public: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Route {
    method: String,
    path: String,
}

fn inventory() -> Inventory {
    let out = crate::common::command().arg("routes").output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn is_public(inv: &Inventory, path: &str) -> bool {
    inv.public
        .iter()
        .any(|p| path == p || (p.ends_with('/') && path.starts_with(p.as_str())))
}

#[tokio::test]
async fn every_route_and_server_function_refuses_a_request_without_a_session() {
    let (_d, data) = data_dir("routes");
    add_user(&data, "op", "operator", PASSWORD);
    let server = serve(&data, &[]);
    let base = server.base();
    let inv = inventory();
    // The inventory is the real one: it has what the app is known to serve.
    let fns: Vec<&str> = inv.server_fns.iter().map(|r| r.path.as_str()).collect();
    for f in [
        "/api/list_batches",
        "/api/get_batch",
        "/api/cancel_batch",
        "/api/audit_log",
        "/api/whoami",
    ] {
        assert!(fns.contains(&f), "{f} missing from {fns:?}");
    }
    assert!(
        inv.pages.iter().any(|p| p == "/batches/{id}"),
        "{:?}",
        inv.pages
    );
    assert!(inv.routes.len() >= 5);

    let anon = browser(&base);
    let mut checked = 0;
    // Pages: a browser is sent to the sign-in page, anything else gets 401.
    for page in &inv.pages {
        let path = page.replace("{id}", "batch_x");
        if is_public(&inv, &path) {
            continue;
        }
        let r = anon
            .get(format!("{base}{path}"))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "{path}");
        let to = r.headers()["location"].to_str().unwrap();
        assert!(to.starts_with("/login?next="), "{path} -> {to}");
        let r = anon.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path} without text/html");
        checked += 1;
    }
    for f in inv.server_fns.iter().chain(&inv.routes) {
        let path = f.path.replace("{id}", "file-x");
        if is_public(&inv, &path) {
            continue;
        }
        let method = reqwest::Method::from_bytes(f.method.as_bytes()).unwrap();
        let r = anon
            .request(method, format!("{base}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("id=batch_x&limit=10")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(status, 401, "{} {path}: {body}", f.method);
        // `/v1` is for scripts: it asks for a token instead.
        let asks = if path.starts_with("/v1/") {
            "Bearer bb_"
        } else {
            "Sign in first"
        };
        assert!(body.contains(asks), "{path}: {body}");
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} routes checked");
    // The public ones answer.
    for path in ["/healthz", "/readyz", "/login"] {
        let r = anon.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    let (status, body) = server_fn(&anon, &base, "whoami", &[]).await;
    assert_eq!((status, body.as_str()), (200, "null"));
    // Unknown paths are refused too, before any 404 could say what exists.
    let r = anon
        .get(format!("{base}/secret-thing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn a_viewer_sees_and_downloads_but_cannot_create_or_cancel() {
    let (_d, data) = data_dir("viewer");
    add_user(&data, "op", "operator", PASSWORD);
    add_user(&data, "vi", "viewer", PASSWORD);
    let server = serve(&data, &[]);
    let base = server.base();
    let op = signed_in(&base, "op", PASSWORD).await;
    let vi = signed_in(&base, "vi", PASSWORD).await;

    let (status, batch) = create(&op, &base, 50).await;
    assert_eq!(status, 200, "{batch}");
    let id = batch["id"].as_str().unwrap().to_string();
    assert_eq!(batch["metadata"]["created_by"], "op");

    let (status, body) = create(&vi, &base, 2).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("viewer"),
        "{body}"
    );
    let (status, body) = server_fn(&vi, &base, "cancel_batch", &[("id", &id)]).await;
    assert_eq!(status, 403, "{body}");

    // Nothing changed upstream: one batch, still running.
    let batches = list(&vi, &base).await;
    assert_eq!(batches.len(), 1);
    assert!(
        matches!(
            batches[0]["status"].as_str(),
            Some("validating" | "in_progress")
        ),
        "{}",
        batches[0]
    );
    // The viewer may read the batch and download its input.
    let (status, b) = server_fn(&vi, &base, "get_batch", &[("id", &id)]).await;
    assert_eq!(status, 200, "{b}");
    let input = batch["input_file_id"].as_str().unwrap();
    let r = vi
        .get(format!("{base}/files/{input}/content?batch={id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["content-disposition"],
        format!("attachment; filename=\"{id}_input.jsonl\"").as_str()
    );
    assert_eq!(r.text().await.unwrap().lines().count(), 50);
    // Not a file of this batch, or no batch at all: refused, whatever the
    // key could read upstream.
    for url in [
        format!("{base}/files/{input}/content"),
        format!("{base}/files/file-0123456789abcdef/content?batch={id}"),
        format!("{base}/files/{input}/content?batch=batch_0123456789abcdef"),
    ] {
        let r = vi.get(&url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403, "{url}");
    }
    // The audit log is for admins only.
    let (status, _) = server_fn(&op, &base, "audit_log", &[("limit", "10")]).await;
    assert_eq!(status, 403);
    // The operator may cancel.
    let (status, body) = server_fn(&op, &base, "cancel_batch", &[("id", &id)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("cancelling") || body.contains("cancelled"),
        "{body}"
    );
    // The table page shows who created it.
    let page = vi
        .get(format!("{base}/"))
        .header("accept", "text/html")
        .fetch_text()
        .await;
    assert!(page.contains(r#"data-testid="created-by">op<"#), "{page}");
}

#[tokio::test]
async fn sign_in_survives_a_restart_and_sign_out_ends_it() {
    let (_d, data) = data_dir("restart");
    add_user(&data, "op", "operator", PASSWORD);
    let server = serve(&data, &[]);
    let base = server.base();
    let http = browser(&base);
    // Rotated at sign-in: a second sign-in gets a new session id.
    sign_in(&http, &base, "op", PASSWORD).await;
    let r = http
        .post(format!("{base}/auth/login"))
        .form(&[("username", "op"), ("password", PASSWORD), ("next", "/x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/x");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("batchboard_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP: no Secure flag: {cookie}"
    );

    let (status, me) = server_fn(&http, &base, "whoami", &[]).await;
    assert_eq!(status, 200);
    assert!(me.contains(r#""name":"op""#), "{me}");
    let addr = server.addr.clone();
    let (status, _) = server.stop();
    assert!(status.success());

    // Same data directory and address, new process: still signed in.
    let server = serve_on(&data, addr, &[]);
    let base = server.base();
    let (status, me) = server_fn(&http, &base, "whoami", &[]).await;
    assert_eq!(status, 200);
    assert!(me.contains(r#""role":"operator""#), "still signed in: {me}");
    assert_eq!(list(&http, &base).await.len(), 0);

    // A role change applies to open sessions at once.
    let out = crate::common::command()
        .args(["user", "set-role", "op", "viewer", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let (_, me) = server_fn(&http, &base, "whoami", &[]).await;
    assert!(me.contains(r#""role":"viewer""#), "role read afresh: {me}");

    // Sign out: the session is gone, on this server and any other.
    let r = http
        .post(format!("{base}/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let (status, me) = server_fn(&http, &base, "whoami", &[]).await;
    assert_eq!((status, me.as_str()), (200, "null"));
}

#[tokio::test]
async fn a_removed_account_is_signed_out() {
    let (_d, data) = data_dir("removed");
    add_user(&data, "gone", "operator", PASSWORD);
    let server = serve(&data, &[]);
    let base = server.base();
    let http = signed_in(&base, "gone", PASSWORD).await;
    assert_eq!(list(&http, &base).await.len(), 0);
    let out = crate::common::command()
        .args(["user", "remove", "gone", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let (status, _) = server_fn(&http, &base, "list_batches", &[("query[limit]", "10")]).await;
    assert_eq!(status, 401);
}

/// An open event stream ends within seconds once its account is removed:
/// the role is not only checked when the stream opens. One user may hold
/// at most 20 streams.
#[tokio::test]
async fn streams_end_with_their_account_and_are_limited_per_user() {
    let (_d, data) = data_dir("removed-stream");
    add_user(&data, "gone", "operator", PASSWORD);
    add_user(&data, "many", "viewer", PASSWORD);
    let server = serve(&data, &[]);
    let base = server.base();
    let http = signed_in(&base, "gone", PASSWORD).await;
    let mut events = crate::common::Events::open(&http, &base).await;
    assert_eq!(events.next().await.0, "status");
    let out = crate::common::command()
        .args(["user", "remove", "gone", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        events.ends_within(std::time::Duration::from_secs(12)).await,
        "a removed account's stream is still open"
    );

    let many = signed_in(&base, "many", PASSWORD).await;
    let mut open = Vec::new();
    for _ in 0..20 {
        open.push(crate::common::Events::open(&many, &base).await);
    }
    let r = many.get(format!("{base}/events")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503, "the 21st stream of one user");
    drop(open);
}

#[tokio::test]
async fn repeated_failures_throttle_sign_in() {
    let (_d, data) = data_dir("throttle");
    add_user(&data, "op", "operator", PASSWORD);
    add_user(&data, "other", "viewer", PASSWORD);
    let server = serve(&data, &["--login-attempts", "3"]);
    let base = server.base();
    let http = browser(&base);
    for _ in 0..3 {
        let to = sign_in(&http, &base, "op", "wrong-password-123").await;
        assert!(to.starts_with("/login?error=invalid"), "{to}");
    }
    // Now even the right password is refused for a while.
    let to = sign_in(&http, &base, "op", PASSWORD).await;
    assert!(to.starts_with("/login?error=throttled"), "{to}");
    assert!(to.contains("retry_after="), "{to}");
    let (_, me) = server_fn(&http, &base, "whoami", &[]).await;
    assert_eq!(me, "null");
    // Another account from the same address is not locked by op's failures…
    assert_eq!(sign_in(&http, &base, "other", PASSWORD).await, "/");
    // …until the address itself has failed too often (4× the account limit).
    for i in 0..12 {
        sign_in(&http, &base, &format!("guess{i}"), "nope-nope-nope").await;
    }
    let to = sign_in(&browser(&base), &base, "other", PASSWORD).await;
    assert!(to.starts_with("/login?error=throttled"), "{to}");
}

#[tokio::test]
async fn cross_origin_posts_are_refused_and_change_nothing() {
    let (_d, data) = data_dir("csrf");
    add_user(&data, "op", "operator", PASSWORD);
    let server = serve(&data, &[]);
    let base = server.base();
    let op = signed_in(&base, "op", PASSWORD).await;
    let (status, batch) = create(&op, &base, 50).await;
    assert_eq!(status, 200);
    let id = batch["id"].as_str().unwrap().to_string();

    // The same session cookie, sent by a page of another site.
    let evil_form = Form::new().text("endpoint", "/v1/chat/completions").part(
        "file",
        Part::bytes(chat_file(1).into_bytes()).file_name("x.jsonl"),
    );
    let r = op
        .post(format!("{base}/api/batches"))
        .header("origin", "http://evil.example")
        .multipart(evil_form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("Cross-site"));
    let r = op
        .post(format!("{base}/api/cancel_batch"))
        .header("origin", "http://evil.example")
        .form(&[("id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // Neither Origin nor Referer: refused as well.
    let bare = reqwest::Client::new();
    let r = bare
        .post(format!("{base}/auth/login"))
        .form(&[("username", "op"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    let batches = list(&op, &base).await;
    assert_eq!(batches.len(), 1, "no batch was created");
    assert!(
        matches!(
            batches[0]["status"].as_str(),
            Some("validating" | "in_progress")
        ),
        "not cancelled: {}",
        batches[0]
    );
}

#[tokio::test]
async fn the_audit_log_records_who_did_what_for_admins() {
    let (_d, data) = data_dir("audit");
    add_user(&data, "boss", "admin", PASSWORD);
    add_user(&data, "op", "operator", PASSWORD);
    add_user(&data, "vi", "viewer", PASSWORD);
    let server = serve(&data, &[]);
    let base = server.base();
    let op = signed_in(&base, "op", PASSWORD).await;
    sign_in(&browser(&base), &base, "op", "not-the-password").await;
    let (_, batch) = create(&op, &base, 20).await;
    let id = batch["id"].as_str().unwrap().to_string();
    let input = batch["input_file_id"].as_str().unwrap().to_string();
    let (status, _) = server_fn(&op, &base, "cancel_batch", &[("id", &id)]).await;
    assert_eq!(status, 200);
    let vi = signed_in(&base, "vi", PASSWORD).await;
    let r = vi
        .get(format!(
            "{base}/files/{input}/content?batch={id}&kind=input"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (status, _) = server_fn(&vi, &base, "cancel_batch", &[("id", &id)]).await;
    assert_eq!(status, 403);

    let boss = signed_in(&base, "boss", PASSWORD).await;
    let (status, body) = server_fn(&boss, &base, "audit_log", &[("limit", "100")]).await;
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    let entries = page["entries"].as_array().unwrap();
    let has = |actor: &str, action: &str, target: Option<&str>| {
        entries.iter().any(|e| {
            e["actor"] == actor
                && e["action"] == action
                && target.is_none_or(|t| e["target"] == t)
                && e["ip"] == "127.0.0.1"
        })
    };
    assert!(has("op", "sign_in", None), "{body}");
    assert!(has("op", "sign_in_failed", None), "{body}");
    assert!(has("op", "create", Some(&id)), "{body}");
    assert!(has("op", "cancel", Some(&id)), "{body}");
    // A download names its batch, and the file in the detail.
    assert!(has("vi", "download", Some(&id)), "{body}");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "download"
                && e["detail"] == format!("input file {input}").as_str()),
        "{body}"
    );
    assert!(has("vi", "denied", Some("/api/cancel_batch")), "{body}");
    assert!(has("boss", "sign_in", None), "{body}");
    // Newest first, filterable by action.
    assert!(entries[0]["id"].as_i64() > entries[1]["id"].as_i64());
    let (_, body) = server_fn(
        &boss,
        &base,
        "audit_log",
        &[("limit", "100"), ("action", "create")],
    )
    .await;
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["entries"].as_array().unwrap().len(), 1, "{body}");
    // The admin page renders it.
    let html = boss
        .get(format!("{base}/audit"))
        .header("accept", "text/html")
        .fetch_text()
        .await;
    assert!(html.contains(r#"data-action="create""#), "{html}");
    // And refuses anyone else with 403.
    let r = op
        .get(format!("{base}/audit"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

#[tokio::test]
async fn proxy_header_sign_in_trusts_only_its_proxies() {
    let (_d, data) = data_dir("proxy");
    // Listed people get their role; others the default (viewer).
    add_user(&data, "lead@example.com", "operator", PASSWORD);
    let server = serve(&data, &["--auth", "proxy"]);
    let base = server.base();
    let http = browser(&base);
    let as_user = |email: &'static str| {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("x-forwarded-email", email.parse().unwrap());
        h
    };
    let (status, me) = {
        let r = http
            .post(format!("{base}/api/whoami"))
            .headers(as_user("Lead@Example.com"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(status, 200);
    assert!(
        me.contains(r#""name":"lead@example.com","role":"operator""#),
        "{me}"
    );
    // Named twice (the client's own header passed on beside the proxy's):
    // nobody.
    let mut twice = as_user("lead@example.com");
    twice.append("x-forwarded-email", "boss@example.com".parse().unwrap());
    let r = http
        .post(format!("{base}/api/whoami"))
        .headers(twice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "null");
    let form = || {
        Form::new().text("endpoint", "/v1/chat/completions").part(
            "file",
            Part::bytes(chat_file(2).into_bytes()).file_name("p.jsonl"),
        )
    };
    let r = http
        .post(format!("{base}/api/batches"))
        .headers(as_user("lead@example.com"))
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["metadata"]["created_by"], "lead@example.com");
    let r = http
        .post(format!("{base}/api/batches"))
        .headers(as_user("someone@example.com"))
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "default role is viewer");
    // No header: no user. The password form is not used in this mode.
    let r = http
        .post(format!("{base}/api/list_batches"))
        .form(&[("query[limit]", "5")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    drop(server);

    // When loopback is not a trusted proxy, the header means nothing.
    let server = serve(
        &data,
        &["--auth", "proxy", "--trusted-proxies", "10.0.0.0/8"],
    );
    let base = server.base();
    let r = browser(&base)
        .post(format!("{base}/api/list_batches"))
        .headers(as_user("lead@example.com"))
        .form(&[("query[limit]", "5")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn secure_cookie_behind_a_tls_proxy_and_first_run_admin() {
    let (_d, data) = data_dir("first");
    let server = serve(&data, &[]);
    let (status, logs) = server.stop();
    assert!(status.success());
    assert!(logs.contains("created user 'admin'"), "{logs}");
    // The password is in a private file, never in the log.
    let pw_file = data.join("initial-admin-password");
    let password = std::fs::read_to_string(&pw_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(password.len() >= 20);
    assert!(!logs.contains(&password));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&pw_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "readable by the owner only");
    }
    let listed = crate::common::command()
        .args(["user", "list", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        "admin\tadmin\tpassword"
    );
    let server = serve(&data, &[]);
    let base = server.base();
    // Through a TLS-terminating proxy on loopback (trusted by default).
    let http = browser(&base);
    let r = http
        .post(format!("{base}/auth/login"))
        .header("x-forwarded-proto", "https")
        .form(&[("username", "admin"), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/");
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // (A Secure cookie is not sent back over plain HTTP: sign in directly.)
    let http = signed_in(&base, "admin", &password).await;
    // The admin sees the dashboard, the sandbox upstream, the audit link.
    let page = http
        .get(format!("{base}/"))
        .header("accept", "text/html")
        .fetch_text()
        .await;
    assert!(
        page.contains("Sandbox") && page.contains("Audit log"),
        "{page}"
    );
}

/// A signed-out browser stops receiving changes: signing out ends the
/// session's open event streams (and only that session's).
#[tokio::test]
async fn signing_out_ends_that_sessions_event_streams() {
    let (_dir, data) = data_dir("signout-stream");
    add_user(&data, "op", "operator", PASSWORD);
    let server = serve(&data, &[]);
    let base = server.base();
    let leaving = signed_in(&base, "op", PASSWORD).await;
    let staying = signed_in(&base, "op", PASSWORD).await;
    let mut gone = crate::common::Events::open(&leaving, &base).await;
    let mut kept = crate::common::Events::open(&staying, &base).await;
    assert_eq!(gone.next().await.0, "status");
    assert_eq!(kept.next().await.0, "status");
    let r = leaving
        .post(format!("{base}/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(
        gone.ends_within(std::time::Duration::from_secs(5)).await,
        "the signed-out session's stream is still open"
    );
    assert!(
        !kept
            .ends_within(std::time::Duration::from_millis(500))
            .await,
        "another session's stream ended too"
    );
    // And it cannot open a new one.
    let r = leaving.get(format!("{base}/events")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

/// After signing in, the browser goes back only to a path of this site: a
/// tab, newline or backslash in `next` (which browsers drop or read as `/`,
/// making `//evil.example`, another host) sends it to the table instead,
/// and a newline no longer breaks the redirect.
#[tokio::test]
async fn sign_in_never_redirects_to_another_site() {
    let (_dir, data) = data_dir("open-redirect");
    add_user(&data, "op", "operator", PASSWORD);
    let server = serve(&data, &[]);
    let base = server.base();
    for next in [
        "/\t/evil.example",
        "/\n/evil.example",
        "/\\evil.example",
        "//evil.example",
    ] {
        let http = browser(&base);
        let r = http
            .post(format!("{base}/auth/login"))
            .form(&[("username", "op"), ("password", PASSWORD), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "{next:?}");
        assert_eq!(r.headers()["location"], "/", "{next:?}");
        // Signed in already, the sign-in page sends it on: to the table.
        let r = http
            .get(format!("{base}/login"))
            .query(&[("next", next)])
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        let to = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(to.as_deref(), Some("/"), "{next:?}");
    }
}

/// A sign-in with a name longer than any account's is refused before it
/// writes to the audit log: strangers cannot grow it with long names.
#[tokio::test]
async fn overlong_names_are_refused_before_the_audit_log() {
    let (_d, data) = data_dir("long-name");
    add_user(&data, "boss", "admin", PASSWORD);
    let server = serve(&data, &[]);
    let base = server.base();
    let long = "a".repeat(10_000);
    let to = sign_in(&browser(&base), &base, &long, "whatever-password").await;
    assert!(to.starts_with("/login?error=invalid"), "{to}");
    let boss = signed_in(&base, "boss", PASSWORD).await;
    let (status, body) = server_fn(&boss, &base, "audit_log", &[("limit", "100")]).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !body.contains(&long[..200]),
        "the long name reached the audit log"
    );
}

/// Attempts refused by the throttle are not each written to the audit log
/// (strangers could grow it without bound): the first of a window is, then
/// every 100th with its count.
#[tokio::test]
async fn throttled_attempts_are_audited_once_per_window() {
    let (_d, data) = data_dir("throttle-audit");
    add_user(&data, "op", "operator", PASSWORD);
    add_user(&data, "boss", "admin", PASSWORD);
    let server = serve(&data, &["--login-attempts", "2"]);
    let base = server.base();
    let http = browser(&base);
    for _ in 0..2 {
        sign_in(&http, &base, "op", "wrong-password-123").await;
    }
    for _ in 0..30 {
        let to = sign_in(&http, &base, "op", "wrong-password-123").await;
        assert!(to.starts_with("/login?error=throttled"), "{to}");
    }
    let boss = signed_in(&base, "boss", PASSWORD).await;
    let (status, body) = server_fn(&boss, &base, "audit_log", &[("limit", "500")]).await;
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    let throttled = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("throttled"))
        })
        .count();
    assert_eq!(throttled, 1, "{body}");
}

/// Guesses sent all at once are throttled like guesses in a row: no more
/// than the limit get their password checked. And a stranger's failures
/// lock the account only from the stranger's address (here through a
/// trusted proxy's X-Forwarded-For): its owner elsewhere still signs in.
#[tokio::test]
async fn the_throttle_holds_under_concurrent_guesses_and_per_source() {
    let (_d, data) = data_dir("throttle-race");
    add_user(&data, "op", "operator", PASSWORD);
    let server = serve(
        &data,
        &["--login-attempts", "3", "--trusted-proxies", "127.0.0.1/32"],
    );
    let base = server.base();
    let from = |ip: &'static str| {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("x-forwarded-for", ip.parse().unwrap());
        h.insert("origin", base.parse().unwrap());
        reqwest::Client::builder()
            .default_headers(h)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    };
    let stranger = from("10.0.0.66");
    let guesses = (0..20).map(|i| {
        let (http, base) = (stranger.clone(), base.clone());
        async move {
            let r = http
                .post(format!("{base}/auth/login"))
                .form(&[
                    ("username", "op"),
                    ("password", &format!("guess-{i}-wrong")[..]),
                    ("next", "/"),
                ])
                .send()
                .await
                .unwrap();
            r.headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_else(|| r.status().to_string())
        }
    });
    let answers = futures_util::future::join_all(guesses).await;
    let checked = answers
        .iter()
        .filter(|a| a.starts_with("/login?error=invalid"))
        .count();
    assert!(
        checked <= 3,
        "{checked} of 20 concurrent guesses were checked: {answers:?}"
    );
    // Locked for the stranger…
    let to = sign_in(&stranger, &base, "op", PASSWORD).await;
    assert!(to.starts_with("/login?error=throttled"), "{to}");
    // …not for its owner at another address.
    let owner = from("10.0.0.7");
    assert_eq!(sign_in(&owner, &base, "op", PASSWORD).await, "/");
}

/// A new password, the account removed and added again, or `batchboard
/// user revoke` ends the sessions signed in before: each session remembers
/// the credential it was signed in with.
#[tokio::test]
async fn a_new_password_or_a_new_account_of_the_same_name_ends_old_sessions() {
    use std::io::Write;
    let (_d, data) = data_dir("credential");
    add_user(&data, "op", "operator", PASSWORD);
    add_user(&data, "vi", "viewer", PASSWORD);
    let server = serve(&data, &[]);
    let base = server.base();
    let op = signed_in(&base, "op", PASSWORD).await;
    let vi = signed_in(&base, "vi", PASSWORD).await;
    assert_eq!(list(&op, &base).await.len(), 0);

    let mut child = crate::common::command()
        .args(["user", "passwd", "op", "--password-stdin", "--data-dir"])
        .arg(&data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a-brand-new-password-42\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let (status, _) = server_fn(&op, &base, "list_batches", &[("query[limit]", "10")]).await;
    assert_eq!(status, 401, "a session from before the new password");
    // The new password signs in.
    signed_in(&base, "op", "a-brand-new-password-42").await;

    // Removed and added again with the same password: a new account.
    let out = crate::common::command()
        .args(["user", "remove", "vi", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    add_user(&data, "vi", "viewer", PASSWORD);
    let (status, _) = server_fn(&vi, &base, "list_batches", &[("query[limit]", "10")]).await;
    assert_eq!(status, 401, "a session of the removed account");

    // `batchboard user revoke`: every session of the account ends, the
    // password stays.
    let a = signed_in(&base, "vi", PASSWORD).await;
    let b = signed_in(&base, "vi", PASSWORD).await;
    let out = crate::common::command()
        .args(["user", "revoke", "vi", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    for s in [&a, &b] {
        let (status, _) = server_fn(s, &base, "list_batches", &[("query[limit]", "10")]).await;
        assert_eq!(status, 401, "a session from before the revocation");
    }
    signed_in(&base, "vi", PASSWORD).await;
}

#[tokio::test]
async fn admins_see_every_session_and_end_one_and_the_cli_lists_them() {
    let (_d, data) = data_dir("sessions");
    add_user(&data, "boss", "admin", PASSWORD);
    add_user(&data, "vi", "viewer", PASSWORD);
    let server = serve(&data, &[]);
    let base = server.base();
    let boss = signed_in(&base, "boss", PASSWORD).await;
    let vi_a = signed_in(&base, "vi", PASSWORD).await;
    // vi's second session, with its cookie in hand.
    let cookie = crate::common::session_cookie(&base, "vi").await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("cookie", cookie.parse().unwrap());
    headers.insert("origin", base.parse().unwrap());
    let vi_b = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();

    // Only admins may look.
    let (status, _) = server_fn(&vi_a, &base, "sessions", &[]).await;
    assert_eq!(status, 403);
    let (status, body) = server_fn(&boss, &base, "sessions", &[]).await;
    assert_eq!(status, 200, "{body}");
    let list: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(list.len(), 3, "{body}");
    let mine: Vec<&Value> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(mine.len(), 1, "{body}");
    assert_eq!(mine[0]["user"], "boss");
    for s in &list {
        assert_eq!(s["address"], "127.0.0.1", "{body}");
        assert!(s["started_at"].as_i64().unwrap() > 0);
        assert!(s["last_seen_at"].as_i64().unwrap() >= s["started_at"].as_i64().unwrap());
        // A handle, never the session's id (the cookie's value).
        let handle = s["handle"].as_str().unwrap();
        assert_eq!(handle.len(), 32, "{body}");
        let id = cookie.split_once('=').unwrap().1;
        assert!(!body.contains(id), "{body}");
    }

    // The CLI lists the same two sessions of vi.
    let out = crate::common::run_ok(
        crate::common::command()
            .args(["user", "sessions", "vi", "--data-dir"])
            .arg(&data),
    );
    assert!(out.starts_with("2 session(s) of vi"), "{out}");
    assert_eq!(out.matches("from 127.0.0.1").count(), 2, "{out}");

    // Ending one of vi's sessions signs that one out at its next request,
    // and only that one; the audit log says who ended whose.
    let (_, before) = server_fn(&vi_a, &base, "whoami", &[]).await;
    assert!(before.contains("\"vi\""), "{before}");
    let victim = list
        .iter()
        .filter(|s| s["user"] == "vi")
        .map(|s| s["handle"].as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    // Which of vi's two sessions is which: end the first listed, then
    // exactly one of the two clients is signed out.
    let (status, body) = server_fn(&boss, &base, "end_session", &[("handle", &victim[0])]).await;
    assert_eq!(status, 200, "{body}");
    let mut signed_out = 0;
    for c in [&vi_a, &vi_b] {
        let (status, _) = server_fn(c, &base, "list_batches", &[("query[limit]", "10")]).await;
        if status == 401 {
            signed_out += 1;
        } else {
            assert_eq!(status, 200);
        }
    }
    assert_eq!(signed_out, 1);
    let (status, body) = server_fn(&boss, &base, "end_session", &[("handle", &victim[0])]).await;
    assert_eq!(status, 400, "ended already: {body}");
    let (_, body) = server_fn(&boss, &base, "sessions", &[]).await;
    let list: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(list.len(), 2, "{body}");
    let (_, audit) = server_fn(
        &boss,
        &base,
        "audit_log",
        &[("action", "end_session"), ("limit", "10")],
    )
    .await;
    assert!(
        audit.contains("\"actor\":\"boss\"") && audit.contains("\"target\":\"vi\""),
        "{audit}"
    );
}

#[tokio::test]
async fn downloads_started_by_another_site_are_refused_and_request_ids_are_plain() {
    let (_d, data) = data_dir("cross-site-download");
    add_user(&data, "op", "operator", PASSWORD);
    let server = serve(&data, &[]);
    let base = server.base();
    let op = signed_in(&base, "op", PASSWORD).await;
    let (status, batch) = create(&op, &base, 3).await;
    assert_eq!(status, 200, "{batch}");
    let id = batch["id"].as_str().unwrap();
    let file = batch["input_file_id"].as_str().unwrap();
    let url = format!("{base}/files/{file}/content?batch={id}");
    // A link on another site, followed with the viewer's cookie.
    let r = op
        .get(&url)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = op
        .get(format!("{base}/api/batches/{id}/merged?format=csv"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // From our own pages (or a script without the header): served.
    for site in ["same-origin", "none"] {
        let r = op
            .get(&url)
            .header("sec-fetch-site", site)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{site}");
    }

    // A client's request id is echoed only when it is a plain id.
    let r = op
        .get(format!("{base}/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = op
        .get(format!("{base}/healthz"))
        .header("x-request-id", "evil\u{7f}id <script>")
        .send()
        .await;
    // reqwest refuses some header bytes itself; what it sends is replaced.
    if let Ok(r) = r {
        let echoed = r.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_ne!(echoed, "evil\u{7f}id <script>");
        assert!(!echoed.contains(' '), "{echoed}");
    }
    let r = op
        .get(format!("{base}/healthz"))
        .header("x-request-id", "a".repeat(200))
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"].to_str().unwrap().len(), 200);
}

#[tokio::test]
async fn an_upload_forms_text_fields_are_small() {
    let (_d, data) = data_dir("form-text");
    add_user(&data, "op", "operator", PASSWORD);
    let server = serve(&data, &[]);
    let base = server.base();
    let op = signed_in(&base, "op", PASSWORD).await;
    let huge = format!("{{\"k\":\"{}\"}}", "x".repeat(100 * 1024));
    let (status, body) = crate::common::upload(
        &op,
        &base,
        chat_file(1).into_bytes(),
        "/v1/chat/completions",
        &huge,
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(list(&op, &base).await.is_empty(), "nothing created");
}
