//! Benchmarks of the index and the event fan-out (issue: live updates).
//! Not part of the test run:
//!
//!     cargo bench --features ssr --bench live
//!
//! Prints markdown tables: index query times over 100,000 batches (SQLite
//! and Postgres; `BENCH_INDEX_N` changes the count),
//! an idle dashboard's CPU on that index beside an empty one (on Postgres
//! with the cluster's CPU), the watcher's first full sync of as many from
//! the sandbox on each backend, and upstream calls per minute against the
//! number of open event streams.
//! `BENCH_WINDOW_SECS` (default 30) sets how long each fan-out run lasts.

// The integration tests' helpers: the same ways of starting the binary,
// adding accounts and signing in.
#[path = "../tests/it/common.rs"]
mod common;
#[path = "../tests/it/pg.rs"]
mod pg;
mod report;

use common::Fetch;
use std::time::{Duration, Instant};

use common::{
    add_user, create_upstream_from, sandbox, seed_sandbox_dir, serve_command, signed_in, Proc,
    TempDir, PASSWORD,
};

use batchboard_core::dashboard::BatchQuery;
use batchboard_server::store::Db;

const KEY: &str = "sk-bench-live";

use report::{percentile, row};

/// The index at scale (`BENCH_INDEX_N`, default 100,000 batches) on SQLite
/// and on a throwaway Postgres cluster: bulk seeding, then each query of
/// the table 200 times (a page of 20, as the table shows by default).
async fn bench_index() {
    let n = index_n();
    let dir = TempDir::new("bench-index");
    let sqlite = Db::open(None, &dir.0).await.unwrap();
    index_on("SQLite", &sqlite, None, n).await;
    drop(sqlite);
    idle_cpu(&dir, n).await;
    let cluster = pg::Postgres::start(&dir.0.join("pg"));
    let postgres = Db::open(Some(&cluster.url()), &dir.0.join("pg-data"))
        .await
        .unwrap();
    index_on("Postgres", &postgres, Some(&cluster), n).await;
    drop(postgres);
    idle_cpu_postgres(&dir, &cluster, n).await;
    first_sync(&dir, &cluster, n).await;
}

/// The watcher's first full sync on SQLite and on Postgres: a sandbox
/// holding `n` finished batches and a dashboard with an empty index, timed
/// from the dashboard's start until it logs that it has read and written
/// the whole list; the index is counted then.
async fn first_sync(dir: &TempDir, cluster: &pg::Postgres, n: usize) {
    let sb_dir = dir.0.join("sync-sandbox");
    seed_sandbox_dir(&sb_dir, n, 2, batchboard_core::BatchStatus::Completed);
    let sb = sandbox(&sb_dir, KEY, &[]);
    let sb_pid = sb.child.id().to_string();
    cluster.psql("CREATE DATABASE first_sync");
    println!("\n### The watcher's first full sync of {n} batches (sandbox on loopback)\n");
    println!("| index | seconds | rows/s | CPU seconds |");
    println!("| --- | ---: | ---: | --- |");
    for (backend, url) in [
        ("SQLite", None),
        ("Postgres", Some(cluster.url_of("first_sync"))),
    ] {
        let data = TempDir::new("bench-sync");
        let addr = format!("127.0.0.1:{}", common::free_port());
        let mut cmd = serve_command(&addr, &data.0);
        // The watcher says when a round has read the list to its end.
        cmd.env("RUST_LOG", "warn,batchboard_server::watcher=info")
            .args(["--upstream-url", &format!("{}/v1", sb.base())])
            .env("OPENAI_API_KEY", KEY);
        if let Some(u) = &url {
            cmd.args(["--database-url", u]);
        }
        let before = (
            report::cpu_secs(&sb_pid),
            report::tree_cpu_secs(&cluster.pid()),
        );
        let started = Instant::now();
        let dash = Proc::spawn(cmd, addr);
        // Watching the log costs nothing beside the sync; counting the
        // index every few milliseconds while it is written would not.
        while !dash.output().contains("listed every batch") {
            assert!(
                started.elapsed() < Duration::from_secs(900),
                "the first sync did not end in 15 minutes"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        let cpu = (
            report::cpu_secs(&dash.child.id().to_string()),
            report::cpu_secs(&sb_pid) - before.0,
            report::tree_cpu_secs(&cluster.pid()) - before.1,
        );
        let db = Db::open(url.as_deref(), &data.0).await.unwrap();
        let (_, total, _, _) = db
            .query_batches(&BatchQuery::default(), None)
            .await
            .unwrap();
        assert_eq!(total as usize, n, "the index after the first sync");
        drop(db);
        drop(dash);
        let rate = n as f64 / secs;
        let postgres = if url.is_some() {
            format!(", Postgres {:.1}", cpu.2)
        } else {
            String::new()
        };
        println!(
            "| {backend} | {secs:.1} | {rate:.0} | dashboard {:.1}, sandbox {:.1}{postgres} |",
            cpu.0, cpu.1
        );
        row(
            &format!("{backend}: the watcher's first full sync of {n} batches"),
            &format!(
                "{rate:.0} rows/s ({secs:.1} s; CPU s dashboard {:.1}, sandbox {:.1}{postgres})",
                cpu.0, cpu.1
            ),
            "≥ 20,000 rows/s",
            Some(rate >= 20_000.0),
        );
    }
}

/// `BENCH_INDEX_N`, 100,000 unless set.
fn index_n() -> usize {
    std::env::var("BENCH_INDEX_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000)
}

async fn index_on(backend: &str, db: &Db, cluster: Option<&pg::Postgres>, n: usize) {
    let all = batchboard_sandbox::synthetic::batches(n, 1);
    let started = Instant::now();
    let items: Vec<_> = all
        .iter()
        .map(|(b, name)| (b, Some(name.as_str())))
        .collect();
    db.upsert_bulk(&items, |_, _| i64::MAX / 2).await.unwrap();
    let seed_s = started.elapsed().as_secs_f64();
    // A live database has its statistics (autovacuum); right after a bulk
    // load they are missing, and autovacuum would run during the timing.
    if let Some(c) = cluster {
        c.psql("VACUUM ANALYZE");
    }
    let q = |f: &dyn Fn(&mut BatchQuery)| {
        let mut q = BatchQuery::default();
        f(&mut q);
        q
    };
    // (name, query, target p99 ms)
    let cases: Vec<(&str, BatchQuery, f64)> = vec![
        ("first page, newest first", q(&|_| {}), 5.0),
        (
            "page 100 (offset 1,980)",
            q(&|q| q.offset = Some(1980)),
            20.0,
        ),
        (
            "status in (completed, failed)",
            q(&|q| q.status = Some("completed,failed".into())),
            20.0,
        ),
        (
            "creator + model",
            q(&|q| {
                q.creator = Some("ben".into());
                q.model = Some("gpt-4.1".into());
            }),
            20.0,
        ),
        (
            "metadata team=research",
            q(&|q| {
                q.meta_key = Some("team".into());
                q.meta_value = Some("research".into());
            }),
            20.0,
        ),
        (
            "created between two days",
            q(&|q| {
                q.from = Some("2026-01-03".into());
                q.to = Some("2026-01-05".into());
            }),
            20.0,
        ),
        (
            "search 'support-12'",
            q(&|q| q.q = Some("support-12".into())),
            20.0,
        ),
        (
            "sort by model, ascending",
            q(&|q| {
                q.sort = Some("model".into());
                q.dir = Some("asc".into());
            }),
            20.0,
        ),
    ];
    println!("\n### Index queries, {n} batches, {backend} (a page of 20)\n");
    let rate = n as f64 / seed_s;
    println!("Seeding {n} batches in bulk: {seed_s:.1} s ({rate:.0} rows/s)\n");
    row(
        &format!("{backend}: seeding {n} batches in bulk"),
        &format!("{rate:.0} rows/s"),
        "≥ 20,000 rows/s",
        Some(rate >= 20_000.0),
    );
    println!("| query | matches | p50 ms | p99 ms (rows + count) | p99 ms (rows, count cached as the table does) | target |");
    println!("| --- | ---: | ---: | ---: | ---: | --- |");
    for (name, query, target) in cases {
        let mut times = Vec::new();
        let mut cached = Vec::new();
        let mut total = 0;
        for _ in 0..200 {
            let t = Instant::now();
            let (_, tot, _, _) = db.query_batches(&query, None).await.unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            total = tot;
            let t = Instant::now();
            db.query_batches(&query, Some(total)).await.unwrap();
            cached.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        cached.sort_by(f64::total_cmp);
        let p99 = percentile(&cached, 0.99);
        println!(
            "| {name} | {total} | {:.2} | {:.2} | {p99:.2} | ≤ {target} ms |",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
        );
        row(
            &format!("{backend}, {n} batches: {name}"),
            &format!(
                "p99 {p99:.2} ms ({:.2} ms with the count)",
                percentile(&times, 0.99)
            ),
            &format!("p99 ≤ {target} ms"),
            Some(p99 <= target),
        );
    }
}

/// CPU (user + system) a dashboard uses in `secs` while nobody uses it, as
/// % of one core, after 10 s to settle (its first full list); with a
/// Postgres `database` (its URL and cluster), the cluster's CPU too.
async fn idle_cpu_of(
    data: &std::path::Path,
    database: Option<(&str, &pg::Postgres)>,
    secs: u64,
) -> (f64, f64) {
    let addr = format!("127.0.0.1:{}", common::free_port());
    let mut cmd = serve_command(&addr, data);
    cmd.env("RUST_LOG", "warn");
    if let Some((url, _)) = database {
        cmd.args(["--database-url", url]);
    }
    let dash = Proc::spawn(cmd, addr);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let pid = dash.child.id().to_string();
    let cluster = || database.map_or(0.0, |(_, c)| report::tree_cpu_secs(&c.pid()));
    let before = (report::cpu_secs(&pid), cluster());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let used = (report::cpu_secs(&pid) - before.0, cluster() - before.1);
    drop(dash);
    let percent = |s: f64| s / secs as f64 * 100.0;
    (percent(used.0), percent(used.1))
}

/// An idle dashboard on the seeded SQLite index (the watcher's rounds and
/// the status every 2 s) beside one on an empty index.
async fn idle_cpu(seeded: &TempDir, n: usize) {
    let secs = 30;
    let empty = TempDir::new("bench-idle-empty");
    let (anchor, _) = idle_cpu_of(&empty.0, None, secs).await;
    let (with_n, _) = idle_cpu_of(&seeded.0, None, secs).await;
    println!(
        "\nIdle dashboard on the built-in sandbox, CPU over {secs} s: {with_n:.2} % of a core with {n} batches indexed (SQLite), {anchor:.2} % with none\n"
    );
    row(
        &format!("idle CPU, {n} batches indexed (SQLite)"),
        &format!("{with_n:.2} % of a core (empty index: {anchor:.2} %)"),
        "close to the empty index's",
        None,
    );
}

/// The same on Postgres: the dashboard on the seeded database beside one on
/// an empty database of the same cluster, each with the cluster's CPU
/// (several replicas share one database; what an idle one costs it counts).
async fn idle_cpu_postgres(dir: &TempDir, cluster: &pg::Postgres, n: usize) {
    let secs = 30;
    cluster.psql("CREATE DATABASE idle_empty");
    let empty = TempDir::new("bench-idle-pg-empty");
    let (dash_0, pg_0) = idle_cpu_of(
        &empty.0,
        Some((&cluster.url_of("idle_empty"), cluster)),
        secs,
    )
    .await;
    let (dash_n, pg_n) = idle_cpu_of(
        &dir.0.join("pg-data"),
        Some((&cluster.url(), cluster)),
        secs,
    )
    .await;
    println!(
        "\nIdle dashboard on Postgres, CPU over {secs} s, dashboard + cluster: {dash_n:.2} + {pg_n:.2} % of a core with {n} batches indexed, {dash_0:.2} + {pg_0:.2} % with none\n"
    );
    row(
        &format!("idle CPU, {n} batches indexed (Postgres)"),
        &format!(
            "{:.2} % of a core: dashboard {dash_n:.2} + Postgres {pg_n:.2} (empty database: {:.2} = {dash_0:.2} + {pg_0:.2})",
            dash_n + pg_n,
            dash_0 + pg_0
        ),
        "close to the empty database's",
        None,
    );
}

async fn sandbox_requests(base: &str) -> u64 {
    let v: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/sandbox/stats"))
        .bearer_auth(KEY)
        .fetch_json()
        .await;
    v["requests"].as_u64().unwrap()
}

async fn bench_fanout() {
    let window = Duration::from_secs(
        std::env::var("BENCH_WINDOW_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30),
    );
    let dir = TempDir::new("bench-fanout");
    let sb = sandbox(&dir.0.join("sb"), KEY, &["--sandbox-rps", "2"]);
    let sb_base = sb.base();
    let data = dir.0.join("data");
    add_user(&data, "vi", "viewer", PASSWORD);
    // Three running batches keep the watcher refreshing all along.
    for i in 0..3 {
        let body: String = (0..2000)
            .map(|j| format!("{{\"custom_id\":\"b{i}-{j}\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{{\"model\":\"m\",\"messages\":[{{\"role\":\"user\",\"content\":\"x\"}}]}}}}\n"))
            .collect();
        create_upstream_from(&format!("{sb_base}/v1"), KEY, body).await;
    }
    let addr = format!("127.0.0.1:{}", common::free_port());
    let mut cmd = serve_command(&addr, &data);
    // One account stands for every viewer.
    cmd.args(["--max-streams-per-user", "100000"]);
    cmd.args(["--upstream-url", &format!("{sb_base}/v1")])
        .env("OPENAI_API_KEY", KEY);
    let dash = Proc::spawn(cmd, addr);
    let base = dash.base();
    let viewer = signed_in(&base, "vi", PASSWORD).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!(
        "\n### Upstream calls against viewers ({}-second windows, 3 running batches)\n",
        window.as_secs()
    );
    println!("| open event streams | upstream calls / min | events received / stream / min |");
    println!("| ---: | ---: | ---: |");
    let counts: Vec<usize> = std::env::var("BENCH_VIEWERS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 10, 100, 500]);
    let mut calls_at = Vec::new();
    for &viewers in &counts {
        let (readers, counters) = report::open_streams(&viewer, &base, viewers).await;
        let before = sandbox_requests(&sb_base).await;
        report::reset(&counters);
        tokio::time::sleep(window).await;
        let calls = sandbox_requests(&sb_base).await - before;
        let (events, fewest, most) = report::received(&counters);
        let per_min = 60.0 / window.as_secs_f64();
        println!(
            "| {viewers} | {:.0} | {:.1} (each stream {fewest}–{most} in the window) |",
            calls as f64 * per_min,
            events as f64 / viewers as f64 * per_min
        );
        calls_at.push((viewers, calls as f64 * per_min, fewest, most));
        for r in readers {
            r.abort();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if let (Some(first), Some(last)) = (calls_at.first(), calls_at.last()) {
        row(
            &format!("event fan-out, {} viewers", last.0),
            &format!(
                "{:.0} upstream calls/min ({:.0} with {}); each viewer received {}–{} batch events in {} s",
                last.1,
                first.1,
                first.0,
                last.2,
                last.3,
                window.as_secs()
            ),
            "upstream calls do not grow with viewers; every viewer gets every change (±1 at the window's edge)",
            Some(last.1 <= first.1 * 1.1 + 2.0 && last.3 - last.2 <= 1 && last.2 > 0),
        );
    }
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // BENCH_ONLY=index or BENCH_ONLY=fanout runs one half;
    // BENCH_ONLY=sync the first full sync alone.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    rt.block_on(async {
        if only == "sync" {
            let dir = TempDir::new("bench-sync");
            let cluster = pg::Postgres::start(&dir.0.join("pg"));
            first_sync(&dir, &cluster, index_n()).await;
            return;
        }
        if only != "fanout" {
            bench_index().await;
        }
        if only != "index" {
            bench_fanout().await;
        }
    });
}
