//! The `batchboard` binary as a user runs it: command line, configuration
//! errors, health endpoints, the upstream headers, and shutdown.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::{Proc, TempDir, BIN};

fn run(args: &[&str]) -> Output {
    crate::common::command()
        .args(args)
        .output()
        .expect("run batchboard")
}

struct Server {
    proc: Proc,
    base: String,
    dir: TempDir,
}

fn start(envs: &[(&str, &str)], extra: &[&str]) -> Server {
    let dir = TempDir::new("serve");
    let addr = format!("127.0.0.1:{}", crate::common::free_port());
    crate::common::add_user(
        &dir.0.join("data"),
        "admin",
        "admin",
        crate::common::PASSWORD,
    );
    let mut cmd = crate::common::serve_command(&addr, &dir.0.join("data"));
    cmd.args(extra);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let proc = Proc::spawn(cmd, addr);
    Server {
        base: proc.base(),
        proc,
        dir,
    }
}

impl Server {
    fn stop(self) -> (std::process::ExitStatus, String) {
        self.proc.stop()
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
    let dir = TempDir::new("site");
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

/// A page as a signed-in browser gets it.
fn page(base: &str, path: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = crate::common::signed_in(base, "admin", crate::common::PASSWORD).await;
        let r = http
            .get(format!("{base}{path}"))
            .header("accept", "text/html")
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    })
}

#[test]
fn without_key_or_url_the_built_in_sandbox_is_the_upstream() {
    let server = start(&[], &[]);
    let (code, body) = get(&format!("{}/healthz", server.base));
    assert_eq!(code, 200);
    assert_eq!(body, r#"{"status":"ok"}"#);
    // Ready: the dashboard reached the embedded sandbox over HTTP. Anyone
    // learns that much; a signed-in user also how and when.
    let (code, body) = get(&format!("{}/readyz", server.base));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body, r#"{"ready":true}"#);
    let (code, body) = page(&server.base, "/readyz");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Reachable"), "{body}");
    let (code, page) = page(&server.base, "/");
    assert_eq!(code, 200);
    assert!(page.contains("Sandbox"), "footer should say Sandbox");
    let (status, logs) = server.stop();
    assert!(status.success(), "exit {status:?}\n{logs}");
    assert!(logs.contains("batchboard stopped"), "{logs}");
    // Structured request logs: method, path and status of each request.
    assert!(
        logs.contains("/readyz") && logs.contains("status=200"),
        "{logs}"
    );
    // The watcher's routine calls to the built-in sandbox stay out of the
    // way at the default level (two lines every few seconds otherwise)...
    assert!(!logs.contains(r#"service="sandbox""#), "{logs}");
    // ...and are there at DEBUG.
    let server = start(&[("RUST_LOG", "info,tower_http=debug")], &[]);
    let (code, _) = get(&format!("{}/readyz", server.base));
    assert_eq!(code, 200);
    let (_, logs) = server.stop();
    assert!(
        logs.contains(r#"service="sandbox""#) && logs.contains("path=/v1/batches"),
        "{logs}"
    );
}

/// An HTTP listener standing in for a third-party provider on loopback,
/// answering every request alike and recording the raw request heads: the
/// only way to see exactly which headers go upstream.
fn capture_one_request(status_line: &'static str) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        while let Ok((mut stream, _)) = listener.accept() {
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
    // The readiness probe (the watcher's list calls ask for more).
    let head = std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(5)).ok())
        .find(|h| h.starts_with("GET /v1/batches?limit=1 "))
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
    let (code, page) = page(&server.base, "/");
    assert_eq!(code, 200);
    assert!(page.contains("No batches yet"), "{page}");
    assert!(page.contains(&url), "footer should name the upstream");
    assert!(!page.contains(key));
    let (status, logs) = server.stop();
    assert!(status.success());
    assert!(!logs.contains(key), "key leaked into the logs:\n{logs}");
}

#[test]
fn readiness_reports_a_refused_key() {
    let (url, _rx) = capture_one_request("HTTP/1.1 401 Unauthorized");
    // The monitoring's address (`--metrics-allow`) is told why.
    let server = start(
        &[("OPENAI_API_KEY", "sk-wrong")],
        &["--upstream-url", &url, "--metrics-allow", "127.0.0.1/32"],
    );
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

/// `/pkg` serves the copy the build compressed (brotli, else gzip) to a
/// browser that accepts it, and lets browsers keep it for a year when the
/// build named the files after their content (`hash.txt` beside the
/// binary); pages are compressed on the fly and revalidated on every use;
/// the event stream is never compressed (each event must go out at once).
#[test]
fn static_files_precompressed_and_cached_pages_compressed_and_revalidated() {
    let server = start(&[], &[]);
    let pkg = server.dir.0.join("data/site/pkg");
    std::fs::write(pkg.join("app.wasm"), b"plain wasm bytes").unwrap();
    std::fs::write(pkg.join("app.wasm.br"), b"brotli bytes").unwrap();
    std::fs::write(pkg.join("app.wasm.gz"), b"gzip bytes").unwrap();
    let hashed = std::path::Path::new(BIN)
        .with_file_name("hash.txt")
        .exists();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = crate::common::browser(&server.base);
        let wasm = |enc: &'static str| {
            let mut req = http.get(format!("{}/pkg/app.wasm", server.base));
            if !enc.is_empty() {
                req = req.header("accept-encoding", enc);
            }
            req.send()
        };
        for (accept, encoding, body) in [
            ("br, gzip", Some("br"), "brotli bytes"),
            ("gzip", Some("gzip"), "gzip bytes"),
            ("", None, "plain wasm bytes"),
        ] {
            let r = wasm(accept).await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            let h = r.headers().clone();
            assert_eq!(
                h.get("content-encoding").map(|v| v.to_str().unwrap()),
                encoding,
                "Accept-Encoding: {accept}"
            );
            let cache = h["cache-control"].to_str().unwrap();
            if hashed {
                assert_eq!(cache, "public, max-age=31536000, immutable");
            } else {
                assert_eq!(cache, "private, no-cache");
            }
            assert_eq!(r.text().await.unwrap(), body);
        }

        // A page: compressed as asked, and revalidated.
        let r = http
            .get(format!("{}/login", server.base))
            .header("accept", "text/html")
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["content-encoding"], "gzip");
        assert_eq!(r.headers()["cache-control"], "private, no-cache");
        // Never framed by another site, never sniffed, no address leaked.
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert_eq!(r.headers()["referrer-policy"], "same-origin");
        // Scripts only from this site, or inline with this response's
        // nonce, which every inline script of the page carries.
        let page = || {
            http.get(format!("{}/login", server.base))
                .header("accept", "text/html")
                .send()
        };
        let r = page().await.unwrap();
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self' 'nonce-"), "{csp}");
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_default()
            .to_string();
        assert!(nonce.len() >= 16, "{csp}");
        let html = r.text().await.unwrap();
        let scripts = html.matches("<script").count();
        assert!(scripts > 0, "{html}");
        assert_eq!(
            html.matches(&format!("nonce=\"{nonce}\"")).count(),
            scripts,
            "{html}"
        );
        // A fresh nonce each time.
        let again = page().await.unwrap();
        assert!(!again.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains(&nonce));

        // The event stream: as it is.
        crate::common::sign_in(&http, &server.base, "admin", crate::common::PASSWORD).await;
        let r = http
            .get(format!("{}/events", server.base))
            .header("accept-encoding", "br, gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.headers().get("content-encoding").is_none());
    });
    server.stop();
}

/// What the server writes into a fresh data directory is its owner's only:
/// the directory 0700, the database, the users file and the first admin's
/// password 0600, from creation on (whatever the umask).
#[cfg(unix)]
#[test]
fn the_data_directory_is_private_from_the_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("private");
    let data = dir.0.join("fresh/data");
    let addr = format!("127.0.0.1:{}", crate::common::free_port());
    let site = dir.0.join("site");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    let mut cmd = crate::common::command();
    cmd.args(["serve", "--addr", &addr, "--data-dir"])
        .arg(&data)
        .arg("--site-root")
        .arg(&site);
    let server = Proc::spawn(cmd, addr);
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&data), 0o700, "data directory");
    for file in ["batchboard.db", "users.toml", "initial-admin-password"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    server.stop();
}

/// A connection that sends nothing is closed within the read timeout (it
/// held its slot forever before: the header timeout starts only once the
/// protocol is known); and beyond `--max-connections` new connections wait
/// until one closes.
#[test]
fn silent_connections_are_closed_and_connections_are_capped() {
    use std::io::Read;
    let server = start(&[], &["--read-timeout-secs", "2", "--max-connections", "1"]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut silent = std::net::TcpStream::connect(&addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(8)))
        .unwrap();
    // While the silent one holds the only slot, a request is not answered.
    let started = std::time::Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let waited = rt.block_on(async {
        reqwest::Client::builder()
            .timeout(Duration::from_millis(800))
            .build()
            .unwrap()
            .get(format!("{}/healthz", server.base))
            .send()
            .await
    });
    assert!(waited.is_err(), "answered beyond --max-connections");
    // The silent connection is closed (EOF), within the timeout.
    let mut buf = [0u8; 16];
    let n = silent
        .read(&mut buf)
        .expect("closed by the server, not timed out");
    assert_eq!(n, 0);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Its slot is free again.
    let (code, _) = get(&format!("{}/healthz", server.base));
    assert_eq!(code, 200);
    server.stop();
}

/// A connection that sends the first bytes of HTTP/2's preface and then
/// nothing is closed within the read timeout too (hyper waits for the rest
/// without a limit while the bytes match, so it held its slot forever).
#[test]
fn a_connection_stalled_in_the_http2_preface_is_closed() {
    use std::io::{Read, Write};
    let server = start(&[], &["--read-timeout-secs", "2"]);
    let addr = server.base.trim_start_matches("http://").to_string();
    for start in [&b"P"[..], &b"PRI * HTTP/2.0\r\n"[..]] {
        let mut stalled = std::net::TcpStream::connect(&addr).unwrap();
        stalled
            .set_read_timeout(Some(Duration::from_secs(8)))
            .unwrap();
        stalled.write_all(start).unwrap();
        let began = std::time::Instant::now();
        let mut buf = [0u8; 16];
        // Closed: an end of stream, or a reset (the server closes with our
        // unread bytes still in its buffer), not a read timeout.
        match stalled.read(&mut buf) {
            Ok(n) => assert_eq!(n, 0),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "{:?}",
            began.elapsed()
        );
    }
    // A whole request still works.
    let (code, _) = get(&format!("{}/healthz", server.base));
    assert_eq!(code, 200);
    server.stop();
}

/// A small body (here the sign-in form, answered without a session)
/// trickled a byte at a time, each within the read timeout, is cut off
/// at its deadline (10 s) with 408, not waited for as long as it trickles.
#[test]
fn a_trickled_form_body_is_cut_off_at_its_deadline() {
    use std::io::{Read, Write};
    let server = start(&[], &["--read-timeout-secs", "2"]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    write!(
        c,
        "POST /auth/login HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n"
    )
    .unwrap();
    let began = std::time::Instant::now();
    let mut answer = Vec::new();
    while began.elapsed() < Duration::from_secs(20) {
        if c.write_all(b"u").is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "{answer:?} after {:?}",
        began.elapsed()
    );
    assert!(
        began.elapsed() < Duration::from_secs(14),
        "{:?}",
        began.elapsed()
    );
    server.stop();
}

/// An HTTP/2 connection (cleartext, prior knowledge) that opens and then
/// asks nothing is closed once idle for the read timeout: hyper would keep
/// it (answering its pings) for ever, so idle peers could hold every slot.
#[test]
fn an_idle_http2_connection_is_closed() {
    use std::io::{Read, Write};
    let server = start(&[], &["--read-timeout-secs", "2"]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
    c.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
    let began = std::time::Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue, // the server's SETTINGS, its ack, a GOAWAY
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("not closed after {:?}: {e}", began.elapsed()),
        }
    }
    assert!(
        began.elapsed() < Duration::from_secs(6),
        "{:?}",
        began.elapsed()
    );
    server.stop();
}
