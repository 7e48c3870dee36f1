//! Validator throughput (issue: pre-flight checks). Not part of the test run:
//!
//!     make bench-validator      # builds the release site first
//!
//! On one 200 MB request file (made by the example generator, 50,000 chat
//! requests), in the same run:
//! - the shared Rust validator natively (file already in memory, fed in
//!   4 MiB chunks as the upload route and the browser feed it);
//! - a plain Python check: `json.loads` per line plus the same basic field
//!   checks (object, custom_id unique, method, url, body.model);
//! - the same validator compiled to WASM, in headless Chromium, on the New
//!   batch page of a running `batchboard serve` (time from choosing the file
//!   to the result, as the page itself measures it). Needs a site built by
//!   `cargo leptos build --release --split` in `target/site` (or
//!   `BENCH_SITE_ROOT`); skipped with `BENCH_BROWSER=0`.
//!
//! Prints a markdown table.

// The integration tests' helpers: the same ways of starting the binary and
// adding accounts.
#[path = "../tests/it/common.rs"]
mod common;
mod report;

use std::process::Command;
use std::time::Instant;

use common::{add_user, Proc, TempDir, PASSWORD};

use batchboard_core::validate::Validator;
use batchboard_sandbox::example::{write_example, ExampleSpec};

const PYTHON_CHECK: &str = r#"
import json, sys, time
ENDPOINTS = {"/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/moderations"}
path = sys.argv[1]
start = time.perf_counter()
seen, errors, n = set(), 0, 0
with open(path, "rb") as f:
    for line in f:
        if not line.strip():
            continue
        n += 1
        try:
            obj = json.loads(line)
        except ValueError:
            errors += 1
            continue
        if not isinstance(obj, dict):
            errors += 1
            continue
        cid = obj.get("custom_id")
        if not isinstance(cid, str) or not cid or cid in seen:
            errors += 1
        else:
            seen.add(cid)
        if obj.get("method") != "POST" or obj.get("url") not in ENDPOINTS:
            errors += 1
        body = obj.get("body")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            errors += 1
print(time.perf_counter() - start, n, errors)
"#;

use report::{median, row};

fn main() {
    let dir = TempDir::new("bench-validator");
    let path = dir.0.join("requests-200mb.jsonl");
    let spec = ExampleSpec {
        requests: 50_000,
        target_bytes: 200_000_000,
        fail_every: None,
        model: "gpt-4o-mini".into(),
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    write_example(&spec, &mut out).unwrap();
    drop(out);
    let data = std::fs::read(&path).unwrap();
    let mb = data.len() as f64 / 1e6;

    // Native: best and median of 5.
    let mut native = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut v = Validator::new(None);
        for chunk in data.chunks(4 << 20) {
            v.chunk(chunk);
        }
        let r = v.finish();
        native.push(t.elapsed().as_secs_f64());
        assert!(r.is_ok() && r.requests == 50_000, "{:?}", r.errors.first());
    }
    let native_s = median(native);

    // Python, same file, same run.
    let mut python = Vec::new();
    for _ in 0..3 {
        let out = Command::new("python3")
            .args(["-c", PYTHON_CHECK])
            .arg(&path)
            .output()
            .expect("python3");
        let text = String::from_utf8_lossy(&out.stdout);
        let secs: f64 = text
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .expect("python timing");
        python.push(secs);
    }
    let python_s = median(python);

    let browser = if std::env::var("BENCH_BROWSER").as_deref() == Ok("0") {
        None
    } else {
        browser_ms(&dir.0, &path)
    };

    println!("\n### Validator throughput, one {mb:.1} MB file of 50,000 chat requests\n");
    println!("| checker | time (median) | throughput | vs Python |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| Rust validator, native | {:.3} s | {:.0} MB/s | {:.1}× |",
        native_s,
        mb / native_s,
        python_s / native_s
    );
    println!(
        "| Python `json.loads` per line + basic checks | {python_s:.3} s | {:.0} MB/s | 1.0× |",
        mb / python_s
    );
    match browser {
        Some(ms) => println!(
            "| Rust validator as WASM in headless Chromium (chunked, with progress) | {:.3} s | {:.0} MB/s | {:.1}× |",
            ms / 1000.0,
            mb / (ms / 1000.0),
            python_s / (ms / 1000.0)
        ),
        None => println!("| WASM in Chromium | skipped | | |"),
    }
    row(
        "validator, native",
        &format!(
            "{:.0} MB/s, {:.1}× Python",
            mb / native_s,
            python_s / native_s
        ),
        "≥ 1 GB/s and ≥ 3× Python",
        Some(mb / native_s >= 1000.0 && python_s / native_s >= 3.0),
    );
    if let Some(ms) = browser {
        row(
            &format!("validator, WASM in Chromium, {mb:.0} MB"),
            &format!("{:.2} s", ms / 1000.0),
            "≤ 1.5 s",
            Some(ms <= 1500.0),
        );
    }
}

/// Runs the New batch page's check in headless Chromium; the median of
/// three runs, in milliseconds, as the page measures it.
fn browser_ms(dir: &std::path::Path, file: &std::path::Path) -> Option<f64> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let site = std::env::var("BENCH_SITE_ROOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root.join("../../target/site"));
    if !site.join("pkg").exists() {
        eprintln!("no site at {}: build it with `make build`", site.display());
        return None;
    }
    let data = dir.join("data");
    add_user(&data, "bench", "operator", PASSWORD);
    let addr = format!("127.0.0.1:{}", common::free_port());
    let mut cmd = common::command();
    cmd.args(["serve", "--addr", &addr, "--data-dir"])
        .arg(&data)
        .arg("--site-root")
        .arg(&site);
    let server = Proc::spawn(cmd, addr);
    let base = server.base();
    let out = Command::new("node")
        .arg(root.join("../../end2end/bench/check-in-browser.mjs"))
        .args([&base, "bench", PASSWORD])
        .arg(file)
        .current_dir(root.join("../../end2end"))
        .output()
        .expect("node");
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        eprintln!(
            "browser run failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let runs: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("ms "))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    (!runs.is_empty()).then(|| median(runs))
}
