use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stocklake_testkit::AwsOptions;

/// The stocklake binary with a clean environment: no inherited STOCKLAKE_* or AWS settings,
/// explicit emulator credentials when given, and never the instance-metadata address.
pub fn stocklake(dir: &Path, aws: Option<&AwsOptions>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stocklake"));
    c.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("STOCKLAKE_")
            || k.starts_with("AWS_")
            || k.starts_with("POSTGRES_")
            || k.starts_with("S3_BUCKET_")
            || k == "KINESIS_STREAM_NAME"
        {
            c.env_remove(k);
        }
    }
    c.env("AWS_EC2_METADATA_DISABLED", "true");
    c.env("STOCKLAKE_LOG", "warn");
    if let Some(a) = aws {
        if let Some(e) = &a.endpoint_url {
            c.env("AWS_ENDPOINT_URL", e);
        }
        c.env("AWS_REGION", a.region_or_default());
        c.env(
            "AWS_ACCESS_KEY_ID",
            a.access_key_id.clone().unwrap_or_default(),
        );
        c.env(
            "AWS_SECRET_ACCESS_KEY",
            a.secret_access_key.clone().unwrap_or_default(),
        );
        c.env("AWS_ALLOW_HTTP", "true");
    } else {
        c.env("AWS_ACCESS_KEY_ID", "unused")
            .env("AWS_SECRET_ACCESS_KEY", "unused");
    }
    c
}

/// Runs to completion; panics with both streams when it fails.
pub fn ok(mut c: Command) -> Output {
    let out = c.output().expect("run stocklake");
    assert!(
        out.status.success(),
        "stocklake failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A spawned process that is killed when the test lets go of it, also when an assertion fails
/// first: a failed test never leaves a `stocklake run` behind. Its stdout and stderr, when
/// piped, are read as they come: a pipe nobody reads fills up (64 KiB) and then blocks every
/// thread of the process that writes to it.
pub struct Spawned {
    child: Child,
    stdout: Drained,
    stderr: Drained,
}

/// What a pipe has carried so far, and the thread reading it.
struct Drained {
    text: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Drained {
    fn from(pipe: Option<impl std::io::Read + Send + 'static>) -> Drained {
        let text = Arc::new(Mutex::new(Vec::new()));
        let reader = pipe.map(|mut from| {
            let to = Arc::clone(&text);
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n @ 1..) = from.read(&mut buf) {
                    to.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .extend_from_slice(&buf[..n]);
                }
            })
        });
        Drained { text, reader }
    }

    fn text(&self) -> String {
        let bytes = self
            .text
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Everything, once the writer has gone (the process has exited).
    fn all(&mut self) -> String {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.text()
    }
}

impl std::ops::Deref for Spawned {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl std::ops::DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Spawned {
    /// Takes charge of a process spawned with other settings.
    pub fn guard(mut child: Child) -> Spawned {
        let stdout = Drained::from(child.stdout.take());
        let stderr = Drained::from(child.stderr.take());
        Spawned {
            child,
            stdout,
            stderr,
        }
    }

    /// What the process has written to stderr so far.
    #[allow(dead_code)]
    pub fn stderr_text(&self) -> String {
        self.stderr.text()
    }

    /// Everything the process wrote to stderr: waits for it to exit and for its last words.
    #[allow(dead_code)]
    pub fn wait_stderr_text(&mut self) -> String {
        let _ = self.child.wait();
        self.stderr.all()
    }

    /// Everything the process wrote to stdout: waits for it to exit and for its last words.
    #[allow(dead_code)]
    pub fn wait_stdout_text(&mut self) -> String {
        let _ = self.child.wait();
        self.stdout.all()
    }
}

pub fn spawn(mut c: Command) -> Spawned {
    Spawned::guard(
        c.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn stocklake"),
    )
}

/// SIGKILL: no chance to flush or clean up.
pub fn kill9(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-9")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[allow(dead_code)]
pub fn wait_http(url: &str) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(url.trim_start_matches("http://")).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{url} did not come up");
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every bronze record under a local bronze root: (partition, sequence) -> payload.
pub async fn local_bronze(root: &Path) -> std::collections::BTreeMap<(String, String), Vec<u8>> {
    use stocklake_storage::bronze::parse_line;
    use stocklake_storage::{Location, list_bronze, read_bronze};
    let loc = Location::Local(root.to_path_buf());
    let store = loc.object_store(&AwsOptions::default()).expect("store");
    let mut out = std::collections::BTreeMap::new();
    for o in list_bronze(store.as_ref(), None).await.expect("list") {
        let text = read_bronze(store.as_ref(), &o.name).await.expect("read");
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let l = parse_line(line).expect("line");
            let key = (l.partition.to_string(), l.sequence.to_string());
            let payload = l.payload_bytes().expect("payload").into_owned();
            assert!(
                out.insert(key, payload).is_none(),
                "a record twice in bronze"
            );
        }
    }
    out
}

/// SIGTERM: the graceful stop a service manager sends.
pub fn sigterm(child: &Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
}

/// The records of an NDJSON file, each as its bytes.
#[allow(dead_code)]
pub fn read_records(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Silver's running totals (records, events, lines, quarantined, duplicates), from
/// `stocklake status --json` with these settings.
#[allow(dead_code)]
pub fn silver_totals(
    dir: &Path,
    aws: Option<&AwsOptions>,
    settings: &[String],
) -> serde_json::Value {
    let mut c = stocklake(dir, aws);
    c.args(["status", "--json"]).args(settings);
    let out = ok(c);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    status["silver"]["totals"].clone()
}

/// Every one of `records` valid records reached silver once: none lost, none repeated.
#[allow(dead_code)]
pub fn assert_each_record_once(totals: &serde_json::Value, records: usize) {
    assert_eq!(totals["records"].as_u64(), Some(records as u64), "{totals}");
    assert_eq!(totals["events"].as_u64(), Some(records as u64), "{totals}");
    assert_eq!(totals["duplicates"].as_u64(), Some(0), "{totals}");
}

/// One number from gold (a `COUNT(*)`); -1 while the database cannot answer.
#[allow(dead_code)]
pub async fn gold_count(url: &str, sql: &str) -> i64 {
    match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            let task = tokio::spawn(conn);
            let n = client
                .query_one(sql, &[])
                .await
                .map(|r| r.get::<_, i64>(0))
                .unwrap_or(-1);
            drop(client);
            let _ = task.await;
            n
        }
        Err(_) => -1,
    }
}

/// Waits until gold holds at least `want` inventory movements; returns how many it holds. When
/// it does not, the panic shows the end of the pipeline's log.
#[allow(dead_code)]
pub async fn wait_for_gold_lines(
    url: &str,
    want: u64,
    within: Duration,
    what: &str,
    pipeline: &Spawned,
) -> i64 {
    let deadline = std::time::Instant::now() + within;
    loop {
        let n = gold_count(url, "SELECT COUNT(*) FROM fact_inventory_movement").await;
        if n >= want as i64 {
            return n;
        }
        if std::time::Instant::now() >= deadline {
            let log = pipeline.stderr_text();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(60)..].join("\n");
            panic!("gold has {n} of {want} lines {what}; the pipeline's log ends:\n{tail}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// On hand per (store, sku) by docs/contract.md §2: the latest count by event time (the larger of two
/// at the same instant), plus every movement strictly after it; without a count, the sum of
/// all movements. Computed from the raw events, sharing nothing with the model.
#[allow(dead_code)]
pub fn expected_stock(
    events: &[Vec<u8>],
) -> (
    std::collections::BTreeMap<(String, String), rust_decimal::Decimal>,
    u64,
    u64,
) {
    #[derive(Default)]
    struct Key {
        count: Option<(chrono::DateTime<chrono::Utc>, rust_decimal::Decimal)>,
        moves: Vec<(chrono::DateTime<chrono::Utc>, rust_decimal::Decimal)>,
    }
    let mut keys: std::collections::HashMap<(String, String), Key> =
        std::collections::HashMap::new();
    let (mut lines, mut movements) = (0u64, 0u64);
    for raw in events {
        let e = stocklake_event::parse_event(raw).expect("the simulator writes valid events");
        for l in &e.lines {
            lines += 1;
            movements += u64::from(e.event_type.moves_stock());
            let k = keys
                .entry((e.store_id.to_string(), l.sku.to_string()))
                .or_default();
            let q = l.quantity;
            let delta = match e.event_type {
                stocklake_event::EventType::Sale | stocklake_event::EventType::Waste => -q,
                stocklake_event::EventType::Return
                | stocklake_event::EventType::Receipt
                | stocklake_event::EventType::Adjustment => q,
                // an order moves no stock
                stocklake_event::EventType::PurchaseOrder => continue,
                stocklake_event::EventType::StockCount => {
                    let newer = match k.count {
                        None => true,
                        Some((t, c)) => e.event_time > t || (e.event_time == t && q > c),
                    };
                    if newer {
                        k.count = Some((e.event_time, q));
                    }
                    continue;
                }
            };
            k.moves.push((e.event_time, delta));
        }
    }
    let stock = keys
        .into_iter()
        .map(|(key, k)| {
            let on_hand = match k.count {
                Some((t, c)) => {
                    c + k
                        .moves
                        .iter()
                        .filter(|(mt, _)| *mt > t)
                        .map(|(_, d)| *d)
                        .sum::<rust_decimal::Decimal>()
                }
                None => k.moves.iter().map(|(_, d)| *d).sum(),
            };
            (key, on_hand)
        })
        .collect();
    (stock, lines, movements)
}

/// Rows of a query on the gold PostgreSQL database.
pub async fn gold_query(url: &str, sql: &str) -> Vec<tokio_postgres::Row> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to gold");
    let task = tokio::spawn(conn);
    let rows = client.query(sql, &[]).await.expect("query gold");
    drop(client);
    let _ = task.await;
    rows
}

/// Every `stock_level` row in gold equals `want` (from [`expected_stock`]), and no key is
/// missing or extra.
pub async fn assert_stock_exact(
    url: &str,
    want: &std::collections::BTreeMap<(String, String), rust_decimal::Decimal>,
    when: &str,
) {
    let rows = gold_query(
        url,
        "SELECT s.store_id, p.sku, l.on_hand::text
           FROM stock_level l
           JOIN dim_store s ON s.store_key = l.store_key
           JOIN dim_product p ON p.product_key = l.product_key",
    )
    .await;
    let got: std::collections::BTreeMap<(String, String), rust_decimal::Decimal> = rows
        .iter()
        .map(|r| {
            let on_hand: String = r.get(2);
            (
                (r.get::<_, String>(0), r.get::<_, String>(1)),
                on_hand.parse().expect("decimal"),
            )
        })
        .collect();
    assert_eq!(got.len(), want.len(), "stock_level keys {when}");
    let wrong: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k).map(|g| g.normalize()) != Some(v.normalize()))
        .take(5)
        .map(|(k, v)| format!("{k:?}: want {v}, gold {:?}", got.get(k)))
        .collect();
    assert!(wrong.is_empty(), "stock levels differ {when}: {wrong:?}");
}

/// The events a simulation writes (to `events.ndjson` in `dir`), with the stock levels and the
/// number of lines they imply ([`expected_stock`]).
#[allow(dead_code)]
pub struct KnownEvents {
    pub events: Vec<Vec<u8>>,
    pub stock: std::collections::BTreeMap<(String, String), rust_decimal::Decimal>,
    pub lines: u64,
    /// The lines that move stock: gold's inventory movements (purchase orders move none).
    pub movements: u64,
}

/// Runs `stocklake simulate ARGS --to file:…` and reads back what it wrote.
#[allow(dead_code)]
pub fn known_events(dir: &Path, args: &[&str]) -> KnownEvents {
    let file = dir.join("events.ndjson");
    let mut c = stocklake(dir, None);
    c.arg("simulate")
        .args(args)
        .arg("--to")
        .arg(format!("file:{}", file.display()));
    ok(c);
    let events = read_records(&file);
    let (stock, lines, movements) = expected_stock(&events);
    KnownEvents {
        events,
        stock,
        lines,
        movements,
    }
}

/// `stocklake run SETTINGS` listening on a free port, once it answers; and its base URL.
#[allow(dead_code)]
pub fn start_run(dir: &Path, aws: Option<&AwsOptions>, settings: &[String]) -> (Spawned, String) {
    let port = free_port();
    let mut c = stocklake(dir, aws);
    c.arg("run")
        .args(settings)
        .args(["--listen", &format!("127.0.0.1:{port}")]);
    let run = spawn(c);
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&base);
    (run, base)
}

/// A browser for the dashboard tests: Debian's chromium (installed by .ci/run).
#[allow(dead_code)]
pub fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(String::from)
}

/// How every test runs chromium: headless, as root in a container, with a profile of its own.
const HEADLESS: [&str; 5] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
];

/// The dashboard's DOM after its scripts ran against the live API.
#[allow(dead_code)]
pub fn dump_dom(browser: &str, url: &str, profile: &Path) -> String {
    let out = Command::new(browser)
        .args(HEADLESS)
        .arg("--virtual-time-budget=15000")
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A headless Chromium driven over its DevTools protocol: one page, scripts run in it (what a
/// person's clicks do, `element.click()` on the real page with its real scripts).
#[allow(dead_code)]
pub struct Browser {
    child: std::process::Child,
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
    session: String,
}

#[allow(dead_code)]
impl Browser {
    /// Starts `browser` on `url`.
    pub async fn open(browser: &str, profile: &Path, url: &str) -> Browser {
        use std::io::BufRead;
        let mut child = Command::new(browser)
            .args(HEADLESS)
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let stderr = child.stderr.take().expect("chromium's stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // the address is on stderr; the rest is read and dropped so that chromium never blocks
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(at) = line.find("ws://") {
                    let _ = tx.send(line[at..].trim().to_string());
                }
            }
        });
        let ws_url = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("chromium's DevTools address");
        let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .expect("connect to DevTools");
        let mut b = Browser {
            child,
            ws,
            next_id: 0,
            session: String::new(),
        };
        let target = b
            .call(None, "Target.createTarget", serde_json::json!({"url": url}))
            .await;
        let target = target["targetId"].as_str().expect("targetId").to_string();
        let attached = b
            .call(
                None,
                "Target.attachToTarget",
                serde_json::json!({"targetId": target, "flatten": true}),
            )
            .await;
        b.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        b
    }

    async fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: serde_json::Value,
    ) -> serde_json::Value {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = serde_json::json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = serde_json::Value::from(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .await
            .expect("send to DevTools");
        loop {
            let m = tokio::time::timeout(std::time::Duration::from_secs(60), self.ws.next())
                .await
                .expect("DevTools answers")
                .expect("DevTools open")
                .expect("a DevTools message");
            let Message::Text(text) = m else { continue };
            let v: serde_json::Value = serde_json::from_str(&text).expect("DevTools JSON");
            if v["id"].as_u64() == Some(id) {
                assert!(v["error"].is_null(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Closes the browser and every process it started.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.call(None, "Browser.close", serde_json::json!({})),
        )
        .await;
        for _ in 0..50 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The value of `js` (an expression; a promise is awaited) in the page.
    pub async fn eval(&mut self, js: &str) -> serde_json::Value {
        let session = self.session.clone();
        let r = self
            .call(
                Some(&session),
                "Runtime.evaluate",
                serde_json::json!({"expression": js, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        assert!(r["exceptionDetails"].is_null(), "{js}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits until `js` gives a value other than false, null, 0 or ""; that value.
    pub async fn until(&mut self, what: &str, js: &str) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        loop {
            let v = self.eval(js).await;
            let truthy = match &v {
                serde_json::Value::Null | serde_json::Value::Bool(false) => false,
                serde_json::Value::Number(n) => n.as_f64() != Some(0.0),
                serde_json::Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the page never showed {what}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
