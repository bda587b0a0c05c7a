//! The adversarial suite: each attack of docs/security.md against a real `stocklake run`, on
//! the embedded default and on PostgreSQL. For every attack: the documented answer, the
//! process's memory under a stated bound (its peak resident set, from /proc), `/healthz`
//! answered within a second, and honest events sent before and after reaching gold exactly.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::common::*;

/// The bound every attack is held to: the process's peak resident set.
const RSS_BOUND: u64 = 1 << 30;
const INGEST_TOKEN: &str = "till-token-0123456789";
const READ_TOKEN: &str = "read-token-0123456789";

/// The peak resident set of a process, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

struct Target {
    run: Spawned,
    base: String,
    http: reqwest::Client,
}

impl Target {
    fn start(root: &Path, gold: Option<&str>) -> Target {
        let port = free_port();
        let mut c = stocklake(root, None);
        c.args(["run", "--data-dir", "data"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("STOCKLAKE_INGEST_TOKENS", INGEST_TOKEN)
            .env("STOCKLAKE_SERVE_API_TOKEN", READ_TOKEN)
            .env("STOCKLAKE_SERVE_ALLOWED_HOSTS", "127.0.0.1,localhost")
            .env("STOCKLAKE_SERVE_HEADER_READ_TIMEOUT_SECS", "2")
            .env("STOCKLAKE_INGEST_BODY_READ_TIMEOUT_SECS", "3")
            .env("STOCKLAKE_INGEST_RATE_LIMIT_PER_SECOND", "50")
            // the widest window, so that a request of ten years of dates reaches the writers
            .env("STOCKLAKE_REFINE_MAX_PAST_DAYS", "3700");
        if let Some(url) = gold {
            c.args(["--gold", url]);
        }
        let run = spawn(c);
        let base = format!("http://127.0.0.1:{port}");
        wait_http(&base);
        Target {
            run,
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
        }
    }

    fn pid(&self) -> u32 {
        self.run.id()
    }

    async fn post(
        &self,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .post(format!("{}/v1/events", self.base))
            .bearer_auth(INGEST_TOKEN)
            .body(body);
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        let r = r.send().await.expect("post");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn ndjson(&self, records: &[Vec<u8>]) -> (u16, Value) {
        let mut body = Vec::new();
        for r in records {
            body.extend_from_slice(r);
            body.push(b'\n');
        }
        self.post(Some("application/x-ndjson"), body).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(READ_TOKEN)
            .send()
            .await
            .expect("get");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `/healthz` answers within a second, and the memory bound holds.
    async fn still_fine(&self, after: &str) {
        let started = Instant::now();
        let r = reqwest::Client::new()
            .get(format!("{}/healthz", self.base))
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        assert!(
            r.as_ref().is_ok_and(|r| r.status().is_success()),
            "/healthz did not answer within a second after {after}: {r:?} ({:?})",
            started.elapsed()
        );
        let rss = peak_rss(self.pid());
        assert!(
            rss < RSS_BOUND,
            "peak RSS {} MiB after {after}, the bound is {} MiB",
            rss >> 20,
            RSS_BOUND >> 20
        );
    }
}

fn event(id: &str, kind: &str, time: &str, store: &str, sku: &str, qty: Value) -> Vec<u8> {
    json!({
        "schema_version": 1, "event_id": id, "event_type": kind, "event_time": time,
        "store_id": store, "lines": [{"sku": sku, "quantity": qty}]
    })
    .to_string()
    .into_bytes()
}

/// Gold's on hand for the honest stores, through the API.
async fn honest_stock(t: &Target, stores: &[String]) -> BTreeMap<(String, String), Decimal> {
    let mut out = BTreeMap::new();
    for store in stores {
        let (s, v) = t
            .get(&format!("/v1/stock?store_id={store}&limit=10000"))
            .await;
        assert_eq!(s, 200, "{v}");
        for row in v["stock"].as_array().into_iter().flatten() {
            let on_hand: Decimal = match &row["on_hand"] {
                Value::String(x) => x.parse().expect("decimal"),
                other => other.to_string().parse().expect("decimal"),
            };
            out.insert(
                (
                    row["store_id"].as_str().unwrap_or_default().to_string(),
                    row["sku"].as_str().unwrap_or_default().to_string(),
                ),
                on_hand,
            );
        }
    }
    out
}

/// Half-open connections that send part of a request head and then nothing.
fn slowloris(base: &str, n: usize) -> Vec<TcpStream> {
    let addr = base.trim_start_matches("http://");
    (0..n)
        .filter_map(|_| {
            let mut s = TcpStream::connect(addr).ok()?;
            s.write_all(b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .ok()?;
            Some(s)
        })
        .collect()
}

/// Whether the server has closed a connection (a read ends or fails).
fn closed(s: &mut TcpStream) -> bool {
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => true, // an answer (408 or 400) and then the close
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

async fn attack(root: &Path, gold: Option<&str>) {
    let honest = known_events(
        root,
        &[
            "--seed", "5", "--stores", "2", "--skus", "30", "--days", "2",
        ],
    );
    let stores: Vec<String> = {
        let mut s: Vec<String> = honest.stock.keys().map(|(s, _)| s.clone()).collect();
        s.dedup();
        s
    };
    let t = Target::start(root, gold);
    let half = honest.events.len() / 2;
    for chunk in honest.events[..half].chunks(2000) {
        assert_eq!(t.ndjson(chunk).await.0, 202);
    }
    t.still_fine("the honest events before the attacks").await;

    // 1. poison: an amount beyond any money column (quarantined by refine), and receipts whose
    //    sum beyond 10^12 units only gold sees (the second is set aside as a dead letter)
    let poison = [
        json!({"schema_version": 1, "event_id": "poison-amount", "event_type": "sale",
               "event_time": "2026-11-02T10:00:00Z", "store_id": "ATTACK-S1",
               "lines": [{"sku": "X", "quantity": 1000000, "unit_price": 100000000}]})
        .to_string()
        .into_bytes(),
        event(
            "poison-sum-1",
            "receipt",
            "2026-11-02T10:00:00Z",
            "ATTACK-S1",
            "SUM",
            json!(900000000000u64),
        ),
        event(
            "poison-sum-2",
            "receipt",
            "2026-11-02T10:05:00Z",
            "ATTACK-S1",
            "SUM",
            json!(900000000000u64),
        ),
    ];
    assert_eq!(t.ndjson(&poison).await.0, 202);
    t.still_fine("poisoned records").await;

    // 2. ten years of dates in one request, twice: partitions written a few at a time
    for round in 0..2 {
        let start = chrono::Utc::now() - chrono::Duration::days(3651);
        let many: Vec<Vec<u8>> = (0..3651)
            .map(|d| {
                let at = (start + chrono::Duration::days(d)).format("%Y-%m-%dT12:00:00Z");
                event(
                    &format!("date-{round}-{d}"),
                    "receipt",
                    &at.to_string(),
                    "ATTACK-S2",
                    "D",
                    json!(1),
                )
            })
            .collect();
        let (s, v) = t.ndjson(&many).await;
        assert_eq!(s, 202, "{v}");
    }
    t.still_fine("3,651 event dates in a request, twice").await;

    // 3. record-count amplification: a million one-byte lines in 2 KB of gzip
    {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&b"x\n".repeat(1_000_000)).expect("gzip");
        let packed = gz.finish().expect("gzip");
        assert!(packed.len() < 8192, "{}", packed.len());
        let r = t
            .http
            .post(format!("{}/v1/events", t.base))
            .bearer_auth(INGEST_TOKEN)
            .header("content-type", "application/x-ndjson")
            .header("content-encoding", "gzip")
            .body(packed)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status().as_u16(), 413);
        let v: Value = r.json().await.expect("json");
        assert_eq!(v["error"], "too_many_records", "{v}");
        // a record over the per-record limit is refused at the door, not copied to bronze
        let big = format!(
            "{{\"event_id\":\"big\",\"pad\":\"{}\"}}",
            "p".repeat(1_100_000)
        );
        let (s, v) = t.post(Some("application/x-ndjson"), big).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (413, Some("payload_too_large")),
            "{v}"
        );
    }
    t.still_fine("a million records in 2 KB").await;

    // 4. only the two JSON types: what a page on another site can send without a preflight is
    //    refused
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let (s, v) = t.post(ct, "{\"event_id\":\"csrf\"}\n").await;
        assert_eq!(
            (s, v["error"].as_str()),
            (415, Some("unsupported_media_type")),
            "{ct:?}"
        );
    }

    // 5. slow clients: 200 half-sent request heads do not keep /healthz from answering and are
    //    cut after the header timeout; 40 bodies trickled are refused or cut, holding little
    {
        let mut slow = slowloris(&t.base, 200);
        assert!(slow.len() >= 190, "{} connections", slow.len());
        t.still_fine("200 half-sent request heads").await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let cut = slow.iter_mut().map(closed).filter(|c| *c).count();
        assert!(
            cut >= slow.len() - 5,
            "{cut} of {} slow heads cut",
            slow.len()
        );
    }
    {
        let addr = t.base.trim_start_matches("http://").to_string();
        let mut trickles: Vec<TcpStream> = (0..40)
            .filter_map(|_| {
                let mut s = TcpStream::connect(&addr).ok()?;
                let head = format!(
                    "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {INGEST_TOKEN}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
                    16 << 20
                );
                s.set_write_timeout(Some(Duration::from_secs(1))).ok()?;
                s.write_all(head.as_bytes()).ok()?;
                Some(s)
            })
            .collect();
        for _ in 0..4 {
            for s in &mut trickles {
                let _ = s.write_all(&[b'x'; 256 << 10]);
            }
        }
        t.still_fine("40 trickled 16 MiB bodies").await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        let mut answers: BTreeMap<String, usize> = BTreeMap::new();
        for s in &mut trickles {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap_or(0);
            let line = String::from_utf8_lossy(&buf[..n]);
            let code = line.split(' ').nth(1).unwrap_or("closed").to_string();
            *answers.entry(code).or_default() += 1;
        }
        eprintln!("40 trickled 16 MiB bodies were answered {answers:?}");
        assert!(
            answers
                .keys()
                .all(|c| c == "503" || c == "408" || c == "closed"),
            "{answers:?}"
        );
        // the in-flight budget (128 MiB) holds eight 16 MiB bodies: only those are read, and
        // cut at the body timeout; the others were refused before a byte of their body was kept
        assert!(answers.get("408").copied().unwrap_or(0) <= 8, "{answers:?}");
    }
    t.still_fine("trickled bodies").await;

    // 6. unbounded text: a 500 KB product name and one that forges a log line are quarantined;
    //    every list is paged within bounds; offsets are checked
    {
        let legacy = |name: &str, id: &str| {
            json!({"transaction_id": id, "product_id": "LONG", "product_name": name, "category": "Dairy",
                   "quantity": 1, "unit_price": 1.0, "total_price": 1.0,
                   "timestamp": "2026-11-02T10:00:00+00:00", "store_id": "ATTACK-S3"})
            .to_string()
            .into_bytes()
        };
        let (s, _) = t
            .ndjson(&[
                legacy(&"n".repeat(500_000), "long-1"),
                legacy("Milk\n2026-12-07T00:00:00Z ERROR forged", "forge-1"),
            ])
            .await;
        assert_eq!(s, 202);
        for (path, want) in [
            ("/v1/stores?limit=100000", 400),
            ("/v1/stores?limit=10", 200),
            ("/v1/stock/summary?limit=0", 400),
            ("/v1/alerts?offset=99999999999999999999", 400),
            ("/v1/alerts?offset=-1", 400),
            ("/v1/alerts?offset=1000000001", 400),
            ("/v1/alerts?offset=5&limit=5", 200),
            ("/v1/stock?offset=1000000000", 200),
            ("/v1/dead-letters?limit=10001", 400),
        ] {
            let (s, v) = t.get(path).await;
            assert_eq!(s, want, "{path}: {v}");
        }
    }

    // 7. the edge: security headers everywhere, the host allow-list, authentication before the
    //    rate limit, the bearer scheme in any case
    {
        for path in ["/", "/v1/stock", "/healthz", "/nothing-here"] {
            let r = t
                .http
                .get(format!("{}{path}", t.base))
                .bearer_auth(READ_TOKEN)
                .send()
                .await
                .expect("get");
            let h = r.headers();
            assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
            assert_eq!(h["x-frame-options"], "DENY", "{path}");
            let csp = h["content-security-policy"].to_str().unwrap_or_default();
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
            if path == "/" {
                assert!(
                    csp.contains("script-src 'self'") && !csp.contains("unsafe"),
                    "{csp}"
                );
            }
        }
        let rebound = t
            .http
            .get(format!("{}/v1/stock", t.base))
            .header("host", "evil.example:80")
            .bearer_auth(READ_TOKEN)
            .send()
            .await
            .expect("get");
        assert_eq!(rebound.status().as_u16(), 421);
        let probe = t
            .http
            .get(format!("{}/healthz", t.base))
            .header("host", "10.0.0.7:8080")
            .send()
            .await
            .expect("get");
        assert_eq!(probe.status().as_u16(), 200);
        // 200 requests without a token spend nobody's allowance (50 a second)
        for _ in 0..200 {
            let r = t
                .http
                .post(format!("{}/v1/events", t.base))
                .header("content-type", "application/x-ndjson")
                .body("{}\n")
                .send()
                .await
                .expect("post");
            assert_eq!(r.status().as_u16(), 401);
        }
        let r = t
            .http
            .post(format!("{}/v1/events", t.base))
            .header("authorization", format!("bearer {INGEST_TOKEN}"))
            .header("content-type", "application/json")
            .body(event(
                "lower-case-bearer",
                "receipt",
                "2026-11-02T10:00:00Z",
                "ATTACK-S4",
                "B",
                json!(1),
            ))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status().as_u16(), 202);
    }
    t.still_fine("the edge checks").await;

    // the honest rest, then gold equals the honest events exactly
    for chunk in honest.events[half..].chunks(2000) {
        assert_eq!(t.ndjson(chunk).await.0, 202);
    }
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let got = honest_stock(&t, &stores).await;
        if got == honest.stock {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "gold never equalled the honest events: {} keys of {}, first differences {:?}; log:\n{}",
            got.len(),
            honest.stock.len(),
            honest
                .stock
                .iter()
                .filter(|(k, v)| got.get(*k) != Some(*v))
                .take(3)
                .map(|(k, v)| format!("{k:?} want {v} got {:?}", got.get(k)))
                .collect::<Vec<_>>(),
            t.run.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // the sum beyond gold's columns is a dead letter, shown where operators look
    let (_, dead) = t.get("/v1/dead-letters").await;
    let ids: Vec<&str> = dead["dead_letters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["event_id"].as_str())
        .collect();
    assert_eq!(ids, ["poison-sum-2"], "{dead}");
    let (_, pipeline) = t.get("/v1/pipeline").await;
    assert_eq!(pipeline["gold"]["counts"]["dead_letters"], 1, "{pipeline}");
    assert_eq!(
        pipeline["gold"]["dead_letters"][0]["event_id"], "poison-sum-2",
        "{pipeline}"
    );
    // and on the dashboard
    if let Some(browser) = chromium() {
        let profile = tempfile::tempdir().expect("profile");
        let dom = dump_dom(
            &browser,
            &format!("{}/#token={READ_TOKEN}", t.base),
            profile.path(),
        );
        let dead = dom
            .split("data-testid=\"dead-letters\"")
            .nth(1)
            .unwrap_or_default();
        assert!(
            !dead.starts_with(" hidden") && dead.contains("poison-sum-2"),
            "the dashboard does not show the dead letter:\n{dom}"
        );
    }
    let metrics = reqwest::get(format!("{}/metrics", t.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("stocklake_dead_letters_total 1"),
        "{metrics}"
    );
    // the quarantined records, each with its own reason
    // ten years of dates, twice, all in gold: 7,302 receipts of one unit
    let (_, stock) = t.get("/v1/stock?store_id=ATTACK-S2").await;
    let on_hand: Option<Decimal> = stock["stock"][0]["on_hand"]
        .as_str()
        .and_then(|v| v.parse().ok());
    assert_eq!(on_hand, Some(Decimal::from(7302)), "{stock}");
    let (_, stock) = t.get("/v1/stock?store_id=ATTACK-S3").await;
    assert_eq!(
        stock["count"], 0,
        "names over the bound never reach gold: {stock}"
    );
    let (_, stock) = t.get("/v1/stock?store_id=ATTACK-S1&sku=X").await;
    assert_eq!(
        stock["count"], 0,
        "the amount beyond money never reaches gold: {stock}"
    );
    t.still_fine("the honest events after the attacks").await;
    let log = t.run.stderr_text();
    assert!(
        !log.lines()
            .any(|l| l.starts_with("2026-12-07T00:00:00Z ERROR forged")),
        "a forged line in the log"
    );
    eprintln!(
        "peak RSS under attack: {} MiB ({})",
        peak_rss(t.pid()) >> 20,
        if gold.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_on_the_embedded_default_change_nothing_honest() {
    let dir = tempfile::tempdir().expect("tempdir");
    attack(dir.path(), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_on_postgres_gold_change_nothing_honest() {
    let Some(pg) = stocklake_testkit::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    attack(dir.path(), Some(&pg.url)).await;
}

/// Open by default no more: a non-loopback address needs tokens, or `--insecure-listen`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_address_needs_tokens_or_an_explicit_choice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    for (cmd, env) in [
        ("run", vec![]),
        ("run", vec![("STOCKLAKE_INGEST_TOKENS", INGEST_TOKEN)]),
        ("ingest", vec![]),
        ("demo", vec![]),
    ] {
        let mut c = stocklake(dir.path(), None);
        c.args([
            cmd,
            "--data-dir",
            "data",
            "--listen",
            &format!("0.0.0.0:{port}"),
        ]);
        for (k, v) in &env {
            c.env(k, v);
        }
        let out = c.output().expect("stocklake");
        assert!(!out.status.success(), "{cmd} {env:?} started open");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("refusing to listen on 0.0.0.0") && err.contains("--insecure-listen"),
            "{cmd}: {err}"
        );
    }
    // a token no client could present fails at start, naming its key
    let out = stocklake(dir.path(), None)
        .args(["run", "--data-dir", "data"])
        .env("STOCKLAKE_SERVE_API_TOKEN", "two words")
        .output()
        .expect("stocklake");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`serve.api_token`"));
    // with both tokens, or explicitly open, it serves
    for (flag, env) in [
        (
            None,
            vec![
                ("STOCKLAKE_INGEST_TOKENS", INGEST_TOKEN),
                ("STOCKLAKE_SERVE_API_TOKEN", READ_TOKEN),
            ],
        ),
        (Some("--insecure-listen"), vec![]),
    ] {
        let mut c = stocklake(dir.path(), None);
        c.args([
            "run",
            "--data-dir",
            "data",
            "--listen",
            &format!("0.0.0.0:{port}"),
        ]);
        c.args(flag);
        for (k, v) in &env {
            c.env(k, v);
        }
        let run = spawn(c);
        wait_http(&format!("http://127.0.0.1:{port}"));
        let r = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .expect("healthz");
        assert!(r.status().is_success());
        drop(run);
    }
}
