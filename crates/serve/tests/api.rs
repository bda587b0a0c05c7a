//! The API's handlers against a real SQLite gold (no server, no network): what each endpoint
//! answers, its checks of what it is asked, the read token, and the headers on every answer.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use stocklake_http::TokenSet;
use stocklake_model::Gold;
use stocklake_serve::{AppState, Pipeline, router};
use tower::ServiceExt;

const TOKEN: &str = "read-token-for-tests";

async fn app(dir: &tempfile::TempDir, tokens: &[&str]) -> axum::Router {
    app_with_writes(dir, tokens, &[]).await
}

async fn app_with_writes(
    dir: &tempfile::TempDir,
    tokens: &[&str],
    write_tokens: &[&str],
) -> axum::Router {
    let url = format!("sqlite://{}", dir.path().join("gold.db").display());
    let gold = Gold::connect(&url).await.expect("gold");
    gold.migrate().await.expect("migrate");
    let state = AppState {
        gold,
        pipeline: Pipeline::new(&["ingest", "refine", "model"]),
        read_tokens: TokenSet::new(tokens),
        write_tokens: TokenSet::new(write_tokens),
        events: None,
        ready: Arc::new(AtomicBool::new(true)),
    };
    router(state).layer(axum::middleware::from_fn_with_state(
        stocklake_http::Guard::default(),
        stocklake_http::guard,
    ))
}

async fn get(
    app: &axum::Router,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let mut req = Request::get(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let r = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("answer");
    let (status, headers) = (r.status(), r.headers().clone());
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
    )
}

#[tokio::test]
async fn an_empty_gold_answers_every_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app(&dir, &[]).await;
    for (path, list) in [
        ("/v1/stock", "stock"),
        ("/v1/stock/summary", "categories"),
        ("/v1/stores", "stores"),
        ("/v1/alerts?status=open", "alerts"),
        ("/v1/dead-letters", "dead_letters"),
        ("/v1/orders", "orders"),
        (
            "/v1/orders?store_id=S&supplier_id=X&date=2026-12-07",
            "orders",
        ),
    ] {
        let (s, v, _) = get(&app, path, None).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        assert_eq!(v[list], Value::Array(vec![]), "{path}: {v}");
        assert_eq!(v["count"], 0, "{path}: {v}");
    }
    let (s, v, _) = get(&app, "/v1/pipeline", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["stages"].as_array().map(Vec::len), Some(3), "{v}");
    assert_eq!(v["gold"]["counts"]["dead_letters"], 0, "{v}");
    let (s, v, _) = get(&app, "/v1/sales/velocity?hours=24", None).await;
    assert_eq!((s, &v["hours"]), (StatusCode::OK, &Value::Array(vec![])));
    let (s, _, _) = get(&app, "/readyz", None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn what_is_asked_is_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app(&dir, &[]).await;
    for path in [
        "/v1/stock?limit=0",
        "/v1/stock?limit=10001",
        "/v1/stock?offset=1000000001",
        "/v1/stock?offset=-1",
        "/v1/stock?status=sold",
        "/v1/stock?token=x",
        "/v1/alerts?status=closed",
        "/v1/alerts?alert_type=nothing",
        "/v1/alerts?offset=18446744073709551616",
        "/v1/stores?limit=100000",
        "/v1/stock/summary?hours=3",
        "/v1/sales/velocity?hours=0",
        "/v1/sales/velocity?hours=1441",
        "/v1/sales/velocity?limit=5",
        "/v1/pipeline?verbose=1",
        "/v1/dead-letters?limit=10001",
        "/v1/orders?format=xlsx",
        "/v1/orders?date=2026-13-01",
        "/v1/orders?store=S",
        "/v1/orders?limit=10001",
    ] {
        let (s, v, _) = get(&app, path, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert_eq!(v["error"], "bad_query", "{path}: {v}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{path}: {v}"
        );
    }
    let (s, v, _) = get(&app, "/v1/stock?limit=10000&offset=1000000000", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["limit"].as_u64(), v["offset"].as_u64()),
        (Some(10_000), Some(1_000_000_000))
    );
}

#[tokio::test]
async fn the_read_token_guards_the_data_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app(&dir, &[TOKEN]).await;
    for path in [
        "/v1/stock",
        "/v1/alerts",
        "/v1/pipeline",
        "/v1/stores",
        "/v1/dead-letters",
        "/v1/orders?format=csv",
    ] {
        let (s, v, h) = get(&app, path, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(v["error"], "unauthorized");
        assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer");
        let (s, _, _) = get(&app, path, Some("wrong-token-for-tests")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        let (s, _, _) = get(&app, path, Some(TOKEN)).await;
        assert_eq!(s, StatusCode::OK, "{path}");
    }
    for path in [
        "/",
        "/assets/app.js",
        "/assets/app.css",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.yaml",
    ] {
        let (s, _, _) = get(&app, path, None).await;
        assert_eq!(s, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app(&dir, &[]).await;
    for path in ["/", "/v1/stock", "/healthz", "/no-such-page"] {
        let (_, _, h) = get(&app, path, None).await;
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        let csp = h["content-security-policy"].to_str().expect("csp");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    }
    let (_, _, h) = get(&app, "/", None).await;
    let csp = h["content-security-policy"].to_str().expect("csp");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
}

/// POST a JSON body (raw text, as a client may send anything) with a content type and token.
async fn post(
    app: &axum::Router,
    path: &str,
    content_type: &str,
    body: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::post(path).header(header::CONTENT_TYPE, content_type);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let r = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).expect("request"))
        .await
        .expect("answer");
    let status = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn acting_on_alerts_needs_the_write_token_and_a_well_formed_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_with_writes(&dir, &["reader-1"], &["writer-2"]).await;
    let ack = r#"{"action": "acknowledge"}"#;
    let json = "application/json";
    for token in [None, Some("reader-1"), Some("writer-")] {
        let (s, v) = post(&app, "/v1/alerts/7/actions", json, ack, token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{token:?}: {v}");
    }
    // past the token: an alert gold does not have
    let w = Some("writer-2");
    let (s, v) = post(&app, "/v1/alerts/7/actions", json, ack, w).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("no alert 7"))
    );
    // what a client gets wrong is a 400 with a message, never a 500
    for (path, ct, body) in [
        ("/v1/alerts/7/actions", json, "{"),
        ("/v1/alerts/7/actions", json, "[]"),
        (
            "/v1/alerts/7/actions",
            json,
            r#"{"action": "acknowledge", "extra": 1}"#,
        ),
        (
            "/v1/alerts/7/actions",
            json,
            r#"{"action": "snooze", "until": "soon"}"#,
        ),
        ("/v1/alerts/7/actions", "text/plain", ack),
        ("/v1/alerts/0/actions", json, ack),
        ("/v1/alerts/-1/actions", json, ack),
        ("/v1/alerts/99999999999999999999/actions", json, ack),
        ("/v1/alerts/%00/actions", json, ack),
    ] {
        let (s, v) = post(&app, path, ct, body, w).await;
        assert!(s.is_client_error(), "{path} {ct} {body}: {s} {v}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{path} {ct} {body}: {v}"
        );
    }
    // an idempotency key that is not one
    let r = app
        .clone()
        .oneshot(
            Request::post("/v1/alerts/7/actions")
                .header(header::CONTENT_TYPE, json)
                .header(header::AUTHORIZATION, "Bearer writer-2")
                .header("idempotency-key", "two words")
                .body(Body::from(ack))
                .expect("request"),
        )
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // the history is data: the read token
    let (s, _, _) = get(&app, "/v1/alerts/7/actions", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v, _) = get(&app, "/v1/alerts/7/actions", Some("reader-1")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    // an open API (no tokens at all, on loopback) takes actions without one
    let open_dir = tempfile::tempdir().expect("tempdir");
    let open = app_with_writes(&open_dir, &[], &[]).await;
    let (s, v) = post(&open, "/v1/alerts/7/actions", json, ack, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
}
