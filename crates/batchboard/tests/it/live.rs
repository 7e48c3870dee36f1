//! The index, the watcher and the event stream over real HTTP: filters on a
//! seeded index of 10,000 batches, upstream changes pushed to open streams,
//! upstream cost independent of the number of viewers, and the webhook.

use crate::common::Fetch;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{
    add_user, create_upstream, sandbox, seed_sandbox_dir, server_fn, signed_in, Events, Proc,
    TempDir, PASSWORD,
};
use serde_json::Value;

const KEY: &str = "sk-live-test-7d2e";

fn serve(data: &Path, upstream: &str, extra: &[&str]) -> Proc {
    let addr = format!("127.0.0.1:{}", crate::common::free_port());
    let mut cmd = crate::common::serve_command(&addr, data);
    cmd.args(["--upstream-url", upstream])
        .args(extra)
        .env("OPENAI_API_KEY", KEY);
    Proc::spawn(cmd, addr)
}

async fn upstream_requests(sandbox_base: &str) -> u64 {
    let v: Value = reqwest::Client::new()
        .get(format!("{sandbox_base}/sandbox/stats"))
        .bearer_auth(KEY)
        .fetch_json()
        .await;
    v["requests"].as_u64().unwrap()
}

/// A dashboard watching a sandbox (20 requests/s) every `watch_ms`, a
/// viewer signed in, and that viewer's event stream past its first event.
/// Held whole by the test: its `_dir` and `_sb`, dropped, would remove the
/// files and stop the sandbox.
struct Watched {
    _dir: TempDir,
    _sb: Proc,
    upstream: String,
    dash: Proc,
    http: reqwest::Client,
    events: Events,
}

async fn watched(tag: &str, watch_ms: &str) -> Watched {
    let dir = TempDir::new(tag);
    let sb = sandbox(
        &dir.0.join("sb"),
        KEY,
        &["--sandbox-rps", "20", "--sandbox-validation-ms", "300"],
    );
    let upstream = format!("{}/v1", sb.base());
    let data = dir.0.join("data");
    add_user(&data, "vi", "viewer", PASSWORD);
    let dash = serve(&data, &upstream, &["--watch-interval-ms", watch_ms]);
    let http = signed_in(&dash.base(), "vi", PASSWORD).await;
    let mut events = Events::open(&http, &dash.base()).await;
    let (first, status) = events.next().await;
    assert_eq!(first, "status", "{status}");
    Watched {
        _dir: dir,
        _sb: sb,
        upstream,
        dash,
        http,
        events,
    }
}

#[tokio::test]
async fn a_change_upstream_reaches_open_streams_without_asking() {
    let mut live = watched("live-push", "500").await;

    // Made by someone else, straight on the upstream: the watcher finds it
    // and every open stream hears of it, up to completion.
    let id = create_upstream(&live.upstream, KEY, 20).await;
    let seen = live
        .events
        .batch_where(&id, Duration::from_secs(10), |_| true)
        .await;
    assert_eq!(seen["endpoint"], "/v1/chat/completions");
    let done = live
        .events
        .batch_where(&id, Duration::from_secs(30), |b| b["status"] == "completed")
        .await;
    assert_eq!(done["request_counts"]["completed"], 20);
    // The table reads it from the index, file name included.
    let (status, body) = server_fn(
        &live.http,
        &live.dash.base(),
        "list_batches",
        &[("query[q]", "up.jsonl")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["total"], 1, "{body}");
    assert_eq!(page["batches"][0]["id"], id.as_str());
    assert!(page["watcher"]["last_success_at"].as_i64().is_some());
    // An unfiltered query (all defaults: an empty body, as the browser sends it).
    let (status, body) = server_fn(&live.http, &live.dash.base(), "list_batches", &[]).await;
    assert_eq!(status, 200, "{body}");
    // What the watcher saw along the way: the batch page's progress chart.
    let (status, body) = server_fn(
        &live.http,
        &live.dash.base(),
        "batch_progress",
        &[("id", &id)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let points: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert!(points.len() >= 2, "{body}");
    let done = |p: &Value| p["completed"].as_u64().unwrap() + p["failed"].as_u64().unwrap();
    assert!(
        points
            .windows(2)
            .all(|w| w[0]["at"].as_i64() <= w[1]["at"].as_i64()),
        "{body}"
    );
    assert!(done(&points[0]) < 20, "{body}");
    assert_eq!(points.last().map(done), Some(20), "{body}");
    // Without a session there is no stream.
    let r = reqwest::get(format!("{}/events", live.dash.base()))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

/// The running count every page shows is not counted again while nothing
/// changes (an idle dashboard), so it must be counted again when something
/// does: a batch that starts raises it, one that ends lowers it, each
/// within a few status refreshes (every 2 s), not at the 30 s recount.
#[tokio::test]
async fn the_running_count_follows_batches_as_they_start_and_end() {
    let live = watched("live-running", "500").await;
    let running = || async {
        let (status, body) = server_fn(&live.http, &live.dash.base(), "watcher_status", &[]).await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["running"].as_i64().unwrap()
    };
    let until = |want: i64, within: Duration| {
        let running = &running;
        async move {
            let deadline = Instant::now() + within;
            loop {
                let n = running().await;
                if n == want {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "running {n}, not {want}, after {within:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    // Counted at start, then unchanged: nothing runs.
    until(0, Duration::from_secs(5)).await;
    // 100 requests at 20 a second: about 5 s in progress.
    create_upstream(&live.upstream, KEY, 100).await;
    until(1, Duration::from_secs(5)).await;
    // Ended: counted again at the change, well before a recount would.
    until(0, Duration::from_secs(15)).await;
}

/// A batch the upstream no longer has (here: the upstream came back
/// without its state) leaves the index, and what showed it follows at
/// once, not at the running count's 30 s recount: open tables are told to
/// reload, the running count drops, the list no longer has it.
#[tokio::test]
async fn a_batch_gone_upstream_leaves_every_view() {
    let Watched {
        _dir: dir,
        _sb: sb,
        upstream,
        dash,
        http,
        mut events,
    } = watched("live-gone", "500").await;
    // 2,000 requests at 20 a second: still running when the upstream goes.
    let id = create_upstream(&upstream, KEY, 2000).await;
    events
        .batch_where(&id, Duration::from_secs(10), |b| {
            b["status"] == "in_progress"
        })
        .await;
    let watcher = || async {
        let (status, body) = server_fn(&http, &dash.base(), "watcher_status", &[]).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while watcher().await["running"] != 1 {
        assert!(
            Instant::now() < deadline,
            "the batch never counted as running"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The same address, a new sandbox with nothing in it.
    let addr = sb.base().trim_start_matches("http://").to_string();
    sb.stop();
    let _sb = crate::common::sandbox_at(addr, &dir.0.join("sb-new"), KEY, &["--sandbox-rps", "20"]);

    let started = Instant::now();
    let within = Duration::from_secs(10);
    loop {
        let left = within.saturating_sub(started.elapsed());
        let (name, _) = tokio::time::timeout(left, events.next())
            .await
            .expect("open tables were not told to reload");
        if name == "resync" {
            break;
        }
    }
    let (status, body) = server_fn(&http, &dash.base(), "list_batches", &[]).await;
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["total"], 0, "{body}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let running = watcher().await["running"].clone();
        if running == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "running {running} {:?} after the batch left the index",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn upstream_calls_do_not_grow_with_viewers() {
    let dir = TempDir::new("live-cost");
    let sb = sandbox(&dir.0.join("sb"), KEY, &["--sandbox-rps", "1"]);
    let upstream = format!("{}/v1", sb.base());
    let data = dir.0.join("data");
    add_user(&data, "vi", "viewer", PASSWORD);
    // One slow batch keeps the watcher busy refreshing it the whole time.
    create_upstream(&upstream, KEY, 500).await;
    // One account stands for all the viewers here.
    let dash = serve(
        &data,
        &upstream,
        &[
            "--watch-interval-ms",
            "1000",
            "--max-streams-per-user",
            "1000",
        ],
    );
    let base = dash.base();
    let http = signed_in(&base, "vi", PASSWORD).await;
    tokio::time::sleep(Duration::from_secs(3)).await; // first full sweep done

    let window = Duration::from_secs(8);
    let measure = |viewers: usize| {
        let http = http.clone();
        let base = base.clone();
        let sb_base = sb.base();
        async move {
            let mut streams = Vec::new();
            for _ in 0..viewers {
                streams.push(Events::open(&http, &base).await);
            }
            let before = upstream_requests(&sb_base).await;
            let started = Instant::now();
            // Viewers also load pages while they watch.
            while started.elapsed() < window {
                for _ in 0..viewers.min(20) {
                    let (s, _) =
                        server_fn(&http, &base, "list_batches", &[("query[limit]", "50")]).await;
                    assert_eq!(s, 200);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let after = upstream_requests(&sb_base).await;
            drop(streams);
            after - before
        }
    };
    let one = measure(1).await;
    let many = measure(100).await;
    assert!(one > 0, "the watcher polls");
    let diff = one.abs_diff(many);
    assert!(
        diff <= 2 + one / 5,
        "upstream calls in {window:?}: {one} with 1 viewer, {many} with 100"
    );
}

#[tokio::test]
async fn filters_return_exactly_the_right_rows_from_10000_batches() {
    let dir = TempDir::new("live-index");
    let data = dir.0.join("data");
    add_user(&data, "vi", "viewer", PASSWORD);
    let out = crate::common::run_ok(
        crate::common::command()
            .args([
                "index-seed",
                "--count",
                "10000",
                "--seed",
                "7",
                "--data-dir",
            ])
            .arg(&data),
    );
    let seeded: Vec<(Value, String)> = out
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["batch"].clone(),
                v["input_file_name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(seeded.len(), 10_000);
    // An upstream that is not there: the index is all the dashboard has.
    let dash = serve(&data, "http://127.0.0.1:9/v1", &[]);
    let base = dash.base();
    let http = signed_in(&base, "vi", PASSWORD).await;

    let day = |ts: i64| {
        let days = ts.div_euclid(86_400);
        // civil from days (Howard Hinnant's algorithm), for the expected set
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        format!("{:04}-{m:02}-{d:02}", if m <= 2 { y + 1 } else { y })
    };
    let meta = |b: &Value, k: &str| b["metadata"][k].as_str().map(str::to_string);
    type Check = (
        Vec<(&'static str, String)>,
        Box<dyn Fn(&Value, &str) -> bool>,
    );
    let cases: Vec<Check> = vec![
        (
            vec![
                ("status", "completed,failed".into()),
                ("model", "gpt-4.1".into()),
                ("creator", "ben".into()),
            ],
            Box::new(move |b, _| {
                ["completed", "failed"].contains(&b["status"].as_str().unwrap())
                    && b["model"] == "gpt-4.1"
                    && meta(b, "created_by").as_deref() == Some("ben")
            }),
        ),
        (
            vec![
                ("endpoint", "/v1/embeddings".into()),
                ("meta_key", "team".into()),
                ("meta_value", "research".into()),
                ("from", day(1_767_225_600 + 86_400 * 3)),
                ("to", day(1_767_225_600 + 86_400 * 6)),
            ],
            Box::new(move |b, _| {
                let d = day(b["created_at"].as_i64().unwrap());
                b["endpoint"] == "/v1/embeddings"
                    && meta(b, "team").as_deref() == Some("research")
                    && d.as_str() >= day(1_767_225_600 + 86_400 * 3).as_str()
                    && d.as_str() <= day(1_767_225_600 + 86_400 * 6).as_str()
            }),
        ),
        (
            vec![
                ("q", "INPUT-SUPPORT-12".into()),
                ("meta_key", "priority".into()),
            ],
            Box::new(move |b, name| {
                name.contains("input-support-12") && meta(b, "priority").is_some()
            }),
        ),
        (
            vec![
                ("q", "batch_seed009".into()),
                ("status", "in_progress".into()),
            ],
            Box::new(|b, _| {
                b["id"].as_str().unwrap().contains("batch_seed009") && b["status"] == "in_progress"
            }),
        ),
    ];
    for (params, want) in cases {
        let mut expected: Vec<(i64, String)> = seeded
            .iter()
            .filter(|(b, name)| want(b, name))
            .map(|(b, _)| {
                (
                    b["created_at"].as_i64().unwrap(),
                    b["id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        expected.sort_by(|a, b| b.cmp(a));
        assert!(
            !expected.is_empty(),
            "a case with no rows proves little: {params:?}"
        );
        let mut got: Vec<String> = Vec::new();
        let mut offset = 0;
        let mut total;
        loop {
            let mut args: Vec<(String, String)> = params
                .iter()
                .map(|(k, v)| (format!("query[{k}]"), v.clone()))
                .collect();
            args.push(("query[limit]".into(), "200".into()));
            args.push(("query[offset]".into(), offset.to_string()));
            let r = http
                .post(format!("{base}/api/list_batches"))
                .form(&args)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            let page: Value = r.json().await.unwrap();
            total = page["total"].as_u64().unwrap();
            let ids: Vec<String> = page["batches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["id"].as_str().unwrap().to_string())
                .collect();
            if ids.is_empty() {
                break;
            }
            offset += ids.len();
            got.extend(ids);
        }
        let want_ids: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
        assert_eq!(total as usize, want_ids.len(), "{params:?}");
        assert_eq!(got, want_ids, "{params:?}");
    }
    // Sorting and bad input.
    let (s, body) = server_fn(
        &http,
        &base,
        "list_batches",
        &[
            ("query[sort]", "model"),
            ("query[dir]", "asc"),
            ("query[limit]", "5"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["batches"][0]["model"], "gpt-4.1");
    for (k, v) in [
        ("query[sort]", "id; DROP TABLE batches"),
        ("query[from]", "yesterday"),
        ("query[limit]", "1000"),
    ] {
        let (s, body) = server_fn(&http, &base, "list_batches", &[(k, v)]).await;
        assert_eq!(s, 400, "{k}={v}: {body}");
    }
    let facets: Value =
        serde_json::from_str(&server_fn(&http, &base, "batch_facets", &[]).await.1).unwrap();
    assert_eq!(
        facets["creators"],
        serde_json::json!(["ana", "ben", "chen", "dara", "eli"])
    );
    // The dead upstream shows as such (once the watcher's call has used up
    // its retries), with the index still served.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = server_fn(&http, &base, "list_batches", &[("query[limit]", "1")]).await;
        let page: Value = serde_json::from_str(&body).unwrap();
        if page["watcher"]["last_error"].is_string() {
            assert_eq!(page["batches"].as_array().unwrap().len(), 1, "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The watcher's first full sync over many pages of the list: every batch
/// indexed as the upstream has it, and a round that fails halfway is
/// done again (the failure comes before the first complete round).
#[tokio::test]
async fn the_first_sync_indexes_every_page_and_survives_a_failed_one() {
    let dir = TempDir::new("live-first-sync");
    let n = 4321;
    let sb_dir = dir.0.join("sb");
    let batches = seed_sandbox_dir(&sb_dir, n, 11, batchboard_core::BatchStatus::Expired);
    // The 21st request for a page of the list fails (a 400, which the
    // client does not retry): halfway through the first full read of its
    // 44 pages, whatever the machine's speed.
    let sb = sandbox(
        &sb_dir,
        KEY,
        &[
            "--sandbox-fault",
            "GET /v1/batches: status=400, skip=20, times=1",
        ],
    );
    let data = dir.0.join("data");
    add_user(&data, "vi", "viewer", PASSWORD);
    let dash = serve(
        &data,
        &format!("{}/v1", sb.base()),
        &["--watch-interval-ms", "300"],
    );
    let base = dash.base();
    let http = signed_in(&base, "vi", PASSWORD).await;
    let page_of = |body: String| serde_json::from_str::<Value>(&body).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = server_fn(&http, &base, "list_batches", &[("query[limit]", "1")]).await;
        let page = page_of(body);
        let total = page["total"].as_u64().unwrap() as usize;
        let log = dash.output();
        let failed = log
            .lines()
            .position(|l| l.contains("watcher: upstream call failed") && l.contains("HTTP 400"));
        // Only a round that read the list to its end and wrote it says so.
        let listed = log
            .lines()
            .position(|l| l.contains("listed every batch") && l.contains(&format!("batches={n}")));
        if let (Some(failed), Some(listed)) = (failed, listed) {
            assert!(
                failed < listed,
                "the fault did not break the first full read:\n{log}"
            );
            if total == n {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "total {total}, the round failed: {failed:?}, listed: {listed:?}: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every row as the upstream has it, newest first.
    let mut rows = Vec::new();
    while rows.len() < n {
        let offset = rows.len().to_string();
        let (status, body) = server_fn(
            &http,
            &base,
            "list_batches",
            &[("query[limit]", "200"), ("query[offset]", &offset)],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let page = page_of(body);
        let batches = page["batches"].as_array().unwrap().clone();
        assert!(!batches.is_empty(), "the index ends at {offset}");
        rows.extend(batches);
    }
    assert_eq!(rows.len(), n);
    for (row, want) in rows.iter().zip(batches.iter().rev()) {
        assert_eq!(row["id"], want.id.as_str());
        assert_eq!(row["status"], want.status.as_str(), "{}", want.id);
        assert_eq!(row["created_at"], want.created_at, "{}", want.id);
        assert_eq!(
            row["request_counts"]["total"], want.request_counts.total,
            "{}",
            want.id
        );
    }
}

/// A first sync writes page after page; an open table is told to reload
/// about once a second while it runs, not at every write (the sandbox
/// answers each page of the list after 100 ms, so without the gate every
/// one of its 50 pages would be a `resync` of its own).
#[tokio::test]
async fn a_first_sync_tells_open_tables_to_reload_about_once_a_second() {
    let dir = TempDir::new("live-resync-gate");
    let n = 5000;
    let sb_dir = dir.0.join("sb");
    seed_sandbox_dir(&sb_dir, n, 11, batchboard_core::BatchStatus::Completed);
    let sb = sandbox(
        &sb_dir,
        KEY,
        &["--sandbox-fault", "GET /v1/batches: latency_ms=100"],
    );
    let data = dir.0.join("data");
    add_user(&data, "vi", "viewer", PASSWORD);
    let dash = serve(&data, &format!("{}/v1", sb.base()), &[]);
    let base = dash.base();
    let http = signed_in(&base, "vi", PASSWORD).await;
    let mut events = Events::open(&http, &base).await;
    let opened = Instant::now();
    let (_, body) = server_fn(&http, &base, "list_batches", &[("query[limit]", "1")]).await;
    let at_open = serde_json::from_str::<Value>(&body).unwrap()["total"]
        .as_u64()
        .unwrap() as usize;
    let pages_after = (n - at_open) / 100;
    assert!(
        pages_after >= 20,
        "the sync had written {at_open} of {n} batches before the stream opened"
    );
    let (mut resyncs, mut ended) = (0u32, None::<Instant>);
    let deadline = Instant::now() + Duration::from_secs(60);
    // Until the sync has ended and the window after its last write too.
    while ended.is_none_or(|t| t.elapsed() < Duration::from_millis(1500)) {
        assert!(
            Instant::now() < deadline,
            "no complete read:\n{}",
            dash.output()
        );
        if let Ok((name, _)) = tokio::time::timeout(Duration::from_millis(100), events.next()).await
        {
            resyncs += u32::from(name == "resync");
        }
        if ended.is_none() && dash.output().contains("listed every batch") {
            ended = Some(Instant::now());
        }
    }
    let secs = ended.map_or(0.0, |t| (t - opened).as_secs_f64());
    assert!(resyncs >= 1, "no resync in {secs:.1} s of the sync");
    assert!(
        f64::from(resyncs) <= secs.ceil() + 1.0,
        "{resyncs} resyncs in {secs:.1} s, {pages_after} pages written"
    );
}

/// A webhook receiver: its URL, and each request it got (head and body).
pub(crate) fn hook_listener() -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let mut s = stream.unwrap();
            let mut buf = vec![0u8; 65536];
            let mut got = Vec::new();
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some(h) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if got.len() >= h + 4 + len {
                        break;
                    }
                }
            }
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
            let _ = tx.send(String::from_utf8_lossy(&got).to_string());
        }
    });
    (hook, rx)
}

#[tokio::test]
async fn a_finished_batch_is_announced_to_the_webhook() {
    let dir = TempDir::new("live-hook");
    let sb = sandbox(&dir.0.join("sb"), KEY, crate::common::FAST);
    let upstream = format!("{}/v1", sb.base());
    let (hook, rx) = hook_listener();
    let data = dir.0.join("data");
    add_user(&data, "op", "operator", PASSWORD);
    let dash = serve(
        &data,
        &upstream,
        &[
            "--watch-interval-ms",
            "300",
            "--webhook-url",
            &hook,
            "--public-url",
            "https://batch.example",
        ],
    );
    let http = signed_in(&dash.base(), "op", PASSWORD).await;
    let form = reqwest::multipart::Form::new()
        .text("endpoint", "/v1/chat/completions")
        .part(
            "file",
            reqwest::multipart::Part::bytes(
                br#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}
"#.to_vec(),
            )
            .file_name("h.jsonl"),
        );
    let b: Value = http
        .post(format!("{}/api/batches", dash.base()))
        .multipart(form)
        .fetch_json()
        .await;
    let id = b["id"].as_str().unwrap();
    let got = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(20)))
        .await
        .unwrap()
        .expect("the webhook was called");
    assert!(got.starts_with("POST /hook "), "{got}");
    assert!(
        !got.contains(KEY),
        "the upstream key must not go to the webhook"
    );
    let body = &got[got.find("\r\n\r\n").unwrap() + 4..];
    let v: Value = serde_json::from_str(body).unwrap();
    let text = v["text"].as_str().unwrap();
    assert!(text.contains(id) && text.contains("completed"), "{text}");
    assert!(text.contains("created by op"), "{text}");
    assert!(
        text.contains(&format!("https://batch.example/batches/{id}")),
        "{text}"
    );
}

/// With `--webhook-secret` and `--webhook-format json`, the message is an
/// event like OpenAI's, signed as Standard Webhooks sign: the signature is
/// the one the independent `standardwebhooks` package computes.
#[tokio::test]
async fn the_webhook_can_be_signed_and_sent_as_an_event() {
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let dir = TempDir::new("live-hook-signed");
    let sb = sandbox(&dir.0.join("sb"), KEY, crate::common::FAST);
    let (hook, rx) = hook_listener();
    let data = dir.0.join("data");
    add_user(&data, "op", "operator", PASSWORD);
    let dash = serve(
        &data,
        &format!("{}/v1", sb.base()),
        &[
            "--watch-interval-ms",
            "300",
            "--webhook-url",
            &hook,
            "--webhook-format",
            "json",
            "--webhook-secret",
            SECRET,
        ],
    );
    // Made through the dashboard, which then sees it finish.
    let http = signed_in(&dash.base(), "op", PASSWORD).await;
    let form = reqwest::multipart::Form::new()
        .text("endpoint", "/v1/chat/completions")
        .part(
            "file",
            reqwest::multipart::Part::bytes(
                br#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"x"}]}}
"#.to_vec(),
            )
            .file_name("h.jsonl"),
        );
    let b: Value = http
        .post(format!("{}/api/batches", dash.base()))
        .multipart(form)
        .fetch_json()
        .await;
    let id = b["id"].as_str().unwrap().to_owned();
    let got = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(20)))
        .await
        .unwrap()
        .expect("the webhook was called");
    let (head, body) = got.split_once("\r\n\r\n").unwrap();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no {name}: {head}"))
    };
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["object"], "event", "{v}");
    assert_eq!(v["type"], "batch.completed", "{v}");
    assert_eq!(v["data"]["id"], id.as_str(), "{v}");
    let (msg, ts) = (header("webhook-id"), header("webhook-timestamp"));
    let expected = crate::webhooks_in::sign_with_package(SECRET, &msg, ts.parse().unwrap(), body);
    assert_eq!(header("webhook-signature"), expected);
    assert!(!dash.output().contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
}

/// `/readyz` answers anyone, so it must not spend the upstream's rate limit
/// per request: 30 anonymous calls make at most one probe (it is reused for
/// 5 s), and tell only whether the dashboard is ready.
#[tokio::test]
async fn readiness_probes_the_upstream_at_most_every_few_seconds() {
    let dir = TempDir::new("live-readyz");
    let sb = sandbox(&dir.0.join("sb"), KEY, &[]);
    let data = dir.0.join("data");
    add_user(&data, "vi", "viewer", PASSWORD);
    // The watcher stays quiet after its first sweep.
    let dash = serve(
        &data,
        &format!("{}/v1", sb.base()),
        &["--watch-interval-ms", "600000"],
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = upstream_requests(&sb.base()).await;
    for _ in 0..30 {
        let r = reqwest::get(format!("{}/readyz", dash.base()))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.text().await.unwrap(), r#"{"ready":true}"#);
    }
    let probes = upstream_requests(&sb.base()).await - before;
    assert!(
        probes <= 2,
        "{probes} upstream calls for 30 readiness checks"
    );
}

/// The table's pages are kept for a moment and shared by viewers, but a
/// change is never hidden by it: a page read the instant a change was
/// heard shows it, however often the same view was read just before.
#[tokio::test]
async fn a_page_read_after_a_change_was_heard_shows_it() {
    let mut live = watched("live-page-cache", "200").await;
    let base = live.dash.base();

    // Another viewer reads the first page without pause: it stays cached.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (http, base, stop) = (live.http.clone(), base.clone(), stop.clone());
        tokio::spawn(async move {
            let mut reads = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, _) = server_fn(&http, &base, "list_batches", &[]).await;
                assert_eq!(status, 200);
                reads += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            reads
        })
    };
    let first_row = |body: &str| -> Value {
        let page: Value = serde_json::from_str(body).unwrap();
        page["batches"][0].clone()
    };

    let id = create_upstream(&live.upstream, KEY, 20).await;
    // Each change, as soon as it is heard, is on the page.
    for (what, pred) in [
        (
            "new",
            Box::new(|_: &Value| true) as Box<dyn Fn(&Value) -> bool>,
        ),
        (
            "in progress",
            Box::new(|b: &Value| b["status"] == "in_progress"),
        ),
        (
            "completed",
            Box::new(|b: &Value| b["status"] == "completed"),
        ),
    ] {
        let heard = live
            .events
            .batch_where(&id, Duration::from_secs(30), pred)
            .await;
        let (status, body) = server_fn(&live.http, &base, "list_batches", &[]).await;
        assert_eq!(status, 200, "{body}");
        let row = first_row(&body);
        assert_eq!(row["id"], id.as_str(), "{what}: {body}");
        // The same, or later (it may have moved on since).
        let order = ["validating", "in_progress", "finalizing", "completed"];
        let at = |b: &Value| order.iter().position(|s| b["status"] == *s);
        assert!(
            at(&row) >= at(&heard),
            "{what}: page {row} behind the event {heard}"
        );
        assert!(
            row["request_counts"]["completed"].as_u64()
                >= heard["request_counts"]["completed"].as_u64(),
            "{what}: page {row} behind the event {heard}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.await.unwrap() > 10, "the page was read meanwhile");
}
