//! # stocklake-testkit
//!
//! Helpers for tests that talk to real services:
//!
//! - [`moto`]: an S3 + Kinesis emulator. `STOCKLAKE_TEST_MOTO` names a running one; otherwise a
//!   `moto_server` is started for this test process (and stopped when it exits).
//! - [`postgres`]: a fresh PostgreSQL database per test, dropped afterwards, on the server at
//!   `STOCKLAKE_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`).
//! - [`PrivatePostgres`]: a PostgreSQL cluster of its own, for a test that restarts the server.
//! - [`throttle::ThrottlingProxy`]: Kinesis throttling in front of the emulator.
//! - [`receiver::Receiver`]: a webhook receiver that records what it is sent.
//! - [`unique`]: names that do not collide between tests running in parallel.
//!
//! When a service is missing a test is skipped with a message — unless `CI` is set, where a
//! missing service fails the test, so that CI can never pass without running them.

pub mod receiver;
pub mod throttle;

use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use stocklake_storage::AwsOptions;

/// Serves `app` on a loopback port of its own, from a thread and runtime of its own (so that it
/// keeps answering whatever the test's runtime does); its address, `http://127.0.0.1:PORT`.
pub fn serve_in_background(app: axum::Router) -> Result<String, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            let _ = axum::serve(listener, app).await;
        });
    });
    Ok(format!("http://{addr}"))
}

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

impl PgDb {
    /// Runs statements in this database, on a connection of their own.
    pub async fn execute(&self, sql: &str) -> Result<(), String> {
        admin(&self.url, sql).await
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

/// A PostgreSQL server of its own (a fresh cluster made with `initdb` in a temporary
/// directory), for a test that stops and restarts the server: the shared one serves every other
/// test. Run as root, the cluster belongs to the `postgres` user. Stopped and removed on drop.
#[derive(Debug)]
pub struct PrivatePostgres {
    pub url: String,
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PrivatePostgres {
    /// Initialises and starts a cluster; `None` (after [`missing`]) when impossible.
    pub fn start() -> Option<PrivatePostgres> {
        match Self::try_start() {
            Ok(p) => Some(p),
            Err(why) => {
                missing("a private PostgreSQL cluster (initdb, pg_ctl)", &why);
                None
            }
        }
    }

    fn try_start() -> Result<PrivatePostgres, String> {
        let bin = pg_bin_dir().ok_or("no PostgreSQL server binaries (initdb) found")?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| e.to_string())?;
        let root = std::env::temp_dir().join(unique("stocklake-pg"));
        let data = root.join("data");
        std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&root))?;
        }
        let pg = PrivatePostgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            bin,
            data,
            port,
            as_postgres,
        };
        let mut initdb = pg.command("initdb");
        initdb
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&pg.data);
        run(&mut initdb)?;
        pg.pg_ctl_start()?;
        Ok(pg)
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.port,
            self.data.display()
        );
        let mut c = self.command("pg_ctl");
        c.arg("-D")
            .arg(&self.data)
            .args(["-o", &options, "-l"])
            .arg(self.data.join("server.log"))
            .args(["-w", "-t", "60", "start"]);
        run(&mut c)
    }

    /// Stops the server as an administrator's restart would (fast: sessions are cut off).
    pub fn stop(&self) {
        let mut c = self.command("pg_ctl");
        c.arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"]);
        if let Err(e) = run(&mut c) {
            panic!("cannot stop the private PostgreSQL: {e}");
        }
    }

    /// Starts it again after [`PrivatePostgres::stop`].
    pub fn start_again(&self) {
        if let Err(e) = self.pg_ctl_start() {
            panic!("cannot start the private PostgreSQL again: {e}");
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let mut c = self.command("pg_ctl");
        c.arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let _ = c.status();
        if let Some(root) = self.data.parent() {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

fn pg_bin_dir() -> Option<std::path::PathBuf> {
    if let Ok(dir) = std::env::var("STOCKLAKE_TEST_PG_BIN") {
        return Some(dir.into());
    }
    let mut dirs: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run(c: &mut Command) -> Result<(), String> {
    let out = c.output().map_err(|e| format!("{c:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{c:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
