use std::collections::BTreeMap;

use deltalake::arrow::array::{Array, AsArray};
use stocklake_event::ReasonCode;
use stocklake_silver::tables::QUARANTINE;

use crate::common::*;

#[tokio::test]
async fn valid_bad_and_repeated_records_reconcile() {
    let mut lake = Lake::local();
    let mut records = vec![
        event("e1", "ST-1", "A", "2"),
        event("e2", "ST-1", "B", "0.532"),
        b"not json".to_vec(),
        event("e1", "ST-1", "A", "2"), // exact repeat
        event("e2", "ST-1", "B", "1"), // same id, other content
        event("", "ST-1", "B", "1"),   // invalid id
    ];
    records.push(vec![0xff, 0xfe]);
    lake.put("h1", &records).await;
    let mut r = lake.refiner().await;
    let reports = r.drain().await.expect("drain");
    assert_eq!(reports.len(), 1);
    let c = &reports[0].counts;
    assert_eq!(
        (c.records, c.events, c.quarantined, c.duplicates),
        (7, 2, 4, 1)
    );
    assert!(c.reconciles());
    assert_eq!(c.lines, 2);
    assert_eq!(lake.line_count().await, 2);
    assert_eq!(lake.quarantine_count().await, 4);
    assert_eq!(c.reasons.get("duplicate_conflict"), Some(&1));
    assert_eq!(c.reasons.get("not_json"), Some(&1));
    assert_eq!(c.reasons.get("not_utf8"), Some(&1));
    assert_eq!(c.reasons.get("invalid_event_id"), Some(&1));

    // nothing more to do; a new refiner agrees and does nothing twice
    assert!(r.run_batch().await.expect("batch").is_none());
    let mut again = lake.refiner().await;
    assert!(again.drain().await.expect("drain").is_empty());
    assert_eq!(again.progress().totals.records, 7);
}

#[tokio::test]
async fn duplicates_are_removed_across_batches_and_restarts() {
    let mut lake = Lake::local();
    lake.put(
        "h1",
        &[event("a", "S", "X", "1"), event("b", "S", "X", "1")],
    )
    .await;
    let mut r = lake.refiner().await;
    r.drain().await.expect("drain");
    drop(r);
    // after a restart the index is rebuilt from silver
    lake.put(
        "h1",
        &[event("a", "S", "X", "1"), event("c", "S", "X", "1")],
    )
    .await;
    lake.put("h2", &[event("b", "S", "X", "5")]).await;
    let mut r = lake.refiner().await;
    let reports = r.drain().await.expect("drain");
    let total: u64 = reports.iter().map(|b| b.counts.duplicates).sum();
    assert_eq!(total, 1);
    assert_eq!(lake.line_count().await, 3);
    assert_eq!(r.progress().totals.events, 3);
    assert_eq!(r.progress().totals.quarantined, 1);
}

#[tokio::test]
async fn every_reason_code_reaches_quarantine_with_lineage() {
    let mut lake = Lake::local();
    let good = |id: &str| event(id, "ST-1", "A", "1");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("too_large", format!("{{\"pad\":\"{}\"}}", "x".repeat(1024 * 1024 + 10)).into_bytes()),
        ("not_utf8", vec![b'{', 0xff, b'}']),
        ("not_json", b"{\"a\":".to_vec()),
        ("not_object", b"[1]".to_vec()),
        ("duplicate_field", br#"{"event_id":"d1","event_id":"d2","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"sku":"A","quantity":1}]}"#.to_vec()),
        ("unsupported_schema_version", br#"{"schema_version":2,"event_id":"v2","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"sku":"A","quantity":1}]}"#.to_vec()),
        ("missing_event_id", br#"{"event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"sku":"A","quantity":1}]}"#.to_vec()),
        ("invalid_event_id", br#"{"event_id":5,"event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"sku":"A","quantity":1}]}"#.to_vec()),
        ("missing_event_type", br#"{"event_id":"t0","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"sku":"A","quantity":1}]}"#.to_vec()),
        ("invalid_event_type", br#"{"event_id":"t1","event_type":"gift","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"sku":"A","quantity":1}]}"#.to_vec()),
        ("missing_event_time", br#"{"event_id":"t2","event_type":"sale","store_id":"S","lines":[{"sku":"A","quantity":1}]}"#.to_vec()),
        ("invalid_event_time", br#"{"event_id":"t3","event_type":"sale","event_time":"yesterday","store_id":"S","lines":[{"sku":"A","quantity":1}]}"#.to_vec()),
        ("event_time_out_of_range", br#"{"event_id":"t4","event_type":"sale","event_time":"2999-01-01T00:00:00Z","store_id":"S","lines":[{"sku":"A","quantity":1}]}"#.to_vec()),
        ("missing_store_id", br#"{"event_id":"s1","event_type":"sale","event_time":"2026-11-02T10:00:00Z","lines":[{"sku":"A","quantity":1}]}"#.to_vec()),
        ("invalid_store_id", br#"{"event_id":"s2","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"","lines":[{"sku":"A","quantity":1}]}"#.to_vec()),
        ("invalid_register_id", br#"{"event_id":"r1","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","register_id":7,"lines":[{"sku":"A","quantity":1}]}"#.to_vec()),
        ("missing_transaction_id", br#"{"product_id":"P1","quantity":1,"unit_price":1,"total_price":1,"timestamp":"2026-11-02T10:00:00+00:00","store_id":"S"}"#.to_vec()),
        ("invalid_transaction_id", br#"{"event_id":"x1","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","transaction_id":[],"lines":[{"sku":"A","quantity":1}]}"#.to_vec()),
        ("missing_lines", br#"{"event_id":"l1","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S"}"#.to_vec()),
        ("invalid_lines", br#"{"event_id":"l2","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":{}}"#.to_vec()),
        ("empty_lines", br#"{"event_id":"l3","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[]}"#.to_vec()),
        ("too_many_lines", format!(r#"{{"event_id":"l4","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{}]}}"#, vec![r#"{"sku":"A","quantity":1}"#; 1001].join(",")).into_bytes()),
        ("invalid_line", br#"{"event_id":"l5","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":["A"]}"#.to_vec()),
        ("missing_sku", br#"{"event_id":"k1","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"quantity":1}]}"#.to_vec()),
        ("invalid_sku", br#"{"event_id":"k2","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"sku":1,"quantity":1}]}"#.to_vec()),
        ("missing_quantity", br#"{"event_id":"q1","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"sku":"A"}]}"#.to_vec()),
        ("invalid_quantity", br#"{"event_id":"q2","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"sku":"A","quantity":"1"}]}"#.to_vec()),
        ("quantity_precision", br#"{"event_id":"q3","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"sku":"A","quantity":1.2345}]}"#.to_vec()),
        ("quantity_sign", br#"{"event_id":"q4","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"sku":"A","quantity":-1}]}"#.to_vec()),
        ("quantity_out_of_range", br#"{"event_id":"q5","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"sku":"A","quantity":1e13}]}"#.to_vec()),
        ("missing_unit_price", br#"{"transaction_id":"T","product_id":"P1","quantity":1,"total_price":1,"timestamp":"2026-11-02T10:00:00+00:00","store_id":"S"}"#.to_vec()),
        ("invalid_unit_price", br#"{"event_id":"p1","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"sku":"A","quantity":1,"unit_price":-1}]}"#.to_vec()),
        ("unit_price_precision", br#"{"event_id":"p2","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"sku":"A","quantity":1,"unit_price":1.00001}]}"#.to_vec()),
        ("invalid_discount", br#"{"event_id":"p3","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"sku":"A","quantity":1,"discount":"x"}]}"#.to_vec()),
        ("discount_precision", br#"{"event_id":"p4","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"sku":"A","quantity":1,"discount":0.00001}]}"#.to_vec()),
        ("missing_total_price", br#"{"transaction_id":"T2","product_id":"P1","quantity":1,"unit_price":1,"timestamp":"2026-11-02T10:00:00+00:00","store_id":"S"}"#.to_vec()),
        ("invalid_total_price", br#"{"transaction_id":"T3","product_id":"P1","quantity":1,"unit_price":1,"total_price":"1","timestamp":"2026-11-02T10:00:00+00:00","store_id":"S"}"#.to_vec()),
        ("total_price_mismatch", br#"{"transaction_id":"T4","product_id":"P1","quantity":2,"unit_price":1,"total_price":3,"timestamp":"2026-11-02T10:00:00+00:00","store_id":"S"}"#.to_vec()),
        ("amount_out_of_range", br#"{"event_id":"m1","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"sku":"A","quantity":1000000,"unit_price":100000000}]}"#.to_vec()),
        ("invalid_product_name", format!(r#"{{"transaction_id":"T5","product_id":"P1","product_name":"{}","quantity":1,"unit_price":1,"total_price":1,"timestamp":"2026-11-02T10:00:00+00:00","store_id":"S"}}"#, "n".repeat(500_000)).into_bytes()),
        ("invalid_payment_method", br#"{"event_id":"m2","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{"sku":"A","quantity":1}],"payment_method":7}"#.to_vec()),
        ("invalid_client_type", br#"{"transaction_id":"T7","product_id":"P1","quantity":1,"unit_price":1,"total_price":1,"timestamp":"2026-11-02T10:00:00+00:00","store_id":"S","client_type":""}"#.to_vec()),
        ("invalid_category", br#"{"transaction_id":"T6","product_id":"P1","category":"Dairy\nINFO forged","quantity":1,"unit_price":1,"total_price":1,"timestamp":"2026-11-02T10:00:00+00:00","store_id":"S"}"#.to_vec()),
        ("missing_order_id", br#"{"event_id":"o1","event_type":"purchase_order","event_time":"2026-11-02T10:00:00Z","expected_at":"2026-11-04T06:00:00Z","store_id":"S","lines":[{"sku":"A","quantity":6}]}"#.to_vec()),
        ("invalid_order_id", br#"{"event_id":"o2","event_type":"receipt","event_time":"2026-11-02T10:00:00Z","order_id":["PO-1"],"store_id":"S","lines":[{"sku":"A","quantity":6}]}"#.to_vec()),
        ("missing_expected_at", br#"{"event_id":"o3","event_type":"purchase_order","event_time":"2026-11-02T10:00:00Z","order_id":"PO-1","store_id":"S","lines":[{"sku":"A","quantity":6}]}"#.to_vec()),
        ("invalid_expected_at", br#"{"event_id":"o4","event_type":"purchase_order","event_time":"2026-11-02T10:00:00Z","order_id":"PO-1","expected_at":"Thursday","store_id":"S","lines":[{"sku":"A","quantity":6}]}"#.to_vec()),
    ];
    let mut records: Vec<Vec<u8>> = vec![good("orig")];
    records.extend(cases.iter().map(|(_, r)| r.clone()));
    // the conflict: same id as "orig", other content
    records.push(event("orig", "ST-1", "A", "9"));
    lake.put("h1", &records).await;
    let mut r = lake.refiner().await;
    r.drain().await.expect("drain");

    let mut by_line: BTreeMap<i32, (Vec<String>, String, Option<String>, Option<String>)> =
        BTreeMap::new();
    for b in lake.table_rows(QUARANTINE).await {
        let reasons = b
            .column_by_name("reasons")
            .expect("reasons")
            .as_list::<i32>()
            .clone();
        let lines = b
            .column_by_name("bronze_line")
            .expect("line")
            .as_primitive::<deltalake::arrow::datatypes::Int32Type>()
            .clone();
        let objects = b
            .column_by_name("bronze_object")
            .expect("object")
            .as_string::<i32>()
            .clone();
        let payload = b
            .column_by_name("payload")
            .expect("payload")
            .as_string::<i32>()
            .clone();
        let b64 = b
            .column_by_name("payload_base64")
            .expect("b64")
            .as_string::<i32>()
            .clone();
        for i in 0..b.num_rows() {
            let codes: Vec<String> = reasons
                .value(i)
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::to_string)
                .collect();
            assert!(objects.value(i).starts_with("pos_events/ingest_date="));
            by_line.insert(
                lines.value(i),
                (
                    codes,
                    objects.value(i).to_string(),
                    (!payload.is_null(i)).then(|| payload.value(i).to_string()),
                    (!b64.is_null(i)).then(|| b64.value(i).to_string()),
                ),
            );
        }
    }
    // bronze line n+1 holds case n (line 1 is the valid original)
    for (n, (code, raw)) in cases.iter().enumerate() {
        let (codes, _, payload, b64) = by_line
            .get(&(n as i32 + 2))
            .unwrap_or_else(|| panic!("{code} not quarantined"));
        assert!(codes.iter().any(|c| c == code), "{code}: got {codes:?}");
        match std::str::from_utf8(raw) {
            Ok(text) => assert_eq!(payload.as_deref(), Some(text), "{code}: payload kept"),
            Err(_) => assert!(b64.is_some(), "{code}: non-UTF-8 payload kept as base64"),
        }
    }
    let conflict_line = cases.len() as i32 + 2;
    assert_eq!(
        by_line.get(&conflict_line).map(|v| v.0.clone()),
        Some(vec!["duplicate_conflict".to_string()])
    );
    // every code was exercised
    let seen: std::collections::BTreeSet<String> =
        by_line.values().flat_map(|v| v.0.clone()).collect();
    for code in ReasonCode::ALL {
        assert!(seen.contains(code.as_str()), "no quarantine row for {code}");
    }
    assert_eq!(lake.line_count().await, 1);
}

/// Listings run while writers add objects (another process ingesting, or a scan in `run`):
/// however the listings interleave with the writes, every record ends in silver once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_racing_writers_miss_nothing() {
    let lake = Lake::local();
    const STREAMS: u64 = 2;
    const OBJECTS: u64 = 1000;
    let producers: Vec<_> = (0..STREAMS)
        .map(|stream| {
            let writer =
                stocklake_ingest::BronzeWriter::open(&lake.bronze, &lake.aws).expect("writer");
            tokio::spawn(async move {
                // each stream is written in order, one object after the other, as ingest does
                for seq in 1..=OBJECTS {
                    let record = stocklake_ingest::PendingRecord {
                        sequence: seq.to_string(),
                        arrived_at: chrono::Utc::now(),
                        payload: bytes::Bytes::from(event(
                            &format!("e{stream}-{seq}"),
                            "S",
                            "X",
                            "1",
                        )),
                    };
                    writer
                        .write(
                            &stocklake_storage::bronze::Source::Http,
                            &format!("h{stream}"),
                            std::slice::from_ref(&record),
                        )
                        .await
                        .expect("bronze write");
                }
            })
        })
        .collect();
    let mut r = lake.refiner().await;
    let mut scans = 0;
    while !producers.iter().all(|p| p.is_finished()) {
        r.scan().await.expect("scan");
        scans += 1;
        r.run_batch().await.expect("batch");
    }
    for p in producers {
        p.await.expect("producer");
    }
    r.scan().await.expect("scan");
    r.drain().await.expect("drain");
    assert!(scans > 5, "the scans must overlap the writes ({scans})");
    assert_eq!(r.progress().totals.events, STREAMS * OBJECTS);
    assert_eq!(lake.line_count().await, (STREAMS * OBJECTS) as usize);
}

#[tokio::test]
async fn a_batch_stops_taking_objects_at_its_byte_budget() {
    let mut lake = Lake::local();
    lake.put_pairs(12, "a", "b").await;
    // one byte: every object is over budget on its own, so a batch holds only the objects
    // already under way when the first one came back (at most the four read in parallel)
    let cfg = stocklake_refine::RefineConfig {
        batch_max_bytes: 1,
        ..lake.config()
    };
    let mut r = stocklake_refine::Refiner::open(cfg).await.expect("open");
    r.scan().await.expect("scan");
    let reports = r.drain().await.expect("drain");
    assert!(reports.len() >= 3, "{} batches", reports.len());
    assert!(reports.iter().all(|b| (1..=4).contains(&b.objects)));
    assert_eq!(reports.iter().map(|b| b.objects).sum::<usize>(), 12);
    assert_eq!(lake.line_count().await, 24);
    assert_eq!(r.progress().totals.events, 24);
    // a restarted refiner finds nothing left
    let mut again = lake.refiner().await;
    assert!(again.drain().await.expect("drain").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_object_offered_meanwhile_comes_before_the_prefetched_one() {
    let mut lake = Lake::local();
    for i in 0..3 {
        lake.put("h1", &[event(&format!("o{i}"), "S", "X", "1")])
            .await;
    }
    let store = lake.bronze.object_store(&lake.aws).expect("store");
    let mut names: Vec<_> = stocklake_storage::list_bronze(store.as_ref(), None)
        .await
        .expect("list")
        .into_iter()
        .map(|o| o.name)
        .collect();
    names.sort_by_key(|n| n.first_seq.parse::<u64>().unwrap_or(u64::MAX));
    let [a, b, c] = <[_; 3]>::try_from(names).expect("three objects");
    let cfg = stocklake_refine::RefineConfig {
        batch_max_objects: 1,
        ..lake.config()
    };
    let mut r = stocklake_refine::Refiner::open(cfg).await.expect("open");
    // the first listing missed `b`: batch 1 takes `a`, and `c` is read ahead while it commits
    r.offer([a.clone(), c.clone()]);
    r.run_batch().await.expect("batch 1").expect("a batch");
    assert_eq!(r.progress().objects, vec![a.path()]);
    // `b` is older than the object read ahead: it comes first, and `c` is read again after it
    r.offer([b.clone()]);
    r.run_batch().await.expect("batch 2").expect("a batch");
    assert_eq!(r.progress().objects, vec![b.path()]);
    r.run_batch().await.expect("batch 3").expect("a batch");
    assert_eq!(r.progress().objects, vec![c.path()]);
    assert!(r.run_batch().await.expect("done").is_none());
    assert_eq!(lake.line_count().await, 3);
    assert_eq!(r.progress().totals.events, 3);
    // the rows of each batch carry that batch's number
    let batches: Vec<i64> = lake
        .table_rows(stocklake_silver::tables::POS_EVENT_LINES)
        .await
        .iter()
        .flat_map(|b| {
            let col = b.column_by_name("refine_batch").expect("refine_batch");
            col.as_primitive::<deltalake::arrow::datatypes::Int64Type>()
                .values()
                .to_vec()
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(batches, vec![1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_read_ahead_commit_every_object_once_in_order() {
    let mut lake = Lake::local();
    lake.put_pairs(9, "p", "q").await;
    let cfg = stocklake_refine::RefineConfig {
        batch_max_objects: 2,
        ..lake.config()
    };
    let mut r = stocklake_refine::Refiner::open(cfg).await.expect("open");
    r.scan().await.expect("scan");
    let mut seen: Vec<String> = Vec::new();
    while let Some(report) = r.run_batch().await.expect("batch") {
        assert!(report.objects <= 2);
        seen.extend(r.progress().objects.iter().cloned());
    }
    let mut sorted = seen.clone();
    sorted.sort_by_key(|p| {
        stocklake_storage::bronze::ObjectName::parse(p)
            .and_then(|n| n.first_seq.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    });
    assert_eq!(seen, sorted, "objects consumed in order");
    assert_eq!(seen.len(), 9);
    assert_eq!(lake.line_count().await, 18);
    assert_eq!(r.progress().totals.events, 18);
    assert_eq!(r.progress().batch, 5);
}
