//! HTTP ingest: `POST /v1/events` (docs/contract.md §4).
//!
//! A request is answered `202 {"accepted": N}` only once its records are durable in bronze.
//! Requests that arrive while a bronze write is in flight wait for the next one and share it
//! (group commit), so many small requests cost few objects. What waits is bounded in bytes:
//! past the bound the answer is `503` with `Retry-After`, never an unbounded queue.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use chrono::Utc;
use stocklake_http::TokenSet;
use stocklake_http::auth::unauthorized;
use stocklake_storage::bronze::Source;
use stocklake_telemetry as metrics;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::body::{BodyError, body_kind, decode_body, split_body};
use crate::bronze::{BronzeWriter, PendingRecord};
use crate::ratelimit::RateLimiter;

/// Settings of HTTP ingest.
#[derive(Clone, Debug)]
pub struct HttpIngestConfig {
    /// Largest accepted body, after decompression.
    pub max_body_bytes: usize,
    /// Bytes that may wait for bronze before new requests get 503: each record's payload plus
    /// [`RECORD_OVERHEAD`], so a flood of tiny records is charged for what it really holds.
    pub max_queued_bytes: usize,
    /// Target size of one bronze object; requests beyond wait for the next write.
    pub max_object_bytes: usize,
    /// Most records one request may carry (413 beyond).
    pub max_records_per_request: usize,
    /// Body bytes all requests together may hold while their bodies are read and split: a
    /// request reserves its declared length (or `max_body_bytes` when it declares none, or
    /// sends gzip) before a byte is read, and gets 503 when the reservation does not fit.
    pub max_inflight_body_bytes: usize,
    /// A body must arrive whole within this (408 beyond).
    pub body_read_timeout: Duration,
    /// Accepted bearer tokens; empty means no authentication.
    pub tokens: TokenSet,
    /// `Retry-After` seconds on 503.
    pub retry_after_secs: u64,
    /// Requests per second per client address; 0 means no limit.
    pub rate_limit_per_second: u64,
}

/// What one record costs in memory besides its payload while it waits for bronze and is
/// written (its slice, sequence number, arrival time and bronze envelope): charged against
/// `max_queued_bytes` and the object size, so that a million one-byte records are not free.
pub const RECORD_OVERHEAD: usize = 128;

impl Default for HttpIngestConfig {
    fn default() -> Self {
        HttpIngestConfig {
            max_body_bytes: 16 << 20,
            max_queued_bytes: 256 << 20,
            max_object_bytes: 8 << 20,
            max_records_per_request: 100_000,
            max_inflight_body_bytes: 128 << 20,
            body_read_timeout: Duration::from_secs(30),
            tokens: TokenSet::default(),
            retry_after_secs: 1,
            rate_limit_per_second: 0,
        }
    }
}

/// What a batch of records costs against the queue and object bounds.
pub fn charged_bytes(records: &[Bytes]) -> usize {
    records.iter().map(|r| r.len() + RECORD_OVERHEAD).sum()
}

struct Submission {
    records: Vec<Bytes>,
    arrived_at: chrono::DateTime<Utc>,
    ack: oneshot::Sender<Result<usize, String>>,
}

/// The HTTP ingest service: cheap to clone, one bronze writer task behind it.
#[derive(Clone)]
pub struct HttpIngest {
    tx: mpsc::Sender<Submission>,
    queued: Arc<Semaphore>,
    /// KiB of request bodies being read now (`max_inflight_body_bytes`).
    inflight: Arc<Semaphore>,
    cfg: Arc<HttpIngestConfig>,
    partition: Arc<str>,
    accepted: Arc<AtomicU64>,
    limiter: Option<Arc<RateLimiter>>,
}

/// Why a submission was not made durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitError {
    /// Too much is waiting already: retry later.
    Overloaded,
    /// Bronze could not be written: retry later.
    Unavailable(String),
}

/// A name for this ingest instance: unique per process start, safe in object names.
fn instance_id() -> String {
    let now = Utc::now();
    let nanos = now.timestamp_subsec_nanos();
    format!(
        "h{}{:08x}{:04x}",
        now.format("%Y%m%dt%H%M%Sz"),
        nanos,
        std::process::id() & 0xffff
    )
}

impl HttpIngest {
    /// Starts the writer task. It ends once every clone of the returned service is dropped and
    /// what was queued is written.
    pub fn start(writer: BronzeWriter, cfg: HttpIngestConfig) -> (HttpIngest, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4096);
        let kib = (cfg.max_queued_bytes / 1024).clamp(1, u32::MAX as usize / 2);
        let queued = Arc::new(Semaphore::new(kib));
        let inflight_kib = (cfg.max_inflight_body_bytes / 1024).clamp(1, u32::MAX as usize / 2);
        let inflight = Arc::new(Semaphore::new(inflight_kib));
        let partition: Arc<str> = instance_id().into();
        let limiter = RateLimiter::new(cfg.rate_limit_per_second).map(Arc::new);
        let cfg = Arc::new(cfg);
        let handle = tokio::spawn(group_commit(
            writer,
            rx,
            partition.clone(),
            cfg.max_object_bytes,
        ));
        (
            HttpIngest {
                tx,
                queued,
                inflight,
                cfg,
                partition,
                accepted: Arc::new(AtomicU64::new(0)),
                limiter,
            },
            handle,
        )
    }

    /// This instance's bronze partition.
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// Records accepted since start.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Makes `records` durable in bronze; returns how many.
    pub async fn submit(&self, records: Vec<Bytes>) -> Result<usize, SubmitError> {
        if records.is_empty() {
            return Ok(0);
        }
        let bytes = charged_bytes(&records);
        let kib = (bytes / 1024 + 1).min(u32::MAX as usize) as u32;
        let permit = self
            .queued
            .clone()
            .try_acquire_many_owned(kib)
            .map_err(|_| SubmitError::Overloaded)?;
        metrics::HTTP_INGEST_QUEUED_BYTES.add(bytes as i64);
        let (ack, done) = oneshot::channel();
        let sent = self
            .tx
            .send(Submission {
                records,
                arrived_at: Utc::now(),
                ack,
            })
            .await;
        let result = match sent {
            Err(_) => Err(SubmitError::Unavailable("ingest is shutting down".into())),
            Ok(()) => match done.await {
                Ok(Ok(n)) => Ok(n),
                Ok(Err(e)) => Err(SubmitError::Unavailable(e)),
                Err(_) => Err(SubmitError::Unavailable("the bronze writer stopped".into())),
            },
        };
        metrics::HTTP_INGEST_QUEUED_BYTES.sub(bytes as i64);
        drop(permit);
        if let Ok(n) = result {
            self.accepted.fetch_add(n as u64, Ordering::Relaxed);
        }
        result
    }

    /// The `POST /v1/events` route.
    pub fn router(self) -> Router {
        Router::new()
            .route("/v1/events", post(post_events))
            .with_state(self)
    }
}

async fn group_commit(
    writer: BronzeWriter,
    mut rx: mpsc::Receiver<Submission>,
    partition: Arc<str>,
    max_object_bytes: usize,
) {
    let mut next_seq: u64 = 1;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let mut size = charged_bytes(&batch[0].records);
        // everything that queued up while the last write was in flight goes in this one
        while size < max_object_bytes {
            match rx.try_recv() {
                Ok(s) => {
                    size += charged_bytes(&s.records);
                    batch.push(s);
                }
                Err(_) => break,
            }
        }
        let mut pending = Vec::with_capacity(batch.iter().map(|s| s.records.len()).sum());
        for s in &batch {
            for r in &s.records {
                pending.push(PendingRecord {
                    sequence: next_seq.to_string(),
                    arrived_at: s.arrived_at,
                    payload: r.clone(),
                });
                next_seq += 1;
            }
        }
        // sequence numbers are never reused, even after a failed write: a write that failed
        // on our side may still have landed, and must not be overwritten
        let result = write_with_retry(&writer, &partition, &pending).await;
        for s in batch {
            let n = s.records.len();
            let _ = s.ack.send(result.clone().map(|_| n));
        }
    }
}

async fn write_with_retry(
    writer: &BronzeWriter,
    partition: &str,
    pending: &[PendingRecord],
) -> Result<(), String> {
    let mut delay = Duration::from_millis(20);
    let mut last = String::new();
    for attempt in 0..3 {
        match writer.write(&Source::Http, partition, pending).await {
            Ok(_) => return Ok(()),
            Err(e) => {
                metrics::INGEST_ERRORS
                    .with_label_values(&["http", "write_failed"])
                    .inc();
                tracing::warn!(error = %e, attempt, "bronze write failed");
                last = e.to_string();
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
        }
    }
    Err(last)
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    stocklake_http::json_error(status, code, message)
}

fn count(status: StatusCode) {
    metrics::HTTP_INGEST_REQUESTS
        .with_label_values(&[status.as_str()])
        .inc();
}

/// The `POST /v1/events` handler. Serve the router with the client's address as
/// `ConnectInfo<SocketAddr>` (`stocklake_http::serve` does) for the per-client rate limit to
/// tell clients apart (without it every client shares one allowance).
///
/// The order of the checks is the order of their cost: the token (a request without one
/// spends nobody's allowance), the client's rate, the declared size and type, a reservation
/// of memory for the body, and only then the body itself, read within a time limit.
async fn post_events(State(ingest): State<HttpIngest>, request: Request) -> Response {
    let response = if ingest.cfg.tokens.admits(request.headers()) {
        let client = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        match ingest
            .limiter
            .as_ref()
            .map(|l| l.check(client, Instant::now()))
        {
            Some(Err(wait)) => {
                let mut r = json_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    &format!(
                        "more than {} requests per second from {client}; retry later",
                        ingest.cfg.rate_limit_per_second
                    ),
                );
                retry_after(&mut r, wait.as_secs_f64().ceil() as u64);
                r
            }
            _ => {
                let (parts, body) = request.into_parts();
                handle(&ingest, &parts.headers, body).await
            }
        }
    } else {
        unauthorized("POST /v1/events")
    };
    count(response.status());
    response
}

fn too_large(what: String) -> Response {
    json_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", &what)
}

/// Memory reserved for a body while it is read and split, released when dropped.
struct Reservation {
    _permit: OwnedSemaphorePermit,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        metrics::HTTP_INGEST_INFLIGHT_BYTES.sub(self.bytes as i64);
    }
}

impl HttpIngest {
    /// Reserves `bytes` of the in-flight body budget, or `None` when it does not fit now.
    fn reserve(&self, bytes: usize) -> Option<Reservation> {
        let kib = (bytes / 1024 + 1).min(u32::MAX as usize) as u32;
        let permit = self.inflight.clone().try_acquire_many_owned(kib).ok()?;
        metrics::HTTP_INGEST_INFLIGHT_BYTES.add(bytes as i64);
        Some(Reservation {
            _permit: permit,
            bytes,
        })
    }

    fn overloaded(&self, what: &str) -> Response {
        let mut r = json_error(StatusCode::SERVICE_UNAVAILABLE, "overloaded", what);
        retry_after(&mut r, self.cfg.retry_after_secs);
        r
    }
}

async fn handle(ingest: &HttpIngest, headers: &HeaderMap, body: Body) -> Response {
    let limit = ingest.cfg.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return too_large(format!("the body is larger than {limit} bytes"));
    }
    let kind = match body_kind(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    ) {
        Ok(k) => k,
        Err(e) => return body_error(e),
    };
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let identity =
        encoding.is_none_or(|e| e.trim().is_empty() || e.trim().eq_ignore_ascii_case("identity"));
    // a compressed body may grow to the limit once decompressed; one of unknown length may
    // reach it as it arrives
    let reserve = match (identity, declared) {
        (true, Some(n)) => n,
        (false, Some(n)) => n + limit,
        (_, None) => limit,
    };
    let Some(_reservation) = ingest.reserve(reserve) else {
        return ingest.overloaded("too many request bodies are being read at once; retry later");
    };
    let raw = match tokio::time::timeout(
        ingest.cfg.body_read_timeout,
        axum::body::to_bytes(body, limit),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            return if over {
                too_large(format!("the body is larger than {limit} bytes"))
            } else {
                json_error(
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    &format!("cannot read the body: {e}"),
                )
            };
        }
        Err(_) => {
            return json_error(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                &format!(
                    "the body did not arrive within {} s; nothing was accepted",
                    ingest.cfg.body_read_timeout.as_secs()
                ),
            );
        }
    };
    let body = match decode_body(encoding, raw, limit) {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    let records = match split_body(kind, &body, ingest.cfg.max_records_per_request) {
        Ok(r) => r,
        Err(e) => return body_error(e),
    };
    if let Some((i, r)) = records
        .iter()
        .enumerate()
        .find(|(_, r)| r.len() > stocklake_event::MAX_RECORD_BYTES)
    {
        return too_large(format!(
            "record {} is {} bytes; a record is at most {} bytes (the Kinesis record limit); nothing was accepted",
            i + 1,
            r.len(),
            stocklake_event::MAX_RECORD_BYTES
        ));
    }
    match ingest.submit(records).await {
        Ok(n) => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({"accepted": n})),
        )
            .into_response(),
        Err(SubmitError::Overloaded) => {
            ingest.overloaded("too many records are waiting to be written; retry later")
        }
        Err(SubmitError::Unavailable(why)) => {
            let mut r = json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "bronze_unavailable",
                &format!(
                    "records could not be made durable ({why}); nothing was accepted, retry later"
                ),
            );
            retry_after(&mut r, ingest.cfg.retry_after_secs.max(1));
            r
        }
    }
}

fn retry_after(r: &mut Response, secs: u64) {
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
}

fn body_error(e: BodyError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    json_error(status, e.code(), &e.message())
}
