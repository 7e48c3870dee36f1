//! Spend and budgets over real HTTP against the real binary and sandbox:
//! each batch's cost from the usage the upstream recorded (cached input and
//! reasoning tokens included) equals the figure worked out by hand from
//! that usage and the price table; the spend report's totals by user and
//! team are the sums over their batches, and the CSV says the same; a
//! budget refuses a batch before anything reaches the upstream, an edit of
//! the budgets file on disk applies to the next batch, an admin may go
//! over it (audited), and a budget spent is announced on the event stream.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, server_fn, Stack, TempDir, PASSWORD};

const KEY: &str = "sk-spend-test";

/// Round prices, so that the hand computation below is plain.
const PRICES: &str = r#"
source = "test prices"
[models."gpt-5-mini"]
input = 2.0
cached_input = 0.5
output = 8.0
max_output = 1000
[models."gpt-4o-mini"]
input = 1.0
output = 4.0
"#;

/// The dollars of `usage` at the test prices, worked out by hand.
fn by_hand(model: &str, usage: &Value) -> f64 {
    let n = |v: &Value| v.as_u64().unwrap() as f64;
    let input = n(&usage["input_tokens"]);
    let cached = n(&usage["input_tokens_details"]["cached_tokens"]);
    let output = n(&usage["output_tokens"]);
    match model {
        "gpt-5-mini" => ((input - cached) * 2.0 + cached * 0.5 + output * 8.0) / 1e6,
        _ => (input * 1.0 + output * 4.0) / 1e6,
    }
}

/// `n` chat requests for `model`, each with a system prompt (the sandbox
/// counts its tokens as cached) and a limit on the answer.
pub(crate) fn file(model: &str, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| {
            serde_json::json!({
                "custom_id": format!("r{i}"),
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": model,
                    "max_completion_tokens": 100,
                    "messages": [
                        {"role": "system", "content": "You answer questions about the weather in a few words, politely."},
                        {"role": "user", "content": format!("What is the weather like in city number {i} today?")}
                    ]
                }
            })
            .to_string()
                + "\n"
        })
        .collect::<String>()
        .into_bytes()
}

async fn stack(tag: &str, extra: &[&str]) -> (Stack, TempDir) {
    let prices = TempDir::new(&format!("{tag}-prices"));
    let path = prices.0.join("prices.toml");
    std::fs::write(&path, PRICES).unwrap();
    let mut args = vec!["--price-table", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let s = Stack::start(tag, KEY, common::FAST, &args).await;
    (s, prices)
}

/// Creates a batch as `http`'s user with `team` in its metadata; answers
/// the status and body.
pub(crate) async fn create(
    http: &reqwest::Client,
    base: &str,
    content: Vec<u8>,
    team: &str,
    extra: &[(&str, &str)],
) -> (u16, String) {
    let metadata = format!(r#"{{"team":"{team}"}}"#);
    common::upload_with(
        http,
        base,
        content,
        "/v1/chat/completions",
        &metadata,
        extra,
    )
    .await
}

/// The batch as the upstream holds it, once it completed (with its usage).
async fn completed_upstream(s: &Stack, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let b = s.upstream_get(&format!("/batches/{id}")).await;
        if b["status"] == "completed" && b["usage"].is_object() {
            return b;
        }
        assert!(Instant::now() < deadline, "{id} did not complete: {b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The dashboard's cost of `id` once its index holds the completed batch.
pub(crate) async fn dashboard_cost(http: &reqwest::Client, base: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = server_fn(http, base, "get_batch_cost", &[("id", id)]).await;
        assert_eq!(status, 200, "{body}");
        let c: Value = serde_json::from_str(&body).unwrap();
        if c["basis"] == "usage" && c["upper_usd"].is_null() {
            return c;
        }
        assert!(Instant::now() < deadline, "no final cost for {id}: {c}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_costs_match_the_recorded_usage_and_the_report_sums_them_by_user_and_team() {
    let (s, _prices) = stack("spend-costs", &[]).await;
    let base = s.dash.base();
    common::add_user(&s.dir.0.join("data"), "op2", "operator", PASSWORD);
    let op2 = common::signed_in(&base, "op2", PASSWORD).await;
    // The table's rows learn their costs from the stream.
    let mut events = common::Events::open(&s.vi, &base).await;

    // op: two batches of team search (one reasoning model), one of ads;
    // op2: one of search.
    let mut made: Vec<(String, &str, &str, &str)> = Vec::new();
    for (http, who, model, n, team) in [
        (&s.op, "op", "gpt-5-mini", 4, "search"),
        (&s.op, "op", "gpt-4o-mini", 3, "ads"),
        (&op2, "op2", "gpt-5-mini", 5, "search"),
        (&s.op, "op", "gpt-5-mini", 2, "search"),
    ] {
        let (status, body) = create(http, &base, file(model, n), team, &[]).await;
        assert_eq!(status, 200, "{body}");
        let b: Value = serde_json::from_str(&body).unwrap();
        made.push((b["id"].as_str().unwrap().to_string(), who, model, team));
    }

    let mut by_user: BTreeMap<&str, f64> = BTreeMap::new();
    let mut by_team: BTreeMap<&str, f64> = BTreeMap::new();
    let mut hand: BTreeMap<String, f64> = BTreeMap::new();
    for (id, who, model, team) in &made {
        let up = completed_upstream(&s, id).await;
        let usage = &up["usage"];
        if *model == "gpt-5-mini" {
            assert!(
                usage["input_tokens_details"]["cached_tokens"]
                    .as_u64()
                    .unwrap()
                    > 0
                    && usage["output_tokens_details"]["reasoning_tokens"]
                        .as_u64()
                        .unwrap()
                        > 0,
                "the sandbox should report cached and reasoning tokens: {usage}"
            );
        }
        let expected = by_hand(model, usage);
        let c = dashboard_cost(&s.op, &base, id).await;
        assert!(
            close(c["usd"].as_f64().unwrap(), expected),
            "{id}: dashboard {c}, by hand {expected}"
        );
        assert_eq!(c["priced_as"], *model);
        assert_eq!(
            c["tokens"]["reasoning"],
            usage["output_tokens_details"]["reasoning_tokens"]
        );
        *by_user.entry(who).or_default() += expected;
        *by_team.entry(team).or_default() += expected;
        hand.insert(id.clone(), expected);
    }

    // The table's Cost cells: each row carries its cost, priced by the
    // server, and so does the `batch` event that said it completed.
    let (status, body) = server_fn(&s.vi, &base, "list_batches", &[("query[limit]", "20")]).await;
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    for row in page["batches"].as_array().unwrap() {
        let want = hand[row["id"].as_str().unwrap()];
        assert!(
            close(row["cost_usd"].as_f64().unwrap(), want),
            "{row} vs {want}"
        );
        assert!(
            row.get("usage").is_none(),
            "rows carry what the table shows: {row}"
        );
    }
    let mut heard: BTreeMap<String, f64> = BTreeMap::new();
    while heard.len() < hand.len() {
        let (name, data) = tokio::time::timeout(Duration::from_secs(30), events.next())
            .await
            .expect("a completed batch's event");
        let ev: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
        if name == "batch" && ev["status"] == "completed" {
            heard.insert(
                ev["id"].as_str().unwrap().into(),
                ev["cost_usd"].as_f64().unwrap(),
            );
        }
    }
    for (id, usd) in &heard {
        assert!(close(*usd, hand[id]), "{id}: event {usd} vs {}", hand[id]);
    }

    // The report (what the spend page shows), grouped by user and by team.
    for (group, want) in [("user", &by_user), ("team", &by_team)] {
        let (status, body) = server_fn(
            &s.vi,
            &base,
            "get_spend",
            &[("query[group]", group), ("query[period]", "day")],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let r: Value = serde_json::from_str(&body).unwrap();
        let got: BTreeMap<String, f64> = r["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["name"].as_str().unwrap().to_string(),
                    g["usd"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got.len(), want.len(), "{group}: {got:?} vs {want:?}");
        for (name, usd) in want.iter() {
            assert!(
                close(got[*name], *usd),
                "{group} {name}: {} vs {usd}",
                got[*name]
            );
        }
        let total: f64 = want.values().sum();
        assert!(close(r["usd"].as_f64().unwrap(), total));
        assert_eq!(r["batches"], 4);
        assert_eq!(r["unpriced"], 0);
        // Each group's periods add up to its total (today's period holds all).
        for g in r["groups"].as_array().unwrap() {
            let sum: f64 = g["by_period"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .sum();
            assert!(close(sum, g["usd"].as_f64().unwrap()), "{g}");
        }
    }

    // A filter narrows it: op2's batches only.
    let (_, body) = server_fn(
        &s.vi,
        &base,
        "get_spend",
        &[("query[group]", "team"), ("query[creator]", "op2")],
    )
    .await;
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["batches"], 1, "{r}");
    assert!(close(r["usd"].as_f64().unwrap(), by_user["op2"]));

    // The CSV (a link on the page) has the same figures.
    let csv =
        s.vi.get(format!("{base}/api/spend.csv?group=team&period=month"))
            .send()
            .await
            .unwrap();
    assert_eq!(csv.status().as_u16(), 200);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let head = rows.headers().unwrap().clone();
    assert_eq!(&head[0], "team");
    let usd_at = head.iter().position(|h| h == "usd").unwrap();
    let mut seen = 0;
    for row in rows.records() {
        let row = row.unwrap();
        let want = by_team[&row[0]];
        assert!(close(row[usd_at].parse::<f64>().unwrap(), want), "{row:?}");
        seen += 1;
    }
    assert_eq!(seen, 2);
    // Without a session: refused.
    let anon = common::browser(&base)
        .get(format!("{base}/api/spend.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_refuses_before_anything_is_uploaded_and_applies_edits_at_once() {
    let (hook, hooked) = crate::live::hook_listener();
    let (s, _prices) = stack("spend-budget", &["--webhook-url", &hook]).await;
    let base = s.dash.base();
    let data = s.dir.0.join("data");
    common::add_user(&data, "ad", "admin", PASSWORD);
    let ad = common::signed_in(&base, "ad", PASSWORD).await;
    let budgets = data.join("budgets.toml");
    let count = |v: Value| v["data"].as_array().unwrap().len();
    let files_before = count(s.upstream_get("/files?limit=10000").await);
    let batches_before = count(s.upstream_get("/batches?limit=100").await);

    // Team search may spend a tenth of a cent this month: three requests
    // of gpt-4o-mini limited to 100 tokens each can cost more.
    std::fs::write(&budgets, "[budgets.teams]\nsearch = 0.001\n").unwrap();
    let (status, body) = create(&s.op, &base, file("gpt-4o-mini", 3), "search", &[]).await;
    assert_eq!(status, 403, "{body}");
    let e: Value = serde_json::from_str(&body).unwrap();
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("could cost up to $0.00")
            && message.contains("team search has $0.0010 left of $0.0010")
            && message.contains("Nothing was created"),
        "{message}"
    );
    // Nothing reached the upstream: no file, no batch.
    assert_eq!(
        count(s.upstream_get("/files?limit=10000").await),
        files_before
    );
    assert_eq!(
        count(s.upstream_get("/batches?limit=100").await),
        batches_before
    );
    // Another team is not held back by it.
    let (status, body) = create(&s.op, &base, file("gpt-4o-mini", 3), "ads", &[]).await;
    assert_eq!(status, 200, "{body}");

    // An admin may go over it: created, and the audit log says so.
    let mut events = common::Events::open(&s.vi, &base).await;
    let (status, body) = create(
        &ad,
        &base,
        file("gpt-4o-mini", 3),
        "search",
        &[("override_budget", "1")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let over: Value = serde_json::from_str(&body).unwrap();
    let (_, log) = server_fn(
        &ad,
        &base,
        "audit_log",
        &[("limit", "20"), ("action", "budget_override")],
    )
    .await;
    assert!(log.contains(over["id"].as_str().unwrap()), "{log}");
    // An operator's ask to go over is not honoured.
    let (status, _) = create(
        &s.op,
        &base,
        file("gpt-4o-mini", 3),
        "search",
        &[("override_budget", "1")],
    )
    .await;
    assert_eq!(status, 403);

    // Every open page heard that the team's budget is spent.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (name, data) = tokio::time::timeout(left, events.next())
            .await
            .expect("a budget event within 20 s");
        if name == "budget" {
            let b: Value = serde_json::from_str(&data).unwrap();
            assert_eq!(
                (b["scope"].as_str(), b["name"].as_str()),
                (Some("team"), Some("search"))
            );
            assert!(b["spent_usd"].as_f64().unwrap() > 0.001, "{b}");
            break;
        }
    }

    // And the webhook, once per level and month (among the messages of
    // finished batches, and later of op's own budget).
    let said = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut budget = Vec::new();
        while let Ok(got) = hooked.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if got.contains("Budget spent: team search") {
                budget.push(got);
            }
        }
        budget
    });

    let (_, body) = server_fn(&ad, &base, "list_budgets", &[]).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    let spent = v["budgets"][0]["spent_usd"].as_f64().unwrap();
    assert!(spent > 0.0, "{v}");
    let limit = spent + 0.002;
    std::fs::write(&budgets, format!("[budgets.teams]\nsearch = {limit}\n")).unwrap();
    let (status, body) = create(&s.op, &base, file("gpt-4o-mini", 3), "search", &[]).await;
    assert_eq!(status, 200, "{body}");

    // The admin page's server functions: set and remove, written to the
    // file; operators may not.
    let (status, body) = server_fn(
        &ad,
        &base,
        "set_budget",
        &[("scope", "user"), ("name", "op"), ("limit", "12.5")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let text = std::fs::read_to_string(&budgets).unwrap();
    assert!(
        text.contains("[budgets.users]") && text.contains("op = 12.5"),
        "{text}"
    );
    let (status, body) = server_fn(
        &ad,
        &base,
        "set_budget",
        &[("scope", "user"), ("name", "op"), ("limit", "-1")],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not -1"), "{body}");
    let (status, _) = server_fn(
        &s.op,
        &base,
        "set_budget",
        &[("scope", "team"), ("name", "search"), ("limit", "1000")],
    )
    .await;
    assert_eq!(status, 403);
    // A user budget binds too: op's own 0.000001 refuses op's next batch.
    let (status, _) = server_fn(
        &ad,
        &base,
        "set_budget",
        &[("scope", "user"), ("name", "op"), ("limit", "0.000001")],
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = create(&s.op, &base, file("gpt-4o-mini", 1), "ads", &[]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("user op has"), "{body}");

    let said = said.await.unwrap();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("Budget spent: team search has spent $0.00")
            && said[0].contains("of $0.0010")
            && said[0].contains(&this_month()),
        "{}",
        said[0]
    );
}

fn this_month() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}", d.year(), u8::from(d.month()))
}

/// A job is checked as a whole, and until its parts have run it holds its
/// most against the budget: the parts not submitted yet by their share,
/// the running ones at their batches' upper bounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_holds_its_most_against_the_budget_until_its_parts_have_run() {
    // A slow upstream: the job's parts are still queued or running when
    // the budget is read.
    let slow = ["--sandbox-rps", "1", "--sandbox-validation-ms", "3000"];
    let prices = TempDir::new("spend-job-prices");
    let path = prices.0.join("prices.toml");
    std::fs::write(&path, PRICES).unwrap();
    let s = Stack::start(
        "spend-job",
        KEY,
        &slow,
        &["--price-table", path.to_str().unwrap()],
    )
    .await;
    let base = s.dash.base();
    let data = s.dir.0.join("data");
    common::add_user(&data, "ad", "admin", PASSWORD);
    let ad = common::signed_in(&base, "ad", PASSWORD).await;
    std::fs::write(data.join("budgets.toml"), "[budgets.teams]\njobs = 1\n").unwrap();

    let form = reqwest::multipart::Form::new()
        .text("endpoint", "/v1/chat/completions")
        .text("completion_window", "24h")
        .text("metadata", r#"{"team":"jobs"}"#)
        .part(
            "file",
            reqwest::multipart::Part::bytes(file("gpt-5-mini", 3)).file_name("job.jsonl"),
        );
    let r =
        s.op.post(format!("{base}/api/jobs"))
            .multipart(form)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());

    // Three requests of at most 100 output tokens at $8 per million: the
    // job may cost at least $0.0024 in output alone, and that is held.
    let (_, body) = server_fn(&ad, &base, "list_budgets", &[]).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    let held = v["budgets"][0]["spent_usd"].as_f64().unwrap();
    assert!(held >= 0.0024, "{v}");
    // So a batch that fits what is left without the job does not fit now.
    std::fs::write(
        data.join("budgets.toml"),
        format!("[budgets.teams]\njobs = {}\n", held + 0.001),
    )
    .unwrap();
    let (status, body) = create(&s.op, &base, file("gpt-5-mini", 3), "jobs", &[]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("team jobs has $0.0010 left"), "{body}");
}

/// An upstream that reports no `usage` on its batches: a batch is first
/// estimated from Batchboard's own input estimate, and once its results
/// were read, priced from what its result lines say they used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_without_usage_is_estimated_then_priced_from_its_results() {
    let mut speed = common::FAST.to_vec();
    speed.push("--sandbox-no-batch-usage");
    let prices = TempDir::new("spend-nousage-prices");
    let path = prices.0.join("prices.toml");
    std::fs::write(&path, PRICES).unwrap();
    let s = Stack::start(
        "spend-nousage",
        KEY,
        &speed,
        &["--price-table", path.to_str().unwrap()],
    )
    .await;
    let base = s.dash.base();
    let (status, body) = create(&s.op, &base, file("gpt-5-mini", 4), "search", &[]).await;
    assert_eq!(status, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let up = loop {
        let b = s.upstream_get(&format!("/batches/{id}")).await;
        if b["status"] == "completed" {
            break b;
        }
        assert!(Instant::now() < deadline, "{b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(up["usage"].is_null(), "{up}");

    // Before its results are read: the input estimate, no tokens.
    let cost = |http: &reqwest::Client| {
        let (http, base, id) = (http.clone(), base.clone(), id.clone());
        async move {
            let (status, body) = server_fn(&http, &base, "get_batch_cost", &[("id", &id)]).await;
            assert_eq!(status, 200, "{body}");
            serde_json::from_str::<Value>(&body).unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        let c = cost(&s.vi).await;
        if c["upper_usd"].is_null() && c["basis"] == "estimated" {
            break c;
        }
        assert!(Instant::now() < deadline, "{c}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(first["tokens"].is_null(), "{first}");
    assert!(first["usd"].as_f64().unwrap() > 0.0, "{first}");

    // Its results read (the batch page's table): their usage prices it.
    let (status, body) = server_fn(&s.vi, &base, "batch_results", &[("id", &id)]).await;
    assert_eq!(status, 200, "{body}");
    let out = up["output_file_id"].as_str().unwrap();
    let lines = reqwest::Client::new()
        .get(format!("{}/files/{out}/content", s.upstream_url()))
        .bearer_auth(&s.key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (mut input, mut cached, mut output) = (0.0, 0.0, 0.0);
    for l in lines.lines() {
        let u = &serde_json::from_str::<Value>(l).unwrap()["response"]["body"]["usage"];
        input += u["prompt_tokens"].as_f64().unwrap();
        cached += u["prompt_tokens_details"]["cached_tokens"]
            .as_f64()
            .unwrap();
        output += u["completion_tokens"].as_f64().unwrap();
    }
    let by_hand = ((input - cached) * 2.0 + cached * 0.5 + output * 8.0) / 1e6;
    let read = cost(&s.vi).await;
    assert_eq!(read["basis"], "estimated", "{read}");
    assert!(
        close(read["usd"].as_f64().unwrap(), by_hand),
        "{read} vs {by_hand}"
    );
    assert_eq!(read["tokens"]["output"].as_f64().unwrap(), output);
    // And the spend page counts it so, as estimated.
    let (_, body) = server_fn(&s.vi, &base, "get_spend", &[("query[group]", "team")]).await;
    let r: Value = serde_json::from_str(&body).unwrap();
    assert!(close(r["estimated_usd"].as_f64().unwrap(), by_hand), "{r}");
    assert!(close(r["usd"].as_f64().unwrap(), by_hand), "{r}");
}
