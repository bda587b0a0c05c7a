use std::process::Command;

use deltalake::arrow::array::AsArray;
use deltalake::arrow::datatypes::Decimal128Type;
use rust_decimal::Decimal;
use stocklake_refine::master::load_master_data;
use stocklake_silver::tables::POS_EVENT_LINES;
use stocklake_simulate::{SimConfig, Simulator};

use crate::common::*;

fn python_has(modules: &[&str]) -> bool {
    let code = modules
        .iter()
        .map(|m| format!("import {m}"))
        .collect::<Vec<_>>()
        .join(";");
    Command::new("python3")
        .args(["-c", &code])
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn python_deltalake_polars_and_duckdb_read_silver() {
    if !python_has(&["deltalake", "polars", "duckdb"]) {
        stocklake_testkit::missing(
            "python3 with deltalake, polars and duckdb",
            "pip install deltalake polars duckdb",
        );
        return;
    }
    let mut lake = Lake::local();
    let mut sim = Simulator::new(SimConfig {
        stores: 2,
        skus: 80,
        days: 2,
        bad_rate: 0.02,
        ..SimConfig::default()
    });
    let master = lake.path().join("master");
    sim.catalog().write_csv(&master).expect("catalog");
    while let Some(day) = sim.next_day() {
        for chunk in day.records.chunks(500) {
            let recs: Vec<Vec<u8>> = chunk.iter().map(|r| r.bytes.clone()).collect();
            lake.put("h1", &recs).await;
        }
    }
    load_master_data(&lake.silver, &lake.aws, &master)
        .await
        .expect("master");
    let mut r = lake.refiner().await;
    r.drain().await.expect("drain");
    let totals = r.progress().totals.clone();

    let mut sum = Decimal::ZERO;
    let mut rows = 0usize;
    for b in lake.table_rows(POS_EVENT_LINES).await {
        rows += b.num_rows();
        let q = b
            .column_by_name("quantity")
            .expect("qty")
            .as_primitive::<Decimal128Type>();
        for v in q.values() {
            sum += Decimal::from_i128_with_scale(*v, 3);
        }
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/read_silver.py");
    let silver = lake
        .silver
        .local_path()
        .expect("local")
        .display()
        .to_string();
    let out = Command::new("python3")
        .arg(&script)
        .arg(&silver)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let lines = &v["pos_event_lines"];
    assert_eq!(lines["rows"], rows);
    assert_eq!(lines["rows"], totals.lines);
    assert_eq!(lines["events"], totals.events);
    assert_eq!(lines["polars_rows"], rows);
    assert_eq!(lines["duckdb_rows"], rows);
    assert_eq!(lines["duckdb_dates"], 2);
    let same = |field: &str| {
        let s = lines[field].as_str().unwrap_or_default();
        s.parse::<Decimal>().map(|d| d.normalize()) == Ok(sum.normalize())
    };
    assert!(same("sum_quantity"), "{lines}");
    assert!(same("polars_sum_quantity"), "{lines}");
    assert!(same("duckdb_sum_quantity"), "{lines}");
    let types = &lines["types"];
    assert_eq!(types["quantity"], "decimal128(18, 3)");
    assert_eq!(types["unit_price"], "decimal128(18, 4)");
    assert_eq!(types["event_time"], "timestamp[us, tz=UTC]");
    assert_eq!(types["event_date"], "date32[day]");
    assert_eq!(types["line_no"], "int32");
    assert_eq!(
        lines["polars_types"]["quantity"],
        "Decimal(precision=18, scale=3)"
    );
    assert_eq!(v["quarantine"]["rows"], totals.quarantined);
    assert_eq!(v["quarantine"]["types"]["reasons"], "list<element: string>");
    assert_eq!(v["products"]["rows"], 80);
    assert_eq!(v["stores"]["rows"], 2);
}
