//! # stocklake-testkit
//!
//! Helpers for tests that talk to real services:
//!
//! - [`moto`]: an S3 + Kinesis emulator. `STOCKLAKE_TEST_MOTO` names a running one; otherwise a
//!   `moto_server` is started for this test process (and stopped when it exits).
//! - [`postgres`]: a fresh PostgreSQL database per test, dropped afterwards, on the server at
//!   `STOCKLAKE_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`).
//! - [`unique`]: names that do not collide between tests running in parallel.
//!
//! When a service is missing a test is skipped with a message — unless `CI` is set, where a
//! missing service fails the test, so that CI can never pass without running them.

use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use stocklake_storage::AwsOptions;

/// A name unique to this test run: lowercase letters, digits and '-', starting with `prefix`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() % 1_000_000_000)
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{t}", std::process::id())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Skips (outside CI) or fails (in CI) a test whose service is missing.
pub fn missing(service: &str, why: &str) {
    if in_ci() {
        panic!("{service} is required in CI but unavailable: {why}");
    }
    eprintln!("SKIPPED: {service} unavailable ({why}); see README, Tests");
}

fn reachable(host_port: &str) -> bool {
    host_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

fn host_port(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// The emulator's endpoint, started if needed; `None` (after [`missing`]) when impossible.
pub fn moto() -> Option<String> {
    static ENDPOINT: OnceLock<Result<String, String>> = OnceLock::new();
    let r = ENDPOINT.get_or_init(|| {
        if let Ok(url) = std::env::var("STOCKLAKE_TEST_MOTO") {
            return if reachable(&host_port(&url)) {
                Ok(url.trim_end_matches('/').to_string())
            } else {
                Err(format!("STOCKLAKE_TEST_MOTO={url} is not reachable"))
            };
        }
        start_moto()
    });
    match r {
        Ok(url) => Some(url.clone()),
        Err(why) => {
            missing("moto (S3 + Kinesis emulator)", why);
            None
        }
    }
}

/// AWS options for the emulator (explicit credentials: no client ever looks for instance
/// metadata).
pub fn moto_aws() -> Option<AwsOptions> {
    moto().map(|url| AwsOptions::emulator(&url))
}

fn start_moto() -> Result<String, String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())?;
    // a watchdog stops the server when this test process ends
    let script = format!(
        "moto_server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
         while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill $m",
        parent = std::process::id()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .spawn()
        .map_err(|e| format!("cannot start moto_server: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = format!("127.0.0.1:{port}");
    while Instant::now() < deadline {
        if reachable(&addr) {
            return Ok(format!("http://{addr}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err("moto_server did not start (pip install 'moto[server]')".into())
}

/// The PostgreSQL server URL (its `test` database).
pub fn postgres_base() -> Option<String> {
    let url = std::env::var("STOCKLAKE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    if reachable(&host_port(&url)) {
        Some(url)
    } else {
        missing("PostgreSQL", &format!("{url} is not reachable"));
        None
    }
}

/// A database of its own for one test; dropped when this value is.
#[derive(Debug)]
pub struct PgDb {
    pub url: String,
    pub name: String,
    base: String,
}

/// Creates a fresh, empty database.
pub async fn postgres() -> Option<PgDb> {
    let base = postgres_base()?;
    let name = unique("sl").replace('-', "_");
    match admin(&base, &format!("CREATE DATABASE {name}")).await {
        Ok(()) => {
            let url = match base.rfind('/') {
                Some(i) => format!("{}/{name}", &base[..i]),
                None => format!("{base}/{name}"),
            };
            Some(PgDb { url, name, base })
        }
        Err(e) => {
            missing("PostgreSQL", &e);
            None
        }
    }
}

async fn admin(base: &str, sql: &str) -> Result<(), String> {
    let (client, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let task = tokio::spawn(conn);
    let r = client.batch_execute(sql).await.map_err(|e| e.to_string());
    drop(client);
    let _ = task.await;
    r
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let base = self.base.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // a runtime of its own: Drop may run inside or outside one
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(admin(&base, &sql));
            }
        })
        .join();
    }
}
