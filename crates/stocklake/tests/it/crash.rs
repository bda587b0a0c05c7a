//! The crash harness: `stocklake run` on Kinesis and S3 (moto) and PostgreSQL, SIGKILLed at
//! random moments while a producer writes a known set of events to the stream, restarted each
//! time; at the end silver and gold are checked against an independent computation from the
//! events themselves: every event exactly once, every stock level exact.
//!
//! `STOCKLAKE_CRASH_KILLS` sets the number of kills (20 by default; the long mode is
//! `STOCKLAKE_CRASH_KILLS=100 cargo test -p stocklake --test it crash -- --nocapture`).

use std::time::Duration;

use crate::common::{
    assert_each_record_once, assert_stock_exact, free_port, gold_count, kill9, known_events, ok,
    sigterm, silver_totals, spawn, stocklake, wait_for_gold_lines,
};

#[tokio::test(flavor = "multi_thread")]
async fn run_killed_at_random_moments_ends_with_every_event_once_and_exact_stock() {
    let Some(aws) = stocklake_testkit::moto_aws() else {
        return;
    };
    let Some(pg) = stocklake_testkit::postgres().await else {
        return;
    };
    let kills: usize = std::env::var("STOCKLAKE_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("tempdir");
    let name = stocklake_testkit::unique("crash");
    let stream = format!("kinesis://{name}");
    let bucket = name.clone();
    let sim = [
        "--seed", "5", "--stores", "3", "--skus", "150", "--days", "3",
    ];
    let settings = [
        "--bronze".to_string(),
        format!("s3://{bucket}/bronze"),
        "--silver".to_string(),
        format!("s3://{bucket}/silver"),
        "--gold".to_string(),
        pg.url.clone(),
        "--stream".to_string(),
        stream.clone(),
        "--master-data".to_string(),
        dir.path().join("master").display().to_string(),
    ];

    // the known events, and the catalog
    let known = known_events(
        dir.path(),
        &[&sim[..], &["--catalog-out", "master"]].concat(),
    );
    let (events, want_stock, want_lines) = (&known.events, &known.stock, known.lines);
    // gold's movements: every line but those of purchase orders
    let want_movements = known.movements;
    assert!(events.len() > 1000 && want_stock.len() > 300);

    let mut c = stocklake(dir.path(), Some(&aws));
    c.args(["init", "--shards", "3"]).args(&settings);
    ok(c);

    // the producer writes the same events to the stream while stocklake is being killed
    let mut producer = stocklake(dir.path(), Some(&aws));
    producer.arg("simulate").args(sim).args(["--to", &stream]);
    let mut producer = spawn(producer);

    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..kills {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut c = stocklake(dir.path(), Some(&aws));
        c.arg("run")
            .args(&settings)
            .args(["--listen", &format!("127.0.0.1:{}", free_port())]);
        let mut child = spawn(c);
        // from before the first write to deep inside a batch
        let wait = 200 + rng % 2800;
        std::thread::sleep(Duration::from_millis(wait));
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "run {i} exited by itself ({status}): {}",
                child.wait_stderr_text()
            );
        }
        kill9(&mut child);
    }
    let status = producer.wait().expect("producer");
    assert!(status.success(), "the producer failed");

    // a last run, left to catch up
    let mut c = stocklake(dir.path(), Some(&aws));
    c.arg("run")
        .args(&settings)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())]);
    let mut child = spawn(c);
    let movements = "SELECT COUNT(*) FROM fact_inventory_movement";
    wait_for_gold_lines(
        &pg.url,
        want_movements,
        Duration::from_secs(300),
        "after 5 minutes",
        &child,
    )
    .await;
    // let the day close and stock levels settle, then stop cleanly
    tokio::time::sleep(Duration::from_secs(2)).await;
    sigterm(&child);
    let _ = child.wait();

    // every event exactly once: silver's reconciliation, gold's facts
    let totals = silver_totals(dir.path(), Some(&aws), &settings);
    assert_each_record_once(&totals, events.len());
    assert_eq!(totals["lines"].as_u64(), Some(want_lines), "{totals}");
    assert_eq!(totals["duplicates"].as_u64(), Some(0), "{totals}");
    assert_eq!(totals["quarantined"].as_u64(), Some(0), "{totals}");
    let distinct = gold_count(
        &pg.url,
        "SELECT COUNT(*) FROM (SELECT DISTINCT event_id, line_no FROM fact_inventory_movement) d",
    )
    .await;
    assert_eq!(gold_count(&pg.url, movements).await, want_movements as i64);
    assert_eq!(distinct, want_movements as i64, "a line is in gold twice");

    // every stock level exact
    assert_stock_exact(&pg.url, want_stock, &format!("after {kills} kills")).await;
    eprintln!(
        "{kills} kills: {} events, {want_lines} lines, {} stock levels exact",
        events.len(),
        want_stock.len()
    );
}
