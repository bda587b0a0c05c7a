use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use deltalake::arrow::array::AsArray;
use deltalake::arrow::datatypes::{Decimal128Type, Int32Type};
use stocklake_ingest::{BronzeWriter, PendingRecord};
use stocklake_silver::read::{active_files, read_files};
use stocklake_silver::tables::{POS_EVENT_LINES, QUARANTINE, open_or_create};
use stocklake_simulate::{SimConfig, Simulator};
use stocklake_storage::bronze::Source;
use stocklake_storage::{AwsOptions, Location};

use crate::common::*;

/// The content of silver, independent of how it was written.
async fn silver_content(
    silver: &Location,
) -> (
    BTreeMap<(String, i32), i128>,
    BTreeMap<(String, i32), String>,
) {
    let aws = AwsOptions::default();
    let t = open_or_create(silver, &aws, POS_EVENT_LINES)
        .await
        .expect("lines");
    let files = active_files(&t).await.expect("files");
    let mut lines = BTreeMap::new();
    for (_, batches) in read_files(t.object_store(), &files, None)
        .await
        .expect("read")
    {
        for b in batches {
            let ids = b.column_by_name("event_id").expect("id").as_string::<i32>();
            let nos = b
                .column_by_name("line_no")
                .expect("no")
                .as_primitive::<Int32Type>();
            let q = b
                .column_by_name("quantity")
                .expect("q")
                .as_primitive::<Decimal128Type>();
            for i in 0..b.num_rows() {
                let prev = lines.insert((ids.value(i).to_string(), nos.value(i)), q.value(i));
                assert!(prev.is_none(), "a line twice in silver");
            }
        }
    }
    let t = open_or_create(silver, &aws, QUARANTINE)
        .await
        .expect("quarantine");
    let files = active_files(&t).await.expect("files");
    let mut quarantine = BTreeMap::new();
    for (_, batches) in read_files(t.object_store(), &files, None)
        .await
        .expect("read")
    {
        for b in batches {
            let obj = b
                .column_by_name("bronze_object")
                .expect("o")
                .as_string::<i32>();
            let line = b
                .column_by_name("bronze_line")
                .expect("l")
                .as_primitive::<Int32Type>();
            let details = b
                .column_by_name("reason_details")
                .expect("d")
                .as_string::<i32>();
            for i in 0..b.num_rows() {
                let prev = quarantine.insert(
                    (obj.value(i).to_string(), line.value(i)),
                    details.value(i).to_string(),
                );
                assert!(prev.is_none(), "a record quarantined twice");
            }
        }
    }
    (lines, quarantine)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkilled_refine_always_ends_with_the_same_silver() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bronze = Location::Local(dir.path().join("data/bronze"));
    let writer = BronzeWriter::open(&bronze, &AwsOptions::default()).expect("writer");
    let mut sim = Simulator::new(SimConfig {
        stores: 3,
        skus: 120,
        days: 2,
        bad_rate: 0.03,
        ..SimConfig::default()
    });
    let mut seq = 1u64;
    let mut objects = 0;
    while let Some(day) = sim.next_day() {
        for chunk in day.records.chunks(150) {
            let pending: Vec<PendingRecord> = chunk
                .iter()
                .map(|r| {
                    seq += 1;
                    PendingRecord {
                        sequence: seq.to_string(),
                        arrived_at: Utc::now(),
                        payload: Bytes::from(r.bytes.clone()),
                    }
                })
                .collect();
            writer
                .write(&Source::Http, "h1", &pending)
                .await
                .expect("bronze");
            objects += 1;
        }
    }
    assert!(objects > 40, "{objects}");

    // the reference: one clean run into a silver of its own
    let reference = dir.path().join("reference");
    let mut c = stocklake(dir.path(), None);
    c.args([
        "refine",
        "--once",
        "--silver",
        reference.to_str().expect("utf8"),
    ]);
    ok(c);
    let want = silver_content(&Location::Local(reference)).await;
    assert!(want.0.len() > 1000 && !want.1.is_empty());

    // the same bronze, refined one object per batch, killed at random moments
    let mut rng = 0x2545F4914F6CDD1Du64;
    for _ in 0..8 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut c = stocklake(dir.path(), None);
        c.args(["refine", "--once"])
            .env("STOCKLAKE_REFINE_BATCH_MAX_OBJECTS", "1");
        let mut child = spawn(c);
        tokio::time::sleep(Duration::from_millis(150 + rng % 600)).await;
        kill9(&mut child);
    }
    let mut c = stocklake(dir.path(), None);
    c.args(["refine", "--once"]);
    ok(c);
    let got = silver_content(&Location::Local(dir.path().join("data/silver"))).await;
    assert_eq!(got.0.len(), want.0.len());
    assert_eq!(got.0, want.0, "the same lines");
    assert_eq!(got.1, want.1, "the same quarantine");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_the_quarantine_and_the_lines_commit_is_redone_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bronze = Location::Local(dir.path().join("data/bronze"));
    let writer = BronzeWriter::open(&bronze, &AwsOptions::default()).expect("writer");
    let records: Vec<PendingRecord> = (0..50)
        .map(|i| {
            let payload = if i % 5 == 0 {
                format!("bad record {i}")
            } else {
                format!(r#"{{"event_id":"c{i}","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{{"sku":"A","quantity":1}}]}}"#)
            };
            PendingRecord { sequence: (i + 1).to_string(), arrived_at: Utc::now(), payload: Bytes::from(payload) }
        })
        .collect();
    writer
        .write(&Source::Http, "h1", &records[..25])
        .await
        .expect("bronze");
    writer
        .write(&Source::Http, "h1", &records[25..])
        .await
        .expect("bronze");
    for point in [
        "refine_after_quarantine_commit",
        "refine_after_lines_commit",
    ] {
        let mut c = stocklake(dir.path(), None);
        c.args(["refine", "--once"])
            .env("STOCKLAKE_REFINE_BATCH_MAX_OBJECTS", "1")
            .env("STOCKLAKE_FAILPOINT", point);
        let out = c.output().expect("run");
        assert!(!out.status.success(), "{point} must abort");
    }
    let mut c = stocklake(dir.path(), None);
    c.args(["refine", "--once"]);
    ok(c);
    let (lines, quarantine) =
        silver_content(&Location::Local(dir.path().join("data/silver"))).await;
    assert_eq!(lines.len(), 40);
    assert_eq!(quarantine.len(), 10);
}
