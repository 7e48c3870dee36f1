//! Helpers shared by the integration tests: run the real `batchboard` binary
//! on a free loopback port with its own data directory.
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;

/// A request sent and its answer read, failing the test on a transport error.
#[allow(dead_code)]
pub trait Fetch {
    fn fetch_json<T: serde::de::DeserializeOwned>(self) -> impl std::future::Future<Output = T>;
    fn fetch_text(self) -> impl std::future::Future<Output = String>;
}

impl Fetch for reqwest::RequestBuilder {
    async fn fetch_json<T: serde::de::DeserializeOwned>(self) -> T {
        self.send().await.unwrap().json().await.unwrap()
    }
    async fn fetch_text(self) -> String {
        self.send().await.unwrap().text().await.unwrap()
    }
}

pub const BIN: &str = env!("CARGO_BIN_EXE_batchboard");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A directory removed on drop.
/// A directory removed when the test ends; `.0` is its path.
pub struct TempDir(pub PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("batchboard-test-{tag}-"))
            .tempdir()
            .unwrap();
        TempDir(dir.path().to_path_buf(), dir)
    }
}

/// A running `batchboard` process.
pub struct Proc {
    pub child: Child,
    pub addr: String,
    /// Its output so far, read continuously so that a chatty server never
    /// blocks on a full pipe.
    output: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn drain(
    mut from: impl Read + Send + 'static,
    into: std::sync::Arc<std::sync::Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
}

impl Proc {
    /// Starts `cmd` (which must listen on `addr`) and waits until it accepts.
    /// The caller sets the environment (see [`command`]).
    pub fn spawn(mut cmd: Command, addr: String) -> Self {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let set_here = cmd.get_envs().any(|(k, _)| k == "RUST_LOG");
        if !set_here && std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let mut child = cmd.spawn().expect("spawn batchboard");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    e.read_to_string(&mut err).unwrap();
                }
                panic!("batchboard exited early ({status}):\n{err}");
            }
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(25));
        }
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(e) = child.stderr.take() {
            readers.push(drain(e, output.clone()));
        }
        if let Some(o) = child.stdout.take() {
            readers.push(drain(o, output.clone()));
        }
        Self {
            child,
            addr,
            output,
            readers,
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the process has written so far (stdout and stderr).
    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Stops the process with SIGTERM; returns its exit status and output.
    pub fn stop(mut self) -> (ExitStatus, String) {
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
            std::thread::sleep(Duration::from_millis(25));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let logs = std::mem::take(&mut *self.output.lock().unwrap());
        (status, logs)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary, with no upstream settings inherited from the environment.
pub fn command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("OPENAI_API_KEY")
        .env_remove("BATCHBOARD_UPSTREAM_URL")
        .env_remove("BATCHBOARD_SANDBOX_KEY");
    cmd
}

/// Runs a one-off `batchboard` command to the end; fails the test with its
/// stderr unless it succeeds; returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run batchboard");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// `batchboard serve` on `addr` with `data_dir` and an empty site (these
/// tests need no WASM); the caller adds options and environment.
pub fn serve_command(addr: &str, data_dir: &std::path::Path) -> Command {
    let site = data_dir.join("site");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    let mut cmd = command();
    cmd.args(["serve", "--addr", addr, "--data-dir"])
        .arg(data_dir)
        .arg("--site-root")
        .arg(&site);
    cmd
}

/// Fast sandbox settings for tests.
pub const FAST: &[&str] = &[
    "--sandbox-rps",
    "500",
    "--sandbox-validation-ms",
    "50",
    "--sandbox-finalizing-ms",
    "50",
];

/// `batchboard sandbox` on a free port.
pub fn sandbox(data_dir: &std::path::Path, key: &str, speed: &[&str]) -> Proc {
    sandbox_at(format!("127.0.0.1:{}", free_port()), data_dir, key, speed)
}

/// Writes a sandbox data directory holding `n` made-up batches (from
/// `seed`), every unfinished one made `finished` so that the sandbox runs
/// none of them; returns them, oldest first.
pub fn seed_sandbox_dir(
    data_dir: &std::path::Path,
    n: usize,
    seed: u64,
    finished: batchboard_core::BatchStatus,
) -> Vec<batchboard_core::Batch> {
    // The sandbox keeps its state under <data dir>/sandbox.
    std::fs::create_dir_all(data_dir.join("sandbox")).unwrap();
    let state = batchboard_sandbox::store::State {
        batches: batchboard_sandbox::synthetic::batches(n, seed)
            .into_iter()
            .map(|(mut b, _)| {
                if !b.status.is_terminal() {
                    b.status = finished.clone();
                }
                b
            })
            .collect(),
        ..Default::default()
    };
    std::fs::write(
        data_dir.join("sandbox/state.json"),
        serde_json::to_vec(&state).unwrap(),
    )
    .unwrap();
    state.batches
}

/// `batchboard sandbox` on `addr` (`host:port`).
pub fn sandbox_at(addr: String, data_dir: &std::path::Path, key: &str, speed: &[&str]) -> Proc {
    let mut cmd = command();
    cmd.args(["sandbox", "--addr", &addr, "--api-key", key, "--data-dir"])
        .arg(data_dir)
        .args(speed);
    Proc::spawn(cmd, addr)
}

/// Adds an account to the users file of `data_dir` with `batchboard user add`.
pub fn add_user(data_dir: &std::path::Path, name: &str, role: &str, password: &str) {
    use std::io::Write;
    let mut child = command()
        .args([
            "user",
            "add",
            name,
            "--role",
            role,
            "--password-stdin",
            "--data-dir",
        ])
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("batchboard user add");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A password good enough for the minimum length.
pub const PASSWORD: &str = "correct-horse-battery";

/// An HTTP client that keeps cookies and sends this site's `Origin`, as a
/// browser on the dashboard's own pages does. Redirects are not followed, so
/// tests see them.
pub fn browser(base: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("origin", base.parse().unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        // No kept-alive connections: tests restart servers on the same port.
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// Signs in through the sign-in form; returns the `Location` it redirected to.
pub async fn sign_in(http: &reqwest::Client, base: &str, name: &str, password: &str) -> String {
    let r = http
        .post(format!("{base}/auth/login"))
        .form(&[("username", name), ("password", password), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "sign-in answers with a redirect");
    r.headers()["location"].to_str().unwrap().to_string()
}

/// A client signed in as `name`.
pub async fn signed_in(base: &str, name: &str, password: &str) -> reqwest::Client {
    let http = browser(base);
    let to = sign_in(&http, base, name, password).await;
    assert_eq!(to, "/", "{name} could not sign in");
    http
}

/// Posts a request file to `POST /api/batches` as the New batch page does
/// (its size announced before it, so it streams through to the upstream);
/// returns the status and the body.
pub async fn upload(
    http: &reqwest::Client,
    base: &str,
    content: Vec<u8>,
    endpoint: &str,
    metadata: &str,
) -> (u16, String) {
    upload_with(http, base, content, endpoint, metadata, &[]).await
}

/// [`upload`] with more form fields (before the file).
pub async fn upload_with(
    http: &reqwest::Client,
    base: &str,
    content: Vec<u8>,
    endpoint: &str,
    metadata: &str,
    extra: &[(&str, &str)],
) -> (u16, String) {
    let size = content.len().to_string();
    post_form(http, base, content, endpoint, metadata, Some(size), extra).await
}

/// As a form without JavaScript or a script that does not say the size:
/// the file is stored first, then uploaded.
pub async fn upload_unsized(
    http: &reqwest::Client,
    base: &str,
    content: Vec<u8>,
    endpoint: &str,
) -> (u16, String) {
    post_form(http, base, content, endpoint, "", None, &[]).await
}

async fn post_form(
    http: &reqwest::Client,
    base: &str,
    content: Vec<u8>,
    endpoint: &str,
    metadata: &str,
    size: Option<String>,
    extra: &[(&str, &str)],
) -> (u16, String) {
    let mut form = reqwest::multipart::Form::new()
        .text("endpoint", endpoint.to_string())
        .text("completion_window", "24h")
        .text("metadata", metadata.to_string());
    for (k, v) in extra {
        form = form.text(k.to_string(), v.to_string());
    }
    if let Some(size) = size {
        form = form.text("file_size", size);
    }
    let form = form.part(
        "file",
        reqwest::multipart::Part::bytes(content).file_name("requests.jsonl"),
    );
    let r = http
        .post(format!("{base}/api/batches"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Calls a server function the way the browser does (URL-encoded form).
pub async fn server_fn(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    args: &[(&str, &str)],
) -> (u16, String) {
    let r = http
        .post(format!("{base}/api/{name}"))
        .form(args)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// An open `/events` stream, read event by event.
pub struct Events {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl Events {
    pub async fn open(http: &reqwest::Client, base: &str) -> Self {
        let r = http.get(format!("{base}/events")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        Self {
            body: Box::pin(r.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next event: (name, data).
    pub async fn next(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if block.lines().all(|l| l.starts_with(':') || l.is_empty()) {
                    continue; // keep-alive comment
                }
                return (name, data);
            }
            let chunk = self.body.next().await.expect("stream ended").unwrap();
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Whether the server ends the stream within `within` (events before
    /// the end are skipped).
    pub async fn ends_within(&mut self, within: Duration) -> bool {
        tokio::time::timeout(within, async {
            while let Some(chunk) = self.body.next().await {
                if chunk.is_err() {
                    break;
                }
            }
        })
        .await
        .is_ok()
    }

    /// Waits (up to `within`) for a `batch` event about `id` matching `pred`.
    pub async fn batch_where(
        &mut self,
        id: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (name, data) = tokio::time::timeout(left, self.next())
                .await
                .unwrap_or_else(|_| panic!("no batch event for {id} within {within:?}"));
            if name == "batch" {
                let b: Value = serde_json::from_str(&data).unwrap();
                if b["id"] == id && pred(&b) {
                    return b;
                }
            }
        }
    }
}

/// Creates a batch directly on the upstream, as another tool would.
pub async fn create_upstream(upstream: &str, key: &str, lines: usize) -> String {
    let body: String = (0..lines)
        .map(|i| {
            format!(
                r#"{{"custom_id":"u{i}","method":"POST","url":"/v1/chat/completions","body":{{"model":"m","messages":[{{"role":"user","content":"{i}"}}]}}}}"#
            ) + "\n"
        })
        .collect();
    create_upstream_from(upstream, key, body).await
}

/// Creates a batch directly on the upstream from this file content.
pub async fn create_upstream_from(upstream: &str, key: &str, body: String) -> String {
    let http = reqwest::Client::new();
    let form = reqwest::multipart::Form::new()
        .text("purpose", "batch")
        .part(
            "file",
            reqwest::multipart::Part::bytes(body.into_bytes()).file_name("up.jsonl"),
        );
    let file: Value = http
        .post(format!("{upstream}/files"))
        .bearer_auth(key)
        .multipart(form)
        .fetch_json()
        .await;
    let batch: Value = http
        .post(format!("{upstream}/batches"))
        .bearer_auth(key)
        .json(&serde_json::json!({
            "input_file_id": file["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        }))
        .fetch_json()
        .await;
    batch["id"].as_str().unwrap().to_string()
}

/// A dashboard on a standalone sandbox (the upstream, reached over HTTP with
/// `key`), with an operator `op` and a viewer `vi` signed in.
pub struct Stack {
    pub dash: Proc,
    pub upstream: Proc,
    pub op: reqwest::Client,
    pub vi: reqwest::Client,
    pub key: String,
    pub dir: TempDir,
}

impl Stack {
    /// `speed` goes to the sandbox, `extra` to `batchboard serve`.
    pub async fn start(tag: &str, key: &str, speed: &[&str], extra: &[&str]) -> Self {
        let dir = TempDir::new(tag);
        let data = dir.0.join("data");
        add_user(&data, "op", "operator", PASSWORD);
        add_user(&data, "vi", "viewer", PASSWORD);
        let upstream = sandbox(&dir.0.join("up"), key, speed);
        let addr = format!("127.0.0.1:{}", free_port());
        let mut cmd = serve_command(&addr, &data);
        cmd.args(["--upstream-url", &format!("{}/v1", upstream.base())])
            .args(extra)
            .env("OPENAI_API_KEY", key);
        let dash = Proc::spawn(cmd, addr);
        let op = signed_in(&dash.base(), "op", PASSWORD).await;
        let vi = signed_in(&dash.base(), "vi", PASSWORD).await;
        Self {
            dash,
            upstream,
            op,
            vi,
            key: key.to_string(),
            dir,
        }
    }

    /// The upstream's base URL (`…/v1`).
    pub fn upstream_url(&self) -> String {
        format!("{}/v1", self.upstream.base())
    }

    /// A GET on the upstream itself, with the key.
    pub async fn upstream_get(&self, path: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.upstream_url()))
            .bearer_auth(&self.key)
            .fetch_json()
            .await
    }

    /// Replaces the sandbox's fault rules (one per line; "" clears them).
    pub async fn faults(&self, rules: &str) {
        let r = reqwest::Client::new()
            .put(format!("{}/sandbox/faults", self.upstream.base()))
            .bearer_auth(&self.key)
            .body(rules.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    }
}

/// The session cookie of `name`, for hand-written requests.
pub async fn session_cookie(base: &str, name: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!("{base}/auth/login"))
        .header("origin", base)
        .form(&[("username", name), ("password", PASSWORD), ("next", "/")])
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}
