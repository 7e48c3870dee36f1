//! Benchmarks of the index and the event fan-out (issue: live updates).
//! Not part of the test run:
//!
//!     cargo bench --features ssr --bench live
//!
//! Prints markdown tables: index query times over 10,000 batches (SQLite),
//! and upstream calls per minute against the number of open event streams.
//! `BENCH_WINDOW_SECS` (default 30) sets how long each fan-out run lasts.

mod common;

use common::{free_port, Child};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use batchboard::api::BatchQuery;
use batchboard::server::db::Db;
use batchboard::server::index;

const BIN: &str = env!("CARGO_BIN_EXE_batchboard");
const KEY: &str = "sk-bench-live";
const PASSWORD: &str = "bench-password-123";

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("batchboard-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn bench_index() {
    let dir = temp_dir("index");
    let db = Db::open(None, &dir).await.unwrap();
    let n = 10_000;
    let started = Instant::now();
    for (b, name) in index::synthetic(n, 1) {
        db.upsert_batch(&b, Some(&name), |_| i64::MAX / 2)
            .await
            .unwrap();
    }
    let seed_s = started.elapsed().as_secs_f64();
    let q = |f: &dyn Fn(&mut BatchQuery)| {
        let mut q = BatchQuery {
            limit: Some(50),
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let cases: Vec<(&str, BatchQuery)> = vec![
        ("first page, newest first", q(&|_| {})),
        ("page 100 (offset 4,950)", q(&|q| q.offset = Some(4950))),
        (
            "status in (completed, failed)",
            q(&|q| q.status = Some("completed,failed".into())),
        ),
        (
            "creator + model",
            q(&|q| {
                q.creator = Some("ben".into());
                q.model = Some("gpt-4.1".into());
            }),
        ),
        (
            "metadata team=research",
            q(&|q| {
                q.meta_key = Some("team".into());
                q.meta_value = Some("research".into());
            }),
        ),
        (
            "created between two days",
            q(&|q| {
                q.from = Some("2026-01-03".into());
                q.to = Some("2026-01-05".into());
            }),
        ),
        (
            "search 'support-12'",
            q(&|q| q.q = Some("support-12".into())),
        ),
        (
            "sort by model, ascending",
            q(&|q| {
                q.sort = Some("model".into());
                q.dir = Some("asc".into());
            }),
        ),
    ];
    println!("\n### Index queries, {n} batches, SQLite (page of 50 + total count)\n");
    println!(
        "Seeding {n} batches: {seed_s:.1} s ({:.0} upserts/s)\n",
        n as f64 / seed_s
    );
    println!("| query | matches | p50 ms | p99 ms |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, query) in cases {
        let mut times = Vec::new();
        let mut total = 0;
        for _ in 0..200 {
            let t = Instant::now();
            let (_, tot, _, _) = db.query_batches(&query).await.unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            total = tot;
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| {name} | {total} | {:.2} | {:.2} |",
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

async fn wait_up(base: &str) {
    for _ in 0..200 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{base} did not start");
}

async fn sandbox_requests(base: &str) -> u64 {
    let v: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/sandbox/stats"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["requests"].as_u64().unwrap()
}

async fn bench_fanout() {
    let window = Duration::from_secs(
        std::env::var("BENCH_WINDOW_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30),
    );
    let dir = temp_dir("fanout");
    let sb_port = free_port();
    let sb_base = format!("http://127.0.0.1:{sb_port}");
    let _sb = Child(
        Command::new(BIN)
            .args([
                "sandbox",
                "--addr",
                &format!("127.0.0.1:{sb_port}"),
                "--api-key",
                KEY,
                "--sandbox-rps",
                "2",
                "--data-dir",
            ])
            .arg(dir.join("sb"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_up(&sb_base).await;
    let mut add = Command::new(BIN)
        .args([
            "user",
            "add",
            "vi",
            "--role",
            "viewer",
            "--password-stdin",
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(add.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    add.wait().unwrap();
    // Three running batches keep the watcher refreshing all along.
    let http = reqwest::Client::new();
    for i in 0..3 {
        let body: String = (0..2000)
            .map(|j| format!("{{\"custom_id\":\"b{i}-{j}\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{{\"model\":\"m\",\"messages\":[{{\"role\":\"user\",\"content\":\"x\"}}]}}}}\n"))
            .collect();
        let form = reqwest::multipart::Form::new()
            .text("purpose", "batch")
            .part(
                "file",
                reqwest::multipart::Part::bytes(body.into_bytes()).file_name("b.jsonl"),
            );
        let f: serde_json::Value = http
            .post(format!("{sb_base}/v1/files"))
            .bearer_auth(KEY)
            .multipart(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        http.post(format!("{sb_base}/v1/batches"))
            .bearer_auth(KEY)
            .json(&serde_json::json!({"input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}))
            .send()
            .await
            .unwrap();
    }
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let site = dir.join("site");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    let _dash = Child(
        Command::new(BIN)
            .args([
                "serve",
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--upstream-url",
                &format!("{sb_base}/v1"),
                "--data-dir",
            ])
            .arg(dir.join("data"))
            .arg("--site-root")
            .arg(&site)
            .env("OPENAI_API_KEY", KEY)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_up(&base).await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("origin", base.parse().unwrap());
    let viewer = reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    viewer
        .post(format!("{base}/auth/login"))
        .form(&[("username", "vi"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!(
        "\n### Upstream calls against viewers ({}-second windows, 3 running batches)\n",
        window.as_secs()
    );
    println!("| open event streams | upstream calls / min | events received / stream / min |");
    println!("| ---: | ---: | ---: |");
    for viewers in [1usize, 10, 100, 500] {
        let mut readers = Vec::new();
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        for _ in 0..viewers {
            let r = viewer.get(format!("{base}/events")).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            let counter = counter.clone();
            readers.push(tokio::spawn(async move {
                use futures_util::StreamExt;
                let mut body = r.bytes_stream();
                while let Some(Ok(chunk)) = body.next().await {
                    let n = chunk.windows(12).filter(|w| w == b"event: batch").count();
                    counter.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                }
            }));
        }
        let before = sandbox_requests(&sb_base).await;
        counter.store(0, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(window).await;
        let calls = sandbox_requests(&sb_base).await - before;
        let events = counter.load(std::sync::atomic::Ordering::Relaxed);
        let per_min = 60.0 / window.as_secs_f64();
        println!(
            "| {viewers} | {:.0} | {:.1} |",
            calls as f64 * per_min,
            events as f64 / viewers as f64 * per_min
        );
        for r in readers {
            r.abort();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // BENCH_ONLY=index or BENCH_ONLY=fanout runs one half.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    rt.block_on(async {
        if only != "fanout" {
            bench_index().await;
        }
        if only != "index" {
            bench_fanout().await;
        }
    });
}
