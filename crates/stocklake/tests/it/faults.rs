//! Service faults: the bronze disk fills up under HTTP ingest. While records cannot be made
//! durable the answer is 503 with `Retry-After` and nothing is accepted; once there is room
//! again the producer's retries go through, and bronze holds every acknowledged record once.
//!
//! The disk is a tmpfs mounted for the test (root only, as CI runs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{
    assert_each_record_once, assert_stock_exact, free_port, known_events, ok, sigterm,
    silver_totals, spawn, start_run, stocklake, wait_for_gold_lines, wait_http,
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

/// A moto of this test's own, so that stopping it disturbs no other test.
struct OwnMoto {
    child: std::process::Child,
    url: String,
    /// Its log, kept beside a recording: it says why a replay fails.
    log: Option<PathBuf>,
}

impl OwnMoto {
    /// With `recording`, every request is appended to that file (moto's recorder), so that a
    /// new emulator can be given the same state by replaying it.
    fn start(recording: Option<&Path>) -> Option<OwnMoto> {
        let port = free_port();
        let mut c = Command::new("moto_server");
        if let Some(file) = recording {
            c.env("MOTO_ENABLE_RECORDING", "True")
                .env("MOTO_RECORDER_FILEPATH", file);
        }
        let log = recording.map(|r| r.with_extension(format!("{port}.log")));
        let stderr = log
            .as_ref()
            .and_then(|l| std::fs::File::create(l).ok())
            .map_or_else(std::process::Stdio::null, std::process::Stdio::from);
        let child = c
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
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
        Some(OwnMoto { child, url, log })
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .stderr(std::process::Stdio::null())
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

/// How S3 and Kinesis go away.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outage {
    /// The emulator is frozen (SIGSTOP): connections hang, as with a network partition.
    Frozen,
    /// The emulator is killed; after the outage a new one starts, is given the old one's state
    /// (moto's recorder replays every request it took), and clients are moved to it by the
    /// proxy they talk to: connections are refused, as with a service restart.
    Restarted,
}

/// S3 and Kinesis stop answering for 30 seconds or more while `stocklake run` is working: the
/// pipeline keeps serving, reports the failures, retries, and once the services are back every
/// event is in silver once and every line in gold.
async fn outage_loses_nothing(outage: Outage) {
    let dir = tempfile::tempdir().expect("tempdir");
    let recording = dir.path().join("moto-recording.jsonl");
    let Some(mut moto) =
        OwnMoto::start((outage == Outage::Restarted).then_some(recording.as_path()))
    else {
        return;
    };
    let Some(pg) = stocklake_testkit::postgres().await else {
        return;
    };
    // a recording emulator is given one request at a time, or its recording can come out
    // interleaved and fail to replay
    let proxy = match outage {
        Outage::Restarted => stocklake_testkit::throttle::ThrottlingProxy::serial(&moto.url),
        Outage::Frozen => stocklake_testkit::throttle::ThrottlingProxy::passthrough(&moto.url),
    }
    .expect("proxy");
    let aws = stocklake_testkit::AwsOptions::emulator(&proxy.url);
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
    let known = known_events(dir.path(), &sim);
    let (events, want_lines) = (&known.events, known.movements);

    let mut c = stocklake(dir.path(), Some(&aws));
    c.args(["init", "--shards", "2"]).args(&settings);
    ok(c);
    let (mut run, base) = start_run(dir.path(), Some(&aws), &settings);

    let mut c = stocklake(dir.path(), Some(&aws));
    c.arg("simulate").args(sim).args(["--to", &stream]);
    ok(c);
    // what the stream holds: a PutRecords the emulator was slow to answer can be retried by
    // the producer and stored twice, which the pipeline must then read as a repeat
    let in_stream = stream_records(&aws, &name).await;
    assert!(in_stream >= events.len(), "the stream lost records");
    // the outage, while work is in flight
    match outage {
        Outage::Frozen => moto.signal("-STOP"),
        Outage::Restarted => {
            let _ = moto.child.kill();
            let _ = moto.child.wait();
        }
    }
    let client = reqwest::Client::new();
    let down = Instant::now();
    let mut saw_trouble = false;
    // at least 30 s, and until the pipeline says so (a call times out after 25 s), 90 s at most
    while down.elapsed() < Duration::from_secs(30)
        || (!saw_trouble && down.elapsed() < Duration::from_secs(90))
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
        saw_trouble |= pipeline_reports_trouble(&client, &base).await;
    }
    let downtime = down.elapsed();
    match outage {
        Outage::Frozen => moto.signal("-CONT"),
        Outage::Restarted => {
            // the kill can fall inside the recorder's write of a request: keep whole lines
            let mut log = std::fs::read(&recording).expect("moto's recording");
            let whole = log.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            log.truncate(whole);
            std::fs::write(&recording, &log).expect("trim the recording");
            let Some(again) = OwnMoto::start(Some(&recording)) else {
                return;
            };
            let replay = client
                .post(format!("{}/moto-api/recorder/replay-recording", again.url))
                .timeout(Duration::from_secs(300))
                .send()
                .await
                .expect("replay the old emulator's requests");
            let status = replay.status();
            if !status.is_success() {
                let log = again
                    .log
                    .as_ref()
                    .and_then(|l| std::fs::read_to_string(l).ok())
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                panic!(
                    "replay: {status}; the emulator's log ends:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            proxy.set_upstream(&again.url);
            moto = again;
        }
    }
    assert!(
        saw_trouble,
        "90 s without S3 and Kinesis, and /v1/pipeline reported nothing"
    );

    let n = wait_for_gold_lines(
        &pg.url,
        want_lines,
        Duration::from_secs(240),
        "4 minutes after the outage",
        &run,
    )
    .await;
    assert_eq!(n, want_lines as i64, "a line is in gold twice");
    sigterm(&run);
    let log = run.wait_stderr_text();
    // delta-rs survives a panic of object_store's when a failed upload is aborted; it is logged
    // as one event like any other, never as a bare backtrace between the log's lines
    assert!(!log.contains("panicked at"), "{log}");

    // every record of the stream read once: its events once, its repeats counted as such
    let totals = silver_totals(dir.path(), Some(&aws), &settings);
    assert_eq!(
        totals["records"].as_u64(),
        Some(in_stream as u64),
        "{totals}"
    );
    assert_eq!(
        totals["events"].as_u64(),
        Some(events.len() as u64),
        "{totals}"
    );
    assert_eq!(
        totals["duplicates"].as_u64(),
        Some((in_stream - events.len()) as u64),
        "{totals}"
    );
    eprintln!(
        "S3 and Kinesis {} for {downtime:.0?}: {} events, {want_lines} lines exact",
        match outage {
            Outage::Frozen => "frozen",
            Outage::Restarted => "killed and restarted",
        },
        events.len()
    );
    drop(moto);
}

/// How many records the stream holds, read from every shard's start.
async fn stream_records(aws: &stocklake_testkit::AwsOptions, stream: &str) -> usize {
    use aws_sdk_kinesis::types::ShardIteratorType;
    let client = stocklake_storage::aws::kinesis_client(aws).await;
    let shards = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("ListShards");
    let mut n = 0;
    for shard in shards.shards() {
        let mut iterator = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator")
            .shard_iterator()
            .map(str::to_string);
        while let Some(it) = iterator {
            let out = client
                .get_records()
                .shard_iterator(it)
                .send()
                .await
                .expect("GetRecords");
            n += out.records().len();
            if out.records().is_empty() && out.millis_behind_latest().unwrap_or(0) == 0 {
                break;
            }
            iterator = out.next_shard_iterator().map(str::to_string);
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_seconds_without_s3_and_kinesis_lose_nothing() {
    outage_loses_nothing(Outage::Frozen).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_and_kinesis_killed_and_restarted_lose_nothing() {
    outage_loses_nothing(Outage::Restarted).await;
}

/// `/v1/pipeline` as text, when it answers within 5 s.
async fn pipeline_text(client: &reqwest::Client, base: &str) -> Option<String> {
    let r = client
        .get(format!("{base}/v1/pipeline"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let text = r.text().await.ok()?;
    if std::env::var("STOCKLAKE_TEST_DEBUG").is_ok() {
        eprintln!("{text}");
    }
    Some(text)
}

/// Whether `/v1/pipeline` shows a stage in trouble (a last error or a failure count).
async fn pipeline_reports_trouble(client: &reqwest::Client, base: &str) -> bool {
    pipeline_text(client, base)
        .await
        .is_some_and(|t| t.contains("\"last_error\":\"") || t.contains("failed"))
}

/// PostgreSQL (gold) is restarted while the tills are sending: ingest keeps accepting (bronze
/// and silver do not need the database), the model reports the lost connection, reconnects once
/// the server is back, and gold ends with every line once and every stock level exact.
#[tokio::test(flavor = "multi_thread")]
async fn a_postgresql_restart_under_load_loses_nothing() {
    let Some(pg) = stocklake_testkit::PrivatePostgres::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = [
        "--data-dir".to_string(),
        dir.path().join("data").display().to_string(),
        "--gold".to_string(),
        pg.url.clone(),
    ];
    // three days of two stores, paced so that they are still arriving while the server is down
    let sim = [
        "--seed",
        "13",
        "--stores",
        "2",
        "--skus",
        "150",
        "--days",
        "3",
        "--start",
        "2026-11-02",
    ];
    let known = known_events(dir.path(), &sim);
    let (events, want_stock, want_lines) = (&known.events, &known.stock, known.movements);
    assert!(events.len() > 1000 && want_stock.len() > 50);

    let (mut run, base) = start_run(dir.path(), None, &settings);
    let mut c = stocklake(dir.path(), None);
    c.arg("simulate")
        .args(sim)
        .args(["--realtime", "--speed", "8000", "--to", &base]);
    let mut producer = spawn(c);

    // the restart comes once gold has started filling
    let client = reqwest::Client::new();
    let started = Instant::now();
    while crate::common::gold_count(&pg.url, "SELECT COUNT(*) FROM fact_inventory_movement").await
        == 0
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "gold did not start filling"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    pg.stop();
    let down = Instant::now();
    let mut saw_trouble = false;
    // ten seconds down at least, and until the pipeline has said so (a minute at most)
    while down.elapsed() < Duration::from_secs(10)
        || (!saw_trouble && down.elapsed() < Duration::from_secs(60))
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
        saw_trouble |= pipeline_reports_trouble(&client, &base).await;
    }
    let producer_was_running = producer.try_wait().ok().flatten().is_none();
    let downtime = down.elapsed();
    pg.start_again();
    assert!(
        saw_trouble,
        "PostgreSQL down for a minute and /v1/pipeline reported nothing"
    );

    let status = producer.wait().expect("producer");
    assert!(
        status.success(),
        "the producer failed while PostgreSQL was down"
    );
    let waited = Instant::now();
    let movements = "SELECT COUNT(*) FROM fact_inventory_movement";
    while crate::common::gold_count(&pg.url, movements).await < want_lines as i64
        && waited.elapsed() < Duration::from_secs(90)
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let n = crate::common::gold_count(&pg.url, movements).await;
    if n != want_lines as i64 {
        let pipeline = pipeline_text(&client, &base).await.unwrap_or_default();
        let silver = silver_totals(dir.path(), None, &settings);
        let bronze = Command::new("sh")
            .arg("-c")
            .arg("find data -name '*.gz' | sort | while read f; do echo \"$f $(zcat $f | wc -l)\"; done")
            .current_dir(dir.path())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        eprintln!("bronze objects:\n{bronze}");
        panic!(
            "gold has {n} of {want_lines} lines 90 s after the restart\nsilver: {silver}\npipeline: {pipeline}\nrun's log:\n{}",
            run.stderr_text()
        );
    }
    // let stock levels settle, then stop cleanly
    tokio::time::sleep(Duration::from_secs(2)).await;
    sigterm(&run);
    let _ = run.wait();
    assert_stock_exact(&pg.url, want_stock, "after a PostgreSQL restart").await;
    assert_each_record_once(&silver_totals(dir.path(), None, &settings), events.len());
    eprintln!(
        "PostgreSQL restarted under load ({:.0?} down; the producer {} still sending): {} events, {want_lines} lines and {} stock levels exact",
        downtime,
        if producer_was_running {
            "was"
        } else {
            "was no longer"
        },
        events.len(),
        want_stock.len()
    );
}

/// Kinesis throttles (the emulator never does, so a proxy in front of it does what Kinesis
/// does): `GetRecords` refused for seconds at a time, `PutRecords` failing whole or record by
/// record. The producer resends exactly the failed records, the pipeline reports the throttling
/// and backs off, and every event ends in silver once and every stock level in gold exact.
#[tokio::test(flavor = "multi_thread")]
async fn kinesis_throttling_is_reported_retried_and_loses_nothing() {
    let Some(moto) = stocklake_testkit::moto() else {
        return;
    };
    let Some(pg) = stocklake_testkit::postgres().await else {
        return;
    };
    let proxy =
        stocklake_testkit::throttle::ThrottlingProxy::start(&moto).expect("throttling proxy");
    let aws = stocklake_testkit::AwsOptions::emulator(&proxy.url);
    let dir = tempfile::tempdir().expect("tempdir");
    let stream = format!("kinesis://{}", stocklake_testkit::unique("throttle"));
    let settings = [
        "--data-dir".to_string(),
        dir.path().join("data").display().to_string(),
        "--gold".to_string(),
        pg.url.clone(),
        "--stream".to_string(),
        stream.clone(),
    ];
    let sim = [
        "--seed", "14", "--stores", "2", "--skus", "120", "--days", "2",
    ];
    let known = known_events(dir.path(), &sim);
    let (events, want_stock, want_lines) = (&known.events, &known.stock, known.movements);

    let mut c = stocklake(dir.path(), Some(&aws));
    c.args(["init", "--shards", "2"]).args(&settings);
    ok(c);
    let (mut run, base) = start_run(dir.path(), Some(&aws), &settings);
    // the producer must get every record in although a third of many batches fail
    let mut c = stocklake(dir.path(), Some(&aws));
    c.arg("simulate").args(sim).args(["--to", &stream]);
    ok(c);

    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut reported = false;
    while !reported && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        reported = pipeline_text(&client, &base)
            .await
            .is_some_and(|t| t.contains("ProvisionedThroughputExceeded"));
    }
    assert!(
        reported,
        "a minute of throttling, and /v1/pipeline never said so"
    );
    let n = wait_for_gold_lines(
        &pg.url,
        want_lines,
        Duration::from_secs(180),
        "3 minutes under throttling",
        &run,
    )
    .await;
    assert_eq!(n, want_lines as i64, "a line is in gold twice");
    tokio::time::sleep(Duration::from_secs(2)).await;
    sigterm(&run);
    let _ = run.wait();
    assert_each_record_once(&silver_totals(dir.path(), None, &settings), events.len());
    assert_stock_exact(&pg.url, want_stock, "under Kinesis throttling").await;

    let counts = &proxy.counts;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert!(load(&counts.get_records_throttled) > 0);
    assert!(
        load(&counts.records_failed) > 0,
        "no PutRecords batch was partially failed"
    );
    eprintln!(
        "throttled: {} of {} GetRecords, {} of {} PutRecords whole, {} records inside batches; {} events, {want_lines} lines and {} stock levels exact",
        load(&counts.get_records_throttled),
        load(&counts.get_records),
        load(&counts.put_records_throttled),
        load(&counts.put_records),
        load(&counts.records_failed),
        events.len(),
        want_stock.len()
    );
}
