//! Postgres as the database: two replicas share sessions and the audit log.
//! The test starts its own throwaway cluster from Debian's `postgresql`
//! binaries (`scripts/bootstrap.sh --test` installs them).

use std::path::Path;
use std::sync::Arc;

use crate::common::{
    add_user, create_upstream, sandbox, server_fn, signed_in, Events, Fetch, Proc, TempDir,
    PASSWORD,
};
use crate::pg::Postgres;

const KEY: &str = "sk-pg-replicas-51b0";
use serde_json::Value;

fn replica(dir: &Path, name: &str, db: &str, users: &Path, upstream: Option<&str>) -> Proc {
    let addr = format!("127.0.0.1:{}", crate::common::free_port());
    let mut cmd = crate::common::serve_command(&addr, &dir.join(name));
    cmd.arg("--users-file")
        .arg(users)
        .env("DATABASE_URL", db)
        // `/readyz` tells the monitoring (these addresses) which replica polls.
        .args(["--metrics-allow", "127.0.0.1/32"]);
    if let Some(u) = upstream {
        cmd.args(["--upstream-url", u, "--watch-interval-ms", "500"])
            .env("OPENAI_API_KEY", KEY);
    }
    Proc::spawn(cmd, addr)
}

/// A client that shares `jar` and sends `base` as its Origin: the same
/// browser, talking to whichever replica the load balancer picked.
fn via(jar: &Arc<reqwest::cookie::Jar>, base: &str) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("origin", base.parse().unwrap());
    reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .default_headers(h)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn replicas_on_postgres_share_sessions_and_the_audit_log() {
    let dir = TempDir::new("postgres");
    let pg = Postgres::start(&dir.0.join("db"));
    let users = dir.0.join("users.toml");
    add_user(&dir.0.join("a"), "boss", "admin", PASSWORD);
    std::fs::rename(dir.0.join("a").join("users.toml"), &users).unwrap();
    let a = replica(&dir.0, "a", &pg.url(), &users, None);
    let b = replica(&dir.0, "b", &pg.url(), &users, None);

    let jar = Arc::new(reqwest::cookie::Jar::default());
    let to_a = via(&jar, &a.base());
    let r = to_a
        .post(format!("{}/auth/login", a.base()))
        .form(&[("username", "boss"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/");

    // Replica B knows the session A made.
    let to_b = via(&jar, &b.base());
    let r = to_b
        .post(format!("{}/api/whoami", b.base()))
        .send()
        .await
        .unwrap();
    let me = r.text().await.unwrap();
    assert!(me.contains(r#""name":"boss""#), "{me}");

    // A failed sign-in on B shows in the audit log read through A.
    let stranger = via(&Arc::new(reqwest::cookie::Jar::default()), &b.base());
    stranger
        .post(format!("{}/auth/login", b.base()))
        .form(&[("username", "boss"), ("password", "wrong-wrong-wrong")])
        .send()
        .await
        .unwrap();
    let r = to_a
        .post(format!("{}/api/audit_log", a.base()))
        .form(&[("limit", "50")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let page: Value = r.json().await.unwrap();
    let actions: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["sign_in_failed", "sign_in"], "{page}");

    // Signing out on B ends the session on A too.
    to_b.post(format!("{}/auth/logout", b.base()))
        .send()
        .await
        .unwrap();
    let r = to_a
        .post(format!("{}/api/whoami", a.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "null");
    drop((a, b));
}

async fn polling(base: &str) -> bool {
    let v: Value = reqwest::Client::new()
        .get(format!("{base}/readyz"))
        .fetch_json()
        .await;
    v["watcher"] == "polling"
}

#[tokio::test]
async fn one_replica_polls_and_another_takes_over_when_it_dies() {
    let dir = TempDir::new("pg-takeover");
    let pg = Postgres::start(&dir.0.join("db"));
    let sb = sandbox(
        &dir.0.join("sb"),
        KEY,
        &[
            "--sandbox-rps",
            "50",
            "--sandbox-validation-ms",
            "200",
            "--sandbox-finalizing-ms",
            "200",
        ],
    );
    let upstream = format!("{}/v1", sb.base());
    let users = dir.0.join("users.toml");
    add_user(&dir.0.join("u"), "vi", "viewer", PASSWORD);
    std::fs::rename(dir.0.join("u").join("users.toml"), &users).unwrap();
    let mut a = replica(&dir.0, "a", &pg.url(), &users, Some(&upstream));
    let mut b = replica(&dir.0, "b", &pg.url(), &users, Some(&upstream));

    // Exactly one of them polls.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (pa, pb) = loop {
        let (pa, pb) = (polling(&a.base()).await, polling(&b.base()).await);
        if pa || pb || std::time::Instant::now() > deadline {
            break (pa, pb);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(pa ^ pb, "exactly one replica polls: a={pa} b={pb}");
    if pb {
        std::mem::swap(&mut a, &mut b);
    }
    // Viewers on both replicas hear of a change the poller saw.
    let va = signed_in(&a.base(), "vi", PASSWORD).await;
    let vb = signed_in(&b.base(), "vi", PASSWORD).await;
    let mut ea = Events::open(&va, &a.base()).await;
    let mut eb = Events::open(&vb, &b.base()).await;
    // What the other replica's table shows, read (and remembered) before.
    let table = |http: reqwest::Client, base: String| async move {
        let (status, body) = server_fn(&http, &base, "list_batches", &[]).await;
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        let (status, body) = server_fn(&http, &base, "batch_facets", &[]).await;
        assert_eq!(status, 200, "{body}");
        let facets: Value = serde_json::from_str(&body).unwrap();
        (page, facets)
    };
    let (page, _) = table(vb.clone(), b.base()).await;
    assert_eq!(page["total"], 0, "{page}");
    let first = create_upstream(&upstream, KEY, 3).await;
    let within = std::time::Duration::from_secs(15);
    ea.batch_where(&first, within, |_| true).await;
    eb.batch_where(&first, within, |_| true).await;
    // The table reloading for it there counts it and offers its values to
    // filter by (not what that replica remembered a moment ago).
    let (page, facets) = table(vb.clone(), b.base()).await;
    assert_eq!(page["batches"][0]["id"], first.as_str(), "{page}");
    assert_eq!(page["total"], 1, "{page}");
    assert!(
        facets.to_string().contains("/v1/chat/completions"),
        "{facets}"
    );

    // The poller dies without a word; the other takes the lease over and
    // its viewers keep receiving changes.
    a.child.kill().unwrap();
    let _ = a.child.wait();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !polling(&b.base()).await {
        assert!(std::time::Instant::now() < deadline, "no replica took over");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let second = create_upstream(&upstream, KEY, 3).await;
    let done = eb
        .batch_where(&second, within, |b| b["status"] == "completed")
        .await;
    assert_eq!(done["request_counts"]["total"], 3);
    drop(pg);
}

/// Where a sign-in attempt was sent back to: `invalid` (the password was
/// checked and wrong) or `throttled`.
async fn attempt(base: &str) -> String {
    let http = via(&Arc::new(reqwest::cookie::Jar::default()), base);
    let r = http
        .post(format!("{base}/auth/login"))
        .form(&[("username", "boss"), ("password", "not-the-password")])
        .send()
        .await
        .unwrap();
    // Too many password checks at this moment: 503, nothing counted.
    let Some(to) = r.headers().get("location") else {
        assert_eq!(r.status().as_u16(), 503);
        return "busy".into();
    };
    let to = to.to_str().unwrap();
    let what = to
        .split("error=")
        .nth(1)
        .unwrap_or("")
        .split('&')
        .next()
        .unwrap_or("");
    what.to_string()
}

#[tokio::test]
async fn replicas_on_postgres_share_the_sign_in_throttle() {
    let dir = TempDir::new("pg-throttle");
    let pg = Postgres::start(&dir.0.join("db"));
    let users = dir.0.join("users.toml");
    add_user(&dir.0.join("a"), "boss", "admin", PASSWORD);
    std::fs::rename(dir.0.join("a").join("users.toml"), &users).unwrap();
    let a = replica(&dir.0, "a", &pg.url(), &users, None);
    let b = replica(&dir.0, "b", &pg.url(), &users, None);

    // Five wrong guesses (the limit), spread over both replicas: each
    // counts them all, so the sixth is refused wherever it lands.
    for base in [a.base(), b.base(), a.base(), b.base(), a.base()] {
        assert_eq!(attempt(&base).await, "invalid");
    }
    assert_eq!(attempt(&b.base()).await, "throttled");
    assert_eq!(attempt(&a.base()).await, "throttled");

    // Many guesses at once on both replicas: none past the limit is checked.
    let dir2 = TempDir::new("pg-throttle-2");
    let pg2 = Postgres::start(&dir2.0.join("db"));
    let a2 = replica(&dir2.0, "a", &pg2.url(), &users, None);
    let b2 = replica(&dir2.0, "b", &pg2.url(), &users, None);
    let bases: Vec<String> = (0..12)
        .map(|i| if i % 2 == 0 { a2.base() } else { b2.base() })
        .collect();
    let answers = futures_util::future::join_all(bases.iter().map(|b| attempt(b))).await;
    let checked = answers.iter().filter(|a| *a == "invalid").count();
    let throttled = answers.iter().filter(|a| *a == "throttled").count();
    assert!((1..=5).contains(&checked), "{answers:?}");
    assert!(throttled >= 1, "{answers:?}");
    drop((a, b, a2, b2, pg2));
}

#[tokio::test]
async fn search_on_postgres_goes_through_its_trigram_index_and_finds_parts() {
    let dir = TempDir::new("pg-search");
    let pg = Postgres::start(&dir.0.join("db"));
    let users = dir.0.join("users.toml");
    add_user(&dir.0.join("a"), "boss", "admin", PASSWORD);
    std::fs::rename(dir.0.join("a").join("users.toml"), &users).unwrap();
    let out = crate::common::command()
        .args(["index-seed", "--count", "300", "--data-dir"])
        .arg(dir.0.join("seed"))
        .env("DATABASE_URL", pg.url())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = replica(&dir.0, "a", &pg.url(), &users, None);
    let http = signed_in(&a.base(), "boss", PASSWORD).await;
    let total = |q: &'static str| {
        let (http, base) = (http.clone(), a.base());
        async move {
            let (status, body) = server_fn(
                &http,
                &base,
                "list_batches",
                &[("query[q]", q), ("query[limit]", "100")],
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let page: Value = serde_json::from_str(&body).unwrap();
            page["total"].as_u64().unwrap()
        }
    };
    // Part of an id, in another case; a file id; a file name's part; none.
    assert_eq!(total("SEED00012").await, 10);
    assert_eq!(total("in000199").await, 1);
    assert_eq!(total("seed0002").await, 100);
    assert_eq!(total("no-such-thing").await, 0);
    // The plan uses the index (a table this small may still be scanned
    // by choice; with sequential scans off it must be able to use it).
    let explain = pg.psql(
        "SET enable_seqscan = off; EXPLAIN SELECT 1 FROM batches WHERE lower(id || ' ' || input_file_id || ' ' || coalesce(output_file_id, '') || ' ' || coalesce(error_file_id, '') || ' ' || coalesce(input_file_name, '')) LIKE '%seed0001%'",
    );
    assert!(explain.contains("batches_search"), "{explain}");
    drop(a);
}

/// Several upstreams on Postgres: each has its own lease, so with two
/// replicas every upstream is polled by exactly one of them at a time, and
/// when a replica dies the other takes over all of its upstreams.
#[tokio::test]
async fn each_upstream_is_polled_by_one_replica_and_taken_over() {
    let dir = TempDir::new("pg-upstreams");
    let pg = Postgres::start(&dir.0.join("db"));
    let sb = sandbox(&dir.0.join("sb"), KEY, crate::common::FAST);
    let upstream = format!("{}/v1", sb.base());
    let file = dir.0.join("upstreams.toml");
    std::fs::write(
        &file,
        format!(
            "[[upstream]]\nname = \"azure\"\nkind = \"azure\"\nbase_url = \"{0}/azure\"\nkey_env = \"OPENAI_API_KEY\"\n\n[[upstream]]\nname = \"claude\"\nkind = \"anthropic\"\nbase_url = \"{0}/anthropic\"\nkey_env = \"OPENAI_API_KEY\"\n",
            sb.base()
        ),
    )
    .unwrap();
    let users = dir.0.join("users.toml");
    add_user(&dir.0.join("u"), "vi", "viewer", PASSWORD);
    std::fs::rename(dir.0.join("u").join("users.toml"), &users).unwrap();
    let start = |name: &str| {
        let addr = format!("127.0.0.1:{}", crate::common::free_port());
        let mut cmd = crate::common::serve_command(&addr, &dir.0.join(name));
        cmd.arg("--users-file")
            .arg(&users)
            .arg("--upstreams-file")
            .arg(&file)
            .args(["--upstream-url", &upstream, "--watch-interval-ms", "300"])
            .args(["--metrics-allow", "127.0.0.1/32"])
            .env("DATABASE_URL", pg.url())
            .env("OPENAI_API_KEY", KEY);
        Proc::spawn(cmd, addr)
    };
    let mut a = start("a");
    let b = start("b");

    // One batch at each upstream, made there directly.
    let claude = |n: usize| {
        let requests: Vec<Value> = (0..n)
            .map(|i| serde_json::json!({"custom_id": format!("c{i}"), "params": {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}}))
            .collect();
        let url = format!("{}/anthropic/v1/messages/batches", sb.base());
        async move {
            let v: Value = reqwest::Client::new()
                .post(url)
                .header("x-api-key", KEY)
                .header("anthropic-version", "2023-06-01")
                .json(&serde_json::json!({ "requests": requests }))
                .fetch_json()
                .await;
            format!("claude.{}", v["id"].as_str().unwrap())
        }
    };
    let azure_api = format!("{}/azure/openai/v1", sb.base());
    let ids = [
        create_upstream(&upstream, KEY, 2).await,
        format!("azure.{}", create_upstream(&azure_api, KEY, 2).await),
        claude(2).await,
    ];
    let vb = signed_in(&b.base(), "vi", PASSWORD).await;
    let seen = |ids: Vec<String>| {
        let (vb, base) = (vb.clone(), b.base());
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                let (_, page) =
                    server_fn(&vb, &base, "list_batches", &[("query[limit]", "100")]).await;
                let done = ids.iter().all(|id| {
                    page.contains(&format!(r#""id":"{id}""#)) && page.contains("completed")
                });
                if done {
                    return;
                }
                assert!(std::time::Instant::now() < deadline, "{ids:?}: {page}");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    };
    seen(ids.to_vec()).await;

    // Each upstream has one holder.
    let holders = pg.psql("SELECT name, holder FROM upstream_state ORDER BY name");
    assert_eq!(holders.lines().count(), 3, "{holders}");
    // Three leases held (one advisory lock per upstream), whichever replica
    // holds each.
    let locks = pg
        .psql("SELECT count(DISTINCT (classid, objid)) FROM pg_locks WHERE locktype = 'advisory' AND granted");
    assert_eq!(locks.trim(), "3", "{holders}");

    // One replica dies; the other polls every upstream from then on.
    a.child.kill().unwrap();
    let _ = a.child.wait();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !polling(&b.base()).await {
        assert!(std::time::Instant::now() < deadline, "no replica took over");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let later = [
        create_upstream(&upstream, KEY, 2).await,
        format!("azure.{}", create_upstream(&azure_api, KEY, 2).await),
        claude(2).await,
    ];
    seen(later.to_vec()).await;
    drop(pg);
}

/// A job on Postgres with two replicas: the one that schedules it (the
/// upstream's lease holder) is killed with SIGKILL while parts run; the
/// other takes the lease and finishes the job, with no part submitted
/// twice and every request once in the merged result.
#[tokio::test]
async fn a_job_is_finished_by_the_other_replica_when_its_scheduler_dies() {
    let dir = TempDir::new("pg-jobs");
    let pg = Postgres::start(&dir.0.join("db"));
    let sb = sandbox(
        &dir.0.join("sb"),
        KEY,
        &[
            "--sandbox-rps",
            "1000",
            "--sandbox-validation-ms",
            "50",
            "--sandbox-finalizing-ms",
            "50",
        ],
    );
    let file = dir.0.join("upstreams.toml");
    std::fs::write(
        &file,
        format!(
            "[[upstream]]\nname = \"limited\"\nkind = \"openai-compatible\"\nbase_url = \"{}/v1\"\nkey_env = \"OPENAI_API_KEY\"\nlimits = {{ max_requests = 500, enqueued_tokens = {{ \"gpt-4o-mini\" = 9000 }} }}\n",
            sb.base()
        ),
    )
    .unwrap();
    let users = dir.0.join("users.toml");
    add_user(&dir.0.join("u"), "op", "operator", PASSWORD);
    std::fs::rename(dir.0.join("u").join("users.toml"), &users).unwrap();
    let start = |name: &str| {
        let addr = format!("127.0.0.1:{}", crate::common::free_port());
        let mut cmd = crate::common::serve_command(&addr, &dir.0.join(name));
        cmd.arg("--users-file")
            .arg(&users)
            .arg("--upstreams-file")
            .arg(&file)
            .args(["--upstream-url", &format!("{}/v1", sb.base())])
            .args(["--watch-interval-ms", "300"])
            .env("DATABASE_URL", pg.url())
            .env("OPENAI_API_KEY", KEY);
        Proc::spawn(cmd, addr)
    };
    let mut replicas = vec![start("a"), start("b")];
    let http = signed_in(&replicas[0].base(), "op", PASSWORD).await;
    let content: String = (0..3000)
        .map(|i| format!("{{\"custom_id\":\"r{i}\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{{\"model\":\"gpt-4o-mini\",\"max_tokens\":5,\"messages\":[{{\"role\":\"user\",\"content\":\"hello number {i}\"}}]}}}}\n"))
        .collect();
    let form = reqwest::multipart::Form::new()
        .text("upstream", "limited")
        .text("endpoint", "/v1/chat/completions")
        .part(
            "file",
            reqwest::multipart::Part::bytes(content.into_bytes()).file_name("pg.jsonl"),
        );
    let r = http
        .post(format!("{}/api/jobs", replicas[0].base()))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let job: Value = r.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["parts"].as_array().unwrap().len(), 6, "{job}");

    // Once a part runs, the scheduler (whichever replica holds the lease) dies.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let running = pg.psql(&format!(
            "SELECT count(*) FROM job_parts WHERE job_id = '{id}' AND state = 'running'"
        ));
        if running.trim() != "0" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no part ran");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let holder = pg.psql("SELECT holder FROM upstream_state WHERE name = 'limited'");
    let leader = replicas
        .iter()
        .position(|r| holder.contains(&r.addr))
        .unwrap_or_else(|| panic!("{holder}"));
    let mut dead = replicas.remove(leader);
    dead.child.kill().unwrap();
    let _ = dead.child.wait();
    let survivor = &replicas[0];
    let http = signed_in(&survivor.base(), "op", PASSWORD).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let done = loop {
        let (status, text) = server_fn(&http, &survivor.base(), "get_job", &[("id", &id)]).await;
        assert_eq!(status, 200, "{text}");
        let j: Value = serde_json::from_str(&text).unwrap();
        if j["status"] == "completed" {
            break j;
        }
        assert!(std::time::Instant::now() < deadline, "{j}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    assert_eq!(done["ok"], 3000, "{done}");
    let merged = http
        .get(format!("{}/api/jobs/{id}/merged", survivor.base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ids: std::collections::HashSet<String> = merged
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["custom_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!((merged.lines().count(), ids.len()), (3000, 3000));
    // Upstream: one batch per part (no failures were imitated).
    let list: Value = reqwest::Client::new()
        .get(format!("{}/v1/batches?limit=100", sb.base()))
        .bearer_auth(KEY)
        .fetch_json()
        .await;
    let tags: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["metadata"]["batchboard_job"] == id.as_str())
        .map(|b| b["metadata"]["batchboard_part"].as_str().unwrap())
        .collect();
    let unique: std::collections::HashSet<&&str> = tags.iter().collect();
    assert_eq!((tags.len(), unique.len()), (6, 6), "{tags:?}");
    drop(pg);
}

/// Spend on Postgres: the same costs, summed by team on either replica, and
/// a team budget that refuses the next batch (its migration and queries are
/// Postgres' own).
#[tokio::test]
async fn spend_and_budgets_work_on_postgres_across_replicas() {
    use crate::spend::{close, create, dashboard_cost, file};
    let dir = TempDir::new("pg-spend");
    let pg = Postgres::start(&dir.0.join("db"));
    let users = dir.0.join("users.toml");
    add_user(&dir.0.join("a"), "boss", "admin", PASSWORD);
    std::fs::rename(dir.0.join("a").join("users.toml"), &users).unwrap();
    let up = sandbox(&dir.0.join("up"), KEY, crate::common::FAST);
    let url = format!("{}/v1", up.base());
    let a = replica(&dir.0, "a", &pg.url(), &users, Some(&url));
    let b = replica(&dir.0, "b", &pg.url(), &users, Some(&url));
    let on_a = signed_in(&a.base(), "boss", PASSWORD).await;
    let on_b = signed_in(&b.base(), "boss", PASSWORD).await;

    let mut want: std::collections::BTreeMap<&str, f64> = Default::default();
    for (team, n) in [("search", 3), ("ads", 2), ("search", 1)] {
        let (status, body) = create(&on_a, &a.base(), file("gpt-5-mini", n), team, &[]).await;
        assert_eq!(status, 200, "{body}");
        let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let c = dashboard_cost(&on_a, &a.base(), &id).await;
        *want.entry(team).or_default() += c["usd"].as_f64().unwrap();
    }
    let (status, body) =
        server_fn(&on_b, &b.base(), "get_spend", &[("query[group]", "team")]).await;
    assert_eq!(status, 200, "{body}");
    let r: Value = serde_json::from_str(&body).unwrap();
    for g in r["groups"].as_array().unwrap() {
        let name = g["name"].as_str().unwrap();
        assert!(close(g["usd"].as_f64().unwrap(), want[name]), "{name}: {g}");
    }
    assert_eq!(r["groups"].as_array().unwrap().len(), 2, "{r}");

    // A team budget refuses the next batch (each replica reads the budgets
    // file it is given; here A's, in its data directory).
    std::fs::write(
        dir.0.join("a").join("budgets.toml"),
        "[budgets.teams]\nsearch = 0.0000001\n",
    )
    .unwrap();
    let (status, body) = create(&on_a, &a.base(), file("gpt-5-mini", 1), "search", &[]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("team search has"), "{body}");
    drop((a, b, up));
}

/// `b`: a batch as the upstream sends it.
fn indexed(
    id: &str,
    status: &str,
    completed: u64,
    owner: &str,
    extra: Value,
) -> batchboard_core::Batch {
    let mut v = serde_json::json!({
        "id": id, "endpoint": "/v1/chat/completions", "input_file_id": format!("file-{id}"),
        "completion_window": "24h", "status": status, "created_at": 100,
        "request_counts": { "total": 10, "completed": completed, "failed": 0 },
        "metadata": { batchboard_core::CREATED_BY: owner, "team": "ml" },
    });
    if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
        v.extend(extra.clone());
    }
    serde_json::from_value(v).unwrap()
}

/// The index's bulk writes (the watcher's syncs, `index-seed`) on one
/// database: what each write says changed, and what the table, its
/// filters, the progress chart and the spend report then read.
async fn bulk_writes_on(db: &batchboard_server::store::Db) {
    use batchboard_core::dashboard::BatchQuery;
    use batchboard_core::BatchStatus;
    use batchboard_server::store::index::Upsert;
    let a = indexed(
        "batch_a",
        "in_progress",
        1,
        "ann",
        serde_json::json!({ "model": "gpt-4o" }),
    );
    let b = indexed("batch_b", "in_progress", 0, "bo", serde_json::json!({}));
    let out = db
        .upsert_batches(&[(&a, Some("a.jsonl")), (&b, None)], |_, _| 0)
        .await
        .unwrap();
    assert_eq!(out, vec![Upsert::New, Upsert::New]);

    // a unchanged; b twice in one call (progress, then completed with
    // usage: the later wins, measured against the earlier); c new. No file
    // name given keeps the one the index has.
    let b2 = indexed("batch_b", "in_progress", 5, "bo", serde_json::json!({}));
    let usage = serde_json::json!({ "usage": {
        "input_tokens": 700, "input_tokens_details": { "cached_tokens": 100 },
        "output_tokens": 300, "output_tokens_details": { "reasoning_tokens": 20 },
        "total_tokens": 1000 } });
    let b3 = indexed("batch_b", "completed", 10, "bo", usage);
    let c = indexed("batch_c", "validating", 0, "cy", serde_json::json!({}));
    let out = db
        .upsert_batches(
            &[(&a, None), (&b2, None), (&b3, None), (&c, None)],
            |_, _| 0,
        )
        .await
        .unwrap();
    let was = BatchStatus::from("in_progress");
    assert_eq!(
        out,
        vec![
            Upsert::Unchanged,
            Upsert::Changed { was: was.clone() },
            Upsert::Changed { was },
            Upsert::New
        ]
    );
    assert_eq!(db.get_indexed("batch_b").await.unwrap().unwrap(), b3);
    assert_eq!(
        db.get_file_name("batch_a").await.unwrap().as_deref(),
        Some("a.jsonl")
    );
    // One point per write whose counts moved (the same second: b's second
    // write replaces its first).
    let points = db.progress("batch_b").await.unwrap();
    assert_eq!(points.last().map(|p| p.completed), Some(10));
    // Metadata (replaced, not doubled), creator and model filter.
    let q = BatchQuery {
        creator: Some("bo".into()),
        meta_key: Some("team".into()),
        meta_value: Some("ml".into()),
        ..Default::default()
    };
    let (rows, total, _, _) = db.query_batches(&q, None).await.unwrap();
    assert_eq!((total, rows[0].id.as_str()), (1, "batch_b"));
    // The pair alone is counted from the pairs: each batch once, though
    // b's were written three times; a removed batch's go with it.
    let q = BatchQuery {
        meta_key: Some("team".into()),
        meta_value: Some("ml".into()),
        ..Default::default()
    };
    assert_eq!(db.query_batches(&q, None).await.unwrap().1, 3);
    let d = indexed("batch_d", "completed", 10, "dee", serde_json::json!({}));
    db.upsert_batches(&[(&d, None)], |_, _| 0).await.unwrap();
    assert_eq!(db.query_batches(&q, None).await.unwrap().1, 4);
    db.remove_batch("batch_d").await.unwrap();
    assert_eq!(db.query_batches(&q, None).await.unwrap().1, 3);
    let q = BatchQuery {
        model: Some("gpt-4o".into()),
        ..Default::default()
    };
    assert_eq!(db.query_batches(&q, None).await.unwrap().1, 1);
    assert_eq!(
        db.query_batches(&BatchQuery::default(), None)
            .await
            .unwrap()
            .1,
        3
    );
    // The columns the spend report reads: usage where there is some, none
    // (not zero) where there is not; the team from the metadata.
    let mut spend = db.spend_rows(&BatchQuery::default(), "team").await.unwrap();
    spend.sort_by_key(|r| (r.creator.clone(), r.terminal));
    let figures: Vec<_> = spend
        .iter()
        .map(|r| {
            (
                r.creator.as_deref(),
                r.model.as_deref(),
                r.terminal,
                r.usage_input,
                r.usage_cached,
                r.usage_output,
                r.usage_reasoning,
                r.team.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        figures,
        vec![
            (
                Some("ann"),
                Some("gpt-4o"),
                0,
                None,
                None,
                None,
                None,
                Some("ml")
            ),
            (
                Some("bo"),
                None,
                1,
                Some(700),
                Some(100),
                Some(300),
                Some(20),
                Some("ml")
            ),
            (Some("cy"), None, 0, None, None, None, None, Some("ml")),
        ]
    );

    // A load larger than one transaction (on Postgres several at once):
    // batches given twice still end as given last, and each outcome is
    // its own batch's, in order.
    let mut load = batchboard_sandbox::synthetic::batches(11_000, 7);
    let again: Vec<_> = load[..300]
        .iter()
        .map(|(b, n)| {
            let mut b = b.clone();
            b.status = BatchStatus::Cancelled;
            (b, n.clone())
        })
        .collect();
    load.extend(again);
    let mut items: Vec<_> = load.iter().map(|(b, n)| (b, Some(n.as_str()))).collect();
    items.insert(5000, (&a, None));
    let out = db.upsert_bulk(&items, |_, _| 0).await.unwrap();
    let want: Vec<Upsert> = (0..items.len())
        .map(|i| match i {
            5000 => Upsert::Unchanged,
            i if i > 11_000 => match &load[i - 11_001].0.status {
                BatchStatus::Cancelled => Upsert::Unchanged,
                was => Upsert::Changed { was: was.clone() },
            },
            _ => Upsert::New,
        })
        .collect();
    assert!(out == want, "the bulk load's outcomes are not its batches'");
    for (b, _) in &load[..300] {
        let held = db.get_indexed(&b.id).await.unwrap().unwrap();
        assert_eq!(held.status, BatchStatus::Cancelled, "{}", b.id);
    }
    let q = BatchQuery {
        status: Some("cancelled".into()),
        ..Default::default()
    };
    let cancelled = load[300..11_000]
        .iter()
        .filter(|(b, _)| b.status == BatchStatus::Cancelled)
        .count();
    assert_eq!(
        db.query_batches(&q, None).await.unwrap().1,
        300 + cancelled as u64
    );
    assert_eq!(
        db.query_batches(&BatchQuery::default(), None)
            .await
            .unwrap()
            .1,
        3 + 11_000
    );
}

#[tokio::test]
async fn bulk_index_writes_read_back_the_same_on_sqlite_and_postgres() {
    let dir = TempDir::new("pg-bulk");
    for d in ["sqlite", "pg-data"] {
        std::fs::create_dir_all(dir.0.join(d)).unwrap();
    }
    let sqlite = batchboard_server::store::Db::open(None, &dir.0.join("sqlite"))
        .await
        .unwrap();
    bulk_writes_on(&sqlite).await;
    let pg = Postgres::start(&dir.0.join("db"));
    let postgres = batchboard_server::store::Db::open(Some(&pg.url()), &dir.0.join("pg-data"))
        .await
        .unwrap();
    bulk_writes_on(&postgres).await;
}
