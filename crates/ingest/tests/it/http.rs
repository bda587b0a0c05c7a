use std::sync::Arc;

use bytes::Bytes;
use stocklake_ingest::{BronzeWriter, HttpIngest, HttpIngestConfig};
use stocklake_storage::{AwsOptions, Location};

use crate::common::bronze_contents;

struct Server {
    url: String,
    dir: tempfile::TempDir,
    store: Arc<dyn object_store::ObjectStore>,
}

async fn server(cfg: HttpIngestConfig) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let loc = Location::parse(dir.path().to_str().expect("utf8")).expect("location");
    let writer = BronzeWriter::open(&loc, &AwsOptions::default()).expect("writer");
    let store = writer.store();
    let (ingest, _task) = HttpIngest::start(writer, cfg);
    let app = ingest.router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    Server { url, dir, store }
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(s: &Server, ct: &str, body: impl Into<reqwest::Body>) -> (u16, serde_json::Value) {
    let r = client()
        .post(format!("{}/v1/events", s.url))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

#[tokio::test]
async fn ndjson_is_accepted_after_it_is_durable_byte_for_byte() {
    let s = server(HttpIngestConfig::default()).await;
    let body =
        b"{\"event_id\":\"a\"}\r\nnot json, still kept\n\n{\"event_id\":\"\xc3\xa9\"}".to_vec();
    let (status, json) = post(&s, "application/x-ndjson", body).await;
    assert_eq!(status, 202);
    assert_eq!(json, serde_json::json!({"accepted": 3}));
    let (contents, names) = bronze_contents(s.store.as_ref()).await;
    assert_eq!(names.len(), 1);
    let payloads: Vec<&[u8]> = contents.values().map(|v| v.as_slice()).collect();
    assert_eq!(
        payloads,
        vec![
            &b"{\"event_id\":\"a\"}"[..],
            &b"not json, still kept"[..],
            "{\"event_id\":\"é\"}".as_bytes()
        ]
    );
    // the object is a plain file under the data dir
    assert!(s.dir.path().join(names[0].path()).is_file());
}

#[tokio::test]
async fn json_bodies_one_object_or_an_array() {
    let s = server(HttpIngestConfig::default()).await;
    let (status, json) = post(&s, "application/json", r#"[{"a":1}, {"b":2}]"#).await;
    assert_eq!((status, json), (202, serde_json::json!({"accepted": 2})));
    let (status, json) = post(&s, "application/json", r#"{"c":3}"#).await;
    assert_eq!((status, json), (202, serde_json::json!({"accepted": 1})));
    let (contents, _) = bronze_contents(s.store.as_ref()).await;
    assert_eq!(contents.len(), 3);
}

#[tokio::test]
async fn bad_json_is_400_and_nothing_is_written() {
    let s = server(HttpIngestConfig::default()).await;
    let (status, json) = post(&s, "application/json", r#"[{"a":1}, {"b":"#).await;
    assert_eq!(status, 400);
    assert_eq!(json["error"], "invalid_json");
    assert!(
        json["message"]
            .as_str()
            .is_some_and(|m| m.contains("nothing was accepted"))
    );
    let (contents, _) = bronze_contents(s.store.as_ref()).await;
    assert!(contents.is_empty());
}

#[tokio::test]
async fn too_large_is_413_and_nothing_is_written() {
    let s = server(HttpIngestConfig {
        max_body_bytes: 1000,
        ..HttpIngestConfig::default()
    })
    .await;
    let (status, json) = post(&s, "application/x-ndjson", vec![b'x'; 5000]).await;
    assert_eq!(status, 413);
    assert_eq!(json["error"], "payload_too_large");
    // without a content length (chunked), the limit still holds
    let stream = futures::stream::iter(
        (0..10).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'y'; 500]))),
    );
    let (status, _) = post(
        &s,
        "application/x-ndjson",
        reqwest::Body::wrap_stream(stream),
    )
    .await;
    assert_eq!(status, 413);
    let (contents, _) = bronze_contents(s.store.as_ref()).await;
    assert!(contents.is_empty());
}

#[tokio::test]
async fn tokens_are_required_when_configured() {
    let s = server(HttpIngestConfig {
        tokens: stocklake_http::TokenSet::new(["s3cr3t-token", "other"]),
        ..HttpIngestConfig::default()
    })
    .await;
    let send = |auth: Option<&'static str>| {
        let mut r = client()
            .post(format!("{}/v1/events", s.url))
            .header("content-type", "application/x-ndjson")
            .body("{\"a\":1}");
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    for bad in [
        None,
        Some("Bearer wrong"),
        Some("Bearer s3cr3t-tokeN"),
        Some("Basic s3cr3t-token"),
    ] {
        let r = send(bad).await.expect("send");
        assert_eq!(r.status().as_u16(), 401, "{bad:?}");
        assert_eq!(
            r.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer")
        );
    }
    let (contents, _) = bronze_contents(s.store.as_ref()).await;
    assert!(contents.is_empty(), "nothing written without a valid token");
    let r = send(Some("Bearer s3cr3t-token")).await.expect("send");
    assert_eq!(r.status().as_u16(), 202);
    let r = send(Some("Bearer other")).await.expect("send");
    assert_eq!(r.status().as_u16(), 202);
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let s = server(HttpIngestConfig {
        rate_limit_per_second: 2,
        ..HttpIngestConfig::default()
    })
    .await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for i in 0..6 {
        let r = client()
            .post(format!("{}/v1/events", s.url))
            .header("content-type", "application/x-ndjson")
            .body(format!("{{\"n\":{i}}}\n"))
            .send()
            .await
            .expect("send");
        statuses.push(r.status().as_u16());
        if r.status().as_u16() == 429 {
            retry_after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            let json: serde_json::Value = r.json().await.expect("json");
            assert_eq!(json["error"], "rate_limited");
        }
    }
    // a burst of the per-second allowance passes, the rest is refused (refused requests cost
    // next to nothing, far less than the half second it takes to earn another)
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        2,
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    let (contents, _) = bronze_contents(s.store.as_ref()).await;
    assert_eq!(contents.len(), 2, "only accepted records are written");
}

#[tokio::test]
async fn unsupported_media_type_is_415() {
    let s = server(HttpIngestConfig::default()).await;
    let (status, json) = post(&s, "text/csv", "a,b\n1,2").await;
    assert_eq!(status, 415);
    assert_eq!(json["error"], "unsupported_media_type");
}

#[tokio::test]
async fn overload_is_503_with_retry_after_never_a_queue() {
    let s = server(HttpIngestConfig {
        max_queued_bytes: 2048,
        ..HttpIngestConfig::default()
    })
    .await;
    let r = client()
        .post(format!("{}/v1/events", s.url))
        .header("content-type", "application/x-ndjson")
        .body(vec![b'z'; 8192])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let json: serde_json::Value = r.json().await.expect("json");
    assert_eq!(json["error"], "overloaded");
}

#[tokio::test]
async fn a_failing_bronze_store_is_503_with_retry_after() {
    let s = server(HttpIngestConfig::default()).await;
    // the bronze directory becomes a plain file: writes fail
    let root = s.dir.path().to_path_buf();
    std::fs::remove_dir_all(&root).expect("rm");
    std::fs::write(&root, b"not a directory").expect("file");
    let r = client()
        .post(format!("{}/v1/events", s.url))
        .header("content-type", "application/x-ndjson")
        .body("{\"a\":1}")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let json: serde_json::Value = r.json().await.expect("json");
    assert_eq!(json["error"], "bronze_unavailable");
    std::fs::remove_file(&root).expect("cleanup");
    std::fs::create_dir_all(&root).expect("restore");
}

#[tokio::test]
async fn concurrent_clients_share_writes_and_lose_nothing() {
    let s = server(HttpIngestConfig::default()).await;
    let clients = 40;
    let per = 50;
    let mut handles = Vec::new();
    for c in 0..clients {
        let url = format!("{}/v1/events", s.url);
        handles.push(tokio::spawn(async move {
            let body: String = (0..per)
                .map(|i| format!("{{\"client\":{c},\"i\":{i}}}\n"))
                .collect();
            let r = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await
                .expect("send");
            assert_eq!(r.status().as_u16(), 202);
            let v: serde_json::Value = r.json().await.expect("json");
            assert_eq!(v["accepted"], per);
        }));
    }
    for h in handles {
        h.await.expect("client");
    }
    let (contents, names) = bronze_contents(s.store.as_ref()).await;
    assert_eq!(contents.len(), clients * per);
    let mut seen: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    for payload in contents.values() {
        assert!(seen.insert(payload.clone()));
    }
    // sequence numbers are contiguous per partition: 1..=N
    let mut seqs: Vec<u64> = contents
        .keys()
        .map(|(_, s)| s.parse().expect("num"))
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=(clients * per) as u64).collect::<Vec<_>>());
    assert!(names.len() <= clients, "{} objects", names.len());
}
