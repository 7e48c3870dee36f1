//! The sandbox's router in process (`tower::ServiceExt::oneshot`): no
//! process or port is needed to check what it answers. The black-box tests
//! of the real `batchboard sandbox` live in `crates/batchboard/tests/it`.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use batchboard_core::OpenAiErrorBody;
use batchboard_sandbox::Sandbox;
use http_body_util::BodyExt;
use tower::ServiceExt;

const KEY: &str = "sk-sandbox-in-process";

fn sandbox() -> (tempfile::TempDir, axum::Router) {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::open(
        dir.path(),
        KEY.to_string().into(),
        Default::default(),
        Vec::new(),
        None,
        Default::default(),
    )
    .unwrap();
    (dir, sb.router())
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn a_wrong_key_is_refused_in_the_openai_error_shape() {
    let (_dir, app) = sandbox();
    for auth in [
        None,
        Some("Bearer sk-wrong"),
        Some("Bearer sk-sandbox-in-proces"),
    ] {
        let mut req = Request::get("/v1/batches");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let (status, body) = call(&app, req.body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        let e: OpenAiErrorBody = serde_json::from_value(body).unwrap();
        assert!(!e.error.message.is_empty());
    }
}

#[tokio::test]
async fn a_create_names_each_missing_or_bad_field() {
    let (_dir, app) = sandbox();
    let create = |body: serde_json::Value| {
        Request::post("/v1/batches")
            .header("authorization", format!("Bearer {KEY}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let cases = [
        (serde_json::json!({}), "input_file_id"),
        (serde_json::json!({"input_file_id": null}), "input_file_id"),
        (serde_json::json!({"input_file_id": "file-x"}), "endpoint"),
        (
            serde_json::json!({"input_file_id": "file-x", "endpoint": "/v1/nope", "completion_window": "24h"}),
            "endpoint",
        ),
        (
            serde_json::json!({"input_file_id": "file-x", "endpoint": "/v1/chat/completions"}),
            "completion_window",
        ),
        (
            serde_json::json!({"input_file_id": "file-x", "endpoint": "/v1/chat/completions",
                "completion_window": "24h", "output_expires_after": {"anchor": "created_at", "seconds": 60}}),
            "output_expires_after",
        ),
    ];
    for (body, param) in cases {
        let (status, answer) = call(&app, create(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let e: OpenAiErrorBody = serde_json::from_value(answer).unwrap();
        assert_eq!(e.error.param.as_deref(), Some(param), "{body}");
        assert_eq!(e.error.kind, "invalid_request_error", "{body}");
    }
}

#[tokio::test]
async fn azure_wants_its_key_header_and_an_api_version_on_the_dated_paths() {
    let (_dir, app) = sandbox();
    let get = |path: &str, header: (&str, String)| {
        Request::get(path)
            .header(header.0, header.1)
            .body(Body::empty())
            .unwrap()
    };
    let key = || ("api-key", KEY.to_string());
    let (status, _) = call(
        &app,
        get("/azure/openai/batches?api-version=2024-10-21", key()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(&app, get("/azure/openai/batches", key())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("api-version"),
        "{body}"
    );
    let (status, _) = call(&app, get("/azure/openai/v1/batches", key())).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &app,
        get("/azure/openai/v1/batches", ("api-key", "sk-wrong".into())),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // OpenAI's dialect does not take Azure's header.
    let (status, _) = call(&app, get("/v1/batches", key())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn anthropic_errors_come_in_its_shape_and_say_which_request() {
    let (_dir, app) = sandbox();
    let post = |version: Option<&str>, body: serde_json::Value| {
        let mut req = Request::post("/anthropic/v1/messages/batches")
            .header("x-api-key", KEY)
            .header("content-type", "application/json");
        if let Some(v) = version {
            req = req.header("anthropic-version", v);
        }
        req.body(Body::from(body.to_string())).unwrap()
    };
    let ok = serde_json::json!({"custom_id": "a", "params": {"model": "m", "max_tokens": 5, "messages": []}});
    let (status, body) = call(&app, post(None, serde_json::json!({"requests": [ok]}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["type"], "error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("anthropic-version"),
        "{body}"
    );
    for (bad, field) in [
        (
            serde_json::json!({"custom_id": "a b", "params": ok["params"]}),
            "requests.1.custom_id",
        ),
        (
            serde_json::json!({"custom_id": "a", "params": ok["params"]}),
            "requests.1.custom_id",
        ),
        (
            serde_json::json!({"custom_id": "b", "params": {"model": "m", "messages": []}}),
            "requests.1.params.max_tokens",
        ),
        (serde_json::json!({"custom_id": "b"}), "requests.1.params"),
    ] {
        let (status, body) = call(
            &app,
            post(
                Some("2023-06-01"),
                serde_json::json!({"requests": [ok, bad]}),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{field}: {body}"
        );
    }
    // Nothing of a refused create is kept.
    let list = Request::get("/anthropic/v1/messages/batches")
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .body(Body::empty())
        .unwrap();
    let (status, body) = call(&app, list).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], serde_json::json!([]));
}
