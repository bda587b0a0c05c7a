//! Lines gold cannot take never stop it: they are isolated, set aside in `gold_dead_letter`
//! with the error, and every other line of their batch reaches gold exactly.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use stocklake_model::Gold;
use stocklake_model::queries::{Page, count_rows, counts, dead_letters};
use stocklake_simulate::OutRecord;

use crate::common::*;

fn record(json: serde_json::Value) -> OutRecord {
    OutRecord {
        time: chrono::Utc::now(),
        partition_key: "S".into(),
        bytes: json.to_string().into_bytes(),
    }
}

fn event(id: &str, kind: &str, time: &str, store: &str, sku: &str, qty: &str) -> OutRecord {
    let q: serde_json::Value = serde_json::from_str(qty).expect("quantity");
    record(serde_json::json!({
        "schema_version": 1, "event_id": id, "event_type": kind, "event_time": time,
        "store_id": store, "lines": [{"sku": sku, "quantity": q}]
    }))
}

/// Honest events around lines whose sums gold cannot hold: a key's stock past 10^12 units
/// (each receipt is within refine's limits on its own), and a store's hourly sales past it.
fn poisoned_chain() -> (Vec<OutRecord>, BTreeSet<&'static str>) {
    let mut r = Vec::new();
    for i in 0..30 {
        r.push(event(
            &format!("honest-{i}"),
            if i % 3 == 0 { "receipt" } else { "sale" },
            &format!("2026-11-02T{:02}:{:02}:00Z", 8 + i / 10, (i % 10) * 5),
            if i % 2 == 0 { "S1" } else { "S2" },
            &format!("SKU-{}", i % 4),
            "3",
        ));
    }
    // the first fits (9e11 on hand), the next two each take the key past 10^12
    for (i, t) in ["09:00", "09:10", "09:20"].iter().enumerate() {
        r.push(event(
            &format!("huge-receipt-{i}"),
            "receipt",
            &format!("2026-11-02T{t}:00Z"),
            "S1",
            "SKU-HUGE",
            "900000000000",
        ));
    }
    // two sales of 6e11 in one hour: the second takes the store's hour (and the key) past it
    for (i, t) in ["10:01", "10:02"].iter().enumerate() {
        r.push(event(
            &format!("huge-sale-{i}"),
            "sale",
            &format!("2026-11-02T{t}:00Z"),
            "S2",
            "SKU-BULK",
            "600000000000",
        ));
    }
    for i in 0..10 {
        r.push(event(
            &format!("after-{i}"),
            "sale",
            &format!("2026-11-02T11:{:02}:00Z", i * 3),
            "S1",
            "SKU-1",
            "1",
        ));
    }
    let poison = BTreeSet::from(["huge-receipt-1", "huge-receipt-2", "huge-sale-1"]);
    (r, poison)
}

async fn check(lake: &Lake, gold: &Gold, poison: &BTreeSet<&str>) {
    // the dead letters are exactly the lines gold cannot hold, each with why
    let dead = dead_letters(
        gold,
        Page {
            limit: 100,
            offset: 0,
        },
    )
    .await
    .expect("dead letters");
    let ids: BTreeSet<String> = dead
        .iter()
        .map(|d| d["event_id"].as_str().expect("id").to_string())
        .collect();
    let want: BTreeSet<String> = poison.iter().map(|s| s.to_string()).collect();
    assert_eq!(ids, want, "{dead:#?}");
    for d in &dead {
        let error = d["error"].as_str().expect("error");
        assert!(error.contains("out of range"), "{error}");
        assert!(d["quantity"].as_str().is_some_and(|q| q.len() >= 12), "{d}");
    }
    assert_eq!(
        counts(gold).await.expect("counts")["dead_letters"].as_i64(),
        Some(poison.len() as i64)
    );
    assert_eq!(
        count_rows(gold, "gold_dead_letter").await.expect("count"),
        poison.len() as i64
    );
    // every other line is in gold, once: stock equals silver without the dead letters
    let mut want: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for l in lake.silver_lines().await {
        if poison.contains(l.event_id.as_str()) {
            continue;
        }
        let d = l
            .event_type
            .stock_delta(l.quantity)
            .expect("movements only");
        *want.entry((l.store_id, l.sku)).or_default() += d;
    }
    assert_eq!(gold_on_hand(gold).await, want);
    let (movements, _) = kept_counts_are_exact(gold).await;
    assert_eq!(movements as usize, 45 - poison.len());
}

async fn run(url: &str) {
    let mut lake = Lake::new();
    let (records, poison) = poisoned_chain();
    // in two deliveries: a poisoned batch, then one that follows it
    lake.put(&records[..36]).await;
    lake.refine().await;
    let mut model = lake.model(url).await;
    model
        .drain()
        .await
        .expect("a poisoned batch is isolated, not retried for ever");
    lake.put(&records[36..]).await;
    lake.refine().await;
    model.drain().await.expect("the batches after it");
    check(&lake, model.gold(), &poison).await;
    // a restarted model agrees and has nothing left to do
    let mut again = lake.model(url).await;
    assert!(again.run_batch().await.expect("batch").is_none());
    check(&lake, again.gold(), &poison).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_sets_poisoned_lines_aside_and_goes_on() {
    let lake = Lake::new();
    let url = lake.sqlite_url();
    run(&url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_sets_poisoned_lines_aside_and_goes_on() {
    let Some(pg) = stocklake_testkit::postgres().await else {
        return;
    };
    run(&pg.url).await;
}

/// PostgreSQL's own refusals of data (a data exception, an integrity violation) are told
/// apart from everything else: they are what the model isolates, the rest it retries.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_refusals_of_the_data_are_classified() {
    let Some(pg) = stocklake_testkit::postgres().await else {
        return;
    };
    let gold = Gold::connect(&pg.url).await.expect("gold");
    gold.migrate().await.expect("migrate");
    let mut ws = stocklake_model::rows::WriteSet::default();
    ws.movements.push(stocklake_model::rows::MovementRow {
        event_id: "e".into(),
        line_no: 1,
        date_key: 20261102,
        // no such store, product or date: foreign keys refuse it (SQLSTATE 23503)
        store_key: 999,
        product_key: 999,
        event_type: "receipt",
        quantity: Decimal::ONE,
        quantity_delta: Decimal::ONE,
        event_time: t("2026-11-02T10:00:00Z"),
    });
    let e = gold.apply(ws.clone()).await.expect_err("refused");
    assert!(e.is_rejected(), "{e}");
    let e = gold.trial(ws).await.expect_err("refused in a trial too");
    assert!(e.is_rejected(), "{e}");
    // a database that is gone is not the data's fault
    drop(pg);
    let mut ws = stocklake_model::rows::WriteSet::default();
    ws.dates.push(stocklake_model::rows::DateRow::new(
        chrono::NaiveDate::from_ymd_opt(2026, 11, 2).expect("date"),
    ));
    if let Err(e) = gold.apply(ws).await {
        assert!(!e.is_rejected(), "{e}");
    }
}

/// Values at every limit refine lets through reach gold exactly, on SQLite as on PostgreSQL: a
/// quantity of 999,999,999,999.999, a price of 99,999,999,999.9999, and the amount of a line
/// just below 10^11. SQLite keeps a decimal as the double nearest to it and guarantees its first
/// 15 significant digits, so a value of at most 15 reads back exactly (decision 0004: at most 15
/// is what every bound keeps).
async fn limits_round_trip(
    url: &str,
    read: impl AsyncFnOnce(&str) -> Vec<(String, String, String, String)>,
) {
    let mut lake = Lake::new();
    let receipt = event(
        "limit-receipt",
        "receipt",
        "2026-11-02T09:00:00Z",
        "S1",
        "BIG",
        "999999999999.999",
    );
    let sale = record(serde_json::json!({
        "schema_version": 1, "event_id": "limit-sale", "event_type": "sale",
        "event_time": "2026-11-02T10:00:00Z", "store_id": "S1",
        "lines": [
            {"sku": "DEAR", "quantity": 0.001, "unit_price": 99999999999.9999, "discount": 12345678.9012},
            {"sku": "MANY", "quantity": 1111111.111, "unit_price": 89999.9999}
        ]
    }));
    lake.put(&[receipt, sale]).await;
    lake.refine().await;
    let mut model = lake.model(url).await;
    model.drain().await.expect("model");
    let on_hand = gold_on_hand(model.gold()).await;
    assert_eq!(
        on_hand[&("S1".to_string(), "BIG".to_string())],
        "999999999999.999".parse::<Decimal>().expect("decimal")
    );
    assert_eq!(
        on_hand[&("S1".to_string(), "MANY".to_string())],
        "-1111111.111".parse::<Decimal>().expect("decimal")
    );
    let rows = read(url).await;
    let dec = |s: &str| s.parse::<Decimal>().expect("decimal").normalize();
    let want = [
        (
            "-0.001",
            "99999999999.9999",
            "12345678.9012",
            "-87654321.0988",
        ),
        ("-1111111.111", "89999.9999", "", "-99999999878.8889"),
    ];
    // net amount = quantity × price − discount, rounded to 4 decimals (returns negative): the
    // sale's amounts are its lines' (signs as gold stores sales: positive quantities)
    assert_eq!(rows.len(), 2, "{rows:?}");
    for ((q, p, d, n), (wq, wp, wd, wn)) in rows.iter().zip(want) {
        assert_eq!(dec(q), dec(wq).abs(), "{rows:?}");
        assert_eq!(dec(p), dec(wp), "{rows:?}");
        if !wd.is_empty() {
            assert_eq!(dec(d), dec(wd), "{rows:?}");
        }
        assert_eq!(dec(n), dec(wn).abs(), "{rows:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_holds_values_at_every_limit_exactly() {
    let lake = Lake::new();
    let url = lake.sqlite_url();
    limits_round_trip(&url, async |url: &str| {
        let c = rusqlite::Connection::open(url.trim_start_matches("sqlite://")).expect("open");
        let mut s = c
            .prepare("SELECT printf('%.15g', quantity), printf('%.15g', unit_price), COALESCE(printf('%.15g', discount), ''), printf('%.15g', net_amount) FROM fact_sales ORDER BY line_no")
            .expect("prepare");
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("query")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_holds_values_at_every_limit_exactly() {
    let Some(pg) = stocklake_testkit::postgres().await else {
        return;
    };
    limits_round_trip(&pg.url, async |url: &str| {
        let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        c.query("SELECT quantity::text, unit_price::text, COALESCE(discount::text, ''), net_amount::text FROM fact_sales ORDER BY line_no", &[])
            .await
            .expect("query")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    })
    .await;
}
