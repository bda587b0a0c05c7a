//! A throttling proxy in front of the Kinesis emulator: the emulator never throttles, real
//! Kinesis does (1 MB/s or 1,000 records/s written and 5 reads/s per shard). The proxy forwards
//! every request, except that:
//!
//! - `GetRecords` is refused with `ProvisionedThroughputExceededException` for 4 seconds in
//!   every 8, long enough that the SDK's own retries run out and the caller sees it;
//! - `PutRecords` sometimes fails as a whole (1 call in 7) and otherwise, every other call, fails
//!   every third record of the batch, answered as Kinesis does: HTTP 200 with `ErrorCode` on
//!   those entries and `FailedRecordCount`. Those records never reach the emulator, so a producer
//!   that does not resend exactly them loses them.
//!
//! Everything else (S3, other Kinesis calls) passes unchanged. Started with
//! [`ThrottlingProxy::passthrough`] it throttles nothing; its upstream can be switched, which is
//! how a test moves clients to a restarted emulator without telling them; and
//! [`ThrottlingProxy::fail_reads`] answers every `GetRecords` with a server error (Kinesis'
//! `InternalFailure`, HTTP 500) until it is turned off again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What the proxy did.
#[derive(Debug, Default)]
pub struct ThrottleCounts {
    pub get_records: AtomicU64,
    pub get_records_throttled: AtomicU64,
    pub put_records: AtomicU64,
    pub put_records_throttled: AtomicU64,
    /// Records answered as failed inside partially failed `PutRecords` calls.
    pub records_failed: AtomicU64,
    /// `GetShardIterator` calls: a reader that starts (or starts again) asks for one.
    pub get_shard_iterator: AtomicU64,
    /// `GetRecords` calls answered with a server error by [`ThrottlingProxy::fail_reads`].
    pub get_records_failed: AtomicU64,
}

/// A running proxy; it stops with the test process.
pub struct ThrottlingProxy {
    pub url: String,
    pub counts: Arc<ThrottleCounts>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ThrottlingProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThrottlingProxy")
            .field("url", &self.url)
            .finish()
    }
}

struct Shared {
    started: std::time::Instant,
    throttle: bool,
    failing_reads: std::sync::atomic::AtomicBool,
    upstream: std::sync::RwLock<String>,
    one_at_a_time: Option<tokio::sync::Mutex<()>>,
    client: reqwest::Client,
    counts: Arc<ThrottleCounts>,
}

const THROTTLED: &str = "ProvisionedThroughputExceededException";

impl ThrottlingProxy {
    /// Starts a throttling proxy to `upstream` (the emulator's URL) on a thread and runtime of
    /// its own.
    pub fn start(upstream: &str) -> Result<ThrottlingProxy, String> {
        Self::launch(upstream, true, false)
    }

    /// A proxy that only forwards (see [`ThrottlingProxy::set_upstream`]).
    pub fn passthrough(upstream: &str) -> Result<ThrottlingProxy, String> {
        Self::launch(upstream, false, false)
    }

    /// A forwarding proxy that lets one request at a time through. moto's recorder appends
    /// each request to its file in pieces, from as many threads as there are requests: two at
    /// once can interleave into lines it cannot replay.
    pub fn serial(upstream: &str) -> Result<ThrottlingProxy, String> {
        Self::launch(upstream, false, true)
    }

    /// Forwards from now on to `upstream`.
    pub fn set_upstream(&self, upstream: &str) {
        if let Ok(mut u) = self.shared.upstream.write() {
            *u = upstream.trim_end_matches('/').to_string();
        }
    }

    /// While `on`, every `GetRecords` is answered with `InternalFailure` (HTTP 500), which the
    /// SDK retries and then hands to the caller.
    pub fn fail_reads(&self, on: bool) {
        self.shared.failing_reads.store(on, Ordering::SeqCst);
    }

    fn launch(upstream: &str, throttle: bool, serial: bool) -> Result<ThrottlingProxy, String> {
        let counts = Arc::new(ThrottleCounts::default());
        let shared = Arc::new(Shared {
            started: std::time::Instant::now(),
            throttle,
            failing_reads: std::sync::atomic::AtomicBool::new(false),
            upstream: std::sync::RwLock::new(upstream.trim_end_matches('/').to_string()),
            one_at_a_time: serial.then(|| tokio::sync::Mutex::new(())),
            client: reqwest::Client::new(),
            counts: counts.clone(),
        });
        let app = axum::Router::new()
            .fallback(proxy)
            .with_state(shared.clone());
        Ok(ThrottlingProxy {
            url: crate::serve_in_background(app)?,
            counts,
            shared,
        })
    }
}

fn throttled(what: &str) -> Response {
    let body = serde_json::json!({
        "__type": THROTTLED,
        "message": format!("Rate exceeded for shard in {what} (throttling proxy)"),
    });
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

async fn proxy(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 << 20).await else {
        return (StatusCode::BAD_REQUEST, "unreadable body").into_response();
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let c = &s.counts;
    if target.ends_with(".GetShardIterator") {
        c.get_shard_iterator.fetch_add(1, Ordering::SeqCst);
    }
    if target.ends_with(".GetRecords") && s.failing_reads.load(Ordering::SeqCst) {
        c.get_records_failed.fetch_add(1, Ordering::SeqCst);
        let body = serde_json::json!({
            "__type": "InternalFailure",
            "message": "GetRecords failed (failing proxy)",
        });
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
            body.to_string(),
        )
            .into_response();
    }
    if !s.throttle {
        return forward(&s, &parts, body.to_vec()).await;
    }
    if target.ends_with(".GetRecords") {
        c.get_records.fetch_add(1, Ordering::Relaxed);
        if s.started.elapsed().as_secs() % 8 < 4 {
            c.get_records_throttled.fetch_add(1, Ordering::Relaxed);
            return throttled("GetRecords");
        }
    } else if target.ends_with(".PutRecords") {
        let n = c.put_records.fetch_add(1, Ordering::Relaxed);
        if n % 7 == 3 {
            c.put_records_throttled.fetch_add(1, Ordering::Relaxed);
            return throttled("PutRecords");
        }
        if n % 2 == 0 {
            return partially_failed(&s, &parts, &body).await;
        }
    }
    forward(&s, &parts, body.to_vec()).await
}

/// Forwards the batch without every third record and answers for all of them.
async fn partially_failed(s: &Shared, parts: &axum::http::request::Parts, body: &[u8]) -> Response {
    let Ok(mut request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return forward(s, parts, body.to_vec()).await;
    };
    let Some(records) = request
        .get_mut("Records")
        .and_then(|r| r.as_array_mut())
        .map(std::mem::take)
    else {
        return forward(s, parts, body.to_vec()).await;
    };
    let fails = |i: usize| i % 3 == 2;
    let total = records.len();
    let kept: Vec<serde_json::Value> = records
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !fails(*i))
        .map(|(_, r)| r)
        .collect();
    if kept.len() == total {
        request["Records"] = serde_json::Value::Array(kept);
        return forward(s, parts, request.to_string().into_bytes()).await;
    }
    let failed = total - kept.len();
    request["Records"] = serde_json::Value::Array(kept);
    let upstream = forward(s, parts, request.to_string().into_bytes()).await;
    if upstream.status() != StatusCode::OK {
        return upstream;
    }
    let Ok(bytes) = axum::body::to_bytes(upstream.into_body(), 64 << 20).await else {
        return (StatusCode::BAD_GATEWAY, "unreadable upstream body").into_response();
    };
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return (StatusCode::BAD_GATEWAY, "upstream answer is not JSON").into_response();
    };
    let mut upstream_entries = answer["Records"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter();
    let upstream_failed = answer["FailedRecordCount"].as_u64().unwrap_or(0);
    let entries: Vec<serde_json::Value> = (0..total)
        .map(|i| {
            if fails(i) {
                serde_json::json!({"ErrorCode": THROTTLED, "ErrorMessage": "Rate exceeded for shard (throttling proxy)"})
            } else {
                upstream_entries.next().unwrap_or(serde_json::Value::Null)
            }
        })
        .collect();
    s.counts
        .records_failed
        .fetch_add(failed as u64, Ordering::Relaxed);
    let mut out = answer.clone();
    out["Records"] = serde_json::Value::Array(entries);
    out["FailedRecordCount"] = serde_json::json!(upstream_failed + failed as u64);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
        out.to_string(),
    )
        .into_response()
}

async fn forward(s: &Shared, parts: &axum::http::request::Parts, body: Vec<u8>) -> Response {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut headers = HeaderMap::new();
    for (k, v) in &parts.headers {
        if k != header::HOST && k != header::CONTENT_LENGTH && k != header::TRANSFER_ENCODING {
            headers.insert(k.clone(), v.clone());
        }
    }
    let _turn = match &s.one_at_a_time {
        Some(m) => Some(m.lock().await),
        None => None,
    };
    let upstream = s.upstream.read().map(|u| u.clone()).unwrap_or_default();
    let sent = s
        .client
        .request(parts.method.clone(), format!("{upstream}{path}"))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let r = match sent {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = r.status();
    let mut headers = HeaderMap::new();
    for (k, v) in r.headers() {
        if k != header::CONTENT_LENGTH && k != header::TRANSFER_ENCODING && k != header::CONNECTION
        {
            headers.append(k.clone(), v.clone());
        }
    }
    let bytes = r.bytes().await.unwrap_or_default();
    let mut out = Response::new(Body::from(bytes));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}
