//! The `batchboard` binary as a user runs it: command line, configuration
//! errors, health endpoints, the upstream headers, and shutdown.
#![cfg(feature = "ssr")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_batchboard");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .env_remove("BATCHBOARD_UPSTREAM_URL")
        .output()
        .expect("run batchboard")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    base: String,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "batchboard-test-{tag}-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn start(envs: &[(&str, &str)], extra: &[&str]) -> Server {
    let dir = tempdir::Dir::new("serve");
    let site = dir.0.join("site");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--addr", &addr, "--data-dir"])
        .arg(dir.0.join("data"))
        .arg("--site-root")
        .arg(&site)
        .args(extra)
        .env_remove("OPENAI_API_KEY")
        .env_remove("BATCHBOARD_UPSTREAM_URL")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn batchboard");
    let base = format!("http://{addr}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server {
        child,
        base,
        _dir: dir,
    }
}

impl Server {
    /// Stops the server with SIGTERM and returns its exit status and logs.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut logs = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut logs).unwrap();
        }
        if let Some(mut o) = self.child.stdout.take() {
            o.read_to_string(&mut logs).unwrap();
        }
        (status, logs)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[test]
fn help_documents_every_option_with_its_env_var() {
    let top = run(&["--help"]);
    assert!(top.status.success());
    let top = String::from_utf8(top.stdout).unwrap();
    assert!(top.contains("serve"), "{top}");
    let out = run(&["serve", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for (flag, env) in [
        ("--addr", "BATCHBOARD_ADDR"),
        ("--upstream-url", "BATCHBOARD_UPSTREAM_URL"),
        ("--api-key", "OPENAI_API_KEY"),
        ("--organization", "OPENAI_ORG_ID"),
        ("--project", "OPENAI_PROJECT_ID"),
        ("--data-dir", "BATCHBOARD_DATA_DIR"),
        ("--site-root", "LEPTOS_SITE_ROOT"),
        ("--log-format", "BATCHBOARD_LOG_FORMAT"),
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
        assert!(
            help.contains(&format!("env: {env}")),
            "{env} missing from:\n{help}"
        );
    }
}

#[test]
fn help_never_shows_the_key_from_the_environment() {
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .env("OPENAI_API_KEY", "sk-help-should-hide-this")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("sk-help-should-hide-this"), "{text}");
}

/// Bad configuration: a non-zero exit and one line that names the option.
fn assert_config_error(args: &[&str], option: &str) {
    let out = run(args);
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "one line expected for {args:?}, got:\n{err}"
    );
    assert!(
        lines[0].contains(option),
        "{option} not named in: {}",
        lines[0]
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_configuration_exits_with_one_line_naming_the_option() {
    assert_config_error(&["serve", "--addr", "not-an-address"], "--addr");
    assert_config_error(&["--addr", "127.0.0.1:99999"], "--addr");
    assert_config_error(
        &["serve", "--upstream-url", "ftp://example.com/v1"],
        "--upstream-url",
    );
    assert_config_error(&["serve", "--upstream-url", "::nonsense"], "--upstream-url");
    assert_config_error(
        &["serve", "--data-dir", "/etc/passwd/cannot-be-a-dir"],
        "--data-dir",
    );
    assert_config_error(&["serve", "--log-format", "xml"], "--log-format");
    let dir = tempdir::Dir::new("site");
    let missing = dir.0.join("nope");
    assert_config_error(
        &[
            "serve",
            "--data-dir",
            dir.0.to_str().unwrap(),
            "--site-root",
            missing.to_str().unwrap(),
        ],
        "--site-root",
    );
}

fn get(url: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::get(url).await.expect("request");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    })
}

#[test]
fn health_and_readiness_without_an_upstream() {
    let server = start(&[], &[]);
    let (code, body) = get(&format!("{}/healthz", server.base));
    assert_eq!(code, 200);
    assert_eq!(body, r#"{"status":"ok"}"#);
    let (code, body) = get(&format!("{}/readyz", server.base));
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("No upstream configured"), "{body}");
    let (status, logs) = server.stop();
    assert!(status.success(), "exit {status:?}\n{logs}");
    assert!(logs.contains("batchboard stopped"), "{logs}");
    // Structured request logs: method, path and status of each request.
    assert!(
        logs.contains("/readyz") && logs.contains("status=503"),
        "{logs}"
    );
}

/// A one-shot HTTP listener standing in for a provider on loopback, recording
/// the request head it receives. (The real sandbox upstream replaces this once
/// it exists.)
fn capture_one_request(status_line: &'static str) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let body = r#"{"object":"list","data":[],"has_more":false}"#;
            let _ = write!(
                stream,
                "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tx.send(head);
        }
    });
    (url, rx)
}

#[test]
fn readiness_asks_the_upstream_with_the_key_but_never_shows_it() {
    let key = "sk-test-NEVER-SHOW-7f3a9";
    let (url, rx) = capture_one_request("HTTP/1.1 200 OK");
    let server = start(
        &[("OPENAI_API_KEY", key), ("OPENAI_ORG_ID", "org-123")],
        &["--upstream-url", &url, "--project", "proj_9"],
    );
    let (code, body) = get(&format!("{}/readyz", server.base));
    assert_eq!(code, 200, "{body}");
    assert!(!body.contains(key));
    let head = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("upstream was called");
    let head_lower = head.to_ascii_lowercase();
    assert!(head.starts_with("GET /v1/batches?limit=1 "), "{head}");
    assert!(head_lower.contains(&format!(
        "authorization: bearer {}",
        key.to_ascii_lowercase()
    )));
    assert!(
        head_lower.contains("openai-organization: org-123"),
        "{head}"
    );
    assert!(head_lower.contains("openai-project: proj_9"), "{head}");
    // The page shows the base URL, never the key.
    let (code, page) = get(&format!("{}/", server.base));
    assert_eq!(code, 200);
    assert!(page.contains(&url), "footer should name the upstream");
    assert!(!page.contains(key));
    let (status, logs) = server.stop();
    assert!(status.success());
    assert!(!logs.contains(key), "key leaked into the logs:\n{logs}");
}

#[test]
fn readiness_reports_a_refused_key() {
    let (url, _rx) = capture_one_request("HTTP/1.1 401 Unauthorized");
    let server = start(&[("OPENAI_API_KEY", "sk-wrong")], &["--upstream-url", &url]);
    let (code, body) = get(&format!("{}/readyz", server.base));
    assert_eq!(code, 503);
    assert!(body.contains("key was refused"), "{body}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let server = start(&[], &["--log-format", "json"]);
    let _ = get(&format!("{}/healthz", server.base));
    let (_, logs) = server.stop();
    let mut n = 0;
    for line in logs.lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get("level").is_some(), "{line}");
        n += 1;
    }
    assert!(n >= 2, "{logs}");
}
