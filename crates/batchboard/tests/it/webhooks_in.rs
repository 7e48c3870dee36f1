//! Webhooks from the upstream, signed by an independent Standard Webhooks
//! implementation (the `standardwebhooks` package, tests/sdk/sign_webhook.py):
//! a valid one refreshes its batch at once and pushes it to viewers; wrong
//! secret, old timestamp, replayed id and missing headers are refused and
//! change nothing.

use std::time::{Duration, Instant};

use crate::common::{self, create_upstream, sandbox, Events, Fetch, Proc, TempDir, FAST, PASSWORD};

const KEY: &str = "sk-webhooks-in-7a2";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The `webhook-signature` the `standardwebhooks` package makes.
pub fn sign_with_package(secret: &str, id: &str, ts: i64, body: &str) -> String {
    use std::io::Write;
    let script = format!("{}/tests/sdk/sign_webhook.py", env!("CARGO_MANIFEST_DIR"));
    let mut child = std::process::Command::new("python3")
        .args([&script, secret, id, &ts.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (scripts/bootstrap.sh --test installs standardwebhooks)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn signed_webhooks_refresh_a_batch_at_once_and_bad_ones_change_nothing() {
    let dir = TempDir::new("webhooks-in");
    let data = dir.0.join("data");
    common::add_user(&data, "vi", "viewer", PASSWORD);
    let sb = sandbox(&dir.0.join("sb"), KEY, FAST);
    let upstream = format!("{}/v1", sb.base());
    let addr = format!("127.0.0.1:{}", common::free_port());
    let mut cmd = common::serve_command(&addr, &data);
    // The list is read rarely: only the webhook can bring news quickly.
    cmd.args(["--upstream-url", &upstream, "--watch-interval-ms", "600000"])
        .env("OPENAI_API_KEY", KEY)
        .env("BATCHBOARD_UPSTREAM_WEBHOOK_SECRET", SECRET);
    let dash = Proc::spawn(cmd, addr);
    let http = common::signed_in(&dash.base(), "vi", PASSWORD).await;
    let indexed = |id: String| {
        let (http, base) = (http.clone(), dash.base());
        async move {
            let (_, page) =
                common::server_fn(&http, &base, "list_batches", &[("query[limit]", "100")]).await;
            page.contains(&format!(r#""id":"{id}""#))
        }
    };
    // Wait for the watcher's first sweep, then make batches it has not seen.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let fresh = create_upstream(&upstream, KEY, 2).await;
    let other = create_upstream(&upstream, KEY, 2).await;
    assert!(!indexed(fresh.clone()).await);
    let url = format!("{}/webhooks/default", dash.base());
    let post = |id: &str, ts: i64, sig: Option<String>, body: &str| {
        let mut r = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(sig) = sig {
            r = r
                .header("webhook-id", id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", sig);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    let event = |batch: &str| {
        format!(
            r#"{{"object":"event","id":"evt_1","type":"batch.completed","created_at":1,"data":{{"id":"{batch}"}}}}"#
        )
    };

    // Refused, and nothing changes: wrong secret, old, unsigned.
    let body = event(&other);
    let t = now();
    let wrong = sign_with_package("whsec_b3RoZXJzZWNyZXRvdGhlcnNlY3JldA==", "msg_a", t, &body);
    assert_eq!(post("msg_a", t, Some(wrong), &body).await, 401);
    let old = sign_with_package(SECRET, "msg_b", t - 600, &body);
    assert_eq!(post("msg_b", t - 600, Some(old), &body).await, 400);
    assert_eq!(post("msg_c", t, None, &body).await, 400);
    // A body changed after signing.
    let sig = sign_with_package(SECRET, "msg_d", t, &body);
    assert_eq!(post("msg_d", t, Some(sig), &event(&fresh)).await, 401);
    assert!(!indexed(other.clone()).await);

    // A valid one: the batch is read and pushed to viewers within a second.
    let mut events = Events::open(&http, &dash.base()).await;
    let body = event(&fresh);
    let t = now();
    let sig = sign_with_package(SECRET, "msg_ok", t, &body);
    let sent = Instant::now();
    assert_eq!(post("msg_ok", t, Some(sig.clone()), &body).await, 200);
    loop {
        let (name, data) = tokio::time::timeout(Duration::from_secs(1), events.next())
            .await
            .expect("no event within a second of the webhook");
        if name == "batch" && data.contains(&fresh) {
            break;
        }
    }
    assert!(sent.elapsed() < Duration::from_secs(1));
    assert!(indexed(fresh.clone()).await);
    // The same delivery again: refused as a replay.
    assert_eq!(post("msg_ok", t, Some(sig), &body).await, 400);
    assert!(!indexed(other.clone()).await);
    // /readyz says the upstream's webhooks arrive; the secret is nowhere.
    let ready: serde_json::Value = http
        .get(format!("{}/readyz", dash.base()))
        .fetch_json()
        .await;
    assert_eq!(ready["upstreams"][0]["webhooks"], "healthy", "{ready}");
    let log = dash.output();
    assert!(
        !log.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") && !log.contains(KEY),
        "{log}"
    );
}
