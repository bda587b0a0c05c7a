//! Service faults: the bronze disk fills up under HTTP ingest. While records cannot be made
//! durable the answer is 503 with `Retry-After` and nothing is accepted; once there is room
//! again the producer's retries go through, and bronze holds every acknowledged record once.
//!
//! The disk is a tmpfs mounted for the test (root only, as CI runs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{free_port, ok, spawn, stocklake, wait_http};

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
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();

    // bronze holds every acknowledged record once, and nothing of the refused writes
    let mut c = stocklake(dir.path(), None);
    c.args(["refine", "--once", "--data-dir"]).arg(&data);
    ok(c);
    let mut c = stocklake(dir.path(), None);
    c.args(["status", "--json", "--data-dir"]).arg(&data);
    let out = ok(c);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status");
    let totals = &status["silver"]["totals"];
    assert_eq!(
        totals["records"].as_u64(),
        Some(lines.len() as u64),
        "{totals}"
    );
    assert_eq!(
        totals["events"].as_u64(),
        Some(lines.len() as u64),
        "{totals}"
    );
    assert_eq!(totals["duplicates"].as_u64(), Some(0), "{totals}");
}
