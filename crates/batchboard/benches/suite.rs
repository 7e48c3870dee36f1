//! The benchmark suite (not part of the tests): `scripts/bench.sh` runs it
//! with the other benches on a release build and prints one summary table.
//!
//!     cargo bench --features ssr --bench suite
//!
//! `BENCH_ONLY=startup|transfer|pages|wasm|streams|soak` runs one part (`soak` only
//! runs when asked: `scripts/soak.sh`). Each part prints a markdown section
//! and adds its headline rows to `$BENCH_SUMMARY`.
//!
//! - startup: start to ready (`/readyz` 200, the upstream answering) and
//!   idle memory after a sign-in and a page;
//! - transfer: a 199 MB file uploaded and downloaded through the dashboard
//!   and directly to the same upstream, with the dashboard's peak memory;
//! - pages: the batch table (10,000 indexed batches) under 100 connections
//!   of `wrk`, latency p50/p99;
//! - wasm: the release bundle, gzip -9;
//! - streams: memory per open live stream (0 to 3,000 streams);
//! - soak: 500 live viewers plus page traffic for `BENCH_SOAK_SECS`
//!   (default 300), memory sampled every 10 s.

#[path = "../tests/it/common.rs"]
mod common;
mod report;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{add_user, serve_command, session_cookie, signed_in, Fetch, Proc, TempDir, PASSWORD};
use report::{cpu_secs, median, row, rss_mib, PeakRss};

const KEY: &str = "sk-bench-suite";

async fn wait_ready(base: &str) {
    let http = reqwest::Client::new();
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Start to ready, median of 5 (a database and account already there, as
/// on every start but the first); then idle memory.
async fn startup() {
    let dir = TempDir::new("bench-start");
    let data = dir.0.join("data");
    add_user(&data, "op", "operator", PASSWORD);
    let mut times = Vec::new();
    let mut idle = 0.0;
    for i in 0..6 {
        let addr = format!("127.0.0.1:{}", common::free_port());
        let mut cmd = serve_command(&addr, &data);
        let started = Instant::now();
        let p = Proc::spawn(cmd_quiet(&mut cmd), addr);
        wait_ready(&p.base()).await;
        let t = started.elapsed().as_secs_f64();
        if i > 0 {
            times.push(t); // the first start creates the database
        }
        if i == 5 {
            idle = idle_rss(&p).await;
        }
        p.stop();
    }
    // The same against a remote upstream (a standalone sandbox): no
    // built-in sandbox in the process.
    let sb = common::sandbox(&dir.0.join("sb"), KEY, &[]);
    let addr = format!("127.0.0.1:{}", common::free_port());
    let mut cmd = serve_command(&addr, &data);
    cmd.args(["--upstream-url", &format!("{}/v1", sb.base())])
        .env("OPENAI_API_KEY", KEY);
    let p = Proc::spawn(cmd_quiet(&mut cmd), addr);
    wait_ready(&p.base()).await;
    let idle_remote = idle_rss(&p).await;
    p.stop();
    let t = median(times);
    println!("\n### Start-up and idle memory\n");
    println!("| what | figure |\n| --- | ---: |");
    println!("| start to ready (median of 5) | {:.0} ms |", t * 1000.0);
    println!("| idle RSS (signed in, one page served, 5 s later) | {idle:.1} MiB |");
    println!("| idle RSS, remote upstream (the same) | {idle_remote:.1} MiB |");
    row(
        "start to ready (`/readyz` 200)",
        &format!("{:.0} ms", t * 1000.0),
        "≤ 1 s",
        Some(t <= 1.0),
    );
    row(
        "idle RSS, built-in sandbox",
        &format!("{idle:.1} MiB"),
        "≤ 40 MiB",
        Some(idle <= 40.0),
    );
    row(
        "idle RSS, remote upstream",
        &format!("{idle_remote:.1} MiB"),
        "≤ 30 MiB",
        Some(idle_remote <= 30.0),
    );
}

/// A server's RSS at rest: after a sign-in and one page, 5 s later.
async fn idle_rss(p: &Proc) -> f64 {
    let op = signed_in(&p.base(), "op", PASSWORD).await;
    let r = op
        .get(format!("{}/", p.base()))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    tokio::time::sleep(Duration::from_secs(5)).await;
    rss_mib(p.child.id()).0
}

/// Logs at warn: a benchmark should not time the terminal.
fn cmd_quiet(cmd: &mut Command) -> Command {
    let mut c = Command::new(cmd.get_program());
    c.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.env("RUST_LOG", "warn");
    c
}

fn file_part(path: &Path, name: &str) -> reqwest::multipart::Part {
    let len = std::fs::metadata(path).unwrap().len();
    let file = std::fs::File::open(path).unwrap();
    let stream =
        tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), 64 * 1024);
    reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), len)
        .file_name(name.to_string())
}

/// Reads a response to the end, counting bytes.
async fn drain(r: reqwest::Response) -> u64 {
    use futures_util::StreamExt;
    assert!(r.status().is_success(), "{}", r.status());
    let mut body = r.bytes_stream();
    let mut n = 0;
    while let Some(chunk) = body.next().await {
        n += chunk.unwrap().len() as u64;
    }
    n
}

async fn transfer() {
    let dir = TempDir::new("bench-transfer");
    let path = dir.0.join("requests-199mb.jsonl");
    let spec = batchboard_sandbox::example::ExampleSpec {
        requests: 50_000,
        target_bytes: 199_000_000,
        fail_every: None,
        model: "gpt-4o-mini".into(),
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    batchboard_sandbox::example::write_example(&spec, &mut out).unwrap();
    drop(out);
    let size = std::fs::metadata(&path).unwrap().len() as f64;
    // The sandbox keeps the batches `validating`, so that it does not work
    // on them while the transfers are timed.
    let sb = common::sandbox(
        &dir.0.join("sb"),
        KEY,
        &["--sandbox-validation-ms", "3600000"],
    );
    let up = format!("{}/v1", sb.base());
    let data = dir.0.join("data");
    add_user(&data, "op", "operator", PASSWORD);
    let addr = format!("127.0.0.1:{}", common::free_port());
    let mut cmd = serve_command(&addr, &data);
    cmd.args(["--upstream-url", &up]).env("OPENAI_API_KEY", KEY);
    let dash = Proc::spawn(cmd_quiet(&mut cmd), addr);
    let base = dash.base();
    let pid = dash.child.id();
    let op = signed_in(&base, "op", PASSWORD).await;
    let direct = reqwest::Client::new();

    // One warm-up round (page cache, connections), then `rounds` timed
    // ones; each figure is its median (a single 0.2 s transfer on two
    // shared cores varied by a fifth from run to run).
    let rounds: usize = std::env::var("BENCH_TRANSFER_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let mut timed: Vec<[f64; 6]> = Vec::new();
    // Each upload's CPU seconds: [client, dashboard, upstream], direct and
    // through the dashboard.
    let mut cpu: Vec<[[f64; 3]; 2]> = Vec::new();
    let (sb_pid, dash_pid) = (sb.child.id().to_string(), pid.to_string());
    let used = || [cpu_secs("self"), cpu_secs(&dash_pid), cpu_secs(&sb_pid)];
    let spent = |before: [f64; 3]| {
        let after = used();
        [0, 1, 2].map(|i| after[i] - before[i])
    };
    for round in 0..=rounds {
        // Upload: directly to the upstream's Files API…
        let cpu_direct = used();
        let t = Instant::now();
        let form = reqwest::multipart::Form::new()
            .text("purpose", "batch")
            .part("file", file_part(&path, "direct.jsonl"));
        let r = direct
            .post(format!("{up}/files"))
            .bearer_auth(KEY)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let file: serde_json::Value = r.json().await.unwrap();
        let direct_up = t.elapsed().as_secs_f64();
        let cpu_direct = spent(cpu_direct);
        // …and through the dashboard, which checks every line and creates
        // the batch too.
        let before = rss_mib(pid).0;
        let peak = PeakRss::start(pid);
        let cpu_dash = used();
        let t = Instant::now();
        // As the page sends it: the size first, so the file streams through.
        let form = reqwest::multipart::Form::new()
            .text("endpoint", "/v1/chat/completions")
            .text("completion_window", "24h")
            .text("file_size", (size as u64).to_string())
            .part("file", file_part(&path, "dash.jsonl"));
        let r = op
            .post(format!("{base}/api/batches"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let dash_up = t.elapsed().as_secs_f64();
        let cpu_dash = spent(cpu_dash);
        let batch: serde_json::Value = r.json().await.unwrap();
        let up_growth = peak.stop() - before;

        // Download of the same file: directly, then through the dashboard.
        let id = file["id"].as_str().unwrap();
        let t = Instant::now();
        let n = drain(
            direct
                .get(format!("{up}/files/{id}/content"))
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let direct_down = t.elapsed().as_secs_f64();
        assert_eq!(n as f64, size);
        let before = rss_mib(pid).0;
        let peak = PeakRss::start(pid);
        let t = Instant::now();
        let n = drain(
            // The same bytes, as the batch's input file (the dashboard
            // serves only files of batches it shows).
            op.get(format!(
                "{base}/files/{}/content?batch={}",
                batch["input_file_id"].as_str().unwrap(),
                batch["id"].as_str().unwrap()
            ))
            .send()
            .await
            .unwrap(),
        )
        .await;
        let dash_down = t.elapsed().as_secs_f64();
        let down_growth = peak.stop() - before;
        assert_eq!(n as f64, size);
        if round > 0 {
            cpu.push([cpu_direct, cpu_dash]);
            timed.push([
                direct_up,
                dash_up,
                up_growth,
                direct_down,
                dash_down,
                down_growth,
            ]);
        }
    }
    let median = |i: usize| {
        let mut v: Vec<f64> = timed.iter().map(|t| t[i]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let most = |i: usize| timed.iter().map(|t| t[i]).fold(f64::MIN, f64::max);
    let mbs = |s: f64| size / 1e6 / s;
    let mut rows = Vec::new();
    for (what, d, b, growth) in [
        ("upload", median(0), median(1), most(2)),
        ("download", median(3), median(4), most(5)),
    ] {
        rows.push(format!(
            "| {what} | {d:.2} s ({:.0} MB/s) | {b:.2} s ({:.0} MB/s) | {:.2}× | {growth:.1} MiB |",
            mbs(d),
            mbs(b),
            d / b
        ));
        row(
            &format!(
                "{:.0} MB {what} through the dashboard vs direct",
                size / 1e6
            ),
            &format!("{:.2}× direct; server RSS +{growth:.1} MiB", d / b),
            "≥ 0.9×, RSS growth ≤ 64 MiB",
            Some(d / b >= 0.9 && growth <= 64.0),
        );
    }
    println!(
        "\n### Transfers: {:.1} MB file, {} requests (median of {rounds} rounds after a warm-up; RSS growth: the most of any round)\n",
        size / 1e6,
        spec.requests
    );
    println!("| transfer | direct to the upstream | through the dashboard | ratio | dashboard RSS growth |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for r in rows {
        println!("{r}");
    }
    // Where the upload's time goes: every process's CPU seconds (median of
    // the rounds). Three processes on two cores take at least half their
    // CPU sum; the ratio's bound follows from it.
    let med = |way: usize, who: usize| report::median(cpu.iter().map(|c| c[way][who]).collect());
    println!("\n### Upload CPU seconds (median of {rounds} rounds; 10 ms ticks)\n");
    println!("| upload | client | dashboard | upstream (sandbox) | sum | time ≥ sum / 2 cores |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (way, name) in [(0, "direct"), (1, "through the dashboard")] {
        let (c, d, u) = (med(way, 0), med(way, 1), med(way, 2));
        println!(
            "| {name} | {c:.2} | {d:.2} | {u:.2} | {:.2} | {:.2} s |",
            c + d + u,
            (c + d + u) / 2.0
        );
    }
}

/// Runs wrk; returns (p50 ms, p99 ms, requests/s).
fn wrk(url: &str, cookie: &str, connections: u32, secs: u64) -> (f64, f64, f64) {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{secs}s"),
            "--latency",
            "-H",
            &format!("Cookie: {cookie}"),
            "-H",
            "Accept: text/html",
            url,
        ])
        .output()
        .expect("wrk (scripts/bootstrap.sh --bench installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !text.contains("Non-2xx"),
        "pages failed under load:\n{text}"
    );
    let ms = |v: &str| -> f64 {
        let (num, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
        let n: f64 = num.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            "m" => n * 60_000.0,
            _ => f64::NAN,
        }
    };
    let pick = |label: &str| {
        text.lines()
            .find_map(|l| {
                let l = l.trim();
                l.strip_prefix(label).map(|v| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    let rps = pick("Requests/sec:").parse().unwrap_or(f64::NAN);
    (ms(&pick("50%")), ms(&pick("99%")), rps)
}

/// A dashboard on the built-in sandbox with 10,000 batches in its index.
async fn seeded_dashboard(dir: &TempDir) -> (Proc, String) {
    let data = dir.0.join("data");
    add_user(&data, "op", "operator", PASSWORD);
    let seeded = Command::new(common::BIN)
        .args(["index-seed", "--count", "10000", "--data-dir"])
        .arg(&data)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(seeded.success());
    let addr = format!("127.0.0.1:{}", common::free_port());
    let mut cmd = serve_command(&addr, &data);
    // One account stands for the soak's 500 viewers.
    cmd.args(["--max-streams-per-user", "100000"]);
    let dash = Proc::spawn(cmd_quiet(&mut cmd), addr);
    let cookie = session_cookie(&dash.base(), "op").await;
    (dash, cookie)
}

async fn pages() {
    let dir = TempDir::new("bench-pages");
    let (dash, cookie) = seeded_dashboard(&dir).await;
    let base = dash.base();
    let url = format!("{base}/");
    wrk(&url, &cookie, 10, 3); // warm-up
    println!(
        "\n### Page latency: the batch table (10,000 batches indexed, 20 rows), wrk, 20 s each\n"
    );
    // The anchor: a bare axum handler serving a body of the page's size,
    // measured the same way on the same cores.
    let size = reqwest::Client::new()
        .get(&url)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    let html: &'static str = Box::leak("x".repeat(size).into_boxed_str());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let anchor = format!("http://{}/", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move { axum::response::Html(html) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("| connections | p50 ms | p99 ms | pages / s | anchor (bare handler, {size} bytes): p50 / p99 ms, pages / s |\n| ---: | ---: | ---: | ---: | --- |");
    let mut at_100 = (0.0, 0.0, 0.0, (0.0, 0.0, 0.0));
    for c in [10, 100] {
        let (p50, p99, rps) = wrk(&url, &cookie, c, 20);
        let (a50, a99, arps) = wrk(&anchor, "", c, 10);
        println!("| {c} | {p50:.1} | {p99:.1} | {rps:.0} | {a50:.1} / {a99:.1}, {arps:.0} |");
        if c == 100 {
            at_100 = (p50, p99, rps, (a50, a99, arps));
        }
    }
    let (p50, p99, rps, (a50, a99, arps)) = at_100;
    row(
        "batch table p50 / p99 at 100 connections",
        &format!(
            "{p50:.1} ms / {p99:.1} ms, {rps:.0} pages/s (bare handler, same size: {a50:.1} / {a99:.1} ms, {arps:.0}/s)"
        ),
        "p99 ≤ 50 ms",
        Some(p99 <= 50.0),
    );
    server_trouble(&dash);
}

fn wasm() {
    // Named after its content (`batchboard.<hash>.wasm`) by the build.
    let pkg = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/site/pkg"
    ));
    let path = std::fs::read_dir(pkg).ok().and_then(|dir| {
        dir.flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
    });
    let Some((path, raw)) = path.and_then(|p| std::fs::read(&p).ok().map(|raw| (p, raw))) else {
        row(
            "WASM bundle, gzip -9",
            "not built (run `make build`)",
            "≤ 300 KB",
            None,
        );
        return;
    };
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -9 -c '{}' | wc -c", path.display()))
        .output()
        .unwrap();
    let gz: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    println!("\n### WASM bundle\n");
    println!(
        "release `{}`: {} bytes, {} bytes gzip -9",
        path.display(),
        raw.len(),
        gz
    );
    row(
        "WASM bundle (largest file), gzip -9",
        &format!("{:.0} KB ({} bytes raw)", gz / 1000.0, raw.len()),
        "≤ 300 KB",
        Some(gz <= 300_000.0),
    );
}

/// 500 live viewers and page traffic for a while; memory every 10 s.
async fn soak() {
    let secs: u64 = std::env::var("BENCH_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let viewers: usize = std::env::var("BENCH_SOAK_VIEWERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let dir = TempDir::new("bench-soak");
    let (dash, cookie) = seeded_dashboard(&dir).await;
    let base = dash.base();
    let pid = dash.child.id();
    let op = signed_in(&base, "op", PASSWORD).await;
    // Batches running on the sandbox all along, so that changes flow: four
    // at any time (one started as one finishes), so that the work stays
    // the same while memory is watched.
    let start_batch = |i: usize| {
        let (op, base) = (op.clone(), base.clone());
        async move {
            let body: String = (0..5000)
                .map(|j| format!("{{\"custom_id\":\"s{i}-{j}\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{{\"role\":\"user\",\"content\":\"x\"}}]}}}}\n"))
                .collect();
            let (status, text) =
                common::upload(&op, &base, body.into_bytes(), "/v1/chat/completions", "").await;
            assert_eq!(status, 200, "{text}");
            let batch: serde_json::Value = serde_json::from_str(&text).unwrap();
            batch["id"].as_str().unwrap().to_string()
        }
    };
    const RUNNING: usize = 4;
    let mut running = Vec::new();
    for i in 0..RUNNING {
        running.push(start_batch(i).await);
    }
    let (readers, events) = report::open_streams(&op, &base, viewers).await;
    // Page traffic in the background, in 10 s rounds.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let (stop, url, cookie) = (stop.clone(), format!("{base}/"), cookie.clone());
        std::thread::spawn(move || {
            let mut worst: f64 = 0.0;
            let mut pages = 0.0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (_, p99, rps) = wrk(&url, &cookie, 20, 10);
                worst = worst.max(p99);
                pages += rps * 10.0;
            }
            (worst, pages)
        })
    };
    println!(
        "\n### Soak: {viewers} live viewers + page traffic (wrk, 20 connections) for {secs} s\n"
    );
    // Beside RSS, what it is made of, and the workload: the index's
    // database and the batches running on the sandbox.
    println!("| elapsed s | RSS MiB | anonymous MiB | file + shared MiB | database MiB | running batches | open streams | batch events received |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut made = RUNNING;
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let rss = rss_mib(pid).0;
        let (anon, file) = report::rss_kinds_mib(pid);
        let db_mib = ["batchboard.db", "batchboard.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.0.join("data").join(f)).ok())
            .map(|m| m.len() as f64)
            .sum::<f64>()
            / (1024.0 * 1024.0);
        let mut still = Vec::new();
        for id in running {
            let batch: serde_json::Value = op
                .post(format!("{base}/api/get_batch"))
                .form(&[("id", id.as_str())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap_or_default();
            let done = ["completed", "failed", "expired", "cancelled"]
                .contains(&batch["status"].as_str().unwrap_or_default());
            if !done {
                still.push(id);
            }
        }
        running = still;
        while running.len() < RUNNING {
            running.push(start_batch(made).await);
            made += 1;
        }
        let ready: serde_json::Value = op.get(format!("{base}/readyz")).fetch_json().await;
        let (n, _, _) = report::received(&events);
        println!(
            "| {} | {rss:.1} | {anon:.1} | {file:.1} | {db_mib:.1} | {} | {} | {n} |",
            started.elapsed().as_secs(),
            running.len(),
            ready["streams"]
        );
        samples.push(rss);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (worst_p99, pages) = traffic.join().unwrap();
    for r in readers {
        r.abort();
    }
    // Flat: the last ten minutes (or the second half of a shorter run).
    // Growth is the least-squares line through its samples, from its
    // start to its end (the samples move by a MiB or two either way, which
    // first-to-peak counts as growth); first-to-peak is printed beside it.
    let window = ((600 / 10) as usize).min(samples.len() / 2).max(1);
    let tail = &samples[samples.len() - window..];
    let (from, peak) = (tail[0], tail.iter().cloned().fold(0.0, f64::max));
    let to_peak = (peak - from) / from * 100.0;
    let (start, end) = report::trend(tail);
    let growth = (end - start) / start * 100.0;
    let figures = format!(
        "RSS over the last {} s: trend {start:.1} → {end:.1} MiB ({growth:+.1} %), first sample → peak {from:.1} → {peak:.1} MiB ({to_peak:+.1} %); worst 10 s p99 {worst_p99:.1} ms",
        window * 10
    );
    println!("\n{pages:.0} pages served; {figures}");
    server_trouble(&dash);
    row(
        &format!("soak: {viewers} viewers + pages, {secs} s"),
        &figures,
        "RSS over the last 10 min grows ≤ 2 %",
        Some(growth <= 2.0),
    );
}

/// Memory per open live stream, with nothing else going on: the server's
/// RSS at 0, 1,000, 2,000 and 3,000 open streams (each the median of five
/// readings once the streams are open), and the slope of the line through
/// them. (The soak's streams opened beside running batches moved RSS less
/// than the batches did, so it could not tell.) Kernel socket buffers are
/// not in RSS and not counted.
async fn streams() {
    const STEP: usize = 1000;
    const STEPS: usize = 3;
    let dir = TempDir::new("bench-streams");
    let (dash, _) = seeded_dashboard(&dir).await;
    let (base, pid) = (dash.base(), dash.child.id());
    let op = signed_in(&base, "op", PASSWORD).await;
    let settled = || async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(rss_mib(pid).0);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        median(v)
    };
    let mut rss = vec![settled().await];
    let mut readers = Vec::new();
    for _ in 0..STEPS {
        readers.push(report::open_streams(&op, &base, STEP).await);
        rss.push(settled().await);
    }
    let ready: serde_json::Value = op.get(format!("{base}/readyz")).fetch_json().await;
    assert_eq!(ready["streams"], STEP * STEPS, "every stream is open");
    let (start, end) = report::trend(&rss);
    let kib = (end - start) * 1024.0 / (STEP * STEPS) as f64;
    let at: Vec<String> = rss.iter().map(|m| format!("{m:.1}")).collect();
    let figures = format!(
        "{kib:.1} KiB per open stream (RSS at 0 / 1,000 / 2,000 / 3,000 streams: {} MiB)",
        at.join(" / ")
    );
    println!("\n### Memory per live stream (the server alone, no batches running)\n\n{figures}");
    for (handles, _) in readers {
        for r in handles {
            r.abort();
        }
    }
    server_trouble(&dash);
    row("memory per open live stream", &figures, "measured", None);
}

/// What the server logged at warning level or above, in short: a panic
/// (answered 500, or not at all) is a defect whatever the figures say, and
/// with `RUST_BACKTRACE` set, symbolizing its backtrace maps the binary's
/// debug information, which then counts in RSS.
fn server_trouble(dash: &Proc) {
    let log = dash.output();
    let panics = log.matches(" panicked at ").count();
    let warnings = log.lines().filter(|l| l.contains(" WARN ")).count();
    let errors = log.lines().filter(|l| l.contains(" ERROR ")).count();
    println!("server log: {panics} panics, {errors} errors, {warnings} warnings");
    for at in log.match_indices(" panicked at ").map(|(i, _)| i).take(2) {
        let start = log[..at].rfind('\n').map_or(0, |i| i + 1);
        let text: Vec<&str> = log[start..].lines().take(40).collect();
        println!("```\n{}\n```", text.join("\n"));
    }
    for l in log
        .lines()
        .filter(|l| l.contains(" ERROR ") || l.contains(" WARN "))
        .take(10)
    {
        println!("    {l}");
    }
}

fn main() {
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let run = |part: &str| only.is_empty() || only == part;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        if run("wasm") {
            wasm();
        }
        if run("startup") {
            startup().await;
        }
        if run("pages") {
            pages().await;
        }
        if run("transfer") {
            transfer().await;
        }
        if run("streams") {
            streams().await;
        }
        if only == "soak" {
            soak().await;
        }
    });
}
