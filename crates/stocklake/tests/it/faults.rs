//! Service faults: the bronze disk fills up under HTTP ingest. While records cannot be made
//! durable the answer is 503 with `Retry-After` and nothing is accepted; once there is room
//! again the producer's retries go through, and bronze holds every acknowledged record once.
//!
//! The disk is a tmpfs mounted for the test (root only, as CI runs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{
    assert_each_record_once, expected_stock, free_port, ok, read_records, sigterm, silver_totals,
    spawn, stocklake, wait_for_gold_lines, wait_http,
};

/// A tmpfs of its own, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(Tmpfs(dir.to_path_buf()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("mount");
        assert!(status.success(), "remount {}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_bronze_disk_answers_503_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let disk = match Tmpfs::mount(&data, "384k") {
        Ok(d) => d,
        Err(why) => {
            stocklake_testkit::missing("a tmpfs mount (root)", &why);
            return;
        }
    };
    // the records: a store's day of till traffic, in bodies of 40
    let events = dir.path().join("events.ndjson");
    let mut c = stocklake(dir.path(), None);
    c.args([
        "simulate", "--seed", "8", "--stores", "1", "--skus", "200", "--days", "1", "--to",
    ])
    .arg(format!("file:{}", events.display()));
    ok(c);
    let text = std::fs::read_to_string(&events).expect("events");
    let lines: Vec<&str> = text.lines().collect();
    let bodies: Vec<String> = lines.chunks(40).map(|c| c.join("\n") + "\n").collect();
    let total_bytes: usize = text.len();
    assert!(
        total_bytes > 3 * 384 * 1024,
        "the records must not fit on the small disk"
    );

    let port = free_port();
    let mut c = stocklake(dir.path(), None);
    c.arg("ingest")
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{port}")]);
    let mut child = spawn(c);
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&base);
    let client = reqwest::Client::new();

    let mut accepted = 0usize;
    let mut refusals = 0usize;
    let mut resized = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    for body in &bodies {
        loop {
            assert!(Instant::now() < deadline, "ingest never recovered");
            let r = client
                .post(format!("{base}/v1/events"))
                .header("content-type", "application/x-ndjson")
                .body(body.clone())
                .send()
                .await
                .expect("POST");
            let status = r.status().as_u16();
            let retry = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let v: serde_json::Value = r.json().await.expect("a JSON answer");
            match status {
                202 => {
                    accepted += v["accepted"].as_u64().expect("accepted") as usize;
                    break;
                }
                503 => {
                    refusals += 1;
                    assert_eq!(v["error"], "bronze_unavailable", "{v}");
                    assert!(retry.is_some_and(|s| s >= 1), "503 without Retry-After");
                    // the operator frees space; the producer retries after Retry-After
                    if !resized {
                        disk.resize("64m");
                        resized = true;
                    }
                    tokio::time::sleep(Duration::from_secs(retry.unwrap_or(1))).await;
                }
                other => panic!("unexpected answer {other}: {v}"),
            }
        }
    }
    assert!(refusals > 0, "the disk never filled");
    assert_eq!(accepted, lines.len());
    sigterm(&child);
    let _ = child.wait();

    // bronze holds every acknowledged record once, and nothing of the refused writes
    let mut c = stocklake(dir.path(), None);
    c.args(["refine", "--once", "--data-dir"]).arg(&data);
    ok(c);
    let settings = ["--data-dir".to_string(), data.display().to_string()];
    assert_each_record_once(&silver_totals(dir.path(), None, &settings), lines.len());
}

/// A moto of this test's own, so that pausing it disturbs no other test.
struct OwnMoto {
    child: std::process::Child,
    url: String,
}

impl OwnMoto {
    fn start() -> Option<OwnMoto> {
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                stocklake_testkit::missing("moto_server", &e.to_string());
                return None;
            }
        };
        let url = format!("http://127.0.0.1:{port}");
        wait_http(&url);
        Some(OwnMoto { child, url })
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status();
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// S3 and Kinesis stop answering for 30 seconds or more while `stocklake run` is working (the
/// emulator is frozen with SIGSTOP, so nothing it holds is lost): the pipeline keeps serving,
/// reports the failures, retries, and once the services are back every event is in silver
/// once and every line in gold.
#[tokio::test(flavor = "multi_thread")]
async fn thirty_seconds_without_s3_and_kinesis_lose_nothing() {
    let Some(moto) = OwnMoto::start() else {
        return;
    };
    let Some(pg) = stocklake_testkit::postgres().await else {
        return;
    };
    let aws = stocklake_testkit::AwsOptions::emulator(&moto.url);
    let dir = tempfile::tempdir().expect("tempdir");
    let name = stocklake_testkit::unique("outage");
    let stream = format!("kinesis://{name}");
    let settings = [
        "--bronze".to_string(),
        format!("s3://{name}/bronze"),
        "--silver".to_string(),
        format!("s3://{name}/silver"),
        "--gold".to_string(),
        pg.url.clone(),
        "--stream".to_string(),
        stream.clone(),
    ];
    let sim = [
        "--seed", "12", "--stores", "2", "--skus", "100", "--days", "2",
    ];
    let events_file = dir.path().join("events.ndjson");
    let mut c = stocklake(dir.path(), Some(&aws));
    c.arg("simulate")
        .args(sim)
        .arg("--to")
        .arg(format!("file:{}", events_file.display()));
    ok(c);
    let events = read_records(&events_file);
    let (_, want_lines) = expected_stock(&events);

    let mut c = stocklake(dir.path(), Some(&aws));
    c.args(["init", "--shards", "2"]).args(&settings);
    ok(c);
    let port = free_port();
    let mut c = stocklake(dir.path(), Some(&aws));
    c.arg("run")
        .args(&settings)
        .args(["--listen", &format!("127.0.0.1:{port}")]);
    let mut run = spawn(c);
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&base);

    let mut c = stocklake(dir.path(), Some(&aws));
    c.arg("simulate").args(sim).args(["--to", &stream]);
    ok(c);
    // the outage: S3 and Kinesis freeze while work is in flight
    moto.signal("-STOP");
    let client = reqwest::Client::new();
    let frozen = Instant::now();
    let mut saw_trouble = false;
    // at least 30 s, and until the pipeline says so (a call times out after 25 s), 90 s at most
    while frozen.elapsed() < Duration::from_secs(30)
        || (!saw_trouble && frozen.elapsed() < Duration::from_secs(90))
    {
        tokio::time::sleep(Duration::from_secs(2)).await;
        // the process stays up and keeps answering
        let health = client
            .get(format!("{base}/healthz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("healthz during the outage");
        assert!(health.status().is_success());
        if let Ok(r) = client
            .get(format!("{base}/v1/pipeline"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            && let Ok(v) = r.json::<serde_json::Value>().await
        {
            let text = v.to_string();
            if std::env::var("STOCKLAKE_TEST_DEBUG").is_ok() {
                eprintln!("{:.0?}: {text}", frozen.elapsed());
            }
            saw_trouble |= text.contains("\"last_error\":\"") || text.contains("failed");
        }
    }
    moto.signal("-CONT");
    assert!(
        saw_trouble,
        "90 s without S3 and Kinesis, and /v1/pipeline reported nothing"
    );

    let n = wait_for_gold_lines(
        &pg.url,
        want_lines,
        Duration::from_secs(240),
        "4 minutes after the outage",
    )
    .await;
    assert_eq!(n, want_lines as i64, "a line is in gold twice");
    sigterm(&run);
    let _ = run.wait();

    assert_each_record_once(
        &silver_totals(dir.path(), Some(&aws), &settings),
        events.len(),
    );
    eprintln!(
        "outage of 30 s: {} events, {want_lines} lines exact; failures reported during it: {saw_trouble}",
        events.len()
    );
}
